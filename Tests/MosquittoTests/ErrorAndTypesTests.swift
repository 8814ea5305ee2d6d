// SPDX-License-Identifier: Apache-2.0
import Mosquitto
import TestSupport
import Testing

@Suite("MosquittoError, configuration and value types")
struct ErrorAndTypesTests {
    @Test("result codes are named after MOSQ_ERR_* and carry libmosquitto's text")
    func resultCodeNamesAndText() {
        #expect(MosquittoError.ResultCode.noConn.name == "MOSQ_ERR_NO_CONN")
        #expect(MosquittoError.ResultCode.connLost.name == "MOSQ_ERR_CONN_LOST")
        #expect(MosquittoError.ResultCode(rawValue: 999).name == "MOSQ_ERR_999")
        let error = MosquittoError(result: 7, detail: "publish to a/b")
        #expect(error.code == .library(.connLost))
        #expect(error.resultCode == .connLost)
        #expect(error.message == "The connection was lost. (publish to a/b)")
        #expect(error.shortDescription == "MOSQ_ERR_CONN_LOST")
        #expect(error.description.hasPrefix("MosquittoError.MOSQ_ERR_CONN_LOST: The connection was lost."))
        #expect(error.description.contains("ErrorAndTypesTests.swift"))
    }

    @Test("CONNACK refusals use mosquitto_connack_string (3.1.1) or mosquitto_reason_string (5)")
    func refusalText() {
        let v3 = MosquittoError(.connectionRefused(5))
        #expect(v3.message == "Connection Refused: not authorised.")
        #expect(v3.shortDescription == "CONNACK_0x05")
        #expect(v3.code.connackCode == 5)
        let v5 = MosquittoError(.connectionRefused(0x86))
        #expect(v5.message == "Bad User Name or Password")
        #expect(v5.shortDescription == "CONNACK_0x86")
        let puback = MosquittoError(.reasonCode(0x87), detail: "PUBACK")
        #expect(puback.message == "Not authorized (PUBACK)")
        #expect(puback.shortDescription == "REASON_0x87")
        #expect(puback.code.mqttReasonCode == 0x87)
    }

    @Test("equality and hashing compare the code only")
    func equalityIsByCode() {
        let first = MosquittoError(.library(.noConn), detail: "one")
        let second = MosquittoError(.library(.noConn), detail: "two")
        #expect(first == second)
        #expect(Set([first, second]).count == 1)
        #expect(first != MosquittoError(.library(.connLost)))
        #expect(MosquittoError(.connectionRefused(0x86)) != MosquittoError(.connectionRefused(0x87)))
        #expect(MosquittoError(.connectionRefused(0x87)) != MosquittoError(.reasonCode(0x87)))
        #expect(MosquittoError.clientClosed("a") == MosquittoError(.clientClosed))
    }

    @Test("short descriptions stay a small bounded set (usable as metric labels)")
    func shortDescriptionsAreBounded() {
        var labels = Set<String>()
        for raw in Int32(-4)...Int32(40) { labels.insert(MosquittoError(result: raw).shortDescription) }
        for code in UInt8.min...UInt8.max {
            labels.insert(MosquittoError(.connectionRefused(code)).shortDescription)
            labels.insert(MosquittoError(.reasonCode(code)).shortDescription)
        }
        #expect(labels.count <= 45 + 256 * 2)
        #expect(labels.allSatisfy { $0.count <= 32 && !$0.contains(" ") })
    }

    @Test("the configuration validates ranges and never shows the password")
    func configuration() throws {
        var configuration = MosquittoConfiguration(clientID: "worker-1", username: "svc", password: "hunter2-secret")
        try configuration.validate()
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 1883)
        #expect(configuration.protocolVersion == .v5)
        #expect(configuration.keepAlive == 30)
        #expect(configuration.cleanStart == false)
        #expect(configuration.sessionExpiryInterval == 86_400)
        #expect(configuration.receiveMaximum == 64)
        #expect(configuration.sendMaximum == 64)
        #expect(
            configuration.reconnect
                == MosquittoConfiguration.Reconnect(
                    initialDelay: .seconds(1),
                    maximumDelay: .seconds(30),
                    exponential: true
                )
        )
        #expect(configuration.tcpNoDelay)
        #expect(!String(describing: configuration).contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("hunter2"))

        for mutate in [
            { (c: inout MosquittoConfiguration) in c.keepAlive = 3 },
            { $0.port = 0 },
            { $0.clientID = "" },
            { $0.receiveMaximum = 0 },
            { $0.sendMaximum = 70_000 },
            { $0.username = nil },
            { $0.reconnect.initialDelay = .zero },
        ] {
            var invalid = configuration
            mutate(&invalid)
            let error = #expect(throws: MosquittoError.self) { try invalid.validate() }
            #expect(error?.code == .invalidConfiguration)
            #expect(error.map { !$0.description.contains("hunter2") } ?? false)
        }
        configuration.keepAlive = 0
        try configuration.validate()
    }

    @Test("an invalid configuration is rejected by the initialiser")
    func invalidConfigurationThrowsFromInit() {
        let error = #expect(throws: MosquittoError.self) {
            _ = try MosquittoClient(
                configuration: MosquittoConfiguration(clientID: "x", keepAlive: 1),
                logger: makeTestLogger("x"),
                onMessage: { _ in }
            )
        }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test(
        "protocol versions parse from configuration spellings",
        arguments: [
            ("5", MQTTProtocolVersion.v5), ("5.0", .v5), ("V5", .v5), ("3.1.1", .v3_1_1), ("311", .v3_1_1),
            ("4", .v3_1_1),
        ]
    )
    func protocolVersionParsing(text: String, version: MQTTProtocolVersion) {
        #expect(MQTTProtocolVersion(string: text) == version)
        #expect(MQTTProtocolVersion(string: version.description) == version)
    }

    @Test("unknown protocol version spellings are rejected", arguments: ["", "3", "3.1", "6", "five"])
    func protocolVersionRejects(text: String) {
        #expect(MQTTProtocolVersion(string: text) == nil)
    }

    @Test("publish and subscribe on a client that was never connected fail fast")
    func operationsBeforeConnect() async throws {
        let client = try MosquittoClient(
            configuration: MosquittoConfiguration(clientID: "never-connected"),
            logger: makeTestLogger("never"),
            onMessage: { _ in }
        )
        let publishError = await #expect(throws: MosquittoError.self) {
            try await client.publish(to: "a", payload: [], qos: .atLeastOnce)
        }
        #expect(publishError?.code == .clientClosed)
        let subscribeError = await #expect(throws: MosquittoError.self) {
            try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "a")])
        }
        #expect(subscribeError?.code == .clientClosed)
        let topicError = await #expect(throws: MosquittoError.self) {
            try await client.publish(to: "bad\u{0}topic", payload: [], qos: .atMostOnce)
        }
        #expect(topicError?.code == .invalidArgument)
        #expect(MosquittoClient.libraryVersion.hasPrefix("2."))
    }
}

/// The acknowledgement table's race-free protocol, driven directly.
@Suite("AckTable")
struct AckTableTests {
    /// The table under test, shareable with tasks.
    final class Table: Sendable {
        let mutex: LockedValue<AckTable>
        init(staleAfter: UInt64 = 32_768) { mutex = LockedValue(AckTable(staleAfter: staleAfter)) }
        func withLock<R>(_ body: (inout AckTable) -> R) -> R { mutex.withLock(body) }
    }

    /// Registers a waiter for `mid` inside a task and returns the task.
    private func waiter(
        _ table: Table,
        _ mid: Int32,
        kind: AckTable.Kind = .publish
    ) -> Task<AckOutcome, any Error> {
        Task {
            try await withCheckedThrowingContinuation { continuation in
                table.withLock { $0.wait(for: mid, kind: kind, waiter: continuation) }?.resume()
            }
        }
    }

    private func waitUntilSuspended(_ table: Table, count: Int) async throws {
        while table.withLock({ $0.waitingCount }) < count { try await Task.sleep(for: .milliseconds(1)) }
    }

    @Test("an ack that arrives before the waiter is kept for it")
    func earlyAck() async throws {
        let table = Table()
        #expect(table.withLock { $0.acknowledge(7, outcome: .published(reasonCode: 0x10)) } == nil)
        #expect(try await waiter(table, 7).value == .published(reasonCode: 0x10))
        #expect(table.withLock { $0.count } == 0)
    }

    @Test("a waiter that registers first is resumed by the ack")
    func lateAck() async throws {
        let table = Table()
        let task = waiter(table, 9)
        try await waitUntilSuspended(table, count: 1)
        table.withLock { $0.acknowledge(9, outcome: .published(reasonCode: 0)) }?.resume()
        #expect(try await task.value == .published(reasonCode: 0))
        #expect(table.withLock { $0.count } == 0)
    }

    @Test("cancellation before or during the wait ends it; the late ack is then dropped")
    func cancellation() async throws {
        let table = Table()
        #expect(table.withLock { $0.cancel(3) } == nil)
        await #expect(throws: CancellationError.self) { try await waiter(table, 3).value }
        #expect(table.withLock { $0.acknowledge(3, outcome: .published(reasonCode: 0)) } == nil)
        #expect(table.withLock { $0.count } == 0)

        let task = waiter(table, 4)
        try await waitUntilSuspended(table, count: 1)
        table.withLock { $0.cancel(4) }?.resume()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(table.withLock { $0.acknowledge(4, outcome: .published(reasonCode: 0)) } == nil)
        #expect(table.withLock { $0.count } == 0)
    }

    @Test("ignored ids drop their ack whichever comes first")
    func ignoredIDs() {
        let table = Table()
        table.withLock { $0.ignore(1) }
        #expect(table.withLock { $0.acknowledge(1, outcome: .published(reasonCode: 0)) } == nil)
        #expect(table.withLock { $0.acknowledge(2, outcome: .published(reasonCode: 0)) } == nil)
        table.withLock { $0.ignore(2) }
        #expect(table.withLock { $0.count } == 0)
    }

    @Test("failing SUBACK waits leaves publish waits alone")
    func failSubscribeOnly() async throws {
        let table = Table()
        let publish = waiter(table, 1, kind: .publish)
        let subscribe = waiter(table, 2, kind: .subscribe)
        try await waitUntilSuspended(table, count: 2)
        let lost = MosquittoError(.library(.connLost))
        let failed = table.withLock { $0.failAll(kind: .subscribe, with: lost) }
        #expect(failed.count == 1)
        failed.forEach { $0.resume() }
        await #expect(throws: lost) { try await subscribe.value }
        table.withLock { $0.acknowledge(1, outcome: .published(reasonCode: 0)) }?.resume()
        #expect(try await publish.value == .published(reasonCode: 0))
    }

    @Test("entries nobody claims are swept after half an id cycle, waiters never")
    func staleEntriesAreSwept() async throws {
        let table = Table(staleAfter: 100)
        let task = waiter(table, 60_000)
        try await waitUntilSuspended(table, count: 1)
        _ = table.withLock { $0.acknowledge(1, outcome: .published(reasonCode: 0)) }  // early ack nobody claims
        table.withLock { $0.ignore(2) }  // QoS 0 whose ack never comes
        #expect(table.withLock { $0.count } == 3)
        for _ in 0..<5000 {
            table.withLock { $0.ignore(3) }
            _ = table.withLock { $0.acknowledge(3, outcome: .published(reasonCode: 0)) }
        }
        #expect(table.withLock { $0.count } == 1)
        table.withLock { $0.acknowledge(60_000, outcome: .published(reasonCode: 0)) }?.resume()
        #expect(try await task.value == .published(reasonCode: 0))
    }
}
