// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing
import WorkerApp

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 10, "fail fast, say what to do": every start-up mistake ends the real `ota-cancel-worker` process at
/// once with its sysexits status (64 usage, 69 broker given up, 75 state folder held, 78 configuration) and one
/// `Error:` line naming the setting, without the usage text; `check-config` finds the same mistakes.
@Suite("start-up failures", .timeLimit(.minutes(5)))
struct StartupFailureTests {
    static let environment = ["OTA_CANCEL_ACCESS_KEY_SECRET": "startup-secret"]

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
    }

    /// `run` (or `check-config`) with settings that would work, but for `extra`; the platform is never called.
    static func arguments(_ command: String, state: String? = nil, _ extra: [String] = []) -> [String] {
        [
            command, "--platform-endpoint", "http://127.0.0.1:9", "--access-key-id", "startup-id", "--schema-dir",
            hygieneSchemas, "--state-dir", state ?? temporaryPath("ota-startup-state"), "--ops-port", "0",
        ] + extra
    }

    /// Runs the worker binary; a process that does not end within `timeout` is killed (and fails the test).
    static func run(
        _ arguments: [String],
        environment: [String: String] = environment,
        timeout: Duration = .seconds(30)
    ) async throws -> ProcessResult {
        let result = try await runProcess(try workerBinary(), arguments, timeout: timeout, environment: environment)
        #expect(!result.timedOut, "the worker did not stop by itself: \(result)")
        return result
    }

    /// The failure was said once, as `Error: ...` containing every one of `expected`, with no usage text.
    static func expectFailure(_ result: ProcessResult, status: Int32, _ expected: [String]) {
        #expect(result.exitCode == status, "exit status \(result.exitCode), not \(status): \(result)")
        for text in expected {
            #expect(result.stderr.contains(text), "missing '\(text)' in: \(result.stderr)")
        }
        let errorLines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        #expect(errorLines.count == 1, "one Error: line, not \(errorLines.count): \(result.stderr)")
        #expect(!result.stderr.contains("Usage:") && !result.stderr.contains("USAGE:"), "usage text: \(result)")
    }

    // MARK: Settings

    @Test("a command topic that is no valid filter: run and check-config exit 78 naming it and where it came from")
    func badCommandTopic() async throws {
        let flag = try await Self.run(Self.arguments("run", ["--command-topic", "ota/#/x"]))
        Self.expectFailure(
            flag,
            status: 78,
            ["command-topic (from --command-topic) 'ota/#/x' is not a valid topic filter", "'#' may only be the last"]
        )
        var environment = Self.environment
        environment["OTA_CANCEL_COMMAND_TOPIC"] = "$share//ota/cancel/request"
        let variable = try await Self.run(Self.arguments("check-config"), environment: environment)
        Self.expectFailure(variable, status: 78, ["command-topic (from OTA_CANCEL_COMMAND_TOPIC)", "group is empty"])

        let config = Self.temporaryPath("ota-startup-config") + ".json"
        try #"{"reply-topic-allow": ["ota/cancel/reply/#", "ota/+x"]}"#.write(
            toFile: config,
            atomically: true,
            encoding: .utf8
        )
        defer { try? FileManager.default.removeItem(atPath: config) }
        let file = try await Self.run(Self.arguments("check-config", ["--config", config]))
        Self.expectFailure(file, status: 78, ["reply-topic-allow (from \(config)) 'ota/+x'", "'+' must be a whole"])

        let reply = try await Self.run(Self.arguments("check-config", ["--default-reply-topic", "ota/+/reply"]))
        Self.expectFailure(reply, status: 78, ["default-reply-topic (from --default-reply-topic)", "published to"])
    }

    @Test("--log-format json: a start-up or run-time failure is one critical JSON line with its exit status")
    func failuresAsJSON() async throws {
        /// Every line of standard error is a JSON object; the one critical line says `expected` and the status.
        func expectJSONFailure(_ result: ProcessResult, status: Int32, _ expected: String) throws {
            #expect(result.exitCode == status, "exit status \(result.exitCode), not \(status): \(result)")
            let lines = result.stderr.split(separator: "\n")
            let objects = try lines.map { line in
                try #require(
                    try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    "not a JSON object: \(line)"
                )
            }
            let critical = objects.filter { $0["level"] as? String == "critical" && $0["ota.exit_status"] != nil }
            #expect(critical.count == 1, "one critical line with the exit status: \(result.stderr)")
            #expect((critical.first?["ota.exit_status"] as? Int).map(Int32.init) == status, "\(result.stderr)")
            #expect((critical.first?["message"] as? String)?.contains(expected) == true, "\(result.stderr)")
        }
        let flag = try await Self.run(Self.arguments("run", ["--log-format", "json", "--command-topic", "ota/#/x"]))
        try expectJSONFailure(flag, status: 78, "command-topic (from --command-topic) 'ota/#/x'")

        // The variable alone, and a refusal by the settings' reader itself (an unknown variable).
        var environment = Self.environment
        environment["OTA_CANCEL_LOG_FORMAT"] = "json"
        environment["OTA_CANCEL_BROKER_HOTS"] = "mqtt.example"
        let typo = try await Self.run(Self.arguments("run"), environment: environment)
        try expectJSONFailure(typo, status: 78, "unknown environment variable OTA_CANCEL_BROKER_HOTS")

        // At run time: the worker's own JSON lines, then the one that says why it ends.
        let closed = try RefusingLoopbackPort()
        let down = try await Self.run(
            Self.arguments(
                "run",
                [
                    "--log-format", "json", "--broker-port", "\(closed.port)", "--exit-on-connection-failure",
                    "--connect-timeout", "1",
                ]
            )
        )
        try expectJSONFailure(down, status: 69, "could not connect to the MQTT broker at 127.0.0.1:\(closed.port)")

        // text stays what a person at a terminal reads.
        let plain = try await Self.run(Self.arguments("run", ["--command-topic", "ota/#/x"]))
        Self.expectFailure(plain, status: 78, ["command-topic (from --command-topic)"])
    }

    @Test("an unknown OTA_CANCEL_ variable is refused (78) with the closest known one; the known extras are not")
    func unknownVariable() async throws {
        var environment = Self.environment
        environment["OTA_CANCEL_BROKER_HOTS"] = "mqtt.example"
        let typo = try await Self.run(Self.arguments("check-config"), environment: environment)
        Self.expectFailure(
            typo,
            status: 78,
            ["unknown environment variable OTA_CANCEL_BROKER_HOTS (did you mean OTA_CANCEL_BROKER_HOST?)"]
        )
        #expect(!typo.stderr.contains("mqtt.example"), "a variable's value is never shown")

        // The secrets, the configuration file and the build's and tests' own variables are known.
        var extras = Self.environment
        extras["OTA_CANCEL_REVISION"] = "0123abc"
        extras["OTA_CANCEL_BROKER_PASSWORD"] = "p"
        extras["OTA_CANCEL_WORKER_BINARY"] = try workerBinary()
        let accepted = try await Self.run(Self.arguments("check-config"), environment: extras)
        #expect(accepted.exitCode == 0, "\(accepted)")
    }

    @Test("missing and unusable settings exit 78 with the setting named; a mistyped flag is a usage error (64)")
    func settings() async throws {
        let missing = try await Self.run(["run", "--access-key-id", "x", "--schema-dir", hygieneSchemas])
        Self.expectFailure(missing, status: 78, ["platform-endpoint is required", "OTA_CANCEL_PLATFORM_ENDPOINT"])

        let secret = try await Self.run(
            Self.arguments("run", ["--access-key-secret-file", "/nonexistent/secret"]),
            environment: [:]
        )
        Self.expectFailure(secret, status: 78, ["access-key-secret-file: cannot read '/nonexistent/secret'"])

        let range = try await Self.run(Self.arguments("run", ["--connect-timeout", "0"]))
        Self.expectFailure(range, status: 78, ["connect-timeout (from --connect-timeout) must be between"])

        for command in ["run", "check-config"] {
            let schema = try await Self.run(
                [
                    command, "--platform-endpoint", "http://127.0.0.1:9", "--access-key-id", "x", "--schema-dir",
                    "/nonexistent/schemas", "--ops-port", "0", "--state-dir", Self.temporaryPath("ota-startup-schema"),
                ]
            )
            Self.expectFailure(
                schema,
                status: 78,
                ["/nonexistent/schemas/cancel-command.schema.json", "--schema-dir (OTA_CANCEL_SCHEMA_DIR)"]
            )
            #expect(!schema.stderr.contains("SchemaNotFound"), "no internal error name: \(schema.stderr)")
        }

        let usage = try await Self.run(Self.arguments("run", ["--brokr-host", "x"]))
        #expect(usage.exitCode == 64, "\(usage)")
        #expect(usage.stderr.contains("--brokr-host") && usage.stderr.contains("Usage"), "\(usage)")
    }

    // MARK: The state folder

    @Test("a state folder that cannot be used: 78, the path, the user and what to do")
    func stateFolder() async throws {
        let file = Self.temporaryPath("ota-startup-file")
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        for command in ["run", "check-config"] {
            let notFolder = try await Self.run(Self.arguments(command, state: file))
            Self.expectFailure(
                notFolder,
                status: 78,
                ["state-dir: '\(file)' exists and is not a folder", "--state-dir"]
            )
            let underFile = try await Self.run(Self.arguments(command, state: file + "/state"))
            Self.expectFailure(underFile, status: 78, ["'\(file)/state'", "a part of the path is a file"])
        }

        // Unwritable: root writes anywhere, so as root the worker runs as nobody (setpriv) in a folder of root's.
        let parent = Self.temporaryPath("ota-startup-root")
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: parent)
        let state = parent + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: state)
        let binary = try workerBinary()
        var prefix: [String] = []
        var user = NSUserName()
        if geteuid() == 0 {
            let setpriv = try #require(
                findExecutable("setpriv"),
                "running as root, the test needs setpriv (util-linux) to run the worker as nobody"
            )
            prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", binary]
            user = "nobody"
        } else {
            // Not root: the folder's mode is enough.
            prefix = [binary]
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: state)
        }
        for (command, folder, hint) in [
            ("run", state, "chown -R \(user) '\(state)'"), ("check-config", state, "chown -R \(user) '\(state)'"),
            ("run", state + "/deeper", "mkdir -p '\(state)/deeper' && chown \(user) '\(state)/deeper'"),
            ("check-config", state + "/deeper", "mkdir -p '\(state)/deeper' && chown \(user) '\(state)/deeper'"),
        ] {
            let result = try await runProcess(
                prefix[0],
                Array(prefix.dropFirst()) + Self.arguments(command, state: folder),
                timeout: .seconds(30),
                environment: Self.environment
            )
            Self.expectFailure(
                result,
                status: 78,
                ["state-dir: cannot", "as user \(user) (uid", hint, "--state-dir"]
            )
            #expect(!result.stderr.contains("SQLite"), "\(result.stderr)")
        }
    }

    // MARK: The operations port

    @Test("a busy ops port: 78 before MQTT connects, with the address, the settings and what to do")
    func busyOpsPort() async throws {
        try await withMosquittoBroker { broker in
            // The broker's own port is busy; the worker is pointed at that broker, and must not get to connect.
            let expected =
                "cannot listen on 127.0.0.1:\(broker.port) (--ops-port / OTA_CANCEL_OPS_PORT): address already in use; "
                + "pick another port or stop the process using it"
            let run = try await Self.run(
                Self.arguments(
                    "run",
                    ["--broker-port", "\(broker.port)", "--ops-port", "\(broker.port)", "--log-level", "debug"]
                )
            )
            Self.expectFailure(run, status: 78, [expected])
            #expect(!run.stderr.contains("MQTT connected") && !run.stderr.contains("bind(descriptor"), "\(run.stderr)")
            #expect(!broker.logText.contains("New client connected"), "the worker connected first:\n\(broker.logText)")

            let check = try await Self.run(Self.arguments("check-config", ["--ops-port", "\(broker.port)"]))
            Self.expectFailure(check, status: 78, [expected])
        }
    }

    @Test("check-config passes good settings and says what it checked, changing nothing")
    func checkConfigPasses() async throws {
        let state = Self.temporaryPath("ota-startup-fresh")
        let result = try await Self.run(Self.arguments("check-config", state: state))
        #expect(result.exitCode == 0, "\(result)")
        #expect(
            result.stdout.contains("state-dir: '\(state)' does not exist yet; it will be created 0700"),
            "\(result)"
        )
        #expect(result.stdout.contains("ops: 127.0.0.1:0 can be listened on"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: state), "check-config created the state folder")
    }

    @Test("check-config beside the running worker it checks: the held folder is reported, not refused (0)")
    func checkConfigBesideItsWorker() async throws {
        let state = Self.temporaryPath("ota-startup-held")
        let logs = Self.temporaryPath("ota-startup-held") + ".log"
        defer {
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: logs)
        }
        try await withMosquittoBroker { broker in
            let worker = try await launchWorkerProcess(
                try workerBinary(),
                Self.arguments("run", state: state, ["--broker-port", "\(broker.port)"]),
                logPath: logs
            )
            defer { worker.signal(SIGKILL) }
            let check = try await Self.run(Self.arguments("check-config", state: state))
            #expect(check.exitCode == 0, "\(check)")
            #expect(check.stdout.contains("is writable, and in use by process \(worker.pid) (started "), "\(check)")
            #expect(check.stdout.contains("ops: not checked"), "\(check)")
            // The probe took nothing from the running worker: it still holds its folder, and stops cleanly.
            let second = try await Self.run(Self.arguments("run", state: state, ["--broker-port", "\(broker.port)"]))
            #expect(second.exitCode == 75, "\(second)")
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit() == 0, "\(worker.log.suffix(2000))")
        }
    }

    // MARK: The broker

    @Test("--exit-on-connection-failure: a broker that is down at start is given up after --connect-timeout (69)")
    func brokerDownAtStart() async throws {
        let closed = try RefusingLoopbackPort()
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await Self.run(
            Self.arguments(
                "run",
                [
                    "--broker-port", "\(closed.port)", "--exit-on-connection-failure", "--connect-timeout", "2",
                ]
            ),
            timeout: .seconds(40)
        )
        let elapsed = clock.now - started
        Self.expectFailure(
            result,
            status: 69,
            [
                "could not connect to the MQTT broker at 127.0.0.1:\(closed.port) within 2 s (--connect-timeout)",
                "nothing accepts connections at 127.0.0.1:\(closed.port)", "--broker-port",
            ]
        )
        #expect(elapsed >= .seconds(2) && elapsed < .seconds(20), "gave up after \(elapsed)")

        // Without the flag it keeps retrying, well past the timeout.
        let logs = Self.temporaryPath("ota-startup-retry") + ".log"
        defer { try? FileManager.default.removeItem(atPath: logs) }
        let patient = try BackgroundProcess(
            try workerBinary(),
            Self.arguments("run", ["--broker-port", "\(closed.port)", "--connect-timeout", "1"]),
            environment: Self.environment,
            logPath: logs
        )
        defer { patient.signal(SIGKILL) }
        // Wait for three retries (30 s only guards against a hang: a loaded machine starts the process late),
        // and for at least 4 s, four times the timeout, before asking whether it still runs.
        let patientStarted = clock.now
        func retries() -> Int { patient.log.components(separatedBy: "MQTT connect attempt failed; retrying").count - 1 }
        while retries() < 3, patient.exitCode == nil, clock.now < patientStarted + .seconds(30) {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await clock.sleep(until: patientStarted + .seconds(4))
        #expect(patient.exitCode == nil, "without the flag the worker keeps trying:\n\(patient.log)")
        #expect(retries() >= 3, "\(patient.log)")
    }

    @Test("--exit-on-connection-failure: a broker refusing the credentials is given up at once (69), naming them")
    func brokerRefuses() async throws {
        let passwordFile = Self.temporaryPath("ota-startup-passwd")
        let created = try await runProcess("mosquitto_passwd", ["-b", "-c", passwordFile, "worker", "right"])
        try #require(created.exitCode == 0, "\(created)")
        defer { try? FileManager.default.removeItem(atPath: passwordFile) }
        let wrong = Self.temporaryPath("ota-startup-wrong")
        try "wrong\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: wrong) }
        try await withMosquittoBroker(extraConfig: ["allow_anonymous false", "password_file \(passwordFile)"]) {
            broker in
            let clock = ContinuousClock()
            let started = clock.now
            let result = try await Self.run(
                Self.arguments(
                    "run",
                    [
                        "--broker-port", "\(broker.port)", "--broker-username", "worker", "--broker-password-file",
                        wrong,
                        "--exit-on-connection-failure", "--connect-timeout", "60",
                    ]
                )
            )
            Self.expectFailure(
                result,
                status: 69,
                [
                    "the MQTT broker at 127.0.0.1:\(broker.port) refused the connection",
                    "check --broker-username and --broker-password-file",
                ]
            )
            #expect(!result.stderr.contains("wrong"), "the password is never shown: \(result.stderr)")
            #expect(clock.now - started < .seconds(20), "refused for good is given up at once, not after the timeout")
        }
    }

    @Test("--exit-on-connection-failure: a broker host that does not resolve names the host (69)")
    func brokerHostUnknown() async throws {
        let result = try await Self.run(
            Self.arguments(
                "run",
                [
                    "--broker-host", "no-such-broker.invalid", "--exit-on-connection-failure", "--connect-timeout",
                    "30",
                ]
            ),
            timeout: .seconds(60)
        )
        Self.expectFailure(
            result,
            status: 69,
            ["cannot resolve the MQTT broker's host name 'no-such-broker.invalid' (port 1883)", "check --broker-host"]
        )
    }

    @Test("--exit-on-connection-failure: a broker certificate signed by another CA names TLS and its settings (69)")
    func brokerTLSUntrusted() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig()) { broker in
            let result = try await Self.run(
                Self.arguments(
                    "run",
                    [
                        "--broker-port", "\(broker.port)", "--broker-tls-ca-file", pki.otherCAFile,
                        "--exit-on-connection-failure", "--connect-timeout", "60",
                    ]
                )
            )
            Self.expectFailure(
                result,
                status: 69,
                [
                    "TLS with the MQTT broker at 127.0.0.1:\(broker.port) failed", "check --broker-tls-ca-file",
                    "--broker-host '127.0.0.1'",
                ]
            )
        }
    }

    @Test("--exit-on-connection-failure: a connection lost and not back within --connect-timeout is given up (69)")
    func brokerLost() async throws {
        let logs = Self.temporaryPath("ota-startup-lost") + ".log"
        defer { try? FileManager.default.removeItem(atPath: logs) }
        try await withMosquittoBroker { broker in
            let process = try await launchWorkerProcess(
                try workerBinary(),
                Self.arguments(
                    "run",
                    [
                        "--broker-port", "\(broker.port)", "--exit-on-connection-failure", "--connect-timeout", "2",
                    ]
                ),
                logPath: logs
            )
            defer { process.signal(SIGKILL) }
            // Timed from before the stop: the connection is lost during it, so no sooner.
            let clock = ContinuousClock()
            let lost = clock.now
            await broker.stop()
            let status = await process.waitForExit()
            let elapsed = clock.now - lost
            #expect(status == 69, "\(process.log.suffix(3000))")
            #expect(elapsed >= .seconds(2) && elapsed < .seconds(20), "gave up after \(elapsed)")
            #expect(process.log.contains("was lost and not back within 2 s (--connect-timeout)"), "\(process.log)")
        }
    }
}
