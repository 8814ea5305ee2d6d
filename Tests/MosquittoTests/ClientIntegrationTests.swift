// SPDX-License-Identifier: Apache-2.0
import Foundation
import Mosquitto
import TestSupport
import Testing

/// MosquittoClient against a real mosquitto broker (one per test, on a free loopback port) and the real
/// mosquitto command-line clients as the other party.
@Suite("MosquittoClient against a real broker", .timeLimit(.minutes(1)))
struct ClientIntegrationTests {
    @Test(
        "connects with MQTT 5 and 3.1.1 using the configured session options",
        arguments: [
            MQTTProtocolVersion.v5, .v3_1_1,
        ]
    )
    func connectsWithEitherProtocolVersion(version: MQTTProtocolVersion) async throws {
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("connect")
            let client = try MosquittoClient(
                configuration: testConfiguration(broker, clientID: id, version: version),
                logger: makeTestLogger(id),
                onMessage: { _ in }
            )
            let events = EventRecorder(client)
            let sessionPresent = try await client.connect()
            #expect(sessionPresent == false)
            #expect(client.isConnected)
            try await events.waitFor { $0 == .connected(sessionPresent: false) }
            // p5 = MQTT 5, p2 = 3.1.1 in mosquitto's log; c0 = clean start off; k30 = keep alive 30 s.
            let level = version == .v5 ? "p5" : "p2"
            #expect(broker.logText.contains("as \(id) (\(level), c0, k30)"))

            await client.disconnect()
            #expect(!client.isConnected)
            try await events.waitFor { $0 == .disconnected(nil) }
            #expect(try await broker.waitForLog { $0.contains("Client \(id) disconnected.") })
        }
    }

    @Test(
        "receives Response Topic, Correlation Data, Content Type, User Properties and Message Expiry from mosquitto_pub"
    )
    func receivesPropertiesFromMosquittoPub() async throws {
        try await withMosquittoBroker { broker in
            let collector = MessageCollector()
            try await withTestClient(broker, "props", onMessage: collector.handler) { client in
                let granted = try await client.subscribe(to: [
                    MQTTSubscribeInfo(topicFilter: "cmd/props", qos: .atLeastOnce)
                ])
                #expect(granted == [1])
                let result = try await runProcess(
                    "mosquitto_pub",
                    [
                        "-h", broker.host, "-p", "\(broker.port)", "-V", "5", "-q", "1", "-t", "cmd/props",
                        "-m", #"{"productKey":"pk"}"#,
                        "-D", "publish", "response-topic", "ota/cancel/reply/r1",
                        "-D", "publish", "correlation-data", "req-42",
                        "-D", "publish", "content-type", "application/json",
                        "-D", "publish", "payload-format-indicator", "1",
                        "-D", "publish", "message-expiry-interval", "3600",
                        "-D", "publish", "user-property", "k1", "v1",
                        "-D", "publish", "user-property", "k2", "v2",
                    ],
                    timeout: .seconds(10)
                )
                #expect(result.exitCode == 0, "\(result)")
                let received = try await collector.waitFor(count: 1)
                let message = try #require(received.first)
                #expect(message.topic == "cmd/props")
                #expect(message.payload == Array(#"{"productKey":"pk"}"#.utf8))
                #expect(message.qos == .atLeastOnce)
                #expect(message.retain == false)
                #expect(message.properties.responseTopic == "ota/cancel/reply/r1")
                #expect(message.properties.correlationData == Array("req-42".utf8))
                #expect(message.properties.contentType == "application/json")
                #expect(message.properties.payloadFormatIndicator == 1)
                #expect(
                    message.properties.userProperties == [
                        MQTTUserProperty(name: "k1", value: "v1"), MQTTUserProperty(name: "k2", value: "v2"),
                    ]
                )
                // The broker forwards the remaining lifetime: 3600 minus the whole seconds the message waited.
                let expiry = try #require(message.properties.messageExpiryInterval)
                #expect((3590...3600).contains(expiry))
            }
        }
    }

    @Test("binary correlation data (not UTF-8) and all properties survive a round trip between two clients")
    func binaryCorrelationDataRoundTrips() async throws {
        try await withMosquittoBroker { broker in
            let collector = MessageCollector()
            try await withTestClient(broker, "rx", onMessage: collector.handler) { receiver in
                try await receiver.subscribe(to: [MQTTSubscribeInfo(topicFilter: "bin/#")])
                try await withTestClient(broker, "tx", onMessage: { _ in }) { sender in
                    let properties = MQTTProperties(
                        responseTopic: "bin/reply",
                        correlationData: [0x00, 0xFF, 0xFE, 0x80, 0x7F, 0x0A, 0xC3, 0x28, 0x00],
                        contentType: "application/octet-stream",
                        payloadFormatIndicator: 0,
                        messageExpiryInterval: 600,
                        userProperties: [
                            MQTTUserProperty(name: "k", value: "1"), MQTTUserProperty(name: "k", value: "2"),
                            MQTTUserProperty(name: "ünï", value: "çødé"),
                        ]
                    )
                    let payload: [UInt8] = [0x00, 0x01, 0xFF, 0x00]
                    try await sender.publish(to: "bin/one", payload: payload, qos: .atLeastOnce, properties: properties)
                    try await sender.publish(
                        to: "bin/two",
                        payload: [],
                        qos: .atLeastOnce,
                        properties: MQTTProperties(correlationData: [0xC0])
                    )
                    let received = try await collector.waitFor(count: 2)
                    try #require(received.count == 2)
                    #expect(received[0].topic == "bin/one")
                    #expect(received[0].payload == payload)
                    #expect(received[0].properties.correlationData == properties.correlationData)
                    #expect(received[0].properties.responseTopic == properties.responseTopic)
                    #expect(received[0].properties.contentType == properties.contentType)
                    #expect(received[0].properties.payloadFormatIndicator == 0)
                    #expect(received[0].properties.userProperties == properties.userProperties)
                    #expect((590...600).contains(received[0].properties.messageExpiryInterval ?? 0))
                    #expect(received[1].topic == "bin/two")
                    #expect(received[1].payload == [])
                    #expect(received[1].properties == MQTTProperties(correlationData: [0xC0]))
                }
            }
        }
    }

    @Test("a responder built on MosquittoClient answers mosquitto_rr with the correlation data copied")
    func answersMosquittoRR() async throws {
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("responder")
            let box = ClientBox()
            let failures = LockedValue<[String]>([])
            let handler: MosquittoClient.MessageHandler = { message in
                guard let responseTopic = message.properties.responseTopic, let client = box.client else { return }
                // The handler runs on the loop thread and must not wait: publish from a task.
                Task {
                    do {
                        try await client.publish(
                            to: responseTopic,
                            payload: Array("reply:".utf8) + message.payload,
                            qos: .atLeastOnce,
                            properties: MQTTProperties(
                                correlationData: message.properties.correlationData,
                                contentType: "application/json",
                                userProperties: [MQTTUserProperty(name: "status", value: "ok")]
                            )
                        )
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            let client = try MosquittoClient(
                configuration: testConfiguration(broker, clientID: id),
                logger: makeTestLogger(id),
                onMessage: handler
            )
            box.client = client
            try await client.connect()
            try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "svc/cmd")])

            let result = try await runProcess(
                "mosquitto_rr",
                [
                    "-h", broker.host, "-p", "\(broker.port)", "-q", "1", "-t", "svc/cmd", "-e", "svc/reply/t1",
                    "-D", "publish", "correlation-data", "req-77", "-m", "hello", "-W", "10",
                    "-F", "%t|%D|%C|%P|%p",
                ],
                timeout: .seconds(15)
            )
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.stdout == "svc/reply/t1|req-77|application/json|status:ok|reply:hello\n")
            #expect(failures.value.isEmpty)
            await client.disconnect()
        }
    }

    @Test("a reply published with properties arrives intact at mosquitto_sub")
    func replyPropertiesAsSeenByMosquittoSub() async throws {
        try await withMosquittoBroker { broker in
            let subscriberID = uniqueClientID("sub")
            async let subscriber = runProcess(
                "mosquitto_sub",
                [
                    "-h", broker.host, "-p", "\(broker.port)", "-V", "5", "-q", "1", "-i", subscriberID,
                    "-t", "ota/cancel/reply/#", "-C", "1", "-W", "15", "-F", "%t|%R|%D|%C|%E|%P|%p",
                ],
                timeout: .seconds(20)
            )
            #expect(try await broker.waitForLog { $0.contains("Received SUBSCRIBE from \(subscriberID)") })
            try await withTestClient(broker, "replier", onMessage: { _ in }) { client in
                try await client.publish(
                    to: "ota/cancel/reply/x",
                    payload: Array(#"{"status":"succeeded"}"#.utf8),
                    qos: .atLeastOnce,
                    properties: MQTTProperties(
                        responseTopic: "ota/cancel/ack",
                        correlationData: Array("corr-9".utf8),
                        contentType: "application/json",
                        messageExpiryInterval: 120,
                        userProperties: [MQTTUserProperty(name: "worker", value: "w1")]
                    )
                )
            }
            let result = try await subscriber
            #expect(result.exitCode == 0, "\(result)")
            let fields = result.stdout.trimmingCharacters(in: .newlines).split(
                separator: "|",
                omittingEmptySubsequences: false
            )
            try #require(fields.count == 7, "\(result)")
            #expect(fields[0] == "ota/cancel/reply/x")
            #expect(fields[1] == "ota/cancel/ack")
            #expect(fields[2] == "corr-9")
            #expect(fields[3] == "application/json")
            #expect((110...120).contains(Int(fields[4]) ?? -1))
            #expect(fields[5] == "worker:w1")
            #expect(fields[6] == #"{"status":"succeeded"}"#)
        }
    }

    @Test("an MQTT 3.1.1 client publishing with properties does not fail; the properties are simply not sent")
    func v311PublishWithPropertiesSucceeds() async throws {
        try await withMosquittoBroker { broker in
            let collector = MessageCollector()
            try await withTestClient(broker, "rx5", onMessage: collector.handler) { receiver in
                try await receiver.subscribe(to: [MQTTSubscribeInfo(topicFilter: "v3/topic")])
                let v3Collector = MessageCollector()
                try await withTestClient(broker, "tx3", version: .v3_1_1, onMessage: v3Collector.handler) { sender in
                    // The v5-only options must not make a 3.1.1 SUBSCRIBE fail either.
                    try await sender.subscribe(to: [MQTTSubscribeInfo(topicFilter: "v3/topic", noLocal: true)])
                    try await sender.publish(
                        to: "v3/topic",
                        payload: Array("from-3.1.1".utf8),
                        qos: .atLeastOnce,
                        properties: MQTTProperties(
                            responseTopic: "ignored",
                            correlationData: [1, 2, 3],
                            userProperties: [MQTTUserProperty(name: "a", value: "b")]
                        )
                    )
                    let received = try await collector.waitFor(count: 1)
                    #expect(received.map(\.payload) == [Array("from-3.1.1".utf8)])
                    #expect(received.first?.properties == MQTTProperties())
                    // The 3.1.1 client receives its own message too (No Local does not exist in 3.1.1).
                    let own = try await v3Collector.waitFor(count: 1)
                    #expect(own.map(\.payload) == [Array("from-3.1.1".utf8)])
                    #expect(own.first?.properties == MQTTProperties())
                }
            }
        }
    }

    @Test("the PUBACK of a QoS 1 message goes out only after the message handler returned")
    func pubackWaitsForTheHandler() async throws {
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("ack-after")
            let entered = LockedValue(false)
            let release = DispatchSemaphore(value: 0)
            let handler: MosquittoClient.MessageHandler = { _ in
                entered.withLock { $0 = true }
                // Stands in for the durable journal write; the timeout only guards against a hung test.
                _ = release.wait(timeout: .now() + 10)
            }
            try await withMosquittoClient(
                configuration: testConfiguration(broker, clientID: id),
                logger: makeTestLogger(id),
                onMessage: handler
            ) { client in
                try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "ack/cmd")])
                let published = try await runProcess(
                    "mosquitto_pub",
                    ["-h", broker.host, "-p", "\(broker.port)", "-q", "1", "-t", "ack/cmd", "-m", "journal-me"],
                    timeout: .seconds(10)
                )
                #expect(published.exitCode == 0, "\(published)")
                let deadline = ContinuousClock.now + .seconds(10)
                while !entered.value && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
                try #require(entered.value)
                // On loopback a PUBACK sent early would be in the broker log within milliseconds.
                try await Task.sleep(for: .milliseconds(300))
                #expect(!broker.logText.contains("Received PUBACK from \(id)"))
                release.signal()
                #expect(try await broker.waitForLog { $0.contains("Received PUBACK from \(id)") })
            }
        }
    }

    @Test(
        "a persistent session gets the messages published while the client was away",
        arguments: [
            MQTTProtocolVersion.v5, .v3_1_1,
        ]
    )
    func persistentSessionDeliversMissedMessages(version: MQTTProtocolVersion) async throws {
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("persist")
            let configuration = testConfiguration(broker, clientID: id, version: version)
            try await withMosquittoClient(configuration: configuration, logger: makeTestLogger(id), onMessage: { _ in })
            {
                try await $0.subscribe(to: [MQTTSubscribeInfo(topicFilter: "away/cmd")])
            }
            for index in 1...3 {
                let result = try await runProcess(
                    "mosquitto_pub",
                    ["-h", broker.host, "-p", "\(broker.port)", "-q", "1", "-t", "away/cmd", "-m", "missed-\(index)"],
                    timeout: .seconds(10)
                )
                #expect(result.exitCode == 0, "\(result)")
            }
            let collector = MessageCollector()
            let client = try MosquittoClient(
                configuration: configuration,
                logger: makeTestLogger(id),
                onMessage: collector.handler
            )
            let sessionPresent = try await client.connect()
            #expect(sessionPresent)
            let received = try await collector.waitFor(count: 3)
            #expect(
                received.map { String(decoding: $0.payload, as: UTF8.self) } == ["missed-1", "missed-2", "missed-3"]
            )
            #expect(received.allSatisfy { $0.qos == .atLeastOnce })
            await client.disconnect()
        }
    }

    @Test("after a broker restart without persistence the client reconnects and re-subscribes by itself")
    func reconnectsAndResubscribesAfterBrokerRestart() async throws {
        try await withMosquittoBroker(persistence: false) { broker in
            let id = uniqueClientID("restart")
            let collector = MessageCollector()
            let client = try MosquittoClient(
                configuration: testConfiguration(broker, clientID: id),
                logger: makeTestLogger(id),
                onMessage: collector.handler
            )
            let events = EventRecorder(client)
            try await client.connect()
            try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "restart/cmd")])

            await broker.stop()
            #expect(try await events.waitFor { $0.isLostConnection } != nil)
            #expect(!client.isConnected)
            try await broker.restart()
            #expect(try await events.waitFor { $0 == .connected(sessionPresent: false) } != nil)
            // The log file is shared by both broker runs: the second SUBSCRIBE is the automatic re-subscribe.
            #expect(try await broker.waitForLog { occurrences(of: "Received SUBSCRIBE from \(id)", in: $0) == 2 })

            let result = try await runProcess(
                "mosquitto_pub",
                ["-h", broker.host, "-p", "\(broker.port)", "-q", "1", "-t", "restart/cmd", "-m", "after-restart"],
                timeout: .seconds(10)
            )
            #expect(result.exitCode == 0, "\(result)")
            let received = try await collector.waitFor(count: 1)
            #expect(received.map(\.payload) == [Array("after-restart".utf8)])

            // The automatic reconnect must have sent the Session Expiry Interval again: otherwise the broker
            // would end this new session at the next disconnect and lose what is published meanwhile.
            await client.disconnect()
            let away = try await runProcess(
                "mosquitto_pub",
                ["-h", broker.host, "-p", "\(broker.port)", "-q", "1", "-t", "restart/cmd", "-m", "while-away"],
                timeout: .seconds(10)
            )
            #expect(away.exitCode == 0, "\(away)")
            #expect(try await client.connect())
            let all = try await collector.waitFor(count: 2)
            #expect(all.map(\.payload) == [Array("after-restart".utf8), Array("while-away".utf8)])
            await client.disconnect()
        }
    }

    @Test("a broker that starts refusing after a restart ends the loop: loopExited, and pending publishes fail")
    func refusalAfterRestartEndsTheLoop() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mosq-pw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let passwordFile = directory.appendingPathComponent("passwords").path
        let created = try await runProcess("mosquitto_passwd", ["-c", "-b", passwordFile, "alice", "s3cret"])
        try #require(created.exitCode == 0, "\(created)")

        let broker = try await MosquittoBroker.start()
        let id = uniqueClientID("locked-out")
        let client = try MosquittoClient(
            configuration: testConfiguration(broker, clientID: id),
            logger: makeTestLogger(id),
            onMessage: { _ in }
        )
        let events = EventRecorder(client)
        try await client.connect()
        await broker.stop()
        try await events.waitFor { $0.isLostConnection }
        let pending = Task { try await client.publish(to: "t", payload: [1], qos: .atLeastOnce) }
        // The publish must be waiting for its PUBACK before the broker comes back refusing (on a loaded machine
        // the task may start late, and would then find the loop already gone).
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(30)
        while client.waitingForAcknowledgements == 0 && clock.now < giveUp {
            try await clock.sleep(for: .milliseconds(10))
        }
        try #require(client.waitingForAcknowledgements == 1)

        try await broker.restart(extraConfig: ["allow_anonymous false", "password_file \(passwordFile)"])
        let refusal = MosquittoError(.connectionRefused(0x87))
        let exited = try await events.waitFor { $0 == .loopExited(refusal) }
        #expect(exited != nil)
        #expect(events.all.contains(.connectionRefused(refusal)))
        #expect(!client.isConnected)
        let outcome = await pending.result
        #expect(throws: refusal) { try outcome.get() }
        let after = await #expect(throws: MosquittoError.self) {
            try await client.publish(to: "t", payload: [2], qos: .atLeastOnce)
        }
        #expect(after?.code == .clientClosed)
        await client.disconnect()
        await broker.stop()
    }

    @Test("a client dropped while connected still disconnects cleanly and is freed")
    func droppingAConnectedClientDisconnects() async throws {
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("dropped")
            weak var weakClient: MosquittoClient?
            let events: MosquittoClient.Events
            do {
                let client = try MosquittoClient(
                    configuration: testConfiguration(broker, clientID: id),
                    logger: makeTestLogger(id),
                    onMessage: { _ in }
                )
                weakClient = client
                events = client.events
                try await client.connect()
            }
            #expect(weakClient == nil)
            #expect(try await broker.waitForLog { $0.contains("Client \(id) disconnected.") })
            // The event stream finishes once the loop thread has destroyed the handle.
            var seen: [MosquittoEvent] = []
            for await event in events { seen.append(event) }
            #expect(seen == [.connected(sessionPresent: false), .disconnected(nil)])
        }
    }

    @Test("with broker persistence the session survives a restart, and a QoS 1 publish waits through it")
    func publishWaitsForPubackAcrossBrokerRestart() async throws {
        try await withMosquittoBroker(persistence: true) { broker in
            let subscriberID = uniqueClientID("psub")
            let collector = MessageCollector()
            let subscriber = try MosquittoClient(
                configuration: testConfiguration(broker, clientID: subscriberID),
                logger: makeTestLogger(subscriberID),
                onMessage: collector.handler
            )
            let subscriberEvents = EventRecorder(subscriber)
            try await subscriber.connect()
            try await subscriber.subscribe(to: [MQTTSubscribeInfo(topicFilter: "durable/cmd")])

            let publisherID = uniqueClientID("ppub")
            let publisher = try MosquittoClient(
                configuration: testConfiguration(broker, clientID: publisherID),
                logger: makeTestLogger(publisherID),
                onMessage: { _ in }
            )
            let publisherEvents = EventRecorder(publisher)
            try await publisher.connect()

            await broker.stop()
            try await publisherEvents.waitFor { $0.isLostConnection }

            let finished = LockedValue(false)
            let publishing = Task {
                try await publisher.publish(to: "durable/cmd", payload: Array("queued".utf8), qos: .atLeastOnce)
                finished.withLock { $0 = true }
            }
            // With no broker there can be no PUBACK: the publish must still be waiting.
            try await Task.sleep(for: .milliseconds(300))
            #expect(finished.value == false)

            try await broker.restart()
            try await publishing.value
            #expect(finished.value)
            #expect(broker.logText.contains("Sending PUBACK to \(publisherID)"))
            #expect(try await subscriberEvents.waitFor { $0 == .connected(sessionPresent: true) } != nil)
            let received = try await collector.waitFor(count: 1)
            #expect(received.map(\.payload) == [Array("queued".utf8)])
            // The session came back from the persistence file: no second SUBSCRIBE was needed.
            #expect(occurrences(of: "Received SUBSCRIBE from \(subscriberID)", in: broker.logText) == 1)
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("2,000 concurrent QoS 1 publishes from several tasks are all acknowledged and all received")
    func manyConcurrentPublishes() async throws {
        // The broker's default offline/in-flight queue (1000) could drop messages of a slow subscriber; this test
        // is about the client, so give the broker room.
        try await withMosquittoBroker(extraConfig: ["max_queued_messages 10000"]) { broker in
            let collector = MessageCollector()
            try await withTestClient(broker, "many-rx", onMessage: collector.handler) { receiver in
                try await receiver.subscribe(to: [MQTTSubscribeInfo(topicFilter: "load/#")])
                try await withTestClient(broker, "many-tx", onMessage: { _ in }) { sender in
                    let tasks = 4
                    let perTask = 500
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for task in 0..<tasks {
                            group.addTask {
                                for index in 0..<perTask {
                                    try await sender.publish(
                                        to: "load/\(task)",
                                        payload: Array("\(task)-\(index)".utf8),
                                        qos: .atLeastOnce,
                                        properties: MQTTProperties(correlationData: Array("\(task)-\(index)".utf8))
                                    )
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    let received = try await collector.waitFor(count: tasks * perTask)
                    #expect(received.count == tasks * perTask)
                    let expected = Set((0..<tasks).flatMap { task in (0..<perTask).map { "\(task)-\($0)" } })
                    #expect(Set(received.map { String(decoding: $0.payload, as: UTF8.self) }) == expected)
                    #expect(received.allSatisfy { $0.properties.correlationData == $0.payload })
                }
            }
        }
    }

    @Test("disconnect is clean, idempotent, fails later operations, and the client can connect again")
    func disconnectIsCleanAndIdempotent() async throws {
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("bye")
            let client = try MosquittoClient(
                configuration: testConfiguration(broker, clientID: id),
                logger: makeTestLogger(id),
                onMessage: { _ in }
            )
            let events = EventRecorder(client)
            await client.disconnect()  // before connect: a no-op
            try await client.connect()
            await client.disconnect()
            await client.disconnect()
            #expect(!client.isConnected)
            #expect(try await broker.waitForLog { $0.contains("Client \(id) disconnected.") })
            #expect(!broker.logText.contains("Client \(id) closed its connection."))
            try await events.waitFor { $0 == .disconnected(nil) }
            #expect(events.count { $0 == .disconnected(nil) } == 1)

            let error = await #expect(throws: MosquittoError.self) {
                try await client.publish(to: "t", payload: [1], qos: .atLeastOnce)
            }
            #expect(error?.code == .clientClosed)

            let sessionPresent = try await client.connect()
            #expect(sessionPresent)  // same client id, session expiry one day
            #expect(client.isConnected)
            await client.disconnect()
        }
    }

    @Test("withMosquittoClient disconnects cleanly when the body throws")
    func scopedClientDisconnectsOnError() async throws {
        struct BodyFailed: Error {}
        try await withMosquittoBroker { broker in
            let id = uniqueClientID("scoped")
            await #expect(throws: BodyFailed.self) {
                try await withMosquittoClient(
                    configuration: testConfiguration(broker, clientID: id),
                    logger: makeTestLogger(id),
                    onMessage: { _ in }
                ) { client in
                    #expect(client.isConnected)
                    throw BodyFailed()
                }
            }
            let disconnected = try await broker.waitForLog { $0.contains("Client \(id) disconnected.") }
            #expect(disconnected)
        }
    }

    @Test(
        "a refused connection throws and reports connectionRefused and loopExited instead of hanging",
        arguments: [
            MQTTProtocolVersion.v5, .v3_1_1,
        ]
    )
    func refusedConnection(version: MQTTProtocolVersion) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mosq-pw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let passwordFile = directory.appendingPathComponent("passwords").path
        let created = try await runProcess("mosquitto_passwd", ["-c", "-b", passwordFile, "alice", "s3cret"])
        try #require(created.exitCode == 0, "\(created)")

        try await withMosquittoBroker(extraConfig: ["allow_anonymous false", "password_file \(passwordFile)"]) {
            broker in
            // MQTT 5 says "not authorized" (0x87); 3.1.1 uses return code 5 for the same.
            let expected: MosquittoError.Code = .connectionRefused(version == .v5 ? 0x87 : 5)
            for (username, password) in [(nil, nil), ("alice", "wrong")] as [(String?, String?)] {
                let id = uniqueClientID("refused")
                var configuration = testConfiguration(broker, clientID: id, version: version)
                configuration.username = username
                configuration.password = password
                let client = try MosquittoClient(
                    configuration: configuration,
                    logger: makeTestLogger(id),
                    onMessage: { _ in }
                )
                let events = EventRecorder(client)
                let error = await #expect(throws: MosquittoError.self) { try await client.connect() }
                #expect(error?.code == expected)
                #expect(error.map { !$0.description.contains("wrong") } ?? false)
                #expect(try await events.waitFor { $0 == .loopExited(MosquittoError(expected)) } != nil)
                #expect(events.all.contains(.connectionRefused(MosquittoError(expected))))
                #expect(!client.isConnected)
            }

            let id = uniqueClientID("accepted")
            var configuration = testConfiguration(broker, clientID: id, version: version)
            configuration.username = "alice"
            configuration.password = "s3cret"
            try await withMosquittoClient(configuration: configuration, logger: makeTestLogger(id), onMessage: { _ in })
            {
                #expect($0.isConnected)
            }
        }
    }

    @Test("connect() keeps retrying while nothing listens, and stops promptly when cancelled")
    func unreachableBrokerRetriesUntilCancelled() async throws {
        // Bound but not listening, for the whole test: a port that was only free a moment ago may meanwhile have
        // become another test's broker.
        let refusing = try RefusingLoopbackPort()
        let id = uniqueClientID("unreachable")
        let client = try MosquittoClient(
            configuration: MosquittoConfiguration(port: refusing.port, clientID: id, reconnect: fastReconnect),
            logger: makeTestLogger(id),
            onMessage: { _ in }
        )
        let connecting = Task { try await client.connect() }
        try await Task.sleep(for: .milliseconds(500))
        connecting.cancel()
        await #expect(throws: CancellationError.self) { try await connecting.value }
        #expect(!client.isConnected)
        await client.disconnect()  // the loop is already stopping or stopped: must return
        withExtendedLifetime(refusing) {}
    }

    @Test("a PUBACK with a failure reason code is an error; 0x10 'no matching subscribers' is success")
    func pubackFailureReasonIsAnError() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mosq-acl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let aclFile = directory.appendingPathComponent("acl").path
        try "topic readwrite allowed/#\n".write(toFile: aclFile, atomically: true, encoding: .utf8)

        try await withMosquittoBroker(extraConfig: ["acl_file \(aclFile)"]) { broker in
            let id = uniqueClientID("acl")
            try await withMosquittoClient(
                configuration: testConfiguration(broker, clientID: id),
                logger: makeTestLogger(id),
                onMessage: { _ in }
            ) { client in
                try await client.publish(to: "allowed/nobody-listens", payload: [1], qos: .atLeastOnce)
                #expect(broker.logText.contains("Sending PUBACK to \(id) (m1, rc16)"))
                let error = await #expect(throws: MosquittoError.self) {
                    try await client.publish(to: "denied/x", payload: [1], qos: .atLeastOnce)
                }
                #expect(error?.code == .reasonCode(0x87))
                // The client keeps working after a refused publish.
                try await client.publish(to: "allowed/again", payload: [2], qos: .atLeastOnce)
                try await client.publish(to: "allowed/qos0", payload: [3], qos: .atMostOnce)
                #expect(client.isConnected)
            }
        }
    }
}
