// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// No poison pill (issue 8): a reply that can never be published is refused at intake or recorded undeliverable,
/// never retried for ever; it holds no command slot and cannot stop other replies, a restart or a SIGTERM.
/// Every test runs the real worker executable against a real mosquitto and the simulator.
@Suite("Delivery failures", .timeLimit(.minutes(6)))
struct DeliveryFailureTests {
    private static var quietLogger: Logger { quietTestLogger("delivery-test") }

    private static func temporaryDirectory(_ name: String) throws -> String { try makeTemporaryDirectory(name) }

    /// A payload field's JSON string, escaped by our own serializer (control characters as `\u00XX`).
    private static func json(_ text: String) -> String { JSONValue.string(text).serialized() }

    /// Every kind of reply topic libmosquitto refuses to publish to, each behind an allowed prefix.
    static let unpublishableTopics: [(String, String)] = {
        let prefix = "ota/cancel/reply/"
        var topics: [(String, String)] = [
            "\u{01}", "\u{0A}", "\u{1B}", "\u{1F}", "\u{7F}", "\u{85}", "\u{9F}",
        ].map { ("control character", prefix + "x" + $0 + "y") }
        // Swift string literals cannot hold noncharacters: built from their code points.
        topics += [0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1_FFFE, 0x10_FFFF].map {
            ("noncharacter", prefix + String(Character(Unicode.Scalar(UInt32($0))!)))
        }
        topics.append(("65,536 bytes", prefix + String(repeating: "a", count: 65_536 - prefix.utf8.count)))
        // 40,000 characters (within the schema's maxLength) but 80,017 bytes: only the byte count refuses it.
        topics.append(("80,017 bytes in 40,017 characters", prefix + String(repeating: "é", count: 40_000)))
        topics.append(("wildcard", prefix + "a+b"))
        return topics
    }()

    /// `run` with what every worker of these tests needs (broker, simulator, state folder, schemas, a free ops
    /// port, no quota), then `extra`.
    static func runArguments(
        broker: MosquittoBroker,
        simulator: RunningSimulator,
        clientID: String,
        state: String,
        _ extra: [String] = []
    ) -> [String] {
        [
            "run", "--broker-port", "\(broker.port)", "--client-id", clientID, "--platform-endpoint",
            simulator.endpoint,
            "--access-key-id", "testid", "--platform-qps", "0", "--state-dir", state, "--schema-dir",
            WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0",
        ] + extra
    }

    @Test(
        "64 + 256 commands with unpublishable reply topics, replies the broker refuses: every good command answered, every bad one rejected on the default topic or recorded undeliverable; nothing stuck after a restart; SIGTERM within its bound"
    )
    func poisonReplyTopics() async throws {
        let binary = try workerBinary()
        let state = try Self.temporaryDirectory("ota-poison")
        defer { try? FileManager.default.removeItem(atPath: state) }
        // The broker lets the worker publish replies anywhere under ota/cancel/reply/ok/ but not under .../denied/,
        // which the worker's allow-list does allow: those replies are refused by the broker (PUBACK 0x87). And it
        // takes packets of at most 100,000 bytes: the reply to a 5,000-device dry run is larger.
        let acl = state + "/acl"
        try [
            "topic readwrite ota/cancel/request", "topic readwrite ota/cancel/reply",
            "topic readwrite ota/cancel/reply/ok/#",
            "topic readwrite ota/cancel/dead-letter",
        ].joined(separator: "\n").write(toFile: acl, atomically: true, encoding: .utf8)
        let drainTimeout = 2
        try await withMosquittoBroker(extraConfig: ["acl_file \(acl)", "max_packet_size 100000"]) { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 6_000, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                let requester = try await Collector.subscribed(
                    to: ["ota/cancel/reply", "ota/cancel/reply/ok/#", "ota/cancel/dead-letter"],
                    port: broker.port,
                    persistentID: "poison-requester-\(UUID().uuidString.prefix(6))"
                )
                let arguments = Self.runArguments(
                    broker: broker,
                    simulator: simulator,
                    clientID: "poison-worker",
                    state: state,
                    ["--max-in-flight", "64", "--drain-timeout", "\(drainTimeout)", "--log-level", "notice"]
                )
                let logPath = state + "/worker.log"
                var process = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                let topics = Self.unpublishableTopics

                // 64 valid commands (they would fill --max-in-flight) and 256 invalid ones (they would fill the
                // reply queue), each with an unpublishable replyTo.
                func publish(_ payload: String) async throws {
                    try await requester.client.publish(
                        to: "ota/cancel/request",
                        payload: Array(payload.utf8),
                        qos: .atLeastOnce
                    )
                }
                for index in 1...320 {
                    let topic = topics[index % topics.count].1
                    let device = index <= 64 ? String(format: "dev-%06d", index) : "ab"
                    try await publish(
                        EndToEndTests.command(
                            [device],
                            extra: #","correlationId":"q\#(index)","replyTo":"# + Self.json(topic)
                        )
                    )
                }
                // Replies the broker refuses (not authorized) and replies larger than its maximum packet size.
                for index in 1...8 {
                    try await publish(
                        EndToEndTests.command(
                            [String(format: "dev-%06d", 100 + index)],
                            extra: #","correlationId":"d\#(index)","replyTo":"ota/cancel/reply/denied/\#(index)""#
                        )
                    )
                }
                for index in 1...3 {
                    let devices = (1...5_000).map { String(format: "dev-%06d", $0) }
                    try await publish(
                        EndToEndTests.command(
                            devices,
                            extra: #","dryRun":true,"correlationId":"big\#(index)","replyTo":"ota/cancel/reply/ok/big""#
                        )
                    )
                }
                // Then good commands: every one must be answered.
                for index in 1...100 {
                    try await publish(
                        EndToEndTests.command(
                            [String(format: "dev-%06d", 200 + index)],
                            extra: #","correlationId":"g\#(index)","replyTo":"ota/cancel/reply/ok/good""#
                        )
                    )
                }

                func payloads(on topic: String) -> [JSONValue] {
                    requester.messages.filter { $0.topic == topic }.compactMap { try? JSONParser.parse($0.payload) }
                }
                func correlationIds(on topic: String, prefix: String) -> Set<String> {
                    Set(
                        payloads(on: topic).compactMap { $0["correlationId"]?.stringValue }.filter {
                            $0.hasPrefix(prefix) && Int($0.dropFirst(prefix.count)) != nil
                        }
                    )
                }
                _ = try await requester.waitUntil(within: 120) { _ in
                    correlationIds(on: "ota/cancel/reply/ok/good", prefix: "g").count == 100
                        && correlationIds(on: "ota/cancel/reply", prefix: "q").count == 320
                        && correlationIds(on: "ota/cancel/dead-letter", prefix: "d").count == 8
                        && correlationIds(on: "ota/cancel/dead-letter", prefix: "big").count == 3
                }
                let good = payloads(on: "ota/cancel/reply/ok/good")
                #expect(correlationIds(on: "ota/cancel/reply/ok/good", prefix: "g").count == 100, "every good command")
                #expect(good.allSatisfy { $0["status"]?.stringValue == "succeeded" })

                // Each bad topic: answered rejected on the default topic, naming the reply topic as the problem.
                let rejections = payloads(on: "ota/cancel/reply").filter {
                    $0["correlationId"]?.stringValue?.hasPrefix("q") == true
                }
                #expect(correlationIds(on: "ota/cancel/reply", prefix: "q") == Set((1...320).map { "q\($0)" }))
                for rejection in rejections {
                    #expect(rejection["status"]?.stringValue == "rejected")
                    let codes = rejection["errors"]?.arrayValue?.compactMap { $0["code"]?.stringValue } ?? []
                    #expect(codes.contains("InvalidReplyTopic"), "\(rejection.serialized().prefix(300))")
                }
                #expect(
                    simulator.state.stats().deviceNamesRequested == 100 + 8,
                    "the commands with an unpublishable reply topic were not executed"
                )

                // The broker's refusals: recorded undeliverable, announced on the dead-letter topic, never retried.
                let notices = payloads(on: "ota/cancel/dead-letter")
                #expect(notices.count == 8 + 3, "one notice per undeliverable reply, not one per attempt")
                for notice in notices {
                    WorkerStack.expectDeadLetter(notice)
                    #expect(notice["code"]?.stringValue == "Undeliverable")
                    #expect(notice["status"]?.stringValue == "succeeded")
                    #expect(notice["kind"]?.stringValue == "reply")
                    #expect(notice["payloadSHA256"]?.stringValue?.count == 64)
                }
                let denied = notices.filter { $0["correlationId"]?.stringValue?.hasPrefix("d") == true }
                #expect(
                    denied.allSatisfy { $0["reason"]?.stringValue?.contains("0x87") == true },
                    "\(denied.first?.serialized() ?? "")"
                )
                let oversize = notices.filter { $0["correlationId"]?.stringValue?.hasPrefix("big") == true }
                #expect(oversize.allSatisfy { $0["reason"]?.stringValue?.contains("OVERSIZE") == true })
                #expect(oversize.allSatisfy { ($0["payloadBytes"]?.numberValue?.int64Value ?? 0) > 100_000 })
                #expect(requester.messages.allSatisfy { $0.payload.count < 100_000 }, "nothing oversize got out")

                let journal = try SQLiteJournal(configuration: JournalConfiguration(path: state + "/journal.sqlite"))
                let summary = try await journal.summary()
                #expect(summary.undeliverable == 8 + 3, "\(summary)")
                #expect(summary.repliesToPublish == 0 && summary.unanswered == 0, "\(summary)")
                #expect(!process.log.contains("trying again"), "no publication was retried")

                // A restart on the same journal finds nothing stuck, and still works.
                let stopped = ContinuousClock.now
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0, "\(process.log.suffix(2000))")
                print("poison test: SIGTERM with nothing stuck took \(ContinuousClock.now - stopped)")
                let before = process.log.count
                process = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                let restartLog = String(process.log.dropFirst(before))
                #expect(restartLog.contains("ota.replies_to_publish=0"), "\(restartLog.prefix(2000))")
                #expect(restartLog.contains("ota.commands_to_run=0"))
                try await publish(
                    EndToEndTests.command(
                        ["dev-000400"],
                        extra: #","correlationId":"after-restart","replyTo":"ota/cancel/reply/ok/good""#
                    )
                )
                _ = try await requester.waitUntil { _ in
                    payloads(on: "ota/cancel/reply/ok/good").contains {
                        $0["correlationId"]?.stringValue == "after-restart"
                    }
                }
                #expect(
                    payloads(on: "ota/cancel/reply/ok/good").contains {
                        $0["correlationId"]?.stringValue == "after-restart"
                    }
                )

                // A broker that stops answering (frozen, connections open) while replies are in flight: SIGTERM
                // still ends the worker within --drain-timeout plus the flush bound (5 s), and nothing is lost.
                for index in 1...50 {
                    try await publish(
                        EndToEndTests.command(
                            [String(format: "dev-%06d", 500 + index)],
                            extra: #","correlationId":"s\#(index)","replyTo":"ota/cancel/reply/ok/stuck""#
                        )
                    )
                }
                _ = try await requester.waitUntil { _ in !payloads(on: "ota/cancel/reply/ok/stuck").isEmpty }
                broker.signal(SIGSTOP)
                let frozen = ContinuousClock.now
                process.signal(SIGTERM)
                let exitCode = await process.waitForExit()
                let took = ContinuousClock.now - frozen
                broker.signal(SIGCONT)
                print("poison test: SIGTERM against a frozen broker took \(took)")
                #expect(exitCode == 0, "\(process.log.suffix(2000))")
                #expect(took < .seconds(drainTimeout + 5 + 5), "bounded by drain + flush (+5 s slack): \(took)")
                process = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                _ = try await requester.waitUntil(within: 60) { _ in
                    correlationIds(on: "ota/cancel/reply/ok/stuck", prefix: "s").count == 50
                }
                #expect(correlationIds(on: "ota/cancel/reply/ok/stuck", prefix: "s").count == 50, "none lost")
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0)
                await requester.client.disconnect()
            }
        }
    }

    /// A broker configured with `brokerConfig`, the simulator with `devices`, a collector subscribed to `filters`
    /// and a worker process run with `extra`; after `body` the worker gets SIGTERM and must exit 0.
    private static func withWorkerProcess(
        brokerConfig: [String],
        devices: Int,
        clientID: String,
        subscribe filters: [String],
        extra: [String] = [],
        _ body: (MosquittoBroker, Collector, BackgroundProcess, String) async throws -> Void
    ) async throws {
        let binary = try workerBinary()
        let state = try Self.temporaryDirectory("ota-\(clientID)")
        defer { try? FileManager.default.removeItem(atPath: state) }
        try await withMosquittoBroker(extraConfig: brokerConfig) { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: devices, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                let collector = try await Collector.subscribed(to: filters, port: broker.port)
                let process = try await launchWorkerProcess(
                    binary,
                    Self.runArguments(broker: broker, simulator: simulator, clientID: clientID, state: state, extra),
                    logPath: state + "/worker.log"
                )
                try await body(broker, collector, process, state)
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0)
                await collector.client.disconnect()
            }
        }
    }

    @Test("a 1 MB control-byte payload against a broker with max_packet_size 1048576: one bounded dead letter")
    func bigDeadLetter() async throws {
        try await Self.withWorkerProcess(
            brokerConfig: ["max_packet_size 1048576"],
            devices: 10,
            clientID: "dead-letter-worker",
            subscribe: ["ota/cancel/dead-letter", "ota/cancel/reply/big"]
        ) { broker, collector, _, state in
            let payload = [UInt8](repeating: 0x01, count: 1_000_000)
            let file = state + "/payload"
            try Data(payload).write(to: URL(fileURLWithPath: file))
            let sent = try await runProcess(
                "mosquitto_pub",
                ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", "ota/cancel/request", "-f", file],
                timeout: .seconds(30)
            )
            #expect(sent.exitCode == 0, "\(sent)")
            let letters = try await collector.waitFor(1)
            #expect(letters.count == 1)
            let letter = try #require(letters.first)
            print("dead letter of a 1,000,000-byte payload: \(letter.payload.count) bytes")
            #expect(letter.payload.count < 20_000, "bounded: \(letter.payload.count) bytes")
            let entry = try JSONParser.parse(letter.payload)
            #expect(entry["code"]?.stringValue == "InvalidJSON")
            #expect(entry["payloadBytes"]?.numberValue?.int64Value == 1_000_000)
            #expect(entry["payloadTruncated"]?.boolValue == true)
            #expect(entry["payloadText"] == nil, "control bytes are not text")
            let excerpt = try #require(entry["payloadBase64"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            #expect(Array(excerpt) == Array(payload.prefix(4096)))
            let digest = try #require(entry["payloadSHA256"]?.stringValue)
            #expect(digest == (try await Self.sha256Hex(payload)))

            // The worker goes on: a good command is answered.
            let reply = try await runProcess(
                "mosquitto_rr",
                [
                    "-h", "127.0.0.1", "-p", "\(broker.port)", "-V", "5", "-q", "1", "-t", "ota/cancel/request",
                    "-e", "ota/cancel/reply/big", "-W", "30", "-m",
                    EndToEndTests.command(["dev-000001"], extra: #","correlationId":"after""#),
                ],
                timeout: .seconds(40)
            )
            #expect(reply.stdout.contains(#""status":"succeeded""#), "\(reply)")
        }
    }

    @Test(
        "MQTT 3.1.1 with --broker-max-packet-size: a reply larger than the broker takes is recorded undeliverable, and the connection stays up"
    )
    func configuredPacketLimit() async throws {
        try await Self.withWorkerProcess(
            brokerConfig: ["max_packet_size 100000"],
            devices: 5_000,
            clientID: "packet-limit-worker",
            subscribe: ["ota/cancel/dead-letter", "ota/cancel/reply/v3/#"],
            extra: ["--mqtt-version", "3.1.1", "--broker-max-packet-size", "100000", "--log-level", "info"]
        ) { broker, collector, process, _ in
            let devices = (1...5_000).map { String(format: "dev-%06d", $0) }
            let big = EndToEndTests.command(
                devices,
                extra: #","dryRun":true,"correlationId":"big","replyTo":"ota/cancel/reply/v3/big""#
            )
            let small = EndToEndTests.command(
                ["dev-000001"],
                extra: #","correlationId":"small","replyTo":"ota/cancel/reply/v3/small""#
            )
            for payload in [big, small] {
                try await collector.client.publish(
                    to: "ota/cancel/request",
                    payload: Array(payload.utf8),
                    qos: .atLeastOnce
                )
            }
            let messages = try await collector.waitFor(2)
            let notice = try #require(messages.first { $0.topic == "ota/cancel/dead-letter" })
            let entry = try JSONParser.parse(notice.payload)
            WorkerStack.expectDeadLetter(entry)
            #expect(entry["code"]?.stringValue == "Undeliverable")
            #expect(entry["correlationId"]?.stringValue == "big")
            #expect(entry["reason"]?.stringValue?.contains("MOSQ_ERR_OVERSIZE_PACKET") == true)
            let answer = try #require(messages.first { $0.topic == "ota/cancel/reply/v3/small" })
            #expect(String(decoding: answer.payload, as: UTF8.self).contains(#""status":"succeeded""#))
            // Refused before sending: the broker never dropped the worker for an oversized packet.
            #expect(!process.log.contains("connection lost"), "\(process.log.suffix(2000))")
            #expect(
                broker.logText.components(separatedBy: "as packet-limit-worker").count == 2,
                "the worker connected once and was never dropped"
            )
        }
    }

    /// SHA-256 of `bytes` as lower-case hex, computed by openssl (not by the worker's own code).
    static func sha256Hex(_ bytes: [UInt8]) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try await runProcess("openssl", ["dgst", "-sha256", "-r", file])
        return String(result.stdout.prefix(64))
    }
}
