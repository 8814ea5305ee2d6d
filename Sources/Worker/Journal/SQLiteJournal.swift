// SPDX-License-Identifier: Apache-2.0
import Foundation
import GRDB
import Synchronization

/// The journal in one SQLite database (WAL mode) through GRDB: the ``CommandJournal`` of a single worker.
///
/// A file journal is a `DatabasePool`: the dispatcher's and the publisher's reads run on reader connections,
/// so they never make the MQTT callback's write (the PUBACK waits for it) wait; writes are serialised by the
/// pool's writer. An in-memory journal (benchmarks only) is a `DatabaseQueue`.
///
/// Tables (schema v4): `message` (every message taken in, with its reply), `platformCall` (every call, with its
/// result and, since v4, the device names it sent), `callPart` (which command segments each call carried),
/// `segmentOutcome` (the latest outcome of each segment of a command not answered yet). ``SQLiteJournalReader``
/// reads the same file read-only, for `ota-cancel-worker journal`.
public final class SQLiteJournal: CommandJournal {
    let database: any DatabaseWriter
    /// The dispatcher's writes, committed in groups (see ``GroupCommit``).
    let grouped: GroupCommit
    public let configuration: JournalConfiguration
    /// Duplicates waiting for their original's reply. Read and changed only inside write transactions (which the
    /// writer serialises), so that a command's completion skips the query for its duplicates when none wait.
    let waitingDuplicates = Mutex(0)

    /// Opens (or creates) the journal and brings its schema up to date.
    public init(configuration: JournalConfiguration) throws(WorkerError) {
        self.configuration = configuration
        var config = Configuration()
        config.label = "ota-cancel-journal"
        let synchronous = configuration.synchronous.pragma
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            if let path = configuration.path {
                // DatabasePool uses WAL mode.
                database = try DatabasePool(path: path, configuration: config)
            } else {
                database = try DatabaseQueue(configuration: config)
            }
            try Self.migrator.migrate(database)
            let waiting = try database.read { db in
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM message WHERE state = ?",
                    arguments: [MessageState.waiting]
                ) ?? 0
            }
            waitingDuplicates.withLock { $0 = waiting }
        } catch {
            throw .journal("cannot open the journal at \(configuration.path ?? ":memory:"): \(error)")
        }
        grouped = GroupCommit(database: database)
    }

    public var location: String { configuration.path ?? ":memory:" }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE message (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        kind TEXT NOT NULL,            -- MessageKind
                        state TEXT NOT NULL,           -- MessageState
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
                        retryAt REAL,                  -- unused since v3
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
        migrator.registerMigration("v3") { db in
            // Calls, not commands: a call may carry several commands' segments. The per-command outcomes of v2
            // are the segments' outcomes (a v2 batch is a v3 segment: same cut of the device list).
            try db.execute(
                sql: """
                    ALTER TABLE call RENAME TO segmentOutcome;
                    ALTER TABLE segmentOutcome RENAME COLUMN batch TO segment;
                    CREATE TABLE platformCall (
                        id INTEGER PRIMARY KEY,
                        state TEXT NOT NULL,           -- CallState: answered | interrupted
                        productKey TEXT NOT NULL,
                        firmwareId TEXT NOT NULL,
                        jobId TEXT,
                        iotInstanceId TEXT,
                        deviceCount INTEGER NOT NULL,
                        shared INTEGER NOT NULL,
                        sentAt REAL NOT NULL,
                        answeredAt REAL,
                        succeeded INTEGER,
                        code TEXT,
                        message TEXT,
                        httpStatus INTEGER,
                        attempts INTEGER,
                        requestId TEXT
                    );
                    CREATE TABLE callPart (
                        callId INTEGER NOT NULL REFERENCES platformCall(id) ON DELETE CASCADE,
                        messageId INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                        segment INTEGER NOT NULL,
                        PRIMARY KEY (callId, messageId, segment)
                    ) WITHOUT ROWID;
                    CREATE INDEX callPartMessage ON callPart(messageId);
                    """
            )
        }
        migrator.registerMigration("v4") { db in
            // The names each call sent (a JSON array), so that `journal show` can say which devices a call carried:
            // a call's names are not a segment's cut (coalescing, bisection, exclusions). NULL for calls stored
            // before v4.
            try db.execute(sql: "ALTER TABLE platformCall ADD COLUMN deviceNames BLOB")
        }
        return migrator
    }

    // MARK: - Access

    /// A write that the caller's cancellation cannot interrupt (see ``uncancellable(_:)``).
    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let database = database
        return try await Self.uncancellable { try await database.write(updates) }
    }

    /// A read that the caller's cancellation cannot interrupt (see ``uncancellable(_:)``): a dispatcher read
    /// during shutdown must not look like a broken journal.
    func read<T: Sendable>(_ value: @escaping @Sendable (Database) throws -> T) async throws -> T {
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
    static func uncancellable<T: Sendable>(
        _ access: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        do {
            return try await access()
        } catch is CancellationError {
            return try await Task { try await access() }.value
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
