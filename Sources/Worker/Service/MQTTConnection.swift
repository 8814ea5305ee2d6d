// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Mosquitto
import Synchronization

/// The worker's MQTT connection, supervised: when libmosquitto's loop gives up for good (refused credentials,
/// DNS failure), the client is rebuilt and reconnected with backoff, or the worker stops when told to
/// (DESIGN §5, "a supervisor that notices when the loop thread gives up").
///
/// Replies are published through ``publish(_:)``, which always uses the current client.
final class MQTTConnection: Sendable {
    /// Whether to keep reconnecting after the loop gave up, and how patiently.
    struct Supervision: Sendable {
        /// Stop the worker (non-zero exit) instead of retrying. Default `false`.
        var exitOnFailure = false
        /// First delay before a new client is built. Default 1 s; doubles up to ``maximumDelay``.
        var initialDelay: Duration = .seconds(1)
        /// Longest delay between attempts. Default 60 s.
        var maximumDelay: Duration = .seconds(60)
        /// With ``exitOnFailure``: the longest time without a connection, at start or after losing it, before
        /// the worker gives up. Default 30 s.
        var connectTimeout: Duration = .seconds(30)
    }

    private struct State {
        var client: MosquittoClient?
        var connected = false
        var subscribed = false
        var stopping = false
        /// When the connection was lost, while it is not back.
        var lostSince: ContinuousClock.Instant?
        /// Connections established since start (a reconnect by libmosquitto or by a new client included).
        var connections = 0
    }

    private let configuration: MosquittoConfiguration
    private let subscription: MQTTSubscribeInfo
    private let supervision: Supervision
    private let logger: Logger
    private let state = Mutex(State())
    private let stopSignal: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation

    init(
        configuration: MosquittoConfiguration,
        subscription: MQTTSubscribeInfo,
        supervision: Supervision,
        logger: Logger
    ) {
        self.configuration = configuration
        self.subscription = subscription
        self.supervision = supervision
        self.logger = logger
        (stopSignal, stopContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Connected to the broker and subscribed to the command topic.
    var isUp: Bool { state.withLock { $0.connected && $0.subscribed } }

    /// Whether the connection is up now, and how many connections were established since start.
    var figures: (connected: Bool, connections: Int) { state.withLock { ($0.connected, $0.connections) } }

    /// Connects, subscribes, and keeps the connection until ``stop()``.
    ///
    /// - Throws: the error that ended the loop, when ``Supervision/exitOnFailure`` is set (or the very first
    ///   connection is refused with that option); `CancellationError` when cancelled.
    func run(onMessage: @escaping MosquittoClient.MessageHandler) async throws {
        var failures = 0
        while !state.withLock({ $0.stopping }) {
            let client = try MosquittoClient(configuration: configuration, logger: logger, onMessage: onMessage)
            // Known before it connects, so that stop() can end a connect that keeps retrying.
            let stopping = state.withLock { state -> Bool in
                state.client = client
                return state.stopping
            }
            if stopping { break }
            var failure: (any Error)?
            do {
                let sessionPresent = try await connect(client)
                try await client.subscribe(to: [subscription])
                state.withLock {
                    $0.connected = true
                    $0.subscribed = true
                    $0.connections += 1
                }
                failures = 0
                // Scripts and tests wait for this line.
                logger.notice(
                    "worker ready: MQTT connected and subscribed",
                    metadata: [
                        LogKey.mqttTopic: "\(subscription.topicFilter)",
                        LogKey.mqttSessionPresent: .stringConvertible(sessionPresent),
                    ]
                )
                failure = await watch(client)
            } catch is CancellationError {
                await client.disconnect()
                throw CancellationError()
            } catch {
                failure = error
            }
            state.withLock {
                $0.client = nil
                $0.connected = false
                $0.subscribed = false
                $0.lostSince = nil
            }
            await client.disconnect()
            guard var failure, !state.withLock({ $0.stopping }) else { return }
            if let mosquitto = failure as? MosquittoError {
                failure = WorkerError.mqtt(describe(mosquitto))
            }
            if supervision.exitOnFailure {
                logger.critical(
                    "MQTT connection failed for good; stopping as configured",
                    metadata: [LogKey.mqttError: .string(CommandLog.errorText(failure))]
                )
                throw failure
            }
            let base = min(
                supervision.maximumDelay.seconds,
                supervision.initialDelay.seconds * pow(2, Double(min(failures, 20)))
            )
            failures += 1
            // A reconnect attempt, not the end of the process: a warning (critical is for what stops the worker).
            logger.warning(
                "MQTT connection failed for good; building a new client",
                metadata: [
                    LogKey.mqttError: .string(CommandLog.errorText(failure)),
                    LogKey.mqttRetryInMilliseconds: .stringConvertible(Int64((base * 1000).rounded())),
                ]
            )
            try await Task.sleep(for: .seconds(base))
        }
    }

    /// `client.connect()`, bounded by ``Supervision/connectTimeout`` when the worker is to exit on failure: a
    /// broker that is down (nothing listens, no route) keeps libmosquitto retrying, which is no failure for good.
    private func connect(_ client: MosquittoClient) async throws -> Bool {
        guard supervision.exitOnFailure else { return try await client.connect() }
        let timeout = supervision.connectTimeout
        return try await withThrowingTaskGroup(of: Bool?.self) { group in
            group.addTask { try await client.connect() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let sessionPresent = first else {
                throw WorkerError.mqtt(
                    "could not connect to the MQTT broker at \(configuration.host):\(configuration.port) within "
                        + "\(Self.seconds(timeout)) (--connect-timeout)"
                        + (client.lastConnectAttemptFailure.map { "; the last attempt: " + describe($0) } ?? "")
                )
            }
            return sessionPresent
        }
    }

    /// A libmosquitto failure with the broker's address and the likely cause (``MQTTFailureHint``).
    private func describe(_ error: MosquittoError) -> String {
        MQTTFailureHint.describe(
            error,
            host: configuration.host,
            port: configuration.port,
            tls: configuration.tls != nil
        )
    }

    private static func seconds(_ duration: Duration) -> String {
        let value = duration.seconds
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }

    /// With ``Supervision/exitOnFailure``: returns an error once the connection has been lost for
    /// ``Supervision/connectTimeout`` (libmosquitto keeps reconnecting meanwhile); never returns otherwise.
    private func giveUpWhenLostTooLong() async -> (any Error)? {
        let timeout = supervision.connectTimeout
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                return nil
            }
            guard let since = state.withLock({ $0.lostSince }), ContinuousClock.now - since >= timeout else {
                continue
            }
            return WorkerError.mqtt(
                "the connection to the MQTT broker at \(configuration.host):\(configuration.port) was lost and not "
                    + "back within \(Self.seconds(timeout)) (--connect-timeout)"
            )
        }
        return nil
    }

    /// Follows the client's events until its loop gives up (returns the error) or ``stop()`` is called (nil).
    private func watch(_ client: MosquittoClient) async -> (any Error)? {
        await withTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                // Refusals and losses are logged by the client itself.
                for await event in client.events {
                    switch event {
                    case .connected(let sessionPresent):
                        // The first event repeats the connection `connect()` waited for (announced as "worker
                        // ready"); only one after a loss is a reconnection.
                        let reconnected = self.state.withLock { state -> Bool in
                            defer {
                                state.connected = true
                                state.lostSince = nil
                            }
                            guard !state.connected else { return false }
                            state.connections += 1
                            return true
                        }
                        if reconnected {
                            self.logger.info(
                                "MQTT reconnected",
                                metadata: [LogKey.mqttSessionPresent: .stringConvertible(sessionPresent)]
                            )
                        }
                    case .connectionRefused:
                        break
                    case .disconnected:
                        self.state.withLock {
                            $0.connected = false
                            $0.lostSince = $0.lostSince ?? .now
                        }
                    case .loopExited(let error):
                        return error
                    }
                }
                return nil
            }
            group.addTask {
                for await _ in self.stopSignal { break }
                return nil
            }
            if supervision.exitOnFailure {
                group.addTask { await self.giveUpWhenLostTooLong() }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Publishes a reply with QoS 1 and waits for the broker's acknowledgement; waits for a connection first
    /// (replies replayed at start-up are queued before the worker is connected).
    ///
    /// - Throws: when the connection is stopped, the client stopped first, or the task is cancelled (the reply
    ///   stays in the journal and is published again).
    func publish(_ message: OutgoingMessage) async throws {
        while true {
            let (client, stopping) = state.withLock { ($0.subscribed ? $0.client : nil, $0.stopping) }
            if stopping { throw WorkerError.mqtt("the MQTT connection is closing") }
            if let client {
                try await client.publish(
                    to: message.topic,
                    payload: message.payload,
                    qos: .atLeastOnce,
                    properties: message.properties
                )
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Disconnects cleanly and ends ``run(onMessage:)``.
    func stop() async {
        let client = state.withLock { state -> MosquittoClient? in
            state.stopping = true
            return state.client
        }
        stopContinuation.yield()
        stopContinuation.finish()
        await client?.disconnect()
    }
}
