// SPDX-License-Identifier: Apache-2.0
public import Logging
public import Mosquitto
public import PlatformAPI
public import ServiceLifecycle
import Foundation
import JSONSchema
import Synchronization

/// The pipeline as a `Service`: MQTT in, intake on the loop thread, execution with bounded concurrency,
/// replies out (DESIGN §1).
///
/// `run()` owns everything: it connects, subscribes, processes until graceful shutdown, drains what is in
/// flight (bounded by ``CancelWorkerConfiguration/drainTimeout``) and disconnects cleanly.
public final class CancelWorkerService: Service, Sendable {
    private let configuration: CancelWorkerConfiguration
    private let mqttConfiguration: MosquittoConfiguration
    private let intake: CommandIntake
    private let executor: CommandExecutor
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var ready = false
        /// Messages decided on the loop thread and not yet answered.
        var pending = 0
        var counters = CancelWorkerService.Counters()
        var fatalError: MosquittoError?
        var draining = false
    }

    /// What the worker has done since it started (for logs, tests and, later, metrics).
    public struct Counters: Sendable, Hashable {
        public var received = 0
        public var executed = 0
        public var rejected = 0
        public var expired = 0
        public var deadLettered = 0
        public var repliesPublished = 0
        public var publishFailures = 0
    }

    public init(
        configuration: CancelWorkerConfiguration,
        mqtt: MosquittoConfiguration,
        schema: CommandSchema,
        platform: PlatformAPIClient,
        platformConfiguration: PlatformAPIConfiguration,
        logger: Logger
    ) {
        self.configuration = configuration
        self.mqttConfiguration = mqtt
        self.intake = CommandIntake(configuration: configuration, schema: schema)
        self.executor = CommandExecutor(platform: platform, platformConfiguration: platformConfiguration)
        self.logger = logger
    }

    /// Connected, subscribed and processing.
    public var isReady: Bool { state.withLock { $0.ready } }

    /// A snapshot of the counters.
    public var counters: Counters { state.withLock { $0.counters } }

    public func run() async throws {
        let (decisions, continuation) = AsyncStream.makeStream(of: IntakeDecision.self, bufferingPolicy: .unbounded)
        let intake = self.intake
        let logger = self.logger
        let client = try MosquittoClient(configuration: mqttConfiguration, logger: logger) { [self] message in
            // On the loop thread: the PUBACK leaves only after this returns (DESIGN §1).
            let decision = intake.decide(message)
            self.state.withLock {
                $0.pending += 1
                $0.counters.received += 1
            }
            continuation.yield(decision)
        }

        let sessionPresent = try await client.connect()
        _ = try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: configuration.commandTopic, qos: .atLeastOnce)])
        state.withLock { $0.ready = true }
        logger.notice(
            "worker ready",
            metadata: [
                "ota.command-topic": "\(configuration.commandTopic)",
                "mqtt.session-present": "\(sessionPresent)",
            ]
        )

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Supervision: when libmosquitto's loop gives up for good, stop like a graceful shutdown.
                if let error = await self.watchEvents(of: client) {
                    self.state.withLock { $0.fatalError = error }
                    await self.drain(client: client, continuation: continuation)
                }
            }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    await self.drain(client: client, continuation: continuation)
                } catch {
                    continuation.finish()  // cancelled: stop at once
                }
            }
            await self.process(decisions, client: client)
            group.cancelAll()
        }
        state.withLock { $0.ready = false }
        await client.disconnect()
        logger.info("worker stopped", metadata: ["ota.counters": "\(counters)"])
        if let fatal = state.withLock({ $0.fatalError }) {
            throw WorkerError.mqtt("the MQTT network loop gave up: \(fatal)")
        }
    }

    /// Processes decisions with at most `maxInFlight` at once, until the stream ends.
    private func process(_ decisions: AsyncStream<IntakeDecision>, client: MosquittoClient) async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await decision in decisions {
                if running >= configuration.maxInFlight {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.handle(decision, client: client) }
                running += 1
            }
        }
    }

    /// Graceful shutdown: wait until nothing is pending (bounded), then stop the MQTT loop and end the stream.
    private func drain(client: MosquittoClient, continuation: AsyncStream<IntakeDecision>.Continuation) async {
        let alreadyDraining = state.withLock { state in
            defer { state.draining = true }
            state.ready = false
            return state.draining
        }
        if alreadyDraining { return }
        logger.info("shutting down: draining in-flight commands", metadata: ["ota.pending": "\(state.withLock { $0.pending })"])
        let clock = ContinuousClock()
        let giveUp = clock.now + configuration.drainTimeout
        while state.withLock({ $0.pending }) > 0 && clock.now < giveUp {
            try? await clock.sleep(for: .milliseconds(20))
        }
        await client.disconnect()
        let left = state.withLock { $0.pending }
        if left > 0 {
            logger.error(
                "shutdown left commands unanswered (drain timeout reached)",
                metadata: ["ota.unanswered": "\(left)"]
            )
        }
        continuation.finish()
    }

    private func handle(_ decision: IntakeDecision, client: MosquittoClient) async {
        defer { state.withLock { $0.pending -= 1 } }
        switch decision {
        case .execute(let accepted):
            let started = ContinuousClock.now
            let reply = await executor.execute(accepted)
            state.withLock {
                $0.counters.executed += 1
                if reply.status == .expired { $0.counters.expired += 1 }
            }
            logger.info(
                "command done",
                metadata: [
                    "ota.correlation-id": "\(accepted.correlationId ?? "-")",
                    "ota.status": "\(reply.status.rawValue)",
                    "ota.devices": "\(accepted.command.deviceNames.count)",
                    "ota.calls": "\(reply.calls ?? 0)",
                    "ota.attempts": "\(reply.attempts ?? 0)",
                    "ota.duration": "\(ContinuousClock.now - started)",
                ]
            )
            await publish(reply, on: accepted.route, client: client)
        case .answer(let reply, let route):
            state.withLock {
                if reply.status == .expired { $0.counters.expired += 1 } else { $0.counters.rejected += 1 }
            }
            logger.notice(
                "command not executed",
                metadata: [
                    "ota.correlation-id": "\(reply.correlationId ?? "-")",
                    "ota.status": "\(reply.status.rawValue)",
                    "ota.errors": "\(reply.errors?.map(\.message) ?? [])",
                ]
            )
            await publish(reply, on: route, client: client)
        case .deadLetter(let message):
            state.withLock { $0.counters.deadLettered += 1 }
            logger.warning("message dead-lettered", metadata: ["ota.dead-letter-topic": "\(message.topic)"])
            await publish(message, client: client)
        }
    }

    private func publish(_ reply: CancelReply, on route: ReplyRoute, client: MosquittoClient) async {
        await publish(
            OutgoingMessage(topic: route.topic, payload: reply.jsonValue.serializedBytes(), properties: route.replyProperties),
            client: client
        )
    }

    private func publish(_ message: OutgoingMessage, client: MosquittoClient) async {
        do {
            try await client.publish(to: message.topic, payload: message.payload, qos: .atLeastOnce, properties: message.properties)
            state.withLock { $0.counters.repliesPublished += 1 }
        } catch {
            state.withLock { $0.counters.publishFailures += 1 }
            logger.error(
                "reply could not be published",
                metadata: ["ota.topic": "\(message.topic)", "mqtt.error": "\(error)"]
            )
        }
    }

    /// Logs connection events; returns the error when the network loop has given up for good.
    private func watchEvents(of client: MosquittoClient) async -> MosquittoError? {
        for await event in client.events {
            switch event {
            case .connected(let sessionPresent):
                logger.info("MQTT connected", metadata: ["mqtt.session-present": "\(sessionPresent)"])
            case .connectionRefused(let error):
                logger.error("MQTT connection refused by the broker", metadata: ["mqtt.error": "\(error)"])
            case .disconnected(let error):
                if let error {
                    logger.warning("MQTT connection lost; reconnecting", metadata: ["mqtt.error": "\(error)"])
                }
            case .loopExited(let error):
                logger.critical("MQTT network loop gave up; stopping", metadata: ["mqtt.error": "\(error)"])
                return error
            }
        }
        return nil
    }
}
