// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import Synchronization

/// Publishes stored replies, dead letters and notices, and records what became of each: the I/O half of
/// ``ReplyOutbox``.
///
/// It runs apart from command execution: a command's slot is free once its reply is stored, and however long a
/// publication takes, it holds only one of the publisher's own slots. A publication that fails because of the
/// connection is tried again until it goes out (or the worker stops: the reply stays in the journal for the next
/// start). One that fails because of the message itself (see ``DeliveryFailure``) is tried no more: the journal
/// records it undeliverable with the reason, and a small ``UndeliverableNotice`` goes to the dead-letter topic in
/// its place; a notice that cannot be delivered either is logged and dropped. So nothing one message does can
/// stop the replies of others.
///
/// Acknowledged replies are marked in the journal in batches (one transaction for many; a crash in between only
/// means those replies are published once more).
final class ReplyPublisher: Sendable {
    struct Configuration: Sendable {
        /// The window of replies in memory. Default ``ReplyOutbox/Configuration/init(maxConcurrent:queueLimit:)``.
        var outbox = ReplyOutbox.Configuration()
        /// First wait before a publication that failed with the connection is tried again; doubles up to
        /// ``maximumRetryDelay``. Default 50 ms.
        var initialRetryDelay: Duration = .milliseconds(50)
        /// Longest wait between attempts of one publication. Default 5 s.
        var maximumRetryDelay: Duration = .seconds(5)
    }

    /// What the publisher has done since it started.
    struct Counters: Sendable, Hashable {
        var published = 0
        var publishFailures = 0
        var undeliverable = 0
        var noticesDropped = 0
    }

    private struct State {
        var outbox: ReplyOutbox
        /// Acknowledged by the broker, not yet marked in the journal.
        var acknowledged: [Int64] = []
        var counters = Counters()
        var finishing = false
        var flushExpired = false
    }

    private let configuration: Configuration
    private let connection: MQTTConnection
    private let journal: any CommandJournal
    private let deadLetterTopic: String
    private let metrics: WorkerMetrics
    private let logger: Logger
    private let journalFailed: @Sendable (any Error) -> Never
    private let state: Mutex<State>
    private let wakeups: AsyncStream<Void>
    private let wakeup: AsyncStream<Void>.Continuation
    private let acknowledgements: AsyncStream<Void>
    private let acknowledgementSignal: AsyncStream<Void>.Continuation

    /// - Parameter journalFailed: called when the journal cannot record an outcome (the worker stops).
    init(
        configuration: Configuration = Configuration(),
        connection: MQTTConnection,
        journal: any CommandJournal,
        deadLetterTopic: String,
        metrics: WorkerMetrics,
        logger: Logger,
        journalFailed: @escaping @Sendable (any Error) -> Never
    ) {
        self.configuration = configuration
        self.connection = connection
        self.journal = journal
        self.deadLetterTopic = deadLetterTopic
        self.metrics = metrics
        self.logger = logger
        self.journalFailed = journalFailed
        self.state = Mutex(State(outbox: ReplyOutbox(configuration: configuration.outbox)))
        (wakeups, wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (acknowledgements, acknowledgementSignal) = AsyncStream.makeStream(
            of: Void.self,
            bufferingPolicy: .bufferingNewest(1)
        )
    }

    /// A snapshot of the counters.
    var counters: Counters { state.withLock { $0.counters } }

    /// Hands over stored replies to publish. Never waits: safe on the MQTT loop thread.
    /// Replies published and not yet acknowledged, and replies queued for publication.
    var outboxFigures: (inFlight: Int, queued: Int) { state.withLock { ($0.outbox.inFlight, $0.outbox.queued) } }

    func enqueue(_ replies: [PendingReply]) {
        guard !replies.isEmpty else { return }
        state.withLock { $0.outbox.enqueue(replies) }
        wakeup.yield()
    }

    /// Publishes until ``finish(within:)`` has been called and everything handed over is done, or the flush time
    /// has run out (then the publications still under way are cancelled: their replies stay in the journal).
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in self.acknowledgements {
                    try? await Task.sleep(for: .milliseconds(5))
                    await self.markAcknowledged()
                }
            }
            wakeup.yield()
            for await _ in wakeups {
                let (actions, done) = state.withLock { state in
                    (state.outbox.nextActions(), state.flushExpired || (state.finishing && state.outbox.isIdle))
                }
                for action in actions {
                    switch action {
                    case .publish(let reply):
                        group.addTask {
                            await self.deliver(reply)
                            self.wakeup.yield()
                        }
                    case .readJournal(let excluding, let limit):
                        group.addTask {
                            await self.read(excluding: excluding, limit: limit)
                            self.wakeup.yield()
                        }
                    }
                }
                if done { break }
            }
            let (expired, left) = state.withLock { ($0.flushExpired, $0.outbox.queued + $0.outbox.inFlight) }
            if expired && left > 0 {
                logger.warning(
                    "shutdown: replies not yet acknowledged stay in the journal for the next start",
                    metadata: [LogKey.repliesLeft: .stringConvertible(left)]
                )
            }
            group.cancelAll()
        }
        await markAcknowledged()
    }

    /// No more journal reads; ``run()`` ends once what is queued has been published, or after `timeout`.
    func finish(within timeout: Duration) {
        state.withLock {
            $0.finishing = true
            $0.outbox.close()
        }
        wakeup.yield()
        Task {
            try? await Task.sleep(for: timeout)
            state.withLock { $0.flushExpired = true }
            wakeup.yield()
        }
    }

    // MARK: - One publication

    private func deliver(_ reply: PendingReply) async {
        var delay = configuration.initialRetryDelay
        var refusals = 0
        while true {
            do {
                try await connection.publish(reply.message)
                state.withLock {
                    $0.acknowledged.append(reply.id)
                    $0.counters.published += 1
                    $0.outbox.finished(reply.id)
                }
                metrics.replyPublished()
                acknowledgementSignal.yield()
                return
            } catch {
                // A flush that ran out of time: the reply stays stored and goes out at the next start.
                if Task.isCancelled { return }
                let reason: String?
                switch DeliveryFailure(error) {
                case .message(let why):
                    reason = why
                case .refused(let why):
                    refusals += 1
                    reason = refusals >= DeliveryFailure.maximumRefusals ? why : nil
                case .connection:
                    reason = nil
                }
                if let reason {
                    await undeliverable(reply, reason: reason)
                    return
                }
                state.withLock { $0.counters.publishFailures += 1 }
                metrics.replyPublishFailed()
                if state.withLock({ $0.finishing }) && !connection.isUp {
                    // Stopping without a connection: the reply stays stored for the next start.
                    state.withLock { $0.outbox.finished(reply.id) }
                    return
                }
                // The connection's trouble is logged by the connection itself; this is detail.
                if logger.logLevel <= .debug {
                    logger.debug(
                        "reply not acknowledged yet; trying again",
                        metadata: [
                            LogKey.correlationId: Self.correlation(of: reply),
                            LogKey.entry: .stringConvertible(reply.id),
                            LogKey.mqttError: .string(CommandLog.errorText(error)),
                            LogKey.retryInMilliseconds: .stringConvertible(CommandLog.milliseconds(delay)),
                        ]
                    )
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, configuration.maximumRetryDelay)
            }
        }
    }

    /// Records a message that can never be published, and hands over the notice that takes its place.
    private func undeliverable(_ reply: PendingReply, reason: String) async {
        let notice =
            reply.kind == .notice
            ? nil : UndeliverableNotice(undelivered: reply, reason: reason, at: Date()).outgoing(topic: deadLetterTopic)
        let stored: PendingReply?
        do {
            stored = try await journal.markUndeliverable(reply.id, reason: reason, notice: notice)
        } catch {
            journalFailed(error)
        }
        state.withLock {
            $0.outbox.finished(reply.id)
            $0.outbox.marked([reply.id])
            if reply.kind == .notice {
                $0.counters.noticesDropped += 1
            } else {
                $0.counters.undeliverable += 1
            }
        }
        metrics.replyUndeliverable(reply.kind)
        if reply.kind == .notice {
            logger.error(
                "a notice of an undeliverable message is undeliverable too; dropped (the journal keeps the reason)",
                metadata: [
                    LogKey.correlationId: Self.correlation(of: reply), LogKey.entry: .stringConvertible(reply.id),
                    LogKey.deadLetterTopic: "\(deadLetterTopic)", LogKey.error: "\(reason)",
                ]
            )
        } else {
            logger.error(
                "\(reply.kind == .reply ? "reply" : "dead letter") undeliverable: recorded, never retried; a notice goes to the dead-letter topic",
                metadata: [
                    LogKey.correlationId: Self.correlation(of: reply), LogKey.entry: .stringConvertible(reply.id),
                    LogKey.replyTopic: .string(CommandLog.clip(reply.message.topic)), LogKey.error: "\(reason)",
                ]
            )
        }
        if let stored { enqueue([stored]) }
    }

    /// The correlation id of the command a stored message answers, for its log lines: the reply's (or notice's)
    /// `correlationId`, else the Correlation Data as UTF-8 (a dead letter's).
    private static func correlation(of reply: PendingReply) -> Logger.MetadataValue {
        if case .object(let body)? = try? JSONParser.parse(reply.message.payload),
            let correlationId = body["correlationId"]?.stringValue
        {
            return CommandLog.correlation(correlationId)
        }
        return CommandLog.correlation(data: reply.message.properties.correlationData)
    }

    // MARK: - Journal

    private func read(excluding: Set<Int64>, limit: Int) async {
        do {
            let replies = try await journal.pendingReplies(excluding: excluding, limit: limit)
            state.withLock { $0.outbox.journalRead(replies, limit: limit) }
        } catch {
            journalFailed(error)
        }
    }

    /// Marks the replies acknowledged since the last call, in one transaction.
    private func markAcknowledged() async {
        let ids = state.withLock { state in
            defer { state.acknowledged.removeAll(keepingCapacity: true) }
            return state.acknowledged
        }
        guard !ids.isEmpty else { return }
        do {
            try await journal.markReplied(ids)
        } catch {
            journalFailed(error)
        }
        state.withLock { $0.outbox.marked(ids) }
    }
}
