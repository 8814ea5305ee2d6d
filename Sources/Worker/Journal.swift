// SPDX-License-Identifier: Apache-2.0
public import Foundation
import GRDB
import JSONSchema
import Mosquitto

/// Where and how durably the journal keeps its state.
public struct JournalConfiguration: Sendable {
    /// How SQLite syncs a committed transaction to disk.
    public struct Synchronous: Sendable, Hashable, CustomStringConvertible {
        fileprivate let pragma: String

        private init(pragma: String) { self.pragma = pragma }

        /// `synchronous=NORMAL` in WAL mode: a commit survives a crash of the process (what the worker's
        /// at-least-once promise needs); the last commits may be lost if the machine loses power. The default.
        public static let normal = Synchronous(pragma: "NORMAL")
        /// `synchronous=FULL`: every commit is fsynced, so it also survives a power loss; costs a disk flush
        /// per message.
        public static let full = Synchronous(pragma: "FULL")

        public init?(name: String) {
            switch name.lowercased() {
            case "normal": self = .normal
            case "full": self = .full
            default: return nil
            }
        }

        public var description: String { pragma.lowercased() }
    }

    /// The journal file, or `nil` for an in-memory journal (nothing survives the process: benchmarks only).
    /// Default: `<state-dir>/journal.sqlite`, set by the application.
    public var path: String?
    /// Default ``Synchronous/normal``.
    public var synchronous: Synchronous
    /// How long replied commands are kept for deduplication. Default 24 hours.
    public var retention: Duration
    /// Most replied entries kept, whatever their age (the oldest go first). Default 1,000,000.
    public var maxEntries: Int

    public init(
        path: String?,
        synchronous: Synchronous = .normal,
        retention: Duration = .seconds(86_400),
        maxEntries: Int = 1_000_000
    ) {
        self.path = path
        self.synchronous = synchronous
        self.retention = retention
        self.maxEntries = maxEntries
    }
}

/// A reply (or dead letter) that is decided and stored, waiting for the broker's acknowledgement.
public struct PendingReply: Sendable, Hashable {
    /// What the stored message is, which decides what happens when it can never be delivered.
    public enum Kind: String, Sendable, Hashable {
        /// A reply to a command (executed, rejected, expired or a duplicate's): an undeliverable one is announced
        /// on the dead-letter topic.
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

    /// The kind of a journal row's `kind` column.
    static func kind(ofRow kind: String) -> Kind {
        switch kind {
        case "deadLetter": .deadLetter
        case "notice": .notice
        default: .reply
        }
    }
}

/// What to do after a message has been journaled.
public enum JournalAction: Sendable, Hashable {
    /// A new command: the dispatcher will find it in the journal.
    case execute(Int64)
    /// Publish this stored reply now (rejections, dead letters, duplicates of finished commands).
    case publish(PendingReply)
    /// A duplicate of a command still running: it is answered when the original finishes.
    case waitForOriginal(Int64)
}

/// The outcome of one platform call (one batch of at most 200 devices), as the journal keeps it.
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

/// A command read back from the journal, ready to run.
public struct JournaledCommand: Sendable {
    public var id: Int64
    public var accepted: AcceptedCommand
    /// Outcomes of the batches already called, by batch index (final ones are not called again).
    public var batches: [Int: BatchOutcome]
    /// Command-level retry rounds so far (each after a transient failure).
    public var retryRound: Int
}

/// The durable journal: every message the worker acknowledges to the broker is here first (DESIGN §1).
///
/// One SQLite database (WAL mode) through GRDB. A message is written inside the MQTT callback, before its
/// PUBACK can leave; progress (each platform call with its request id), the reply, and the broker's
/// acknowledgement of the reply follow. After a crash, ``pendingReplies()`` and ``readyCommands(excluding:limit:now:)``
/// say exactly what is left to do. Commands are deduplicated by correlation key within the retention window.
///
/// - Important: ``record(_:at:)`` is called on the MQTT loop thread; it does one short transaction.
public final class Journal: Sendable {
    private let database: DatabaseQueue
    public let configuration: JournalConfiguration

    /// Opens (or creates) the journal and brings its schema up to date.
    public init(configuration: JournalConfiguration) throws(WorkerError) {
        self.configuration = configuration
        var config = Configuration()
        config.label = "ota-cancel-journal"
        config.journalMode = configuration.path == nil ? .default : .wal
        let synchronous = configuration.synchronous.pragma
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            if let path = configuration.path {
                database = try DatabaseQueue(path: path, configuration: config)
            } else {
                database = try DatabaseQueue(configuration: config)
            }
            try Self.migrator.migrate(database)
        } catch {
            throw .journal("cannot open the journal at \(configuration.path ?? ":memory:"): \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE message (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        kind TEXT NOT NULL,            -- command | answer | deadLetter | duplicate | notice (v2)
                        state TEXT NOT NULL,           -- accepted | waiting | done | replied | undeliverable (v2)
                        dedupeKey BLOB,
                        digest BLOB,
                        originalId INTEGER,
                        receivedAt REAL NOT NULL,
                        deadline REAL,
                        replyTopic TEXT NOT NULL,
                        routeSource TEXT NOT NULL,
                        correlationData BLOB,
                        correlationId TEXT,
                        payload BLOB,
                        reply BLOB,
                        retryAt REAL,
                        retryRound INTEGER NOT NULL DEFAULT 0,
                        completedAt REAL,
                        repliedAt REAL
                    );
                    CREATE INDEX messageState ON message(state, id);
                    CREATE INDEX messageDedupe ON message(dedupeKey) WHERE kind = 'command';
                    CREATE INDEX messageOriginal ON message(originalId) WHERE originalId IS NOT NULL;
                    CREATE TABLE call (
                        messageId INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                        batch INTEGER NOT NULL,
                        outcome BLOB NOT NULL,
                        PRIMARY KEY (messageId, batch)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v2") { db in
            // Why a stored reply or dead letter can never be published (state 'undeliverable').
            try db.execute(sql: "ALTER TABLE message ADD COLUMN deliveryError TEXT")
        }
        return migrator
    }

    // MARK: - Intake (MQTT loop thread)

    /// Journals what intake decided about one message, deduplicating commands; returns what to do next.
    ///
    /// - Throws: only when the database fails. The caller must then not let the message be acknowledged.
    public func record(_ decision: IntakeDecision, at now: Date) throws(WorkerError) -> JournalAction {
        do {
            return try database.write { db -> JournalAction in
                switch decision {
                case .execute(let accepted):
                    return try recordCommand(accepted, db: db, now: now)
                case .answer(let reply, let route):
                    let message = OutgoingMessage(
                        topic: route.topic,
                        payload: reply.jsonValue.serializedBytes(),
                        properties: route.replyProperties
                    )
                    let id = try insertStored(
                        kind: "answer",
                        message: message,
                        route: route,
                        correlationId: reply.correlationId,
                        receivedAt: reply.receivedAt,
                        db: db
                    )
                    return .publish(PendingReply(id: id, message: message, kind: .reply))
                case .deadLetter(let message):
                    let route = ReplyRoute(
                        topic: message.topic,
                        source: .defaultTopic,
                        correlationData: message.properties.correlationData
                    )
                    let id = try insertStored(
                        kind: "deadLetter",
                        message: message,
                        route: route,
                        correlationId: nil,
                        receivedAt: now,
                        db: db
                    )
                    return .publish(PendingReply(id: id, message: message, kind: .deadLetter))
                }
            }
        } catch let error as WorkerError {
            throw error
        } catch {
            throw .journal("cannot record a message: \(error)")
        }
    }

    private func recordCommand(_ accepted: AcceptedCommand, db: Database, now: Date) throws -> JournalAction {
        let key = accepted.dedupeKey.map { Data($0) }
        if let key {
            let since = now.timeIntervalSince1970 - configuration.retention.seconds
            if let original = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT id, digest, state, reply FROM message
                        WHERE kind = 'command' AND dedupeKey = ? AND receivedAt >= ? ORDER BY id LIMIT 1
                        """
                ),
                arguments: [key, since]
            ) {
                let originalId: Int64 = original[0]
                let digest: Data? = original[1]
                if digest != Data(accepted.digest) {
                    // Same key, different command: never guess which one the requester meant.
                    var reply = CancelReply(
                        correlationId: accepted.correlationId,
                        status: .rejected,
                        receivedAt: accepted.receivedAt,
                        completedAt: now
                    )
                    reply.echo(accepted.command)
                    reply.errors = [
                        .init(
                            code: "ConflictingDuplicate",
                            instanceLocation: "",
                            keywordLocation: "#worker/dedupe",
                            message: "a different command with this correlation id was received at "
                                + "\(RFC3339.string(from: try receivedAt(of: originalId, db: db))); reuse a correlation id only to "
                                + "repeat the same command"
                        )
                    ]
                    let message = OutgoingMessage(
                        topic: accepted.route.topic,
                        payload: reply.jsonValue.serializedBytes(),
                        properties: accepted.route.replyProperties
                    )
                    let id = try insertStored(
                        kind: "answer",
                        message: message,
                        route: accepted.route,
                        correlationId: accepted.correlationId,
                        receivedAt: accepted.receivedAt,
                        db: db
                    )
                    return .publish(PendingReply(id: id, message: message))
                }
                let state: String = original[2]
                // An undeliverable reply is still the command's answer: a duplicate on another route may get it.
                if ["done", "replied", "undeliverable"].contains(state), let stored: Data = original[3] {
                    let message = OutgoingMessage(
                        topic: accepted.route.topic,
                        payload: Self.markedDuplicate(Array(stored)),
                        properties: accepted.route.replyProperties
                    )
                    let id = try insertStored(
                        kind: "duplicate",
                        message: message,
                        route: accepted.route,
                        correlationId: accepted.correlationId,
                        receivedAt: accepted.receivedAt,
                        db: db,
                        originalId: originalId
                    )
                    return .publish(PendingReply(id: id, message: message))
                }
                try db.cachedStatement(
                    sql: """
                        INSERT INTO message (kind, state, originalId, receivedAt, replyTopic, routeSource, correlationData, correlationId)
                        VALUES ('duplicate', 'waiting', ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        originalId, accepted.receivedAt.timeIntervalSince1970, accepted.route.topic,
                        accepted.route.source.rawValue,
                        accepted.route.correlationData.map { Data($0) }, accepted.correlationId,
                    ]
                )
                return .waitForOriginal(db.lastInsertedRowID)
            }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO message (kind, state, dedupeKey, digest, receivedAt, deadline, replyTopic, routeSource,
                                     correlationData, correlationId, payload)
                VALUES ('command', 'accepted', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                key, Data(accepted.digest), accepted.receivedAt.timeIntervalSince1970,
                accepted.deadline?.timeIntervalSince1970,
                accepted.route.topic, accepted.route.source.rawValue, accepted.route.correlationData.map { Data($0) },
                accepted.correlationId, Data(accepted.payload),
            ]
        )
        return .execute(db.lastInsertedRowID)
    }

    private func insertStored(
        kind: String,
        message: OutgoingMessage,
        route: ReplyRoute,
        correlationId: String?,
        receivedAt: Date,
        db: Database,
        originalId: Int64? = nil
    ) throws -> Int64 {
        try db.cachedStatement(
            sql: """
                INSERT INTO message (kind, state, originalId, receivedAt, replyTopic, routeSource, correlationData,
                                     correlationId, reply, completedAt)
                VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                kind, originalId, receivedAt.timeIntervalSince1970, message.topic, route.source.rawValue,
                message.properties.correlationData.map { Data($0) }, correlationId, Data(message.payload),
                Date().timeIntervalSince1970,
            ]
        )
        return db.lastInsertedRowID
    }

    private func receivedAt(of id: Int64, db: Database) throws -> Date {
        let seconds = try Double.fetchOne(db, sql: "SELECT receivedAt FROM message WHERE id = ?", arguments: [id]) ?? 0
        return Date(timeIntervalSince1970: seconds)
    }

    /// A stored reply with `"duplicate": true` inserted after `status` (the reply keeps its key order).
    static func markedDuplicate(_ reply: [UInt8]) -> [UInt8] {
        let marker = Array(#""status":""#.utf8)
        guard let start = reply.firstRange(of: marker)?.upperBound,
            let end = reply[start...].firstIndex(of: UInt8(ascii: "\""))
        else { return reply }
        return Array(reply[...end]) + Array(#","duplicate":true"#.utf8) + Array(reply[(end + 1)...])
    }

    // MARK: - Dispatch

    /// Where the dispatcher's reading of new commands stands: every accepted command with a larger id is new.
    public struct Cursor: Sendable, Hashable {
        public var lastId: Int64
        /// Whether the last read of new commands found fewer than it was allowed to read: nothing new is left
        /// in the journal beyond ``lastId`` (as of that read).
        public var caughtUp: Bool
        public init(lastId: Int64 = 0) {
            self.lastId = lastId
            self.caughtUp = false
        }
    }

    /// Commands to run now: new ones after `cursor` (oldest first), then those whose retry time has come; never
    /// those in `running`. One read transaction.
    ///
    /// New commands are found by id, so each wake-up reads only what arrived since the last one (not the
    /// commands already running), whatever the backlog.
    ///
    /// - Parameters:
    ///   - fresh: read new commands (after `cursor`). Default `true`.
    ///   - retries: read commands whose retry time has come. Default `true`.
    public func readyCommands(
        after cursor: inout Cursor,
        excluding running: Set<Int64>,
        limit: Int,
        now: Date,
        fresh: Bool = true,
        retries: Bool = true
    ) async throws(WorkerError) -> [JournaledCommand] {
        guard limit > 0, fresh || retries else { return [] }
        let after = cursor.lastId
        let entries: [Entry]
        do {
            entries = try await read { db in
                let columns = """
                    id, receivedAt, deadline, replyTopic, routeSource, correlationData, correlationId, payload, retryRound,
                    EXISTS (SELECT 1 FROM call WHERE messageId = message.id)
                    """
                var entries =
                    fresh
                    ? try Row.fetchAll(
                        db.cachedStatement(
                            sql: """
                                SELECT \(columns) FROM message
                                WHERE state = 'accepted' AND id > ? AND retryAt IS NULL ORDER BY id LIMIT ?
                                """
                        ),
                        arguments: [after, limit]
                    ).map(Entry.init(row:)) : []
                if retries && entries.count < limit {
                    let due = try Row.fetchAll(
                        db.cachedStatement(
                            sql: """
                                SELECT \(columns) FROM message
                                WHERE state = 'accepted' AND retryAt IS NOT NULL AND retryAt <= ? ORDER BY retryAt LIMIT ?
                                """
                        ),
                        arguments: [now.timeIntervalSince1970, limit + running.count]
                    ).map { row in
                        var entry = Entry(row: row)
                        entry.isRetry = true
                        return entry
                    }
                    entries += due.filter { !running.contains($0.id) }.prefix(limit - entries.count)
                }
                for index in entries.indices where entries[index].hasCalls {
                    for row in try Row.fetchAll(
                        db.cachedStatement(sql: "SELECT batch, outcome FROM call WHERE messageId = ?"),
                        arguments: [entries[index].id]
                    ) {
                        let data: Data = row[1]
                        entries[index].batches[row[0]] = try JSONDecoder().decode(BatchOutcome.self, from: data)
                    }
                }
                return entries
            }
        } catch {
            throw .journal("cannot read ready commands: \(error)")
        }
        if fresh { cursor.caughtUp = entries.count(where: { !$0.isRetry }) < limit }
        var commands = [JournaledCommand]()
        commands.reserveCapacity(entries.count)
        for entry in entries {
            if !entry.isRetry { cursor.lastId = max(cursor.lastId, entry.id) }
            // New commands after the cursor may already run (handed over in memory): the cursor still passes them.
            if running.contains(entry.id) { continue }
            guard let value = try? JSONParser.parse(entry.payload), let command = CancelCommand(validated: value) else {
                // Only a journal written by another version could hold this.
                throw .journal("journal entry \(entry.id) holds a command this version cannot read")
            }
            let accepted = AcceptedCommand(
                command: command,
                correlationId: entry.correlationId,
                route: entry.route,
                receivedAt: entry.receivedAt,
                deadline: entry.deadline,
                payload: entry.payload,
                digest: []
            )
            commands.append(
                JournaledCommand(id: entry.id, accepted: accepted, batches: entry.batches, retryRound: entry.retryRound)
            )
        }
        return commands
    }

    /// A command row, read out of GRDB's `Row` (which cannot leave the database queue), by column position.
    private struct Entry: Sendable {
        var id: Int64
        var receivedAt: Date
        var deadline: Date?
        var route: ReplyRoute
        var correlationId: String?
        var payload: [UInt8]
        var retryRound: Int
        /// Read as a due retry (not as a new command).
        var isRetry = false
        var hasCalls: Bool
        var batches: [Int: BatchOutcome] = [:]

        init(row: Row) {
            id = row[0]
            receivedAt = Date(timeIntervalSince1970: row[1])
            let deadline: Double? = row[2]
            self.deadline = deadline.map { Date(timeIntervalSince1970: $0) }
            let correlationData: Data? = row[5]
            route = ReplyRoute(
                topic: row[3],
                source: ReplyRoute.Source(rawValue: row[4]) ?? .defaultTopic,
                correlationData: correlationData.map { Array($0) }
            )
            correlationId = row[6]
            let payload: Data? = row[7]
            self.payload = payload.map { Array($0) } ?? []
            retryRound = row[8]
            hasCalls = row[9]
        }
    }

    /// Records one platform call's outcome (its attempts counted over all rounds so far), replacing what was
    /// there: a command with several calls keeps each answered call, so a restart does not repeat it.
    public func recordCall(_ id: Int64, batch: Int, outcome: BatchOutcome) async throws(WorkerError) {
        do {
            let data = try JSONEncoder().encode(outcome)
            try await write { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO call (messageId, batch, outcome) VALUES (?, ?, ?)",
                    arguments: [id, batch, data]
                )
            }
        } catch {
            throw .journal("cannot record a platform call of entry \(id): \(error)")
        }
    }

    /// The command stays accepted and runs again at `date` (a transient failure before its deadline); the
    /// outcomes so far (attempt counts of the calls to repeat) are stored in the same transaction.
    public func scheduleRetry(_ id: Int64, at date: Date, outcomes: [Int: BatchOutcome] = [:]) async throws(WorkerError)
    {
        do {
            let encoded = try outcomes.map { ($0.key, try JSONEncoder().encode($0.value)) }
            try await write { db in
                for (batch, data) in encoded {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO call (messageId, batch, outcome) VALUES (?, ?, ?)",
                        arguments: [id, batch, data]
                    )
                }
                try db.execute(
                    sql: "UPDATE message SET retryAt = ?, retryRound = retryRound + 1 WHERE id = ?",
                    arguments: [date.timeIntervalSince1970, id]
                )
            }
        } catch {
            throw .journal("cannot schedule a retry of entry \(id): \(error)")
        }
    }

    /// Stores a command's reply and answers the duplicates that were waiting for it, in one transaction.
    ///
    /// - Returns: the replies to publish: the command's own, then one per waiting duplicate (marked).
    public func complete(_ id: Int64, reply: [UInt8], route: ReplyRoute) async throws(WorkerError) -> [PendingReply] {
        do {
            return try await write { db in
                let now = Date().timeIntervalSince1970
                try db.cachedStatement(
                    sql: "UPDATE message SET state = 'done', reply = ?, completedAt = ?, retryAt = NULL WHERE id = ?"
                ).execute(
                    arguments: [Data(reply), now, id]
                )
                var replies = [
                    PendingReply(
                        id: id,
                        message: OutgoingMessage(topic: route.topic, payload: reply, properties: route.replyProperties)
                    )
                ]
                let duplicate = Self.markedDuplicate(reply)
                for row in try Row.fetchAll(
                    db.cachedStatement(
                        sql:
                            "SELECT id, replyTopic, routeSource, correlationData FROM message WHERE originalId = ? AND state = 'waiting'"
                    ),
                    arguments: [id]
                ) {
                    let duplicateId: Int64 = row["id"]
                    let correlationData: Data? = row["correlationData"]
                    let route = ReplyRoute(
                        topic: row["replyTopic"],
                        source: ReplyRoute.Source(rawValue: row["routeSource"]) ?? .defaultTopic,
                        correlationData: correlationData.map { Array($0) }
                    )
                    try db.cachedStatement(
                        sql: "UPDATE message SET state = 'done', reply = ?, completedAt = ? WHERE id = ?"
                    ).execute(
                        arguments: [Data(duplicate), now, duplicateId]
                    )
                    replies.append(
                        PendingReply(
                            id: duplicateId,
                            message: OutgoingMessage(
                                topic: route.topic,
                                payload: duplicate,
                                properties: route.replyProperties
                            )
                        )
                    )
                }
                return replies
            }
        } catch {
            throw .journal("cannot store the reply of entry \(id): \(error)")
        }
    }

    // MARK: - Replies

    /// Stored replies the broker has not acknowledged yet, oldest first: what is left to publish (after a restart,
    /// or when the publisher's queue overflowed).
    ///
    /// - Parameters:
    ///   - excluding: ids the caller has in hand already (queued, being published, acknowledged but not yet
    ///     marked): they are skipped, and do not count towards `limit`.
    ///   - limit: most replies returned. Default: all of them.
    public func pendingReplies(
        excluding: Set<Int64> = [],
        limit: Int = .max
    ) async throws(WorkerError) -> [PendingReply] {
        guard limit > 0 else { return [] }
        let fetch = limit == .max ? -1 : limit + excluding.count
        do {
            return try await read { db in
                var replies = [PendingReply]()
                let rows = try Row.fetchCursor(
                    db.cachedStatement(
                        sql: """
                            SELECT id, kind, replyTopic, routeSource, correlationData, reply FROM message
                            WHERE state = 'done' ORDER BY id LIMIT ?
                            """
                    ),
                    arguments: [fetch]
                )
                while replies.count < limit, let row = try rows.next() {
                    let id: Int64 = row["id"]
                    if excluding.contains(id) { continue }
                    let correlationData: Data? = row["correlationData"]
                    let route = ReplyRoute(
                        topic: row["replyTopic"],
                        source: ReplyRoute.Source(rawValue: row["routeSource"]) ?? .defaultTopic,
                        correlationData: correlationData.map { Array($0) }
                    )
                    let reply: Data = row["reply"] ?? Data()
                    replies.append(
                        PendingReply(
                            id: id,
                            message: OutgoingMessage(
                                topic: route.topic,
                                payload: Array(reply),
                                properties: route.replyProperties
                            ),
                            kind: PendingReply.kind(ofRow: row["kind"])
                        )
                    )
                }
                return replies
            }
        } catch {
            throw .journal("cannot read pending replies: \(error)")
        }
    }

    /// A stored reply or dead letter can never be published (the broker or libmosquitto refuses that message, not
    /// the connection): it is recorded as undeliverable with the reason and never tried again; `notice`, when given,
    /// is stored in the same transaction, to be published in its place (see ``PendingReply/Kind``).
    ///
    /// The entry keeps its reply: a duplicate of the command, arriving on a route that works, is answered with it.
    /// - Returns: the stored notice, to publish.
    @discardableResult
    public func markUndeliverable(
        _ id: Int64,
        reason: String,
        notice: OutgoingMessage?
    ) async throws(WorkerError) -> PendingReply? {
        do {
            return try await write { db -> PendingReply? in
                let now = Date().timeIntervalSince1970
                try db.execute(
                    sql: """
                        UPDATE message SET state = 'undeliverable', deliveryError = ?, repliedAt = ?, payload = NULL
                        WHERE id = ?
                        """,
                    arguments: [reason, now, id]
                )
                guard let notice else { return nil }
                try db.execute(
                    sql: """
                        INSERT INTO message (kind, state, originalId, receivedAt, replyTopic, routeSource, correlationData,
                                             reply, completedAt)
                        VALUES ('notice', 'done', ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, now, notice.topic, ReplyRoute.Source.defaultTopic.rawValue,
                        notice.properties.correlationData.map { Data($0) }, Data(notice.payload), now,
                    ]
                )
                return PendingReply(id: db.lastInsertedRowID, message: notice, kind: .notice)
            }
        } catch {
            throw .journal("cannot mark entry \(id) undeliverable: \(error)")
        }
    }

    /// The broker acknowledged these replies: nothing is left to do for those entries (they stay for
    /// deduplication). Many at once, in one transaction.
    public func markReplied(_ ids: [Int64]) async throws(WorkerError) {
        guard !ids.isEmpty else { return }
        do {
            try await write { db in
                let now = Date().timeIntervalSince1970
                let statement = try db.cachedStatement(
                    sql: "UPDATE message SET state = 'replied', repliedAt = ?, payload = NULL WHERE id = ?"
                )
                for id in ids { try statement.execute(arguments: [now, id]) }
            }
        } catch {
            throw .journal("cannot mark \(ids.count) entries replied: \(error)")
        }
    }

    // MARK: - Cancellation

    /// A write that the caller's cancellation cannot interrupt (see ``uncancellable(_:)``).
    private func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let database = database
        return try await Self.uncancellable { try await database.write(updates) }
    }

    /// A read that the caller's cancellation cannot interrupt (see ``uncancellable(_:)``): a dispatcher read
    /// during shutdown must not look like a broken journal.
    private func read<T: Sendable>(_ value: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let database = database
        return try await Self.uncancellable { try await database.read(value) }
    }

    /// Runs a database access; if GRDB ends it with `CancellationError`, runs it again in a task of its own, which
    /// the caller's cancellation does not reach.
    ///
    /// GRDB ends an async access with `CancellationError` (rolling its transaction back) when the awaiting task is
    /// cancelled, and the worker cancels its tasks when it shuts down: exactly when a call's outcome or a reply's
    /// acknowledgement must still be recorded. Repeating is safe: that error means the transaction did not
    /// commit. The common path pays nothing for it.
    private static func uncancellable<T: Sendable>(
        _ access: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        do {
            return try await access()
        } catch is CancellationError {
            return try await Task { try await access() }.value
        }
    }

    // MARK: - Housekeeping

    /// Deletes finished entries (replied or undeliverable) older than the retention window, and the oldest beyond
    /// `maxEntries`.
    ///
    /// - Returns: how many entries were deleted.
    @discardableResult
    public func prune(now: Date) async throws(WorkerError) -> Int {
        let cutoff = now.timeIntervalSince1970 - configuration.retention.seconds
        let maxEntries = configuration.maxEntries
        do {
            return try await write { db in
                // Finished entries: acknowledged, or undeliverable (nothing more will happen to those either).
                try db.execute(
                    sql: "DELETE FROM message WHERE state IN ('replied', 'undeliverable') AND receivedAt < ?",
                    arguments: [cutoff]
                )
                var deleted = db.changesCount
                let finished =
                    try Int.fetchOne(
                        db,
                        sql: "SELECT COUNT(*) FROM message WHERE state IN ('replied', 'undeliverable')"
                    ) ?? 0
                if finished > maxEntries {
                    try db.execute(
                        sql: """
                            DELETE FROM message WHERE id IN
                                (SELECT id FROM message WHERE state IN ('replied', 'undeliverable') ORDER BY id LIMIT ?)
                            """,
                        arguments: [finished - maxEntries]
                    )
                    deleted += db.changesCount
                }
                return deleted
            }
        } catch {
            throw .journal("cannot prune the journal: \(error)")
        }
    }

    /// Entries by state, for tests, logs and readiness.
    public func counts() async throws(WorkerError) -> [String: Int] {
        do {
            return try await read { db in
                var counts = [String: Int]()
                for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM message GROUP BY state") {
                    counts[row["state"]] = row["n"]
                }
                return counts
            }
        } catch {
            throw .journal("cannot count entries: \(error)")
        }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
