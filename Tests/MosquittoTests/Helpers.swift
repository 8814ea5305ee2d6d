// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Mosquitto
import TestSupport

/// A logger for tests: silent unless `MOSQUITTO_TEST_LOG=trace|debug|info` is set, then to standard error.
func makeTestLogger(_ label: String) -> Logger {
    guard let level = ProcessInfo.processInfo.environment["MOSQUITTO_TEST_LOG"].flatMap(Logger.Level.init(rawValue:))
    else {
        return Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
    }
    var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = level
    return logger
}

/// A unique client id per test run, so parallel tests never share a session.
func uniqueClientID(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8))"
}

/// A fast reconnect policy so broker restarts do not slow the suite down.
let fastReconnect = MosquittoConfiguration.Reconnect(
    initialDelay: .milliseconds(50),
    maximumDelay: .milliseconds(400),
    exponential: true
)

/// A configuration for the test broker.
func testConfiguration(
    _ broker: MosquittoBroker,
    clientID: String,
    version: MQTTProtocolVersion = .v5
) -> MosquittoConfiguration {
    MosquittoConfiguration(
        host: broker.host,
        port: broker.port,
        clientID: clientID,
        protocolVersion: version,
        reconnect: fastReconnect
    )
}

/// Runs `body` with a connected client of the test broker under a fresh client id starting with `prefix`
/// (``withMosquittoClient(configuration:logger:onMessage:_:)`` with the test configuration and logger).
@discardableResult
func withTestClient<R: Sendable>(
    _ broker: MosquittoBroker,
    _ prefix: String,
    version: MQTTProtocolVersion = .v5,
    onMessage: @escaping MosquittoClient.MessageHandler,
    _ body: (MosquittoClient) async throws -> R
) async throws -> R {
    let id = uniqueClientID(prefix)
    return try await withMosquittoClient(
        configuration: testConfiguration(broker, clientID: id, version: version),
        logger: makeTestLogger(id),
        onMessage: onMessage,
        body
    )
}

/// Collects what the message handler receives (the handler runs on the loop thread).
final class MessageCollector: Sendable {
    private let messages = LockedValue<[MQTTMessage]>([])

    var handler: MosquittoClient.MessageHandler {
        { [self] message in messages.withLock { $0.append(message) } }
    }

    var all: [MQTTMessage] { messages.withLock { $0 } }

    /// Waits until at least `count` messages arrived; the timeout is only a hang guard.
    func waitFor(count: Int, timeout: Duration = .seconds(20)) async throws -> [MQTTMessage] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = all
            if current.count >= count { return current }
            try await Task.sleep(for: .milliseconds(10))
        }
        return all
    }
}

/// Collects events from a client's unicast event stream in the background.
final class EventRecorder: Sendable {
    private final class Storage: Sendable {
        let events = LockedValue<[MosquittoEvent]>([])
    }

    private let storage = Storage()
    private let reader: Task<Void, Never>

    init(_ client: MosquittoClient) {
        let stream = client.events
        let storage = storage
        reader = Task {
            for await event in stream {
                storage.events.withLock { $0.append(event) }
            }
        }
    }

    deinit {
        reader.cancel()
    }

    var all: [MosquittoEvent] { storage.events.withLock { $0 } }

    /// Waits until an event matching `predicate` has been recorded; the timeout is only a hang guard.
    @discardableResult
    func waitFor(
        timeout: Duration = .seconds(20),
        _ predicate: (MosquittoEvent) -> Bool
    ) async throws -> MosquittoEvent? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let match = all.first(where: predicate) { return match }
            try await Task.sleep(for: .milliseconds(10))
        }
        return all.first(where: predicate)
    }

    /// Counts recorded events matching `predicate`.
    func count(_ predicate: (MosquittoEvent) -> Bool) -> Int { all.filter(predicate).count }
}

extension MosquittoEvent {
    var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }

    var isLostConnection: Bool {
        if case .disconnected(.some) = self { return true }
        return false
    }
}

/// Holds a client so a message handler created before the client can reach it.
final class ClientBox: Sendable {
    private let stored = LockedValue<MosquittoClient?>(nil)
    var client: MosquittoClient? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}

/// Counts non-overlapping occurrences of `needle` in `haystack`.
func occurrences(of needle: String, in haystack: String) -> Int {
    haystack.components(separatedBy: needle).count - 1
}
