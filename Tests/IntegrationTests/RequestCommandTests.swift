// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import PlatformSimulator
import TestSupport
import Testing

/// `ota-cancel-worker request`, the built executable, against a real worker on a real broker and the simulator:
/// every documented outcome round trips with its exit status.
@Suite("request: round trips against a worker", .timeLimit(.minutes(5)))
struct RequestCommandTests {
    /// Runs `ota-cancel-worker request` against the stack's broker; `stdinFile` becomes its standard input.
    func request(
        _ stack: WorkerStack,
        _ arguments: [String],
        product: String = "demoProduct",
        stdinFile: String? = nil,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(120)
    ) async throws -> ProcessResult {
        let base = [
            "request", "--broker-port", "\(stack.broker.port)", "--product-key", product,
            "--firmware-id", "demoFirmware", "--schema-dir", WorkerStack.repositoryRoot + "/schemas",
        ]
        let binary = try workerBinary()
        guard let stdinFile else {
            return try await runProcess(binary, base + arguments, timeout: timeout, environment: environment)
        }
        // A real pipe of standard input, as a rollback script gives it: `... | ota-cancel-worker request --devices-file -`.
        return try await runProcess(
            "/bin/sh",
            ["-c", #"f=$1; shift; exec "$@" < "$f""#, "sh", stdinFile, binary] + base + arguments,
            timeout: timeout
        )
    }

    /// The reply printed by `--json`, checked against the result schema.
    func reply(
        _ result: ProcessResult,
        _ stack: WorkerStack,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws
        -> JSONValue
    {
        let line = try #require(
            result.stdout.split(separator: "\n").first,
            "no reply printed: \(result)",
            sourceLocation: sourceLocation
        )
        return try stack.reply(String(line), sourceLocation: sourceLocation)
    }

    @Test("succeeded: exit 0, the reply as JSON with our correlation id, the devices cancelled; the summary says so")
    func succeeded() async throws {
        try await withWorkerStack { stack in
            let result = try await request(
                stack,
                [
                    "dev-000001", "dev-000002", "dev-000003", "--correlation-id", "rq-ok-1", "--reason", "bad rollout",
                    "--json",
                ]
            )
            #expect(result.exitCode == 0, "\(result)")
            let reply = try reply(result, stack)
            #expect(reply["status"] == "succeeded")
            #expect(reply["correlationId"] == "rq-ok-1")
            #expect(reply["reason"] == "bad rollout")
            #expect(reply["cancelledDevices"]?.arrayValue?.count == 3)
            for device in ["dev-000001", "dev-000002", "dev-000003"] {
                #expect(
                    !stack.status(of: device).contains("QUEUED") && !stack.status(of: device).contains("IN_PROGRESS")
                )
            }
            let human = try await request(stack, ["dev-000004"])
            #expect(human.exitCode == 0, "\(human)")
            #expect(human.stdout.hasPrefix("succeeded (correlation id "), "\(human.stdout)")
            #expect(human.stdout.contains("1 of 1 devices cancelled in 1 platform call"))
        }
    }

    @Test("rejected here: exit 3, nothing published, and the errors are the ones the worker itself sends")
    func rejectedLocally() async throws {
        try await withWorkerStack { stack in
            let calls = stack.cancelCalls()
            let result = try await request(
                stack,
                ["dev-000001", "ab", "--client-id", "rq-local-reject", "--correlation-id", "rq-bad-1", "--json"]
            )
            #expect(result.exitCode == 3, "\(result)")
            let local = try reply(result, stack)
            #expect(local["status"] == "rejected")
            // Never connected, so never published.
            #expect(!stack.broker.logText.contains("rq-local-reject"))
            #expect(stack.cancelCalls() == calls)
            // The same payload sent past the check: the worker's own rejection lists the same errors.
            let answer = try await stack.request(
                #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000001","ab"]}"#,
                responseTopic: "ota/cancel/reply/rq-bad",
                correlationData: "rq-bad-1",
                format: "%p"
            )
            let worker = try stack.reply(answer[0])
            #expect(worker["status"] == "rejected")
            #expect(worker["errors"] == local["errors"])
            #expect(
                local["errors"]?.arrayValue?.first?["message"] == "deviceNames/1: 'ab' is shorter than 4 characters"
            )
        }
    }

    @Test("rejected by the worker: the same correlation id with other devices is a conflicting duplicate (exit 3)")
    func conflictingDuplicate() async throws {
        try await withWorkerStack { stack in
            let first = try await request(stack, ["dev-000010", "--correlation-id", "rq-dup-1", "--json"])
            #expect(first.exitCode == 0, "\(first)")
            let calls = stack.cancelCalls()
            let again = try await request(stack, ["dev-000010", "--correlation-id", "rq-dup-1", "--json"])
            #expect(again.exitCode == 0, "\(again)")
            #expect(try reply(again, stack)["duplicate"] == true)
            let conflict = try await request(stack, ["dev-000011", "--correlation-id", "rq-dup-1", "--json"])
            #expect(conflict.exitCode == 3, "\(conflict)")
            let reply = try reply(conflict, stack)
            #expect(reply["status"] == "rejected")
            #expect(reply["errors"]?.arrayValue?.first?["code"] == "ConflictingDuplicate")
            #expect(stack.cancelCalls() == calls, "a repetition or a conflict called the platform")
            let human = try await request(stack, ["dev-000011", "--correlation-id", "rq-dup-1"])
            #expect(human.exitCode == 3)
            #expect(human.stdout.hasPrefix("rejected by the worker (correlation id rq-dup-1):"), "\(human.stdout)")
        }
    }

    @Test("failed (exit 2) and partial (exit 1): the platform refused the product, or one unknown device")
    func failedAndPartial() async throws {
        try await withWorkerStack { stack in
            let failed = try await request(stack, ["dev-000020", "--json"], product: "noSuchProduct")
            #expect(failed.exitCode == 2, "\(failed)")
            let failedReply = try reply(failed, stack)
            #expect(failedReply["status"] == "failed")
            #expect(failedReply["failedGroups"]?.arrayValue?.first?["code"] == "iot.prod.NotExistedProduct")

            let partial = try await request(stack, ["dev-000021", "ghost-0001", "--json"])
            #expect(partial.exitCode == 1, "\(partial)")
            let partialReply = try reply(partial, stack)
            #expect(partialReply["status"] == "partial")
            #expect(partialReply["cancelledDevices"] == ["dev-000021"])
            let human = try await request(stack, ["dev-000022", "ghost-0002"])
            #expect(human.exitCode == 1)
            #expect(
                human.stdout.contains("failed: 1 device (ghost-0002): iot.device.NotExistedDevice"),
                "\(human.stdout)"
            )
        }
    }

    @Test("expired (exit 4): a deadline already past is sent and answered by the worker, nothing cancelled")
    func expired() async throws {
        try await withWorkerStack { stack in
            let calls = stack.cancelCalls()
            let result = try await request(stack, ["dev-000030", "--deadline", "2020-01-01T00:00:00Z", "--json"])
            #expect(result.exitCode == 4, "\(result)")
            #expect(try reply(result, stack)["status"] == "expired")
            #expect(stack.cancelCalls() == calls)
        }
    }

    @Test("no reply within --timeout (exit 5) names the correlation id; no broker (exit 69) names host and port")
    func noReplyAndNoBroker() async throws {
        try await withWorkerStack { stack in
            let result = try await request(
                stack,
                [
                    "dev-000040", "--command-topic", "ota/cancel/nobody-listens", "--timeout", "1", "--correlation-id",
                    "rq-lost-1",
                ]
            )
            #expect(result.exitCode == 5, "\(result)")
            #expect(result.stdout.contains("no reply within 1 s (correlation id rq-lost-1)"), "\(result.stdout)")
        }
        let port = try freeLoopbackPort()
        let result = try await runProcess(
            try workerBinary(),
            [
                "request", "--broker-port", "\(port)", "--connect-timeout", "1", "--product-key", "demoProduct",
                "--firmware-id", "demoFirmware", "dev-000001",
            ]
        )
        #expect(result.exitCode == 69, "\(result)")
        #expect(result.stderr.contains("127.0.0.1:\(port)"), "\(result.stderr)")
        let usage = try await runProcess(try workerBinary(), ["request", "--product-key", "p", "--firmware-id", "f"])
        #expect(usage.exitCode == 64, "\(usage)")
        #expect(usage.stderr.contains("name at least one device"), "\(usage.stderr)")
    }

    @Test("10,000 device names from standard input, in one command, all cancelled")
    func tenThousandFromStandardInput() async throws {
        let names = (1...10_000).map { String(format: "dev-%06d", $0) }
        let file = try makeTemporaryDirectory("rq-names") + "/names.txt"
        try (names.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        try await withWorkerStack(simulator: SimulatorConfiguration(generateDevices: 10_000, qps: 0)) { stack in
            let result = try await request(stack, ["--devices-file", "-", "--json"], stdinFile: file)
            #expect(result.exitCode == 0, "\(result.stderr)")
            let reply = try reply(result, stack)
            #expect(reply["deviceCount"] == 10_000)
            #expect(reply["cancelledDevices"]?.arrayValue?.count == 10_000)
        }
    }

    @Test("requesters of one host share the default reply topic, and each takes only its own reply")
    func concurrentRequesters() async throws {
        try await withWorkerStack { stack in
            let results = try await withThrowingTaskGroup(of: (Int, ProcessResult).self) { group in
                for index in 0..<4 {
                    group.addTask {
                        let device = String(format: "dev-%06d", 60 + index)
                        return (
                            index, try await request(stack, [device, "--correlation-id", "rq-many-\(index)", "--json"])
                        )
                    }
                }
                return try await group.reduce(into: [Int: ProcessResult]()) { $0[$1.0] = $1.1 }
            }
            for (index, result) in results.sorted(by: { $0.key < $1.key }) {
                #expect(result.exitCode == 0, "\(result)")
                let reply = try reply(result, stack)
                #expect(reply["correlationId"]?.stringValue == "rq-many-\(index)")
                #expect(reply["cancelledDevices"] == [.string(String(format: "dev-%06d", 60 + index))])
            }
        }
    }

    @Test("TLS with a client certificate, set as run's OTA_CANCEL_* variables are: the broker takes only TLS")
    func overTLS() async throws {
        let pki = try await TestPKI.make()
        let arguments = TestArguments(
            brokerTlsCaFile: pki.caFile,
            brokerTlsCertFile: pki.clientCertificate,
            brokerTlsKeyFile: pki.clientKey,
            platformQps: 0
        )
        try await withWorkerStack(arguments: arguments, brokerConfig: pki.brokerTLSConfig(requireCertificate: true)) {
            stack in
            let environment = [
                "OTA_CANCEL_BROKER_TLS_CA_FILE": pki.caFile,
                "OTA_CANCEL_BROKER_TLS_CERT_FILE": pki.clientCertificate,
                "OTA_CANCEL_BROKER_TLS_KEY_FILE": pki.clientKey,
            ]
            let result = try await request(stack, ["dev-000070", "--json"], environment: environment)
            #expect(result.exitCode == 0, "\(result)")
            #expect(try reply(result, stack)["status"] == "succeeded")
            // Without the TLS settings the same request cannot connect: the round trip above was TLS.
            let plain = try await request(stack, ["dev-000071", "--connect-timeout", "2"])
            #expect(plain.exitCode == 69, "\(plain)")
        }
    }

    @Test("OTA_CANCEL_CLIENT_ID names the worker: request run in the worker's environment keeps its own client id")
    func workerClientIdNotTaken() async throws {
        try await withWorkerStack(arguments: TestArguments(clientId: "rq-the-worker", platformQps: 0)) { stack in
            let result = try await request(
                stack,
                ["dev-000080", "--json"],
                environment: ["OTA_CANCEL_CLIENT_ID": "rq-the-worker"]
            )
            #expect(result.exitCode == 0, "\(result)")
            // mosquitto says so when a second client takes an id: the worker would have been disconnected.
            #expect(!stack.broker.logText.contains("already connected, closing old connection"))
            #expect(stack.broker.logText.contains("as ota-cancel-request-"))
        }
    }

    @Test("MQTT 3.1.1: the ids go in the payload, the reply comes back on replyTo and is matched by correlationId")
    func mqtt311() async throws {
        try await withWorkerStack { stack in
            let result = try await request(
                stack,
                [
                    "dev-000050", "--mqtt-version", "3.1.1", "--client-id", "rq-311", "--correlation-id", "rq-311-1",
                    "--json",
                ]
            )
            #expect(result.exitCode == 0, "\(result)")
            let reply = try reply(result, stack)
            #expect(reply["status"] == "succeeded")
            #expect(reply["correlationId"] == "rq-311-1")
            // mosquitto logs the protocol of every connection: p2 is MQTT 3.1.1 (p5 would be MQTT 5).
            #expect(stack.broker.logText.contains("as rq-311 (p2"), "\(stack.broker.logText.suffix(2_000))")
        }
    }
}
