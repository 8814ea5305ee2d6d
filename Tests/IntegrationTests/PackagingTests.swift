// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSimulator
import TestSupport
import Testing

/// Docker files cannot be run here (no Docker engine), so they are checked structurally.
@Suite("Packaging")
struct PackagingTests {
    static let root = WorkerStack.repositoryRoot

    /// `../shared` beside the project (or `OTA_SHARED_DIR`): the official data the checks use.
    static var sharedDirectory: String {
        ProcessInfo.processInfo.environment["OTA_SHARED_DIR"] ?? (root as NSString).deletingLastPathComponent
            + "/shared"
    }

    @Test("docker-compose.yml conforms to the Compose specification and describes broker, simulator and worker")
    func composeFile() async throws {
        let schema = Self.sharedDirectory + "/compose-spec/compose-spec.json"
        try #require(
            FileManager.default.fileExists(atPath: schema),
            "the Compose specification schema is missing at \(schema): put the shared folder beside the project or set OTA_SHARED_DIR"
        )
        // The specification is a draft-07 JSON Schema; Python's jsonschema is the reference validator for it.
        let script = """
            import json, sys, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            document = yaml.safe_load(open(sys.argv[2]))
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
            for error in errors:
                print("/".join(map(str, error.path)) + ": " + error.message)
            print(json.dumps(sorted(document.get("services", {}))))
            services = document.get("services", {})
            print(json.dumps({name: {"healthcheck": service.get("healthcheck", {}).get("test"),
                                     "depends_on": service.get("depends_on")} for name, service in services.items()}))
            sys.exit(1 if errors else 0)
            """
        let result = try await runProcess(
            "python3",
            ["-c", script, schema, Self.root + "/docker-compose.yml"],
            timeout: .seconds(60)
        )
        #expect(result.exitCode == 0, "docker-compose.yml does not conform:\n\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains(#"["broker", "simulator", "worker"]"#), "services: \(result.stdout)")

        // Health: the worker and the simulator are checked by the worker's own binary (the image has no curl), and
        // the worker starts once the broker and the simulator are healthy.
        let summary = try #require(result.stdout.split(separator: "\n").last.map { Data($0.utf8) })
        let services = try #require(try JSONSerialization.jsonObject(with: summary) as? [String: [String: Any]])
        let workerCheck = services["worker"]?["healthcheck"] as? [String]
        #expect(workerCheck == ["CMD", "ota-cancel-worker", "health"])
        let simulatorCheck = services["simulator"]?["healthcheck"] as? [String] ?? []
        #expect(simulatorCheck.prefix(4) == ["CMD", "ota-cancel-worker", "health", "--url"], "\(simulatorCheck)")
        #expect(simulatorCheck.last?.hasPrefix("http://127.0.0.1:8080/") == true, "the simulator's own port, inside")
        let dependencies = services["worker"]?["depends_on"] as? [String: [String: String]] ?? [:]
        #expect(dependencies["broker"]?["condition"] == "service_healthy")
        #expect(dependencies["simulator"]?["condition"] == "service_healthy")
        #expect(services["broker"]?["healthcheck"] != nil, "service_healthy needs a health check")
        // The simulator's check passes against a simulator (on its test port rather than 8080).
        try await withPlatformSimulator(
            configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
            logger: quietTestLogger("packaging-test")
        ) { simulator in
            let command = simulatorCheck.dropFirst(2).map {
                $0.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(simulator.port)")
            }
            let probe = try await runProcess(try workerBinary(), Array(command))
            #expect(probe.exitCode == 0, "the compose file's simulator health check: \(probe)")
        }

        // A document that breaks the specification must be refused by the same check (the check has teeth).
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID().uuidString).yml")
            .path
        try "services:\n  worker:\n    image: 42\n    restart: sometimes-maybe\n    ports: notalist\n".write(
            toFile: broken,
            atomically: true,
            encoding: .utf8
        )
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let refused = try await runProcess("python3", ["-c", script, schema, broken], timeout: .seconds(60))
        #expect(refused.exitCode == 1)
    }

    @Test("the compose file wires the worker to the broker and the simulator, with the secret from a file")
    func composeWiring() throws {
        let text = try String(contentsOfFile: Self.root + "/docker-compose.yml", encoding: .utf8)
        #expect(text.contains("OTA_CANCEL_BROKER_HOST: broker"))
        #expect(text.contains("OTA_CANCEL_PLATFORM_ENDPOINT: http://simulator:8080"))
        #expect(text.contains("OTA_CANCEL_ACCESS_KEY_SECRET_FILE: /run/secrets/access-key-secret"))
        #expect(FileManager.default.fileExists(atPath: Self.root + "/deploy/mosquitto.conf"))
        #expect(FileManager.default.fileExists(atPath: Self.root + "/deploy/demo-access-key-secret"))
    }

    @Test("the systemd unit runs the worker with options it knows, restarts on failure, and leaves time to drain")
    func systemdUnit() async throws {
        let unit = try String(contentsOfFile: Self.root + "/deploy/ota-cancel-worker@.service", encoding: .utf8)
        var sections = [String: [String: String]]()
        var section = ""
        for line in unit.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) })
        where !line.isEmpty && !line.hasPrefix("#") {
            if line.hasPrefix("[") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            let equals = try #require(line.firstIndex(of: "="), "not a key=value line: \(line)")
            let key = String(line[..<equals])
            let value = String(line[line.index(after: equals)...])
            // A repeated key adds to the earlier value (SystemCallFilter=), as systemd reads most list settings.
            sections[section, default: [:]][key] = sections[section]?[key].map { $0 + " " + value } ?? value
        }
        #expect(Set(sections.keys) == ["Unit", "Service", "Install"])
        let service = sections["Service"] ?? [:]
        #expect(service["Restart"] == "on-failure")
        #expect(service["KillSignal"] == "SIGTERM")
        #expect((Int(service["TimeoutStopSec"] ?? "") ?? 0) > 20, "longer than the default drain timeout")
        let command = (service["ExecStart"] ?? "").split(separator: " ").map(String.init)
        #expect(command.prefix(2) == ["/usr/local/bin/ota-cancel-worker", "run"])
        let help = try await runProcess(try workerBinary(), ["run", "--help"])
        for option in command where option.hasPrefix("--") {
            #expect(help.stdout.contains("  \(option) "), "run --help does not list \(option)")
        }
        #expect(command.contains("--config"))
        #expect(service["StateDirectory"] == "ota-cancel-worker/%i")
        // Private files and folder; usage (64) and configuration (78) errors are not retried in a loop.
        #expect(service["StateDirectoryMode"] == "0700")
        #expect(service["UMask"] == "0077")
        #expect(Set((service["RestartPreventExitStatus"] ?? "").split(separator: " ")) == ["64", "78"])
        // The hardening the issue asks for, beyond what the rating below adds up.
        #expect(service["CapabilityBoundingSet"] == "")
        #expect(service["RestrictAddressFamilies"] == "AF_INET AF_INET6 AF_UNIX")
        #expect(service["SystemCallFilter"]?.hasPrefix("@system-service") == true)
        #expect(service["SystemCallArchitectures"] == "native")
        #expect(service["MemoryDenyWriteExecute"] == "yes")
    }

    /// `systemd-analyze`, when this machine has it (Debian's `systemd`; `scripts/test`, hence CI, installs it).
    static let systemdAnalyze = findExecutable("systemd-analyze")
    static let systemdAnalyzeAbsent =
        "systemd-analyze is absent (apt-get install -y systemd): the unit's hardening is not rated here"
    /// Runs when the tool is there, and also when it must be (`OTA_REQUIRE_SHARED=1`, set by `scripts/test`: CI
    /// runs everything), so that its absence then fails saying why; otherwise skipped with that reason.
    static let systemdAnalyzePresence = ConditionTrait.enabled(
        if: systemdAnalyze != nil || ProcessInfo.processInfo.environment["OTA_REQUIRE_SHARED"] == "1",
        Comment(rawValue: systemdAnalyzeAbsent)
    )

    /// The overall exposure `systemd-analyze security --offline=true` gives a unit file (0 safe ... 10 exposed).
    static func exposure(ofUnitAt path: String) async throws -> Double {
        let analyze = try #require(systemdAnalyze, Comment(rawValue: systemdAnalyzeAbsent))
        let result = try await runProcess(analyze, ["security", "--offline=true", "--no-pager", path])
        let line = try #require(
            result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level for") },
            "no overall exposure in: \(result)"
        )
        let number = line.split(separator: ":").last?.split(separator: " ").first
        return try #require(number.flatMap { Double($0) }, "no number in: \(line)")
    }

    @Test(
        "systemd-analyze security rates the unit at most 3.0, and systemd reads every line of it",
        systemdAnalyzePresence
    )
    func systemdHardening() async throws {
        let analyze = try #require(Self.systemdAnalyze, Comment(rawValue: Self.systemdAnalyzeAbsent))
        let folder = try makeTemporaryDirectory("ota-systemd")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A template is rated as one of its instances.
        let unit = try String(contentsOfFile: Self.root + "/deploy/ota-cancel-worker@.service", encoding: .utf8)
        let instance = folder + "/ota-cancel-worker@test.service"
        try unit.write(toFile: instance, atomically: true, encoding: .utf8)
        let exposure = try await Self.exposure(ofUnitAt: instance)
        #expect(exposure <= 3.0, "overall exposure \(exposure): harden deploy/ota-cancel-worker@.service")

        // The rating has teeth: the same unit without its hardening is rated exposed.
        let bare = folder + "/bare@test.service"
        try "[Service]\nUser=ota\nExecStart=/usr/local/bin/ota-cancel-worker run\n".write(
            toFile: bare,
            atomically: true,
            encoding: .utf8
        )
        #expect(try await Self.exposure(ofUnitAt: bare) > 3.0)

        // Every directive is known to this systemd (an unknown one is only a warning, and would be ignored), with
        // ExecStart pointing at this build's binary so that `verify` finds it.
        let runnable = folder + "/ota-cancel-worker@verify.service"
        try unit.replacingOccurrences(of: "/usr/local/bin/ota-cancel-worker", with: try workerBinary()).write(
            toFile: runnable,
            atomically: true,
            encoding: .utf8
        )
        let verified = try await runProcess(analyze, ["verify", "--man=no", runnable])
        #expect(verified.exitCode == 0 && verified.stderr.isEmpty && verified.stdout.isEmpty, "\(verified)")
    }

    @Test(
        "the Dockerfile: both products, the revision baked in, a numeric user, the ops port open, its own health check"
    )
    func dockerfile() async throws {
        let lines = try String(contentsOfFile: Self.root + "/Dockerfile", encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        // Instructions: every line that does not continue the previous one (a trailing backslash), with the lines
        // that continue it joined.
        var instructions = [(name: String, arguments: String)]()
        for (index, line) in lines.enumerated() {
            let text = line.hasSuffix("\\") ? String(line.dropLast()).trimmingCharacters(in: .whitespaces) : line
            if index > 0, lines[index - 1].hasSuffix("\\") {
                instructions[instructions.count - 1].arguments += " " + text
            } else {
                let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
                instructions.append((parts[0], parts.count > 1 ? parts[1] : ""))
            }
        }
        let names = instructions.map(\.name)
        let known: Set = [
            "FROM", "RUN", "COPY", "WORKDIR", "ENV", "USER", "VOLUME", "ENTRYPOINT", "CMD", "ARG", "EXPOSE", "LABEL",
            "HEALTHCHECK",
        ]
        #expect(Set(names).isSubset(of: known), "unknown instructions: \(Set(names).subtracting(known))")
        #expect(names.filter { $0 == "FROM" }.count == 2, "a build stage and a runtime stage")
        let runtimeStart = try #require(names.lastIndex(of: "FROM"))
        let build = instructions[..<runtimeStart]
        let runtime = instructions[runtimeStart...]
        #expect(lines.contains { $0.contains("--product ota-cancel-worker") })
        #expect(lines.contains { $0.contains("--product ota-platform-sim") })
        #expect(lines.contains { $0.contains("libmosquitto") })
        #expect(runtime.contains { $0.name == "ENTRYPOINT" && $0.arguments.contains("ota-cancel-worker") })

        // The build stage has the schemas (built into the binary) and the revision (no .git in the image),
        // before it builds.
        let firstBuild = try #require(build.firstIndex { $0.name == "RUN" && $0.arguments.contains("swift build -c") })
        #expect(build[..<firstBuild].contains { $0.name == "COPY" && $0.arguments == "schemas ./schemas" })
        // ... and the build plugin that bakes them in, with the script it runs.
        #expect(build[..<firstBuild].contains { $0.name == "COPY" && $0.arguments == "Plugins ./Plugins" })
        #expect(
            build[..<firstBuild].contains {
                $0.name == "COPY" && $0.arguments == "scripts/lib/build-info.sh ./scripts/lib/build-info.sh"
            }
        )
        #expect(build[..<firstBuild].contains { $0.name == "ARG" && $0.arguments == "OTA_CANCEL_REVISION=unknown" })
        #expect(
            build[..<firstBuild].contains {
                $0.name == "ENV" && $0.arguments == "OTA_CANCEL_REVISION=$OTA_CANCEL_REVISION"
            }
        )
        // The runtime stage needs nothing beside the binaries: no schema folder.
        #expect(!runtime.contains { $0.name == "COPY" && $0.arguments.contains("schemas") })
        #expect(!runtime.contains { $0.arguments.contains("OTA_CANCEL_SCHEMA_DIR") })

        // A numeric user (runAsNonRoot needs a number), created with that id.
        let user = try #require(runtime.last { $0.name == "USER" }?.arguments)
        let ids = user.split(separator: ":").map(String.init)
        #expect(ids.count == 2 && ids.allSatisfy { Int($0).map { $0 > 0 } == true }, "USER \(user)")
        let created = runtime.filter { $0.name == "RUN" }.map(\.arguments).joined(separator: " ")
        #expect(created.contains("useradd --system --uid \(ids.first ?? "?")"), "the user is created with id \(user)")
        #expect(created.contains("groupadd --system --gid \(ids.last ?? "?")"))

        // The ops port open to probes and scrapes from outside the container.
        #expect(runtime.contains { $0.name == "EXPOSE" && $0.arguments == "9464" })
        let environment = runtime.filter { $0.name == "ENV" }.map(\.arguments).joined(separator: " ")
        #expect(environment.contains("OTA_CANCEL_OPS_HOST=0.0.0.0"))
        #expect(environment.contains("OTA_CANCEL_OPS_PORT=9464"))

        // The health check is the worker's own subcommand, in exec form (no shell, no curl in the image).
        let healthcheck = try #require(runtime.first { $0.name == "HEALTHCHECK" }?.arguments)
        let exec = try #require(healthcheck.range(of: "CMD "), "HEALTHCHECK \(healthcheck)")
        let command = try #require(
            try JSONSerialization.jsonObject(with: Data(healthcheck[exec.upperBound...].utf8)) as? [String]
        )
        #expect(command.prefix(2) == ["ota-cancel-worker", "health"], "\(command)")
        for option in ["--interval=", "--timeout=", "--start-period=", "--retries="] {
            #expect(healthcheck.contains(option), "HEALTHCHECK \(option)")
        }
        let help = try await runProcess(try workerBinary(), Array(command.dropFirst()) + ["--help"])
        #expect(help.exitCode == 0, "\(help)")
        for option in command where option.hasPrefix("--") {
            #expect(help.stdout.contains("  \(option) "), "health --help does not list \(option)")
        }

        for line in lines where line.hasPrefix("COPY ") && !line.contains("--from") {
            let source = line.split(separator: " ")[1]
            #expect(
                FileManager.default.fileExists(atPath: Self.root + "/" + source),
                "COPY source \(source) does not exist"
            )
        }
    }
}
