// SPDX-License-Identifier: Apache-2.0
public import Foundation

/// The worker's durable memory (DESIGN §1), as the pipeline sees it: typed verdicts and records, nothing of the
/// store behind it. ``SQLiteJournal`` is the one backend today; a store shared by several workers (PostgreSQL)
/// implements the same protocol.
///
/// The promises every backend keeps:
/// - ``record(_:at:)`` has stored the message (and decided its duplicate status) when it returns: the broker's
///   PUBACK leaves only after that. It runs on the MQTT loop thread, as one short transaction.
/// - A call is stored when it has ended, with the command segments it carried, its result, the segments' outcomes and
///   the replies it completed, in one transaction (``record(_:at:)-settlement``): after a crash, names already
///   carried by an answered call are not sent again. (A call is not recorded before it leaves: that durable write
///   would cost every lone command about a tenth of its round trip; a call in flight at a crash is simply made again,
///   which the platform's idempotent cancel allows.)
/// - A reply is stored before it is published, and marked once the broker has it.
public protocol CommandJournal: Sendable {
    /// Where the journal is, for logs (never credentials).
    var location: String { get }

    // MARK: Intake

    /// Journals what intake decided about one message, deduplicating commands.
    ///
    /// - Throws: only when the store fails. The caller must then not let the message be acknowledged.
    func record(_ decision: IntakeDecision, at now: Date) throws(WorkerError) -> JournalVerdict

    // MARK: Dispatch

    /// Accepted commands not yet answered with an id above `id`, oldest first, with what their earlier calls decided.
    func unansweredCommands(after id: Int64, limit: Int) async throws(WorkerError) -> [JournaledCommand]

    /// The largest call id stored: new calls start after it.
    func lastCallId() async throws(WorkerError) -> Int64

    /// Stores what one dispatcher step decided: the call's result, the segments' outcomes, the completed commands'
    /// replies (and the waiting duplicates' replies), in one transaction.
    ///
    /// - Returns: the stored replies to publish, each command's own first, then its waiting duplicates'.
    func record(_ settlement: Settlement, at now: Date) async throws(WorkerError) -> [PendingReply]

    // MARK: Replies

    /// Stored replies the broker has not acknowledged yet, oldest first (after a restart, or when the publisher's
    /// queue overflowed). `excluding`: ids the caller has in hand; they do not count towards `limit`.
    func pendingReplies(excluding: Set<Int64>, limit: Int) async throws(WorkerError) -> [PendingReply]

    /// The broker acknowledged these replies.
    func markReplied(_ ids: [Int64]) async throws(WorkerError)

    /// A stored reply can never be published: recorded as undeliverable with the reason, never tried again;
    /// `notice`, when given, is stored in the same transaction, to be published in its place.
    @discardableResult
    func markUndeliverable(
        _ id: Int64,
        reason: String,
        notice: OutgoingMessage?
    ) async throws(WorkerError)
        -> PendingReply?

    // MARK: Housekeeping

    /// Deletes finished entries past the retention window or beyond the entry limit; returns how many.
    @discardableResult
    func prune(now: Date) async throws(WorkerError) -> Int

    /// What the journal holds, for logs, readiness and tests.
    func summary() async throws(WorkerError) -> JournalSummary

    /// What is still to do, cheap enough for every metrics scrape (it does not count finished entries).
    func backlog() async throws(WorkerError) -> JournalBacklog
}

/// What to do after a message has been journaled, with why: the caller never has to look into stored bytes.
public enum JournalVerdict: Sendable, Hashable {
    /// A new command, journaled: the dispatcher runs it.
    case execute(Int64)
    /// Publish this stored message now; `outcome` says what it answers.
    case publish(PendingReply, IntakeOutcome)
    /// A duplicate of a command not answered yet: it is answered when the original finishes.
    case waitForOriginal(Int64)
}

/// What a message that is not executed got.
public enum IntakeOutcome: Sendable, Hashable {
    /// Refused (schema, size, reply topic, ...).
    case rejected
    /// Its deadline had passed on arrival.
    case expired
    /// Unparseable without a reply route: sent to the dead-letter topic.
    case deadLetter
    /// A repeat of an answered command: the stored reply again, marked `duplicate`.
    case duplicate
    /// The same correlation key as an earlier, different command: refused (``DedupeVerdict/conflict(originalReceivedAt:)``).
    case conflict
}

/// A reply (or dead letter, or notice) that is decided and stored, waiting for the broker's acknowledgement.
public struct PendingReply: Sendable, Hashable {
    /// What the stored message is, which decides what happens when it can never be delivered.
    public enum Kind: String, Sendable, Hashable {
        /// A reply to a command: an undeliverable one is announced on the dead-letter topic.
        case reply
        /// A dead letter: an undeliverable one is announced on the dead-letter topic once more, as a small notice.
        case deadLetter
        /// The notice that a reply or dead letter was undeliverable: if it is undeliverable too, it is logged and
        /// dropped (nothing announces a notice).
        case notice
    }

    public var id: Int64
    public var message: OutgoingMessage
    public var kind: Kind

    public init(id: Int64, message: OutgoingMessage, kind: Kind = .reply) {
        self.id = id
        self.message = message
        self.kind = kind
    }
}

/// The outcome of one segment (the names one call carries for one command), as the journal keeps it.
public struct BatchOutcome: Sendable, Hashable, Codable {
    public var succeeded: Bool
    /// Final outcomes are never repeated; a transient failure before the deadline is retried later.
    public var final: Bool
    public var requestId: String?
    public var code: String?
    public var message: String?
    public var httpStatus: Int?
    public var transient: Bool
    public var attempts: Int
    /// Names of the segment that failed on their own (the platform named them, e.g. an unknown device) and are
    /// no longer sent with the rest, with each one's final failure. Stored with the segment's outcome, so a
    /// restart does not send them again.
    public var excluded: [String: BatchOutcome]?

    public init(
        succeeded: Bool,
        final: Bool,
        requestId: String? = nil,
        code: String? = nil,
        message: String? = nil,
        httpStatus: Int? = nil,
        transient: Bool = false,
        attempts: Int
    ) {
        self.succeeded = succeeded
        self.final = final
        self.requestId = requestId
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.transient = transient
        self.attempts = attempts
    }
}

/// An accepted command read back from the journal, with what its earlier calls decided.
public struct JournaledCommand: Sendable {
    public var id: Int64
    public var accepted: AcceptedCommand
    /// Outcomes of its segments so far, by segment index (final ones are not sent again).
    public var outcomes: [Int: BatchOutcome]
    /// The answered calls that carried its names.
    public var calls: [CallTrace]
    /// Transient rounds so far (journals of earlier versions retried whole commands).
    public var retryRound: Int

    public init(
        id: Int64,
        accepted: AcceptedCommand,
        outcomes: [Int: BatchOutcome] = [:],
        calls: [CallTrace] = [],
        retryRound: Int = 0
    ) {
        self.id = id
        self.accepted = accepted
        self.outcomes = outcomes
        self.calls = calls
        self.retryRound = retryRound
    }
}

/// What the journal holds.
public struct JournalSummary: Sendable, Hashable {
    /// Commands accepted and not answered yet.
    public var unanswered = 0
    /// Duplicates waiting for their original's reply.
    public var waitingDuplicates = 0
    /// Replies stored and not yet acknowledged by the broker.
    public var repliesToPublish = 0
    /// Entries whose reply the broker acknowledged (kept for deduplication until pruned).
    public var finished = 0
    /// Entries whose reply can never be published.
    public var undeliverable = 0
    /// Platform calls stored (each with its result).
    public var calls = 0

    public init() {}
}

/// What the journal still has to do: the figures an operator alerts on (see ``CommandJournal/backlog()``).
public struct JournalBacklog: Sendable, Hashable {
    /// Commands accepted and not answered yet.
    public var unanswered = 0
    /// Duplicates waiting for their original's reply.
    public var waitingDuplicates = 0
    /// Replies (and dead letters) stored and not yet acknowledged by the broker.
    public var repliesToPublish = 0
    /// When the oldest unanswered command arrived; `nil` when there is none.
    public var oldestUnansweredAt: Date?

    public init() {}
}
