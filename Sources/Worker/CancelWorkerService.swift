// SPDX-License-Identifier: Apache-2.0
public import Logging
public import Mosquitto
public import PlatformAPI
public import ServiceLifecycle
import Foundation
import JSONSchema
import Synchronization

/// The pipeline as a `Service` (DESIGN §1): MQTT in, intake and journal on the loop thread, execution from
/// the journal with bounded concurrency, replies out through the ``ReplyPublisher``, which marks each
/// acknowledged reply in the journal and records those that can never be delivered.
///
/// Nothing the broker has had acknowledged exists only in memory: a message is journaled inside the MQTT
/// callback (its PUBACK leaves after the callback returns), every platform call is recorded as it ends, and a
/// reply is stored before it is published. `run()` first replays what a previous run left: stored replies not
/// yet acknowledged are published again, accepted commands are executed (calls already answered are not
/// repeated).
///
/// A command holds its execution slot until its reply is stored, not until the broker has it: publishing runs
/// apart, with its own bound, so a reply that is slow or impossible to deliver never holds up other commands.
///
/// Graceful shutdown: no new command is started, the ones running get ``CancelWorkerConfiguration/drainTimeout``
/// to finish (then they are cancelled and stay in the journal), stored replies get
/// ``CancelWorkerConfiguration/flushTimeout`` to be acknowledged (those left stay in the journal), the MQTT
/// session is closed cleanly.
public final class CancelWorkerService: Service, Sendable {
    private let configuration: CancelWorkerConfiguration
    private let intake: CommandIntake
    private let executor: CommandExecutor
    private let journal: Journal
    private let connection: MQTTConnection
    private let logger: Logger
    private let metrics: WorkerMetrics
    private let publisher: ReplyPublisher
    private let state = Mutex(State())

    private struct State {
        var draining = false
        var wakePending = false
        /// New commands handed from the intake to the dispatcher in memory, oldest first: they are journaled
        /// already, and this saves reading them back. Bounded; beyond the bound the dispatcher reads the journal.
        var handoff: [JournaledCommand] = []
        /// How often the intake found the hand-off full (the dispatcher then reads new commands from the journal).
        var handoffOverflows = 0
        var fatal: (any Error)?
        var counters = CancelWorkerService.Counters()
        /// Commands executing now (the in-flight gauge).
        var executing = 0
    }

    /// What the worker has done since it started (for logs, tests and metrics).
    public struct Counters: Sendable, Hashable {
        public var received = 0
        public var accepted = 0
        public var started = 0
        public var duplicates = 0
        public var executed = 0
        public var retried = 0
        public var rejected = 0
        public var expired = 0
        public var deadLettered = 0
        public var repliesPublished = 0
        public var replayedReplies = 0
        public var publishFailures = 0
        /// Replies and dead letters that can never be published (each replaced by a notice on the dead-letter topic).
        public var undeliverable = 0
        /// Notices of undeliverable messages that could not be published either (logged and dropped).
        public var noticesDropped = 0
    }

    /// How the MQTT connection is supervised.
    public struct Supervision: Sendable {
        /// Exit (the service throws) when libmosquitto's loop gives up, instead of reconnecting. Default `false`.
        public var exitOnConnectionFailure: Bool
        public init(exitOnConnectionFailure: Bool = false) {
            self.exitOnConnectionFailure = exitOnConnectionFailure
        }
    }

    public init(
        configuration: CancelWorkerConfiguration,
        mqtt: MosquittoConfiguration,
        schema: CommandSchema,
        journal: Journal,
        platform: PlatformAPIClient,
        platformConfiguration: PlatformAPIConfiguration,
        supervision: Supervision = .init(),
        metrics: WorkerMetrics = WorkerMetrics(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.intake = CommandIntake(configuration: configuration, schema: schema)
        self.executor = CommandExecutor(
            platform: platform,
            platformConfiguration: platformConfiguration,
            metrics: metrics
        )
        self.metrics = metrics
        self.journal = journal
        self.connection = MQTTConnection(
            configuration: mqtt,
            subscription: MQTTSubscribeInfo(topicFilter: configuration.commandTopic, qos: .atLeastOnce),
            supervision: .init(exitOnFailure: supervision.exitOnConnectionFailure),
            logger: logger
        )
        self.logger = logger
        self.publisher = ReplyPublisher(
            connection: connection,
            journal: journal,
            deadLetterTopic: configuration.deadLetterTopic,
            metrics: metrics,
            logger: logger,
            journalFailed: { error in Self.fatalJournalError(error, logger: logger) }
        )
    }

    /// Ready: the journal is open, the MQTT connection is up and subscribed, and the worker is not shutting down.
    public var isReady: Bool { connection.isUp && !state.withLock { $0.draining } }

    /// A snapshot of the counters.
    public var counters: Counters {
        var counters = state.withLock { $0.counters }
        let published = publisher.counters
        counters.repliesPublished = published.published
        counters.publishFailures = published.publishFailures
        counters.undeliverable = published.undeliverable
        counters.noticesDropped = published.noticesDropped
        return counters
    }

    private enum DispatchEvent: Sendable {
        case wake
        case finished(Int64)
        case drainTimedOut
    }

    public func run() async throws {
        let (events, emit) = AsyncStream.makeStream(of: DispatchEvent.self)

        // What a previous run left: the publisher starts by reading the stored replies from the journal, the
        // dispatcher the accepted commands.
        let counts = try await journal.counts()
        let pending = counts["done", default: 0]
        state.withLock { $0.counters.replayedReplies = pending }
        logger.notice(
            "journal open",
            metadata: [
                "ota.journal": "\(journal.configuration.path ?? ":memory:")",
                "ota.replies-to-publish": "\(pending)",
                "ota.commands-to-run": "\(counts["accepted", default: 0])",
                "ota.duplicates-waiting": "\(counts["waiting", default: 0])",
            ]
        )
        let wake: @Sendable () -> Void = { [self] in
            // Coalesced: one pending wake-up is enough, however many messages arrive before the dispatcher looks.
            if self.state.withLock({ state in
                defer { state.wakePending = true }; return !state.wakePending
            }) {
                emit.yield(.wake)
            }
        }
        wake()

        let onMessage: MosquittoClient.MessageHandler = { [self] message in
            self.receive(message, wake: wake)
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await self.connection.run(onMessage: onMessage)
                } catch is CancellationError {
                } catch {
                    // The connection gave up and the worker was told to stop then: drain, then fail.
                    self.state.withLock { $0.fatal = error }
                    self.beginDrain(emit: emit)
                }
            }
            group.addTask { await self.pruneRegularly() }
            group.addTask {
                // Commands waiting for a retry become due without a message arriving.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    wake()
                }
            }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    self.logger.notice("shutting down: no new commands; draining those in flight")
                } catch {}
                self.beginDrain(emit: emit)
            }
            async let publishing: Void = publisher.run()
            await dispatch(events, emit: emit)
            // No command runs any more; the replies they produced are stored. Flush them, bounded.
            publisher.finish(within: configuration.flushTimeout)
            await publishing
            await connection.stop()
            group.cancelAll()
        }
        logger.notice("worker stopped", metadata: ["ota.counters": "\(counters)"])
        if let fatal = state.withLock({ $0.fatal }) { throw fatal }
    }

    private func beginDrain(emit: AsyncStream<DispatchEvent>.Continuation) {
        let first = state.withLock { state -> Bool in
            defer { state.draining = true }
            return !state.draining
        }
        guard first else { return }
        emit.yield(.wake)
        let timeout = configuration.drainTimeout
        Task {
            try? await Task.sleep(for: timeout)
            emit.yield(.drainTimedOut)
        }
    }

    // MARK: - Intake (MQTT loop thread)

    /// Decides, journals, and hands on one message. The PUBACK leaves only after this returns.
    private func receive(_ message: MQTTMessage, wake: () -> Void) {
        let decision = intake.decide(message)
        let action: JournalAction
        do {
            action = try journal.record(decision, at: Date())
        } catch {
            // Fail-stop: returning would let the PUBACK go for a message that is stored nowhere. Exiting here
            // means the broker keeps it and delivers it again when the worker is back.
            logger.critical(
                "the journal cannot record a message; stopping without acknowledging it",
                metadata: ["ota.error": "\(error)"]
            )
            fflush(nil)
            _exit(75)
        }
        let outcome: WorkerMetrics.MessageOutcome =
            switch (decision, action) {
            case (.deadLetter, _): .deadLetter
            case (.answer(let reply, _), _): reply.status == .expired ? .expired : .rejected
            case (.execute, .execute): .accepted
            case (.execute, .publish(let reply)):
                // A stored reply for a duplicate, or the refusal of a conflicting one (same key, other command).
                String(decoding: reply.message.payload.prefix(160), as: UTF8.self).contains(#""status":"rejected""#)
                    ? .rejected : .duplicate
            case (.execute, .waitForOriginal): .duplicate
            }
        metrics.message(outcome)
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
        switch action {
        case .execute(let id):
            if case .execute(let accepted) = decision {
                let bound = max(64, 4 * configuration.maxInFlight)
                state.withLock { state in
                    if state.handoff.count < bound {
                        state.handoff.append(JournaledCommand(id: id, accepted: accepted, batches: [:], retryRound: 0))
                    } else {
                        state.handoffOverflows += 1
                    }
                }
            }
            wake()
        case .publish(let reply): publisher.enqueue([reply])
        case .waitForOriginal: break
        }
        if case .deadLetter = decision {
            logger.warning(
                "message dead-lettered",
                metadata: ["ota.dead-letter-topic": "\(configuration.deadLetterTopic)"]
            )
        } else if case .answer(let reply, _) = decision {
            logger.notice(
                "command not executed",
                metadata: [
                    "ota.correlation-id": "\(reply.correlationId ?? "-")",
                    "ota.status": "\(reply.status.rawValue)",
                    "ota.errors": "\(reply.errors?.map(\.message) ?? [])",
                ]
            )
        }
    }

    // MARK: - Dispatch

    /// Runs journaled commands, at most `maxInFlight` at once, until a drain completes.
    ///
    /// A discarding task group: a plain one keeps every finished child until it is awaited, which this loop never
    /// does (it hears of ends through `events`), so it held some 7 KB per command for the worker's whole life.
    private func dispatch(_ events: AsyncStream<DispatchEvent>, emit: AsyncStream<DispatchEvent>.Continuation) async {
        await withDiscardingTaskGroup { group in
            var running = Set<Int64>()
            var cursor = Journal.Cursor()
            // -1: read the journal at start-up, for the commands a previous run left.
            var journalOverflowsRead = -1
            var lastRetryRead = ContinuousClock.now - .seconds(1)
            for await event in events {
                switch event {
                case .finished(let id): running.remove(id)
                case .wake: state.withLock { $0.wakePending = false }
                case .drainTimedOut:
                    if !running.isEmpty {
                        logger.warning(
                            "drain timeout: stopping the commands still running; they stay in the journal",
                            metadata: ["ota.running": "\(running.count)"]
                        )
                        group.cancelAll()
                    }
                }
                if state.withLock({ $0.draining }) {
                    if running.isEmpty { break }
                    continue
                }
                // 1. New commands handed over in memory. One that the journal already gave us (its id is not
                //    past the cursor) was started from there, or is running: it is not started twice.
                let capacity = configuration.maxInFlight - running.count
                var ready = state.withLock { state -> [JournaledCommand] in
                    let taken = Array(state.handoff.prefix(capacity))
                    state.handoff.removeFirst(taken.count)
                    return taken
                }.filter { $0.id > cursor.lastId && !running.contains($0.id) }
                do {
                    // 2. New commands from the journal: at start-up (left by a previous run), and whenever the
                    //    hand-off was full. Caught up once a read returns less than it could.
                    let overflows = state.withLock { $0.handoffOverflows }
                    if overflows != journalOverflowsRead && ready.count < capacity {
                        let fromJournal = try await journal.readyCommands(
                            after: &cursor,
                            excluding: running.union(ready.map(\.id)),
                            limit: capacity - ready.count,
                            now: Date(),
                            retries: false
                        )
                        if cursor.caughtUp { journalOverflowsRead = overflows }
                        ready += fromJournal
                    }
                    // 3. Commands whose retry time has come (the ticker wakes the dispatcher every second).
                    let clock = ContinuousClock.now
                    if clock - lastRetryRead >= .seconds(1) && ready.count < capacity {
                        lastRetryRead = clock
                        ready += try await journal.readyCommands(
                            after: &cursor,
                            excluding: running.union(ready.map(\.id)),
                            limit: capacity - ready.count,
                            now: Date(),
                            fresh: false
                        )
                    }
                } catch {
                    fatalJournalError(error)
                }
                for job in ready {
                    running.insert(job.id)
                    group.addTask {
                        await self.execute(job)
                        emit.yield(.finished(job.id))
                    }
                }
            }
        }
    }

    private func execute(_ job: JournaledCommand) async {
        let started = ContinuousClock.now
        metrics.commandsInFlight(
            state.withLock {
                $0.counters.started += 1
                $0.executing += 1
                return $0.executing
            }
        )
        defer {
            metrics.commandsInFlight(
                state.withLock {
                    $0.executing -= 1
                    return $0.executing
                }
            )
        }
        let journal = self.journal
        let result = await executor.execute(job) { batch, outcome in
            do {
                try await journal.recordCall(job.id, batch: batch, outcome: outcome)
            } catch {
                self.fatalJournalError(error)
            }
        }
        // Cancelled by a drain timeout or a forced stop: the command stays in the journal for the next run.
        if Task.isCancelled { return }
        do {
            switch result {
            case .retry(let date, let outcomes):
                try await journal.scheduleRetry(job.id, at: date, outcomes: outcomes)
                state.withLock { $0.counters.retried += 1 }
                metrics.retryScheduled()
                logger.info(
                    "command will be retried (transient platform errors)",
                    metadata: [
                        "ota.correlation-id": "\(job.accepted.correlationId ?? "-")",
                        "ota.retry-at": "\(RFC3339.string(from: date))",
                        "ota.round": "\(job.retryRound + 1)",
                    ]
                )
            case .reply(let reply):
                let stored = try await journal.complete(
                    job.id,
                    reply: reply.jsonValue.serializedBytes(),
                    route: job.accepted.route
                )
                // Counted once stored (the reply is then as good as sent), before the requester can see it.
                state.withLock {
                    $0.counters.executed += 1
                    if reply.status == .expired { $0.counters.expired += 1 }
                }
                metrics.completed(reply.status, duration: ContinuousClock.now - started)
                // The slot is free from here on: the publisher has its own.
                publisher.enqueue(stored)
                logger.info(
                    "command done",
                    metadata: [
                        "ota.correlation-id": "\(job.accepted.correlationId ?? "-")",
                        "ota.status": "\(reply.status.rawValue)",
                        "ota.devices": "\(job.accepted.command.deviceNames.count)",
                        "ota.calls": "\(reply.calls ?? 0)",
                        "ota.attempts": "\(reply.attempts ?? 0)",
                        "ota.reason": "\(job.accepted.command.reason ?? "-")",
                        "ota.requested-by": "\(job.accepted.command.requestedBy ?? "-")",
                        "ota.duration": "\(ContinuousClock.now - started)",
                    ]
                )
            }
        } catch {
            fatalJournalError(error)
        }
    }

    // MARK: - Housekeeping

    private func pruneRegularly() async {
        while !Task.isCancelled {
            do {
                let deleted = try await journal.prune(now: Date())
                if deleted > 0 { logger.debug("journal pruned", metadata: ["ota.deleted": "\(deleted)"]) }
            } catch {
                logger.error("journal pruning failed", metadata: ["ota.error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(60))
        }
    }

    private func fatalJournalError(_ error: any Error) -> Never {
        Self.fatalJournalError(error, logger: logger)
    }

    /// Fail-stop: the journal is the worker's memory; without it nothing can be promised.
    private static func fatalJournalError(_ error: any Error, logger: Logger) -> Never {
        logger.critical(
            "the journal failed; stopping (everything recorded so far is safe)",
            metadata: ["ota.error": "\(error)"]
        )
        fflush(nil)
        _exit(75)
    }
}
