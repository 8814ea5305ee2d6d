// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing

/// A second broker implementation (issue 12): the worker process, with `--mqtt-version 3.1.1`, against RabbitMQ's
/// MQTT plugin (a private node per test, see ``RabbitMQBroker``) and the simulator.
///
/// Every other integration test runs against mosquitto, so nothing else shows the worker relies only on what MQTT
/// 3.1.1 promises: a persistent session that queues QoS 1 commands while the worker is away and across a broker
/// restart, the ids in the payload, the same replies. The tests also pin down two of the differences the README
/// lists (a `.` in a topic name becomes a level, a QoS 2 publication gets a PUBACK), so that a RabbitMQ that
/// changes them is noticed. Without RabbitMQ the tests are skipped with a visible reason, except in CI and under
/// `scripts/test` (which installs it), where they fail with the install command.
@Suite(
    "RabbitMQ",
    .timeLimit(.minutes(4)),
    .enabled(
        if: RabbitMQBroker.isInstalled || RabbitMQBroker.isRequired,
        Comment(rawValue: RabbitMQBroker.installHint)
    )
)
struct RabbitMQTests {
    @Test(
        "a persistent session on RabbitMQ, ids in the payload: commands sent during a broker restart and while the worker is away are all answered, once"
    )
    func persistentSessionAcrossRestarts() async throws {
        let binary = try workerBinary()
        let state = try makeTemporaryDirectory("ota-rabbitmq")
        defer { try? FileManager.default.removeItem(atPath: state) }
        try await withRabbitMQBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 200, qps: 0),
                logger: quietTestLogger("rabbitmq-test")
            ) { simulator in
                let workerID = "rabbit-worker-\(UUID().uuidString.prefix(8))"
                let arguments = Self.workerArguments(
                    port: broker.port,
                    clientID: workerID,
                    platform: simulator.endpoint,
                    state: state
                )
                let logPath = state + "/worker.log"
                var worker = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                let requester = try await PayloadRequester.connected(
                    port: broker.port,
                    clientID: "rabbit-requester-\(UUID().uuidString.prefix(8))",
                    filters: ["ota/cancel/reply/rabbit"]
                )

                // The worker's session is RabbitMQ's durable queue for its QoS 1 subscription, not auto-deleted (a
                // clean session's would be), consumed by the worker.
                let sessionQueue = "mqtt-subscription-\(workerID)qos1"
                let session = try await broker.queues().first { $0.name == sessionQueue }
                #expect(
                    session?.durable == true,
                    "the worker's session queue is durable: \(String(describing: session))"
                )
                #expect(session?.autoDelete == false, "a persistent session: \(String(describing: session))")
                #expect(session?.consumers == 1, "the worker consumes it: \(String(describing: session))")

                // Commands with the reply topic and correlation id in the payload.
                try await requester.send(1...40)
                #expect(try await requester.waitForAnswers(to: 40), "\(requester.summary)")

                // Commands published while the broker restarts (RabbitMQ stopped with SIGTERM, started again on
                // the same data): the worker and the requester reconnect, nothing is lost.
                async let duringRestart: Void = requester.send(41...80)
                await broker.stop()
                try await broker.restart()
                try await duringRestart
                #expect(try await requester.waitForAnswers(to: 80), "\(requester.summary)")

                // The worker goes away; its session keeps the commands sent meanwhile, across another restart.
                worker.signal(SIGTERM)
                #expect(await worker.waitForExit() == 0, "a graceful stop:\n\(worker.log.suffix(2_000))")
                try await requester.send(81...120)
                let queued = try await Self.waitForQueue(sessionQueue, on: broker) { $0.messages == 40 }
                #expect(queued?.messages == 40, "the session holds the 40 commands: \(String(describing: queued))")
                #expect(queued?.consumers == 0)
                try await broker.restart()
                let kept = try await broker.queues().first { $0.name == sessionQueue }
                #expect(kept?.messages == 40, "the restart kept them: \(String(describing: kept))")
                worker = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                let ready = worker.log.components(separatedBy: "\n").last { $0.contains("worker ready") } ?? ""
                #expect(ready.contains("mqtt.session_present=true"), "RabbitMQ resumed the session: \(ready)")
                #expect(try await requester.waitForAnswers(to: 120), "\(requester.summary)")

                // Every command answered, and executed once: one original reply each. QoS 1 is at least once both
                // ways, so a redelivered command is answered again, marked duplicate, and a reply whose PUBACK the
                // restart took is published again, byte for byte (the stored reply); neither is a second execution.
                // Each device is cancelled once.
                let replies = requester.replies
                let byID = Dictionary(grouping: replies, by: \.correlationID)
                #expect(Set(byID.keys) == Set((1...120).map { "rmq-\($0)" }))
                let notOnce = byID.filter {
                    Set($0.value.filter { $0.reply["duplicate"] == nil }.map(\.payload)).count != 1
                }
                #expect(notOnce.isEmpty, "one original reply per correlation id: \(notOnce.keys.sorted().prefix(10))")
                let differing = byID.filter {
                    Set($0.value.compactMap { withoutDuplicateMarker($0.payload) }).count != 1
                }
                #expect(differing.isEmpty, "repeated replies repeat the result: \(differing.keys.sorted().prefix(10))")
                for reply in replies {
                    #expect(reply.topic == "ota/cancel/reply/rabbit")
                    #expect(reply.reply["status"]?.stringValue == "succeeded", "\(reply.reply.serialized())")
                    let index = Int(reply.correlationID.dropFirst("rmq-".count)) ?? 0
                    #expect(
                        reply.reply["cancelledDevices"]?.arrayValue == [.string(Self.device(index))],
                        "the reply of \(reply.correlationID) is its own command's: \(reply.reply.serialized())"
                    )
                }
                let notCancelledOnce = (1...120).filter {
                    simulator.state.tasks(deviceName: Self.device($0))?.first?.cancelCalls != 1
                }
                #expect(notCancelledOnce.isEmpty, "each device cancelled once: \(notCancelledOnce.prefix(10))")
                // Redelivered commands, by phase: QoS 1 is at least once, and a command in flight when the
                // connection goes comes again.
                let repeatedByPhase = [1...40, 41...80, 81...120].map { phase in
                    phase.reduce(0) { $0 + max(0, (byID["rmq-\($1)"]?.count ?? 0) - 1) }
                }
                print(
                    "RabbitMQ restarts: 120 commands, \(replies.count) replies, repeated replies per phase "
                        + "(before, during the restart, while the worker was away): \(repeatedByPhase), "
                        + "of them \(replies.filter { $0.reply["duplicate"]?.boolValue == true }.count) marked duplicate "
                        + "(a command delivered again), the rest copies of a reply; "
                        + "\(simulator.state.stats().cancelCalls) platform calls"
                )

                worker.signal(SIGTERM)
                #expect(await worker.waitForExit() == 0, "a graceful stop:\n\(worker.log.suffix(2_000))")
                await requester.client.disconnect()
            }
        }
    }

    @Test("the same commands get the same replies on RabbitMQ as on mosquitto; a '.' in a reply topic is a level there")
    func sameRepliesAsMosquitto() async throws {
        async let onMosquitto = withMosquittoBroker { broker in
            try await Self.runScenario(port: broker.port)
        }
        let onRabbitMQ = try await withRabbitMQBroker { broker in
            try await Self.runScenario(port: broker.port)
        }
        let reference = try await onMosquitto
        try #require(onRabbitMQ.steps.count == reference.steps.count)
        for (rabbit, mosquitto) in zip(onRabbitMQ.steps, reference.steps) {
            #expect(
                Self.meaningful(rabbit.reply) == Self.meaningful(mosquitto.reply),
                "\(rabbit.name): RabbitMQ answered \(rabbit.reply.serialized())\nmosquitto answered \(mosquitto.reply.serialized())"
            )
        }
        #expect(onRabbitMQ.deviceStates == reference.deviceStates, "the platform ends in the same state")

        // What the scenario covers, so that "the same" means something.
        let statuses = onRabbitMQ.steps.map { "\($0.name)=\($0.reply["status"]?.stringValue ?? "?")" }
        #expect(
            statuses == [
                "succeeded=succeeded", "partial=partial", "duplicate=succeeded", "conflict=rejected",
                "invalid=rejected", "expired=expired", "dryRun=succeeded", "dotted=succeeded",
                "defaultTopic=succeeded", "qos2=succeeded",
            ]
        )
        let byName = Dictionary(uniqueKeysWithValues: onRabbitMQ.steps.map { ($0.name, $0) })
        #expect(byName["duplicate"]?.reply["duplicate"]?.boolValue == true)
        #expect(
            byName["conflict"]?.reply["errors"]?.arrayValue?.first?["code"]?.stringValue == "ConflictingDuplicate"
        )
        #expect(byName["partial"]?.reply["failedGroups"]?.arrayValue?.count == 1)
        #expect(byName["succeeded"]?.reply["devices"]?["canceled"]?.arrayValue?.count == 2, "read back by job")

        // Where RabbitMQ differs, as the README says: topic levels are separated by '.' as well as by '/', so the
        // reply published to `.../host.example` arrives as `.../host/example`; a QoS 2 PUBLISH is answered with
        // a PUBACK, which mosquitto_pub takes for a protocol error, yet the command was taken (at QoS 1).
        let topics = Dictionary(
            uniqueKeysWithValues: zip(onRabbitMQ.steps, reference.steps).map {
                ($0.0.name, (rabbit: $0.0.topic, mosquitto: $0.1.topic))
            }
        )
        #expect(topics["dotted"]?.mosquitto == "ota/cancel/reply/same/host.example")
        #expect(topics["dotted"]?.rabbit == "ota/cancel/reply/same/host/example")
        #expect(topics["defaultTopic"]?.rabbit == "ota/cancel/reply")
        #expect(topics.filter { $0.key != "dotted" }.allSatisfy { $0.value.rabbit == $0.value.mosquitto })
        #expect(reference.qos2Publisher.exitCode == 0, "mosquitto completes QoS 2: \(reference.qos2Publisher)")
        #expect(
            onRabbitMQ.qos2Publisher.exitCode != 0,
            "RabbitMQ answers a QoS 2 PUBLISH with a PUBACK: \(onRabbitMQ.qos2Publisher)"
        )
    }

    // MARK: - The scenario both brokers get

    /// One command of the scenario and its reply.
    struct Step: Sendable {
        var name: String
        var topic: String
        var reply: JSONValue
    }

    /// What a broker's run of the scenario produced.
    struct ScenarioResult: Sendable {
        var steps: [Step]
        /// The simulator's task states of the devices the scenario names, afterwards.
        var deviceStates: [String: [String]]
        /// `mosquitto_pub -q 2`'s result.
        var qos2Publisher: ProcessResult
    }

    /// Sends the same commands, one at a time (each after the previous reply), through a fresh worker process and
    /// simulator on the broker at `port`: a succeeded command read back by job, a partial one, its duplicate, a
    /// conflicting duplicate, a schema violation, an expired command, a dry run, a reply topic with a `.`, one
    /// without a reply topic (the default topic), and one published with QoS 2.
    static func runScenario(port: Int) async throws -> ScenarioResult {
        let binary = try workerBinary()
        let state = try makeTemporaryDirectory("ota-rabbitmq-same")
        defer { try? FileManager.default.removeItem(atPath: state) }
        return try await withPlatformSimulator(
            configuration: SimulatorConfiguration(generateDevices: 20, qps: 0),
            logger: quietTestLogger("rabbitmq-same")
        ) { simulator in
            let worker = try await launchWorkerProcess(
                binary,
                workerArguments(port: port, clientID: "same-worker", platform: simulator.endpoint, state: state),
                logPath: state + "/worker.log"
            )
            let requester = try await PayloadRequester.connected(
                port: port,
                clientID: "same-requester-\(UUID().uuidString.prefix(8))",
                filters: ["ota/cancel/reply/same/#", "ota/cancel/reply"]
            )
            let reply = ",\"replyTo\":\"ota/cancel/reply/same/x\""
            let succeeded = EndToEndTests.command(
                [device(1), device(2)],
                extra: reply + #","correlationId":"same-1","jobId":"demoJob""#
            )
            let commands: [(name: String, payload: String)] = [
                ("succeeded", succeeded),
                (
                    "partial",
                    EndToEndTests.command([device(3), "dev-999999"], extra: reply + #","correlationId":"same-2""#)
                ),
                ("duplicate", succeeded),
                ("conflict", EndToEndTests.command([device(4)], extra: reply + #","correlationId":"same-1""#)),
                (
                    "invalid",
                    EndToEndTests.command([device(4)], extra: reply + #","correlationId":"same-3","color":"red""#)
                ),
                (
                    "expired",
                    EndToEndTests.command(
                        [device(4)],
                        extra: reply + #","correlationId":"same-4","deadline":"2020-01-01T00:00:00Z""#
                    )
                ),
                (
                    "dryRun",
                    EndToEndTests.command([device(5)], extra: reply + #","correlationId":"same-5","dryRun":true"#)
                ),
                (
                    "dotted",
                    EndToEndTests.command(
                        [device(6)],
                        extra: #","replyTo":"ota/cancel/reply/same/host.example","correlationId":"same-6""#
                    )
                ),
                ("defaultTopic", EndToEndTests.command([device(7)], extra: #","correlationId":"same-7""#)),
            ]
            var steps: [Step] = []
            for (index, command) in commands.enumerated() {
                try await requester.publish(command.payload)
                steps.append(try await requester.nextReply(number: index + 1, name: command.name))
            }
            // QoS 2, with a third-party client: RabbitMQ's PUBACK makes mosquitto_pub fail, after the broker
            // took the message.
            let qos2 = try await runProcess(
                "mosquitto_pub",
                [
                    "-h", "127.0.0.1", "-p", "\(port)", "-V", "mqttv311", "-q", "2", "-t", "ota/cancel/request", "-m",
                    EndToEndTests.command([device(8)], extra: reply + #","correlationId":"same-8""#),
                ],
                timeout: .seconds(20)
            )
            steps.append(try await requester.nextReply(number: commands.count + 1, name: "qos2"))

            var states: [String: [String]] = [:]
            for index in [1, 2, 3, 4, 5, 6, 7, 8] {
                states[device(index)] = (simulator.state.tasks(deviceName: device(index)) ?? []).map(\.status)
            }
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit() == 0, "a graceful stop:\n\(worker.log.suffix(2_000))")
            await requester.client.disconnect()
            return ScenarioResult(steps: steps, deviceStates: states, qos2Publisher: qos2)
        }
    }

    /// A reply without what differs between any two runs: timestamps (`receivedAt`, `completedAt`, the default
    /// `deadline`, the first arrival a `ConflictingDuplicate` message names), the platform's request ids, and of a
    /// dry run's planned calls all but the method and the devices (the rest is a signed request, with its nonce
    /// and time).
    static func meaningful(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            var kept = JSONObject()
            for key in object.keys
            where !["receivedAt", "completedAt", "deadline", "requestIds", "requestId"].contains(key) {
                kept[key] = object[key].map(meaningful)
            }
            if object["code"]?.stringValue == "ConflictingDuplicate" { kept["message"] = nil }
            if let calls = object["plannedCalls"]?.arrayValue {
                kept["plannedCalls"] = .array(
                    calls.map {
                        .object(
                            JSONObject([("method", $0["method"] ?? .null), ("deviceNames", $0["deviceNames"] ?? .null)])
                        )
                    }
                )
            }
            return .object(kept)
        case .array(let elements):
            return .array(elements.map(meaningful))
        default:
            return value
        }
    }

    // MARK: - Helpers

    static func device(_ index: Int) -> String { String(format: "dev-%06d", index) }

    /// The worker's command line: MQTT 3.1.1, a fixed client id (a persistent session), no quota.
    static func workerArguments(port: Int, clientID: String, platform: String, state: String) -> [String] {
        [
            "run", "--mqtt-version", "3.1.1", "--broker-port", "\(port)", "--client-id", clientID,
            "--platform-endpoint", platform, "--access-key-id", "testid", "--platform-qps", "0", "--state-dir", state,
            "--schema-dir", WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0", "--log-level", "info",
        ]
    }

    /// Polls `rabbitmqctl list_queues` (a hang guard of 30 s) until the queue `name` satisfies `condition`.
    /// - Returns: The queue as last seen, `nil` if it does not exist.
    static func waitForQueue(
        _ name: String,
        on broker: RabbitMQBroker,
        _ condition: (RabbitMQBroker.Queue) -> Bool
    ) async throws -> RabbitMQBroker.Queue? {
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(30)
        while true {
            let queue = try await broker.queues().first { $0.name == name }
            if let queue, condition(queue) { return queue }
            if clock.now >= giveUp { return queue }
            try await clock.sleep(for: .milliseconds(200))
        }
    }
}

/// A requester as an MQTT 3.1.1 application is one: the reply topic and correlation id in the payload, a fixed
/// client id with a persistent session (so replies published while the broker restarts wait for it), every reply
/// collected.
final class PayloadRequester: Sendable {
    let client: MosquittoClient
    private let received = LockedValue<[MQTTMessage]>([])

    /// A reply, read.
    struct Reply: Sendable {
        var topic: String
        var correlationID: String
        var payload: [UInt8]
        var reply: JSONValue
    }

    private init(port: Int, clientID: String) throws {
        var logger = Logger(label: "rabbitmq-requester")
        logger.logLevel = .warning
        let configuration = MosquittoConfiguration(
            port: port,
            clientID: clientID,
            protocolVersion: .v3_1_1,
            cleanStart: false,
            receiveMaximum: 1000,
            // Back soon after a broker restart: the test waits for it.
            reconnect: .init(initialDelay: .milliseconds(200), maximumDelay: .seconds(2))
        )
        let store = received
        client = try MosquittoClient(configuration: configuration, logger: logger) { message in
            store.withLock { $0.append(message) }
        }
    }

    /// A connected requester, subscribed (SUBACK received) to `filters` at QoS 1.
    static func connected(port: Int, clientID: String, filters: [String]) async throws -> PayloadRequester {
        let requester = try PayloadRequester(port: port, clientID: clientID)
        try await requester.client.connect()
        _ = try await requester.client.subscribe(
            to: filters.map { MQTTSubscribeInfo(topicFilter: $0, qos: .atLeastOnce) }
        )
        return requester
    }

    /// Every message so far, read as a reply (a message that is no JSON has an empty correlation id).
    var replies: [Reply] {
        received.value.map { message in
            let value = (try? JSONParser.parse(message.payload)) ?? .null
            return Reply(
                topic: message.topic,
                correlationID: value["correlationId"]?.stringValue ?? "",
                payload: message.payload,
                reply: value
            )
        }
    }

    /// A short account for failure messages.
    var summary: String {
        let ids = Set(replies.map(\.correlationID))
        return "\(received.value.count) replies for \(ids.count) correlation ids"
    }

    /// Publishes `payload` to the command topic at QoS 1 (returns on PUBACK).
    func publish(_ payload: String) async throws {
        try await client.publish(to: "ota/cancel/request", payload: Array(payload.utf8), qos: .atLeastOnce)
    }

    /// Publishes a one-device command `rmq-<n>` for each index, replies to `ota/cancel/reply/rabbit`, all at once.
    func send(_ indices: ClosedRange<Int>) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in indices {
                group.addTask {
                    try await self.publish(
                        EndToEndTests.command(
                            [RabbitMQTests.device(index)],
                            extra: #","replyTo":"ota/cancel/reply/rabbit","correlationId":"rmq-\#(index)""#
                        )
                    )
                }
            }
            try await group.waitForAll()
        }
    }

    /// Waits until `rmq-1` ... `rmq-<count>` are all answered. The hang guard is 120 s: after a broker restart the
    /// worker reconnects with backoff (1, 2, 4, 8 s...), and a restart beside the whole suite is slow.
    /// - Returns: Whether they were.
    func waitForAnswers(to count: Int) async throws -> Bool {
        let expected = Set((1...count).map { "rmq-\($0)" })
        return try await waitUntil(within: .seconds(120)) { expected.isSubset(of: Set($0.map(\.correlationID))) }
    }

    /// Waits (a hang guard of 30 s) for reply number `number` and returns it.
    /// - Throws: When it does not come.
    func nextReply(number: Int, name: String) async throws -> RabbitMQTests.Step {
        _ = try await waitUntil(within: .seconds(30)) { $0.count >= number }
        let replies = replies
        guard replies.count >= number else {
            Issue.record("no reply to '\(name)' within 30 s; \(summary)")
            throw CancellationError()
        }
        let reply = replies[number - 1]
        return RabbitMQTests.Step(name: name, topic: reply.topic, reply: reply.reply)
    }

    private func waitUntil(within timeout: Duration, _ condition: ([Reply]) -> Bool) async throws -> Bool {
        let clock = ContinuousClock()
        let giveUp = clock.now + timeout
        while !condition(replies) {
            if clock.now >= giveUp { return false }
            try await clock.sleep(for: .milliseconds(20))
        }
        return true
    }
}
