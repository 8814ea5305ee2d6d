// SPDX-License-Identifier: Apache-2.0
import Foundation
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
            sys.exit(1 if errors else 0)
            """
        let result = try await runProcess(
            "python3",
            ["-c", script, schema, Self.root + "/docker-compose.yml"],
            timeout: .seconds(60)
        )
        #expect(result.exitCode == 0, "docker-compose.yml does not conform:\n\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains(#"["broker", "simulator", "worker"]"#), "services: \(result.stdout)")

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
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            try #require(parts.count == 2, "not a key=value line: \(line)")
            sections[section, default: [:]][parts[0]] = parts[1]
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
    }

    @Test("the Dockerfile builds both products and ships the schemas where the worker looks for them")
    func dockerfile() throws {
        let lines = try String(contentsOfFile: Self.root + "/Dockerfile", encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        // Instructions: every line that does not continue the previous one (a trailing backslash).
        var instructions = [String]()
        for (index, line) in lines.enumerated() where index == 0 || !lines[index - 1].hasSuffix("\\") {
            instructions.append(String(line.split(separator: " ")[0]))
        }
        let known: Set = [
            "FROM", "RUN", "COPY", "WORKDIR", "ENV", "USER", "VOLUME", "ENTRYPOINT", "CMD", "ARG", "EXPOSE", "LABEL",
        ]
        #expect(Set(instructions).isSubset(of: known), "unknown instructions: \(Set(instructions).subtracting(known))")
        #expect(instructions.filter { $0 == "FROM" }.count == 2, "a build stage and a runtime stage")
        #expect(lines.contains { $0.contains("--product ota-cancel-worker") })
        #expect(lines.contains { $0.contains("--product ota-platform-sim") })
        #expect(lines.contains { $0.hasPrefix("COPY schemas/ /usr/share/ota-cancel-worker/schemas/") })
        #expect(lines.contains { $0.hasPrefix("ENTRYPOINT") && $0.contains("ota-cancel-worker") })
        #expect(lines.contains { $0.contains("libmosquitto") })
        for line in lines where line.hasPrefix("COPY ") && !line.contains("--from") {
            let source = line.split(separator: " ")[1]
            #expect(
                FileManager.default.fileExists(atPath: Self.root + "/" + source),
                "COPY source \(source) does not exist"
            )
        }
    }
}
