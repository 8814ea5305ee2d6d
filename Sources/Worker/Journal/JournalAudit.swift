// SPDX-License-Identifier: Apache-2.0
public import Foundation

/// The journal as an audit trail: who asked for what, when, which platform calls carried it and what the reply
/// said, in plain values and without any word of the store behind it.
///
/// ``CommandJournal`` is what the worker writes through; this is what an operator reads through
/// (`ota-cancel-worker journal`). ``SQLiteJournalReader`` reads a worker's SQLite file; a shared store
/// (PostgreSQL) implements the same protocol.
///
/// - Important: an implementation never writes and takes no write lock: it runs beside a worker that is writing
///   the same journal, and must neither slow it down nor change what it stores.
public protocol JournalAudit: Sendable {
    /// Where the journal is, for messages (never credentials).
    var location: String { get }

    /// Entries matching `filter`, in arrival order; `newest` takes the last `limit` matches instead of the first.
    ///
    /// - Parameters:
    ///   - filter: which entries.
    ///   - limit: most entries returned; `nil` for all.
    ///   - newest: take the newest `limit` matches (still returned oldest first).
    func entries(
        matching filter: JournalFilter,
        limit: Int?,
        newest: Bool
    ) async throws(WorkerError)
        -> [JournalEntrySummary]

    /// Everything stored about the matching entries whose id is above `after`, oldest first, at most `limit`:
    /// pages of an export (`after` is the last id of the previous page).
    func details(
        matching filter: JournalFilter,
        after: Int64,
        limit: Int
    ) async throws(WorkerError)
        -> [JournalEntryDetail]

    /// Counts over the entries matching `filter` (all of them for an empty filter), and over the calls that
    /// carried them.
    func stats(matching filter: JournalFilter) async throws(WorkerError) -> JournalStats
}

/// Which journal entries a query wants; every condition set must hold.
public struct JournalFilter: Sendable, Hashable {
    /// Only entries with one of these statuses. Default `nil`: any.
    public var statuses: Set<JournalEntryStatus>?
    /// Only entries the worker still owes something (``JournalProgress/isPending``). Default `false`.
    public var pendingOnly: Bool
    /// Only entries received at or after this instant. Default `nil`.
    public var since: Date?
    /// Only entries whose correlation id starts with this text (exactly, case-sensitive). Default `nil`.
    public var correlationIdPrefix: String?
    /// Only entries with exactly this correlation id. Default `nil`.
    public var correlationId: String?
    /// Only the entry with this id. Default `nil`.
    public var id: Int64?

    public init(
        statuses: Set<JournalEntryStatus>? = nil,
        pendingOnly: Bool = false,
        since: Date? = nil,
        correlationIdPrefix: String? = nil,
        correlationId: String? = nil,
        id: Int64? = nil
    ) {
        self.statuses = statuses
        self.pendingOnly = pendingOnly
        self.since = since
        self.correlationIdPrefix = correlationIdPrefix
        self.correlationId = correlationId
        self.id = id
    }
}

/// What a journal entry is.
public enum JournalEntryKind: String, Sendable, Hashable, CaseIterable {
    /// An accepted command: executed, with platform calls.
    case command
    /// A message answered at intake, without a call: rejected (schema, size, a conflicting duplicate) or expired
    /// on arrival.
    case answer
    /// A repeat of a command (same correlation id and payload): answered with the original's reply.
    case duplicate
    /// An unparseable message without a reply route, sent to the dead-letter topic.
    case deadLetter = "dead-letter"
    /// The notice that a stored reply or dead letter could never be published.
    case notice
}

/// Where an entry is in its life, from the requester's side.
public enum JournalProgress: String, Sendable, Hashable, CaseIterable {
    /// An accepted command without a reply yet: its calls are running or will be made (after a restart).
    case running
    /// A duplicate waiting for its original's reply.
    case waiting
    /// The reply is decided and stored, and the broker has not acknowledged it yet: it is published (again,
    /// after a restart) until it has.
    case replyStored = "reply-stored"
    /// The broker acknowledged the reply.
    case replied
    /// The reply can never be published (see ``JournalEntrySummary/deliveryError``).
    case undeliverable

    /// Whether the worker still owes the requester something: a decision or the publication of its reply.
    public var isPending: Bool { self == .running || self == .waiting || self == .replyStored }
}

/// One word for an entry: the reply's status when there is one, else what it waits for or what it is.
public enum JournalEntryStatus: String, Sendable, Hashable, CaseIterable {
    case succeeded, partial, failed, rejected, expired
    /// No reply yet (``JournalProgress/running``).
    case running
    /// A duplicate waiting for its original (``JournalProgress/waiting``).
    case waiting
    /// A dead letter (no reply status).
    case deadLetter = "dead-letter"
    /// An undeliverable notice (no reply status).
    case notice
}

/// One line of `journal list`: an entry without its payloads.
public struct JournalEntrySummary: Sendable, Hashable {
    /// The entry's number in the journal (grows with arrival).
    public var id: Int64
    public var kind: JournalEntryKind
    public var progress: JournalProgress
    public var status: JournalEntryStatus
    /// The correlation id, as the reply carries it; `nil` for a message without one (a dead letter, Correlation
    /// Data that is not UTF-8 and no `correlationId`).
    public var correlationId: String?
    /// When the message arrived.
    public var receivedAt: Date
    /// The command's deadline, when it had one.
    public var deadline: Date?
    /// When its reply was decided and stored.
    public var completedAt: Date?
    /// When the broker acknowledged the reply (or when it was found undeliverable).
    public var repliedAt: Date?
    /// The topic the reply goes to.
    public var replyTopic: String
    /// For a duplicate or notice: the entry it refers to.
    public var originalId: Int64?
    /// Why the reply can never be published.
    public var deliveryError: String?
    public var productKey: String?
    public var firmwareId: String?
    /// How many devices the command named, when known (from the command, else its reply).
    public var deviceCount: Int?
    /// Platform calls that carried its devices (answered or interrupted).
    public var calls: Int

    public init(
        id: Int64,
        kind: JournalEntryKind,
        progress: JournalProgress,
        status: JournalEntryStatus,
        receivedAt: Date,
        replyTopic: String
    ) {
        self.id = id
        self.kind = kind
        self.progress = progress
        self.status = status
        self.receivedAt = receivedAt
        self.replyTopic = replyTopic
        calls = 0
    }
}

/// Everything the journal holds about one entry: `journal show` and one line of `journal export`.
public struct JournalEntryDetail: Sendable, Hashable {
    public var summary: JournalEntrySummary
    /// The command as received (JSON bytes): kept until the broker acknowledges the reply, then dropped (the
    /// reply echoes its identifiers, and the calls keep their device names).
    public var command: [UInt8]?
    /// The stored reply (or dead letter, or notice) as published (JSON bytes).
    public var reply: [UInt8]?
    /// The platform calls that carried its devices, in the order they were made.
    public var calls: [JournalCallRecord]

    public init(
        summary: JournalEntrySummary,
        command: [UInt8]? = nil,
        reply: [UInt8]? = nil,
        calls: [JournalCallRecord] = []
    ) {
        self.summary = summary
        self.command = command
        self.reply = reply
        self.calls = calls
    }
}

/// One platform call (CancelOTATaskByDevice) as the journal stored it when it ended.
public struct JournalCallRecord: Sendable, Hashable {
    /// How the call ended.
    public enum Outcome: String, Sendable, Hashable {
        /// The platform accepted the cancel for every name.
        case succeeded
        /// The platform (or the network) refused; see ``JournalCallRecord/code``.
        case failed
        /// The worker stopped it before an answer (shutdown); its names were sent again.
        case interrupted
    }

    /// The call's number in the journal.
    public var id: Int64
    public var outcome: Outcome
    /// The platform's `RequestId` (of the last attempt), what its support asks for.
    public var requestId: String?
    /// HTTP attempts made within the call (the client retries transient errors inside one call).
    public var attempts: Int?
    public var code: String?
    public var message: String?
    public var httpStatus: Int?
    public var productKey: String
    public var firmwareId: String
    public var jobId: String?
    public var iotInstanceId: String?
    /// When it left and when it ended.
    public var sentAt: Date
    public var answeredAt: Date?
    /// How many names it sent.
    public var deviceCount: Int
    /// The names it sent, in order; `nil` for calls stored by a worker before journal schema v4.
    public var deviceNames: [String]?
    /// It also carried other commands' names (coalescing): ``deviceNames`` includes theirs.
    public var shared: Bool
    /// Which segments (cuts of the command's device list) of this entry it carried.
    public var segments: [Int]

    public init(
        id: Int64,
        outcome: Outcome,
        productKey: String,
        firmwareId: String,
        sentAt: Date,
        deviceCount: Int,
        shared: Bool
    ) {
        self.id = id
        self.outcome = outcome
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.sentAt = sentAt
        self.deviceCount = deviceCount
        self.shared = shared
        segments = []
    }
}

/// Counts for `journal stats`.
public struct JournalStats: Sendable, Hashable {
    /// Entries by status word (every ``JournalEntryStatus`` present, zeros left out).
    public var byStatus: [JournalEntryStatus: Int] = [:]
    /// Entries by kind.
    public var byKind: [JournalEntryKind: Int] = [:]
    /// Entries by progress.
    public var byProgress: [JournalProgress: Int] = [:]
    /// Platform calls stored (those carrying the counted entries, when filtered by time).
    public var calls = 0
    public var callsByOutcome: [JournalCallRecord.Outcome: Int] = [:]
    /// HTTP attempts over all calls.
    public var attempts = 0
    /// Device names sent over all calls.
    public var devicesSent = 0
    /// The oldest and newest arrival counted.
    public var oldestReceivedAt: Date?
    public var newestReceivedAt: Date?
    /// When the oldest pending entry arrived.
    public var oldestPendingAt: Date?
    /// The journal's schema, as its migrations name it (e.g. `v4`).
    public var schemaVersion: String?

    public init() {}

    /// All entries counted.
    public var entries: Int { byKind.values.reduce(0, +) }

    /// Entries the worker still owes something.
    public var pending: Int { byProgress.filter(\.key.isPending).values.reduce(0, +) }
}
