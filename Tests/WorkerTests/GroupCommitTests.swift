// SPDX-License-Identifier: Apache-2.0
import GRDB
import Synchronization
import Testing
import Worker

/// Group commit against an in-memory SQLite database: many concurrent writers share transactions, each write
/// stays atomic on its own, a failing one fails alone.
@Suite("Group commit")
struct GroupCommitTests {
    private static func database() throws -> DatabaseQueue {
        let database = try DatabaseQueue()
        try database.write { db in try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)") }
        return database
    }

    @Test("200 concurrent writes: every one committed and answered with its own value, in fewer transactions")
    func concurrentWrites() async throws {
        let database = try Self.database()
        let counter = CommitCounter()
        database.add(transactionObserver: counter, extent: .databaseLifetime)
        let group = GroupCommit(database: database)
        let values = try await withThrowingTaskGroup(of: Int64.self) { tasks in
            for index in 0..<200 {
                tasks.addTask {
                    try await group.write { db in
                        try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["v\(index)"])
                        return db.lastInsertedRowID
                    }
                }
            }
            return try await tasks.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(Set(values).count == 200, "each caller got its own row id")
        #expect(try await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") } == 200)
        let transactions = counter.commits.withLock { $0 }
        print("group commit: 200 writes in \(transactions) transactions")
        #expect(transactions >= 1 && transactions < 200, "writes that waited shared a transaction")
    }

    struct Refused: Error {}

    @Test("a write that fails is rolled back alone; its caller gets the error, the others commit")
    func failingWrite() async throws {
        let database = try Self.database()
        let group = GroupCommit(database: database)
        let results = await withTaskGroup(of: (Int, Bool).self) { tasks in
            for index in 0..<50 {
                tasks.addTask {
                    do {
                        try await group.write { db in
                            try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["v\(index)"])
                            // A partial write, then a failure: the savepoint must undo the insert above.
                            if index % 10 == 3 { throw Refused() }
                        }
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            return await tasks.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.filter { !$0.value }.keys.sorted() == [3, 13, 23, 33, 43])
        let stored = try await database.read { db in try String.fetchAll(db, sql: "SELECT v FROM t") }
        #expect(stored.count == 45)
        #expect(!stored.contains("v3") && !stored.contains("v43"))
    }
}

/// Counts committed transactions.
private final class CommitCounter: TransactionObserver, Sendable {
    let commits = Mutex(0)
    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { commits.withLock { $0 += 1 } }
    func databaseDidRollback(_ db: Database) {}
}
