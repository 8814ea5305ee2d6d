// SPDX-License-Identifier: Apache-2.0
public import Logging
public import Mosquitto
public import PlatformAPI
public import ServiceLifecycle
import Foundation
import JSONSchema
import Synchronization

/// The pipeline as a `Service` (DESIGN §1): MQTT in, intake and journal on the loop thread, the ``Dispatcher``
/// coalescing commands into platform calls under the quota, replies out through the ``ReplyPublisher``, which
/// marks each acknowledged reply in the journal and records those that can never be delivered.
///
/// Nothing the broker has had acknowledged exists only in memory: a message is journaled inside the MQTT
/// callback (its PUBACK leaves after the callback returns), every platform call is recorded when it ends, with
/// the segments it carried, and a reply is stored before it is published. `run()` first replays what a previous run
/// left: stored replies not yet acknowledged are published again, accepted commands are served (names already
/// carried by an answered call are not sent again).
///
/// Graceful shutdown: no new call is started, the ones running get ``CancelWorkerConfiguration/drainTimeout``
/// to finish (then they are cancelled and their commands stay in the journal), stored replies get
/// ``CancelWorkerConfiguration/flushTimeout`` to be acknowledged (those left stay in the journal), the MQTT
/// session is closed cleanly.
public final class CancelWorkerService: Service, Sendable {
    private let configuration: CancelWorkerConfiguration
    private let intake: CommandIntake
    private let journal: any CommandJournal
    private let connection: MQTTConnection
    private let logger: Logger
    private let metrics: WorkerMetrics
    private let publisher: ReplyPublisher
    private let dispatcher: Dispatcher
    private let state = Mutex(State())

    private struct State {
        var draining = false
        var fatal: (any Error)?
        var counters = CancelWorkerService.Counters()
    }

    /// What the worker has done since it started (for logs, tests and metrics).
    public struct Counters: Sendable, Hashable {
        public var received = 0
        public var accepted = 0
        /// Commands taken in by the dispatcher (new, or left by an earlier run).
        public var started = 0
        public var duplicates = 0
        /// Commands answered after execution.
        public var executed = 0
        /// Segments put back in their queue (transient failures, split failures, interrupted calls).
        public var retried = 0
        public var rejected = 0
        public var expired = 0
        public var deadLettered = 0
        /// Platform calls made.
        public var calls = 0
        public var repliesPublished = 0
        public var replayedReplies = 0
        public var publishFailures = 0
        /// Replies and dead letters that can never be published (each replaced by a notice on the dead-letter topic).
        public var undeliverable = 0
        /// Notices of undeliverable messages that could not be published either (logged and dropped).
        public var noticesDropped = 0

        /// The counters as log fields (`ota.counters.received`, ...), numbers in snake_case names.
        public var logMetadata: Logger.Metadata {
            let fields: [(String, Int)] = [
                ("received", received), ("accepted", accepted), ("started", started), ("duplicates", duplicates),
                ("executed", executed), ("retried", retried), ("rejected", rejected), ("expired", expired),
                ("dead_lettered", deadLettered), ("calls", calls), ("replies_published", repliesPublished),
                ("replayed_replies", replayedReplies), ("publish_failures", publishFailures),
                ("undeliverable", undeliverable), ("notices_dropped", noticesDropped),
            ]
            return Logger.Metadata(uniqueKeysWithValues: fields.map { ($0.0, .stringConvertible($0.1)) })
        }
    }

    /// How the MQTT connection is supervised.
    public struct Supervision: Sendable {
        /// Exit (the service throws ``WorkerError/mqtt(_:file:line:)``) when libmosquitto's loop gives up, or when
        /// no connection is up for ``connectTimeout``, instead of reconnecting. Default `false`.
        public var exitOnConnectionFailure: Bool
        /// With ``exitOnConnectionFailure``: how long the worker may be without a connection, at start or after
        /// losing it, before it gives up (a broker that is down keeps libmosquitto retrying, which is no failure
        /// "for good"). Default 30 s.
        public var connectTimeout: Duration
        public init(exitOnConnectionFailure: Bool = false, connectTimeout: Duration = .seconds(30)) {
            self.exitOnConnectionFailure = exitOnConnectionFailure
            self.connectTimeout = connectTimeout
        }
    }

    public init(
        configuration: CancelWorkerConfiguration,
        mqtt: MosquittoConfiguration,
        schema: CommandSchema,
        journal: any CommandJournal,
        platform: PlatformAPIClient,
        platformConfiguration: PlatformAPIConfiguration,
        supervision: Supervision = .init(),
        metrics: WorkerMetrics = WorkerMetrics(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.intake = CommandIntake(configuration: configuration, schema: schema)
        self.metrics = metrics
        self.journal = journal
        self.connection = MQTTConnection(
            configuration: mqtt,
            subscription: MQTTSubscribeInfo(topicFilter: configuration.commandTopic, qos: .atLeastOnce),
            supervision: .init(
                exitOnFailure: supervision.exitOnConnectionFailure,
                connectTimeout: supervision.connectTimeout
            ),
            logger: logger
        )
        self.logger = logger
        let journalFailed: @Sendable (any Error) -> Never = { error in Self.fatalJournalError(error, logger: logger) }
        self.publisher = ReplyPublisher(
            connection: connection,
            journal: journal,
            deadLetterTopic: configuration.deadLetterTopic,
            metrics: metrics,
            logger: logger,
            journalFailed: journalFailed
        )
        self.dispatcher = Dispatcher(
            configuration: .init(
                maxCallsInFlight: configuration.maxInFlight,
                maxPendingCommands: configuration.maxPendingCommands,
                scheduler: .init(
                    maxNamesPerCall: platformConfiguration.maxDeviceNamesPerCall,
                    coalesceWindow: configuration.coalesceWindow.seconds,
                    account: platformConfiguration.accessKeyId
                ),
                verify: configuration.verify,
                drainTimeout: configuration.drainTimeout
            ),
            platform: platform,
            platformConfiguration: platformConfiguration,
            journal: journal,
            publisher: publisher,
            metrics: metrics,
            logger: logger,
            journalFailed: journalFailed
        )
    }

    /// Ready: the journal is open, the MQTT connection is up and subscribed, and the worker is not shutting down.
    public var isReady: Bool { connection.isUp && !state.withLock { $0.draining } }

    /// What the metrics scrape reads when it is made (values that are a state, not a stream of events).
    public struct Operational: Sendable, Hashable {
        /// The MQTT connection is up.
        public var brokerConnected: Bool
        /// MQTT connections established since start; every one after the first is a reconnection.
        public var brokerConnections: Int
        /// Replies (and dead letters) published and waiting for the broker's acknowledgement.
        public var repliesAwaitingAcknowledgement: Int
        /// Replies read from the journal and queued for publication.
        public var repliesQueued: Int
    }

    /// The connection's and the publisher's state now.
    public var operational: Operational {
        let connection = connection.figures
        let outbox = publisher.outboxFigures
        return Operational(
            brokerConnected: connection.connected,
            brokerConnections: connection.connections,
            repliesAwaitingAcknowledgement: outbox.inFlight,
            repliesQueued: outbox.queued
        )
    }

    /// A snapshot of the counters.
    public var counters: Counters {
        var counters = state.withLock { $0.counters }
        let published = publisher.counters
        counters.repliesPublished = published.published
        counters.publishFailures = published.publishFailures
        counters.undeliverable = published.undeliverable
        counters.noticesDropped = published.noticesDropped
        let dispatched = dispatcher.counters
        counters.started = dispatched.started
        counters.executed = dispatched.executed
        counters.expired += dispatched.expired
        counters.retried = dispatched.requeued
        counters.calls = dispatched.calls
        return counters
    }

    public func run() async throws {
        // What a previous run left: the publisher starts by reading the stored replies from the journal, the
        // dispatcher the accepted commands.
        let summary = try await journal.summary()
        state.withLock { $0.counters.replayedReplies = summary.repliesToPublish }
        logger.notice(
            "journal open",
            metadata: [
                LogKey.journal: "\(journal.location)",
                LogKey.repliesToPublish: .stringConvertible(summary.repliesToPublish),
                LogKey.commandsToRun: .stringConvertible(summary.unanswered),
                LogKey.duplicatesWaiting: .stringConvertible(summary.waitingDuplicates),
            ]
        )
        let onMessage: MosquittoClient.MessageHandler = { [self] message in
            self.receive(message)
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await self.connection.run(onMessage: onMessage)
                } catch is CancellationError {
                } catch {
                    // The connection gave up and the worker was told to stop then: drain, then fail.
                    self.state.withLock { $0.fatal = error }
                    self.beginDrain()
                }
            }
            group.addTask { await self.pruneRegularly() }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    self.logger.notice("shutting down: no new calls; draining those in flight")
                } catch {}
                self.beginDrain()
            }
            async let publishing: Void = publisher.run()
            await dispatcher.run()
            // No call runs any more; the replies they produced are stored. Flush them, bounded.
            publisher.finish(within: configuration.flushTimeout)
            await publishing
            await connection.stop()
            group.cancelAll()
        }
        logger.notice("worker stopped", metadata: [LogKey.counters: .dictionary(counters.logMetadata)])
        if let fatal = state.withLock({ $0.fatal }) { throw fatal }
    }

    private func beginDrain() {
        state.withLock { $0.draining = true }
        dispatcher.drain()
    }

    // MARK: - Intake (MQTT loop thread)

    /// Decides, journals, and hands on one message. The PUBACK leaves only after this returns.
    private func receive(_ message: MQTTMessage) {
        let decision = intake.decide(message)
        let verdict: JournalVerdict
        do {
            verdict = try journal.record(decision, at: Date())
        } catch {
            // Fail-stop: returning would let the PUBACK go for a message that is stored nowhere. Exiting here
            // means the broker keeps it and delivers it again when the worker is back.
            logger.critical(
                "the journal cannot record a message; stopping without acknowledging it",
                metadata: [LogKey.error: "\(error)"]
            )
            fflush(nil)
            _exit(75)
        }
        let outcome: WorkerMetrics.MessageOutcome =
            switch verdict {
            case .execute: .accepted
            case .waitForOriginal: .duplicate
            case .publish(_, let why):
                switch why {
                case .rejected, .conflict: .rejected
                case .expired: .expired
                case .deadLetter: .deadLetter
                case .duplicate: .duplicate
                }
            }
        metrics.message(outcome)
        if case .publish(_, let why) = verdict {
            switch why {
            case .rejected, .conflict: metrics.answeredAtIntake(.rejected)
            case .expired: metrics.answeredAtIntake(.expired)
            case .deadLetter, .duplicate: break
            }
        }
        state.withLock { state in
            state.counters.received += 1
            switch outcome {
            case .deadLetter: state.counters.deadLettered += 1
            case .expired: state.counters.expired += 1
            case .rejected: state.counters.rejected += 1
            case .accepted: state.counters.accepted += 1
            case .duplicate: state.counters.duplicates += 1
            }
        }
        switch verdict {
        case .execute(let id):
            if case .execute(let accepted) = decision { dispatcher.submit(id, accepted) }
        case .publish(let reply, _): publisher.enqueue([reply])
        case .waitForOriginal: break
        }
        // An accepted command's line is `debug`: not built at all in the usual storm at `info`.
        let quiet = if case .execute = verdict { logger.logLevel > .debug } else { false }
        if !quiet { logger.log(CommandLog.intake(decision, verdict: verdict, message: message)) }
    }

    // MARK: - Housekeeping

    private func pruneRegularly() async {
        while !Task.isCancelled {
            do {
                let deleted = try await journal.prune(now: Date())
                if deleted > 0 {
                    logger.debug("journal pruned", metadata: [LogKey.deleted: .stringConvertible(deleted)])
                }
            } catch {
                logger.error("journal pruning failed", metadata: [LogKey.error: "\(error)"])
            }
            try? await Task.sleep(for: .seconds(60))
        }
    }

    /// Fail-stop: the journal is the worker's memory; without it nothing can be promised.
    private static func fatalJournalError(_ error: any Error, logger: Logger) -> Never {
        logger.critical(
            "the journal failed; stopping (everything recorded so far is safe)",
            metadata: [LogKey.error: "\(error)"]
        )
        fflush(nil)
        _exit(75)
    }
}
