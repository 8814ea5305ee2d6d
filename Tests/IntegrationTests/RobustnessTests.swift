// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import ServiceLifecycle
import TestSupport
import Testing
import Worker

/// A test-side MQTT client that collects everything on some topics.
final class Collector: Sendable {
    let client: MosquittoClient
    private let received = LockedValue<[MQTTMessage]>([])

    /// - Parameter persistentID: a fixed client id with a persistent session, so that replies published while
    ///   the broker restarts are still delivered; `nil` for a throwaway session.
    init(port: Int, logger: Logger, persistentID: String? = nil) throws {
        var configuration = MosquittoConfiguration(clientID: persistentID ?? "collector-\(UUID().uuidString.prefix(8))")
        configuration.port = port
        configuration.cleanStart = persistentID == nil
        configuration.sessionExpiryInterval = persistentID == nil ? 0 : 3600
        configuration.receiveMaximum = 1000
        let store = received
        client = try MosquittoClient(configuration: configuration, logger: logger) { message in
            store.withLock { $0.append(message) }
        }
    }

    var messages: [MQTTMessage] { received.value }

    /// A connected collector, subscribed (SUBACK received) to `filters`.
    static func subscribed(to filters: [String], port: Int, persistentID: String? = nil) async throws -> Collector {
        var logger = Logger(label: "test-client")
        logger.logLevel = .warning
        let collector = try Collector(port: port, logger: logger, persistentID: persistentID)
        try await collector.client.connect()
        try await collector.client.subscribe(to: filters.map { MQTTSubscribeInfo(topicFilter: $0, qos: .atLeastOnce) })
        return collector
    }

    /// Waits (hang guard only) until `condition` holds for the messages so far.
    func waitUntil(within seconds: Int = 120, _ condition: ([MQTTMessage]) -> Bool) async throws -> [MQTTMessage] {
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(seconds)
        while !condition(messages) && clock.now < giveUp {
            try await clock.sleep(for: .milliseconds(20))
        }
        return messages
    }

    /// The distinct Correlation Data values seen so far, as text.
    var correlations: Set<String> {
        Set(messages.map { String(decoding: $0.properties.correlationData ?? [], as: UTF8.self) })
    }

    /// Waits (hang guard only) until `count` messages arrived.
    func waitFor(_ count: Int, within seconds: Int = 60) async throws -> [MQTTMessage] {
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(seconds)
        while messages.count < count && clock.now < giveUp {
            try await clock.sleep(for: .milliseconds(20))
        }
        return messages
    }
}

@Suite("Robustness", .timeLimit(.minutes(3)))
struct RobustnessTests {
    @Test("unparseable messages without a Response Topic go to the dead-letter topic with the original payload")
    func deadLetter() async throws {
        try await withWorkerStack { stack in
            let collector = try await Collector.subscribed(to: ["ota/cancel/dead-letter"], port: stack.broker.port)
            let result = try await runProcess(
                "mosquitto_pub",
                [
                    "-h", "127.0.0.1", "-p", "\(stack.broker.port)", "-q", "1", "-t", "ota/cancel/request", "-m",
                    "this is { not json",
                ],
                timeout: .seconds(20)
            )
            #expect(result.exitCode == 0)
            let letters = try await collector.waitFor(1)
            let letter = try #require(letters.first)
            let entry = try JSONParser.parse(letter.payload)
            WorkerStack.expectDeadLetter(entry)
            #expect(entry["code"]?.stringValue == "InvalidJSON")
            #expect(entry["payloadText"]?.stringValue == "this is { not json")
            #expect(entry["topic"]?.stringValue == "ota/cancel/request")
            await collector.client.disconnect()
        }
    }

    @Test("a flood of hostile payloads: every message is answered or dead-lettered, and the worker still works")
    func hostileFlood() async throws {
        try await withWorkerStack { stack in
            let collector = try await Collector.subscribed(
                to: ["ota/cancel/dead-letter", "ota/cancel/reply/#"],
                port: stack.broker.port
            )
            let payloads: [[UInt8]] = [
                [], [0xFF, 0xFE, 0x00], Array("null".utf8), Array("[]".utf8),
                Array(String(repeating: "[", count: 100_000).utf8),
                Array(#"{"productKey":1e99999}"#.utf8), Array(#"{"a":"\ud800"}"#.utf8), Array(#"{"a":1,"a":2}"#.utf8),
                Array(
                    (#"{"productKey":"p","firmwareId":"f","deviceNames":[""# + String(repeating: "x", count: 300_000)
                        + #""]}"#).utf8
                ),
                Array(
                    #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1","dev-1"],"correlationId":"dup"}"#.utf8
                ),
            ]
            var expected = 0
            for (index, payload) in payloads.enumerated() {
                // Half with a Response Topic (answered there), half without (default topic or dead letter).
                let properties =
                    index.isMultiple(of: 2)
                    ? MQTTProperties(responseTopic: "ota/cancel/reply/flood", correlationData: Array("f-\(index)".utf8))
                    : MQTTProperties()
                try await collector.client.publish(
                    to: "ota/cancel/request",
                    payload: payload,
                    qos: .atLeastOnce,
                    properties: properties
                )
                expected += 1
            }
            let messages = try await collector.waitFor(expected)
            #expect(messages.count == expected)
            for message in messages {
                let value = try JSONParser.parse(message.payload)
                if message.topic.hasPrefix("ota/cancel/reply") {
                    #expect(WorkerStack.resultValidator.validate(value).isEmpty)
                    #expect(value["status"]?.stringValue == "rejected")
                } else {
                    #expect(message.topic == "ota/cancel/dead-letter")
                    WorkerStack.expectDeadLetter(value)
                }
            }
            // Still alive and well.
            let fields = try await stack.request(
                EndToEndTests.command(["dev-000900"]),
                responseTopic: "ota/cancel/reply/alive",
                correlationData: "alive"
            )
            #expect(try stack.reply(fields[2])["status"]?.stringValue == "succeeded")
            #expect(stack.cancelCalls() == 1)
            await collector.client.disconnect()
        }
    }

    @Test(
        "200 commands at once: 200 replies, each correlated, each device cancelled once",
        arguments: [64, 4]  // 4: the in-memory hand-off overflows and new commands are read from the journal too
    )
    func manyCommands(maxInFlight: Int) async throws {
        try await withWorkerStack(arguments: TestArguments(platformQps: 0, maxInFlight: maxInFlight)) { stack in
            let collector = try await Collector.subscribed(to: ["ota/cancel/reply/many"], port: stack.broker.port)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 1...200 {
                    group.addTask {
                        let payload = EndToEndTests.command([String(format: "dev-%06d", index)])
                        try await collector.client.publish(
                            to: "ota/cancel/request",
                            payload: Array(payload.utf8),
                            qos: .atLeastOnce,
                            properties: MQTTProperties(
                                responseTopic: "ota/cancel/reply/many",
                                correlationData: Array("m-\(index)".utf8)
                            )
                        )
                    }
                }
                try await group.waitForAll()
            }
            let replies = try await collector.waitFor(200)
            #expect(replies.count == 200)
            var seen = Set<String>()
            for message in replies {
                let correlation = String(decoding: message.properties.correlationData ?? [], as: UTF8.self)
                let value = try JSONParser.parse(message.payload)
                #expect(value["correlationId"]?.stringValue == correlation)
                #expect(value["status"]?.stringValue == "succeeded")
                let device = value["cancelledDevices"]?.arrayValue?.first?.stringValue
                #expect(device == String(format: "dev-%06d", Int(correlation.dropFirst(2)) ?? -1))
                seen.insert(correlation)
            }
            #expect(seen.count == 200)
            // Coalesced: the calls carry several commands' devices; each device is cancelled once (checked next).
            #expect(stack.cancelCalls() <= 200, "no command runs twice")
            #expect(
                (1...200).allSatisfy {
                    stack.simulator.state.tasks(deviceName: String(format: "dev-%06d", $0))?.first?.cancelCalls == 1
                }
            )
            await collector.client.disconnect()
        }
    }

    @Test("graceful shutdown finishes the commands in flight and publishes their replies")
    func gracefulShutdownDrains() async throws {
        // Every platform answer takes 1 s, so the commands are in flight when the shutdown starts.
        try await withWorkerStack(simulator: SimulatorConfiguration(generateDevices: 100, qps: 0, latency: .seconds(1)))
        { stack in
            let collector = try await Collector.subscribed(to: ["ota/cancel/reply/drain"], port: stack.broker.port)
            for index in 1...10 {
                try await collector.client.publish(
                    to: "ota/cancel/request",
                    payload: Array(EndToEndTests.command([String(format: "dev-%06d", index)]).utf8),
                    qos: .atLeastOnce,
                    properties: MQTTProperties(
                        responseTopic: "ota/cancel/reply/drain",
                        correlationData: Array("g-\(index)".utf8)
                    )
                )
            }
            // Wait until all ten are running (their platform calls take a second), then ask it to stop.
            let clock = ContinuousClock()
            let giveUp = clock.now + .seconds(20)
            while stack.worker.counters.started < 10 && clock.now < giveUp {
                try await clock.sleep(for: .milliseconds(10))
            }
            #expect(stack.worker.counters.started == 10)
            await stack.serviceGroup.triggerGracefulShutdown()
            let replies = try await collector.waitFor(10, within: 30)
            #expect(replies.count == 10)
            // The worker counts a reply once the broker has acknowledged it, which may come a moment later.
            let acknowledged = clock.now + .seconds(30)
            while stack.worker.counters.repliesPublished < 10 && clock.now < acknowledged {
                try await clock.sleep(for: .milliseconds(10))
            }
            #expect(stack.worker.counters.repliesPublished == 10)
            await collector.client.disconnect()
        }
    }

    @Test("POST requests work like GET")
    func postMethod() async throws {
        try await withWorkerStack(arguments: TestArguments(platformMethod: "POST", platformQps: 0)) { stack in
            let fields = try await stack.request(
                EndToEndTests.command(["dev-000042"]),
                responseTopic: "ota/cancel/reply/post",
                correlationData: "post-1"
            )
            #expect(try stack.reply(fields[2])["status"]?.stringValue == "succeeded")
            #expect(stack.status(of: "dev-000042") == ["CANCELED"])
        }
    }
}
