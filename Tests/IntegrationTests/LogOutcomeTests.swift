// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import PlatformSignature
import PlatformSimulator
import TestSupport
import Testing

/// Issue 10: the real worker at `--log-format json --log-level trace` logs a parseable line with the correlation id
/// for each kind of outcome, and never a secret.
@Suite("log outcomes", .timeLimit(.minutes(3)))
struct LogOutcomeTests {
    static let accessKeySecret = "sEcReT-4f1d9c2b7a-never-logged"
    static let brokerPassword = "bRoKeR-8e3a51d0-never-logged"

    @Test(
        "JSON lines for succeeded, failed (with its code), retried, rejected, duplicate, conflicting duplicate and dead letter, each with its correlation id; no secret at trace level"
    )
    func outcomes() async throws {
        let binary = try workerBinary()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ota-logs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let passwords = work + "/passwords"
        for (index, (user, password)) in [("worker", Self.brokerPassword), ("tester", "tester-pw")].enumerated() {
            let created = try await runProcess(
                "mosquitto_passwd",
                (index == 0 ? ["-c"] : []) + ["-b", passwords, user, password]
            )
            try #require(created.exitCode == 0, "mosquitto_passwd: \(created)")
        }
        try Self.brokerPassword.write(toFile: work + "/broker-password", atomically: true, encoding: .utf8)
        try Self.accessKeySecret.write(toFile: work + "/access-key-secret", atomically: true, encoding: .utf8)
        var quiet = Logger(label: "log-outcome-test")
        quiet.logLevel = .warning
        var simulator = SimulatorConfiguration(generateDevices: 10, qps: 0)
        simulator.accounts = ["logid": AccessKeySecret(Self.accessKeySecret)]
        simulator.faults = [
            // Every call naming dev-000002 is refused for good, as a wrong secret would be.
            FaultRule(errorCode: "SignatureDoesNotMatch", deviceName: "dev-000002"),
            // The first call naming dev-000003 meets an outage; the retry succeeds.
            FaultRule(httpStatus: 503, count: 1, deviceName: "dev-000003"),
        ]
        try await withMosquittoBroker(extraConfig: ["allow_anonymous false", "password_file \(passwords)"]) { broker in
            try await withPlatformSimulator(configuration: simulator, logger: quiet) { simulator in
                let logPath = work + "/worker.log"
                let process = try await launchWorkerProcess(
                    binary,
                    [
                        "run", "--broker-port", "\(broker.port)", "--broker-username", "worker",
                        "--broker-password-file", work + "/broker-password", "--client-id", "log-json-worker",
                        "--platform-endpoint", simulator.endpoint, "--access-key-id", "logid",
                        "--access-key-secret-file", work + "/access-key-secret", "--platform-qps", "0",
                        "--state-dir", work + "/state", "--schema-dir", hygieneSchemas, "--ops-port", "0",
                        "--log-level", "trace", "--log-format", "json",
                    ],
                    logPath: logPath
                )
                defer { process.signal(SIGKILL) }
                let run = UUID().uuidString.prefix(8)
                let ids = (
                    ok: "ok-\(run)", failed: "failed-\(run)", retried: "retried-\(run)", rejected: "rejected-\(run)",
                    deadLetter: "dead-letter-\(run)"
                )
                let client = Client(port: broker.port)
                var replies = [String]()
                func command(_ correlationId: String, device: String) -> String {
                    #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["\#(device)"],"#
                        + #""correlationId":"\#(correlationId)","reason":"log test"}"#
                }
                let topic = "ota/cancel/reply/logs-\(run)"
                for (payload, status) in [
                    (command(ids.ok, device: "dev-000001"), "succeeded"),
                    (command(ids.failed, device: "dev-000002"), "failed"),
                    (command(ids.retried, device: "dev-000003"), "succeeded"),
                    (#"{"productKey":"demoProduct","correlationId":"\#(ids.rejected)"}"#, "rejected"),
                    // The same command again on the same reply topic: its stored reply, marked duplicate.
                    (command(ids.ok, device: "dev-000001"), "succeeded"),
                    // Another command with that correlation id: refused.
                    (command(ids.ok, device: "dev-000004"), "rejected"),
                ] {
                    let reply = try await client.request(payload, responseTopic: topic)
                    replies.append(reply)
                    #expect(try JSONParser.parse(reply)["status"] == .string(status), "\(reply)")
                }
                // Not JSON, and no Response Topic to answer on: a dead letter, named by its Correlation Data.
                try await client.publish("not json", correlationData: ids.deadLetter)

                let clock = ContinuousClock()
                let giveUp = clock.now + .seconds(30)
                while !process.log.contains("message dead-lettered") && clock.now < giveUp {
                    try await clock.sleep(for: .milliseconds(50))
                }
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0, "\(process.log.suffix(3000))")
                let log = process.log

                // Every line of the output is one JSON object with the fixed fields.
                var records = [[String: Any]]()
                for line in log.split(separator: "\n") {
                    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                        Issue.record("not a JSON object: \(line)")
                        continue
                    }
                    records.append(object)
                }
                #expect(records.count > 20, "\(log.suffix(3000))")
                for record in records {
                    let timestamp = record["timestamp"] as? String ?? ""
                    #expect(
                        timestamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression)
                            != nil,
                        "RFC 3339, UTC, milliseconds: \(record)"
                    )
                    #expect(record["message"] is String && record["logger"] is String && record["source"] is String)
                    #expect(
                        ["trace", "debug", "info", "notice", "warning", "error"].contains(record["level"] as? String)
                    )
                }
                #expect(records.contains { $0["level"] as? String == "trace" }, "the run was at trace level")

                func line(
                    _ message: String,
                    _ correlationId: String,
                    key: String = "ota.correlation_id"
                ) -> [String: Any]? {
                    records.first { record in
                        guard (record["message"] as? String)?.hasPrefix(message) == true else { return false }
                        if let id = record[key] as? String { return id == correlationId }
                        return (record[key] as? [String])?.contains(correlationId) == true
                    }
                }
                let succeeded = try #require(line("command done", ids.ok), "\(log.suffix(4000))")
                #expect(succeeded["level"] as? String == "info" && succeeded["ota.status"] as? String == "succeeded")
                #expect(succeeded["ota.devices"] as? Int == 1 && succeeded["ota.reason"] as? String == "log test")

                let failed = try #require(line("command done", ids.failed), "\(log.suffix(4000))")
                #expect(failed["level"] as? String == "warning" && failed["ota.status"] as? String == "failed")
                #expect(failed["platform.code"] as? String == "SignatureDoesNotMatch", "\(failed)")
                #expect((failed["platform.message"] as? String)?.isEmpty == false, "\(failed)")

                let retry = try #require(line("retrying platform call", ids.retried, key: "ota.correlation_ids"))
                #expect(retry["level"] as? String == "info", "a transient retry is not alarming: \(retry)")
                #expect(
                    retry["platform.code"] as? String == "ServiceUnavailable" && retry["ota.command_count"] as? Int == 1
                )
                let retried = try #require(line("command done", ids.retried))
                #expect(retried["ota.status"] as? String == "succeeded" && (retried["ota.attempts"] as? Int ?? 0) >= 2)
                // Every platform call line names its commands.
                let attempts = records.filter { $0["message"] as? String == "platform call attempt" }
                #expect(
                    attempts.count >= 4 && attempts.allSatisfy { ($0["ota.correlation_ids"] as? [String])?.count == 1 }
                )

                let rejected = try #require(line("command rejected", ids.rejected), "\(log.suffix(4000))")
                #expect(rejected["level"] as? String == "notice")
                #expect((rejected["ota.error_codes"] as? [String])?.contains("SchemaViolation") == true, "\(rejected)")

                let duplicate = try #require(line("duplicate command", ids.ok), "\(log.suffix(4000))")
                #expect(duplicate["level"] as? String == "info")
                let conflict = try #require(
                    line("command rejected: a different command", ids.ok),
                    "\(log.suffix(4000))"
                )
                #expect(conflict["level"] as? String == "warning")
                #expect(conflict["ota.error_codes"] as? [String] == ["ConflictingDuplicate"])

                let deadLetter = try #require(line("message dead-lettered", ids.deadLetter), "\(log.suffix(4000))")
                #expect(
                    deadLetter["level"] as? String == "warning"
                        && deadLetter["ota.error_code"] as? String == "InvalidJSON"
                )

                let stopped = try #require(records.first { $0["message"] as? String == "worker stopped" })
                let counters = try #require(stopped["ota.counters"] as? [String: Any], "counters as fields: \(stopped)")
                #expect(counters["received"] as? Int == 7 && counters["duplicates"] as? Int == 1, "\(counters)")
                #expect(counters["dead_lettered"] as? Int == 1 && counters["rejected"] as? Int == 2, "\(counters)")
                #expect(!log.contains("MQTT reconnected"), "no reconnection happened")
                #expect(!log.contains(".swift:"), "no source location in the log")

                // The secrets: nowhere in the output, nor in any reply.
                for secret in [Self.accessKeySecret, Self.brokerPassword] {
                    #expect(!log.contains(secret), "a secret in the log")
                    #expect(!replies.contains { $0.contains(secret) }, "a secret in a reply")
                }
            }
        }
    }

    @Test(
        "broker trouble: a reconnection is info and logged once (none after the first connect), a refusal is retried at warning, nothing is critical, no source path"
    )
    func reconnects() async throws {
        let binary = try workerBinary()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ota-logs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let passwords = work + "/passwords"
        let created = try await runProcess("mosquitto_passwd", ["-c", "-b", passwords, "someone", "else"])
        try #require(created.exitCode == 0, "mosquitto_passwd: \(created)")
        var quiet = Logger(label: "log-reconnect-test")
        quiet.logLevel = .warning
        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(configuration: SimulatorConfiguration(qps: 0), logger: quiet) { simulator in
                let process = try await launchWorkerProcess(
                    binary,
                    [
                        "run", "--broker-port", "\(broker.port)", "--client-id", "log-reconnect-worker",
                        "--platform-endpoint", simulator.endpoint, "--access-key-id", "testid", "--state-dir",
                        work + "/state", "--schema-dir", hygieneSchemas, "--ops-port", "0", "--log-format", "json",
                    ],
                    logPath: work + "/worker.log"
                )
                defer { process.signal(SIGKILL) }
                func records() -> [[String: Any]] {
                    process.log.split(separator: "\n").compactMap {
                        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                    }
                }
                func wait(for message: String) async throws -> [String: Any]? {
                    let giveUp = ContinuousClock.now + .seconds(30)
                    while ContinuousClock.now < giveUp {
                        if let found = records().first(where: { ($0["message"] as? String)?.hasPrefix(message) == true }
                        ) {
                            return found
                        }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    return nil
                }
                #expect(!process.log.contains("MQTT reconnected"), "the first connection is no reconnection")

                try await broker.restart()
                let reconnected = try #require(await wait(for: "MQTT reconnected"), "\(process.log.suffix(3000))")
                #expect(reconnected["level"] as? String == "info")
                let lost = try #require(records().first { $0["message"] as? String == "MQTT connection lost" })
                #expect(lost["level"] as? String == "warning")
                #expect(records().count { $0["message"] as? String == "MQTT reconnected" } == 1)

                // Now the broker refuses the worker: libmosquitto gives up, the worker builds a new client, again.
                try await broker.restart(extraConfig: ["allow_anonymous false", "password_file \(passwords)"])
                let rebuilt = try #require(
                    await wait(for: "MQTT connection failed for good; building a new client"),
                    "\(process.log.suffix(3000))"
                )
                #expect(rebuilt["level"] as? String == "warning", "a reconnect attempt, not the end: \(rebuilt)")
                #expect((rebuilt["mqtt.retry_in_ms"] as? Int ?? 0) > 0, "\(rebuilt)")
                #expect(process.exitCode == nil, "the worker keeps trying")
                let log = process.log
                #expect(!records().contains { $0["level"] as? String == "critical" }, "\(log.suffix(3000))")
                #expect(!log.contains(".swift:"), "no source location in the log: \(log.suffix(3000))")
            }
        }
    }

    /// `mosquitto_rr` and `mosquitto_pub` as the test's user.
    struct Client {
        let port: Int
        private var options: [String] {
            ["-h", "127.0.0.1", "-p", "\(port)", "-V", "5", "-q", "1", "-u", "tester", "-P", "tester-pw"]
        }

        /// Sends `payload` with a Response Topic and returns the reply.
        func request(_ payload: String, responseTopic: String) async throws -> String {
            let result = try await runProcess(
                "mosquitto_rr",
                options + ["-t", "ota/cancel/request", "-e", responseTopic, "-W", "30", "-m", payload],
                timeout: .seconds(40)
            )
            try #require(result.exitCode == 0, "mosquitto_rr: \(result)")
            return result.stdout
        }

        /// Publishes `payload` with Correlation Data and no Response Topic.
        func publish(_ payload: String, correlationData: String) async throws {
            let result = try await runProcess(
                "mosquitto_pub",
                options + [
                    "-t", "ota/cancel/request", "-D", "publish", "correlation-data", correlationData, "-m", payload,
                ]
            )
            try #require(result.exitCode == 0, "mosquitto_pub: \(result)")
        }
    }
}
