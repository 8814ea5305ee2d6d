// SPDX-License-Identifier: Apache-2.0
package import GRDB
import Synchronization

/// Group commit: the dispatcher's writes (calls sent, settlements) that arrive while a transaction is being written
/// wait for the next one, and that one commits them all. Under load one commit serves many calls; alone a write
/// commits at once, as before.
///
/// Each write runs in a savepoint of its own, so one that fails is rolled back alone and the others still commit;
/// the failure goes to its own caller. The transaction runs in a task of its own: a caller's cancellation (a
/// worker shutting down) cannot interrupt a write it handed over.
package final class GroupCommit: Sendable {
    /// A write waiting for its transaction: runs in it, then tells its caller.
    private struct Item: Sendable {
        /// Runs the write in a savepoint; returns how to resume the caller (after the commit).
        var run: @Sendable (Database) -> @Sendable () -> Void
        /// Resumes the caller with an error when the whole transaction failed.
        var fail: @Sendable (any Error) -> Void
    }

    private struct State: Sendable {
        var queue: [Item] = []
        var flushing = false
    }

    private let database: any DatabaseWriter
    private let state = Mutex(State())

    package init(database: any DatabaseWriter) {
        self.database = database
    }

    /// Runs `updates` in the next transaction (in a savepoint of its own) and returns its value once committed.
    ///
    /// When no transaction is being written the caller writes one itself, with whatever else is queued: a lone
    /// write costs no more than a plain one. Otherwise it queues and waits for the writer of the next one.
    package func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let leads = state.withLock { state -> Bool in
            defer { state.flushing = true }
            return !state.flushing
        }
        guard leads else { return try await queue(updates) }
        let own = Mutex<Result<T, any Error>?>(nil)
        let mine = Item(
            run: { db in
                own.withLock { $0 = Result { try Self.inSavepoint(db, updates) } }
                return {}
            },
            fail: { error in own.withLock { $0 = .failure(error) } }
        )
        await commit(
            [mine]
                + state.withLock { state in
                    defer { state.queue.removeAll(keepingCapacity: true) }
                    return state.queue
                }
        )
        // Writes that queued meanwhile get a writer of their own; else the next caller leads.
        let more = state.withLock { state -> Bool in
            if state.queue.isEmpty { state.flushing = false }
            return state.flushing
        }
        if more { Task { await self.flush() } }
        return try own.withLock { $0 }!.get()
    }

    /// Queues a write for the transaction after the one being written.
    private func queue<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let item = Item(
                run: { db in
                    do {
                        let value = try Self.inSavepoint(db, updates)
                        return { continuation.resume(returning: value) }
                    } catch {
                        return { continuation.resume(throwing: error) }
                    }
                },
                fail: { error in continuation.resume(throwing: error) }
            )
            let start = state.withLock { state -> Bool in
                state.queue.append(item)
                defer { state.flushing = true }
                return !state.flushing
            }
            // The writer finished between this caller's look and its queueing: write it from a task.
            if start { Task { await self.flush() } }
        }
    }

    private static func inSavepoint<T>(_ db: Database, _ updates: (Database) throws -> T) throws -> T {
        var value: T?
        try db.inSavepoint {
            value = try updates(db)
            return .commit
        }
        return value!
    }

    /// One transaction for `batch`, which the caller's cancellation cannot interrupt (see
    /// ``SQLiteJournal/uncancellable(_:)``); then each caller is told.
    private func commit(_ batch: [Item]) async {
        let database = database
        do {
            let resumes = try await SQLiteJournal.uncancellable {
                try await database.write { db in batch.map { $0.run(db) } }
            }
            for resume in resumes { resume() }
        } catch {
            for item in batch { item.fail(error) }
        }
    }

    /// Commits what is queued, again and again, until nothing waits.
    private func flush() async {
        while true {
            let batch = state.withLock { state -> [Item] in
                let batch = state.queue
                state.queue.removeAll(keepingCapacity: true)
                if batch.isEmpty { state.flushing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            await commit(batch)
        }
    }
}
