// SPDX-License-Identifier: Apache-2.0
import Foundation
import GRDB

/// Reads a worker's SQLite journal (``SQLiteJournal``'s file) as an audit trail, without ever writing to it:
/// the ``JournalAudit`` of `ota-cancel-worker journal`.
///
/// The file is opened with `SQLITE_OPEN_READONLY`, as one connection, each question one read transaction (a
/// consistent snapshot of what the worker had committed). A read-only connection never takes the write lock, so
/// the worker's writes never wait for it; in WAL mode they do not block it either (a busy moment, such as the
/// worker rebuilding the WAL index after a crash, is waited out for up to 5 s).
///
/// What read-only SQLite needs for a WAL database (SQLite ≥ 3.22; checked by this type's tests):
/// - `-wal` and `-shm` present (a worker runs, or one was killed): read as usual. `-shm` need not be writable
///   (SQLite then keeps the WAL index in private memory); the reader sees everything committed to the WAL.
/// - both absent (the last worker closed cleanly, which checkpoints and deletes them): SQLite opens them anyway,
///   creating an empty `-wal` and a `-shm` (with the database file's mode and, under root, its owner) when the
///   folder lets it. Those are SQLite's own companions, not journal content; the worker uses them at its next
///   start. That is chosen over `immutable=1`, which reads without any lock: a worker starting during a long
///   export could checkpoint under it.
/// - absent and not creatable (a folder this user cannot write: a backup copy, read-only media): SQLite refuses
///   with `SQLITE_READONLY`/`SQLITE_CANTOPEN`; the reader then opens the file with `immutable=1`, safe there
///   because no `-wal` means no worker holds the journal open, and none could start without creating it.
public final class SQLiteJournalReader: JournalAudit {
    /// How the file was opened.
    public enum Access: String, Sendable, Hashable {
        /// Read-only, with SQLite's locks: safe while a worker writes.
        case shared
        /// Read-only and `immutable=1` (no locks): a journal no worker holds open (see the type's discussion).
        case immutable
    }

    let database: DatabaseQueue
    public let location: String
    public let access: Access
    /// The last migration applied (`v3`, `v4`, ...).
    public let schemaVersion: String
    /// Whether `platformCall.deviceNames` exists (schema v4 and later).
    let hasCallDeviceNames: Bool

    /// Opens the journal at `path` read-only.
    ///
    /// - Throws: ``WorkerError/journal(_:file:line:)`` when the file is missing, is not a journal, was written by
    ///   a worker too old to read (before schema v3), or cannot be read.
    public init(path: String) throws(WorkerError) {
        location = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw .journal("there is no journal at \(path)")
        }
        var opened: (DatabaseQueue, Access, [String], Bool)
        do {
            opened = try Self.open(path, immutable: false)
        } catch let error as DatabaseError
            where [.SQLITE_READONLY, .SQLITE_CANTOPEN].contains(error.resultCode)
            && !FileManager.default.fileExists(atPath: path + "-wal")
        {
            do {
                opened = try Self.open(path, immutable: true)
            } catch {
                throw .journal("cannot read the journal at \(path): \(error)")
            }
        } catch {
            throw .journal("cannot read the journal at \(path): \(error)")
        }
        let (database, access, migrations, hasDeviceNames) = opened
        guard migrations.contains("v3") else {
            throw .journal(
                "the journal at \(path) was written by an older worker (schema \(migrations.last ?? "none")): start "
                    + "a current worker on it once, which brings it up to date"
            )
        }
        self.database = database
        self.access = access
        schemaVersion = migrations.last ?? "v3"
        hasCallDeviceNames = hasDeviceNames
    }

    /// Opens one read-only connection and reads what the queries depend on: the migrations applied and whether
    /// calls have their device names.
    private static func open(
        _ path: String,
        immutable: Bool
    ) throws -> (DatabaseQueue, Access, [String], Bool) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "ota-cancel-journal-reader"
        configuration.busyMode = .timeout(5)
        let location: String
        if immutable {
            let encoded = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
            location = "file:\(encoded)?immutable=1"
        } else {
            location = path
        }
        let database = try DatabaseQueue(path: location, configuration: configuration)
        let (migrations, hasDeviceNames) = try database.read { db in
            guard try db.tableExists("message"), try db.tableExists("grdb_migrations") else {
                throw DatabaseError(resultCode: .SQLITE_NOTADB, message: "not an ota-cancel-worker journal")
            }
            let migrations = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
            let hasDeviceNames =
                try db.tableExists("platformCall")
                && db.columns(in: "platformCall").contains { $0.name == "deviceNames" }
            return (migrations, hasDeviceNames)
        }
        return (database, immutable ? .immutable : .shared, migrations, hasDeviceNames)
    }

    /// A read transaction: one snapshot of what the worker had committed.
    func read<T: Sendable>(
        _ what: String,
        _ value: @escaping @Sendable (Database) throws -> T
    ) async throws(WorkerError)
        -> T
    {
        do {
            return try await database.read(value)
        } catch {
            throw .journal("cannot read \(what) from the journal at \(location): \(error)")
        }
    }
}
