// SPDX-License-Identifier: Apache-2.0
public import Foundation
import GRDB
import Mosquitto

extension SQLiteJournal {
    public func pendingReplies(
        excluding: Set<Int64> = [],
        limit: Int = .max
    ) async throws(WorkerError) -> [PendingReply] {
        guard limit > 0 else { return [] }
        let fetch = limit == .max ? -1 : limit + excluding.count
        do {
            return try await read { db in
                var replies = [PendingReply]()
                let rows = try StoredMessage.fetchCursor(
                    db.cachedStatement(sql: "SELECT * FROM message WHERE state = ? ORDER BY id LIMIT ?"),
                    arguments: [MessageState.done, fetch]
                )
                while replies.count < limit, let message = try rows.next() {
                    if excluding.contains(message.id) { continue }
                    replies.append(message.pendingReply)
                }
                return replies
            }
        } catch {
            throw .journal("cannot read pending replies: \(error)")
        }
    }

    /// The entry keeps its reply: a duplicate of the command, arriving on a route that works, is answered with it.
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
                        UPDATE message SET state = ?, deliveryError = ?, repliedAt = ?, payload = NULL
                        WHERE id = ?
                        """,
                    arguments: [MessageState.undeliverable, reason, now, id]
                )
                guard let notice else { return nil }
                try db.execute(
                    sql: """
                        INSERT INTO message (kind, state, originalId, receivedAt, replyTopic, routeSource, correlationData,
                                             reply, completedAt)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        MessageKind.notice, MessageState.done, id, now, notice.topic,
                        ReplyRoute.Source.defaultTopic.rawValue, notice.properties.correlationData.map { Data($0) },
                        Data(notice.payload), now,
                    ]
                )
                return PendingReply(id: db.lastInsertedRowID, message: notice, kind: .notice)
            }
        } catch {
            throw .journal("cannot mark entry \(id) undeliverable: \(error)")
        }
    }

    /// Nothing is left to do for those entries (they stay for deduplication). Many at once, in one transaction.
    public func markReplied(_ ids: [Int64]) async throws(WorkerError) {
        guard !ids.isEmpty else { return }
        do {
            try await write { db in
                let now = Date().timeIntervalSince1970
                let statement = try db.cachedStatement(
                    sql: "UPDATE message SET state = ?, repliedAt = ?, payload = NULL WHERE id = ?"
                )
                for id in ids { try statement.execute(arguments: [MessageState.replied, now, id]) }
            }
        } catch {
            throw .journal("cannot mark \(ids.count) entries replied: \(error)")
        }
    }
}

extension SQLiteJournal {
    /// Deletes finished entries (replied or undeliverable) older than the retention window, and the oldest beyond
    /// `maxEntries`, with their call parts; then the calls that carry nothing kept.
    public func prune(now: Date) async throws(WorkerError) -> Int {
        let cutoff = now.timeIntervalSince1970 - configuration.retention.seconds
        let maxEntries = configuration.maxEntries
        let finished = [MessageState.replied, MessageState.undeliverable]
        do {
            return try await write { db in
                try db.execute(
                    sql: "DELETE FROM message WHERE state IN (?, ?) AND receivedAt < ?",
                    arguments: [finished[0], finished[1], cutoff]
                )
                var deleted = db.changesCount
                let count =
                    try Int.fetchOne(
                        db,
                        sql: "SELECT COUNT(*) FROM message WHERE state IN (?, ?)",
                        arguments: [finished[0], finished[1]]
                    ) ?? 0
                if count > maxEntries {
                    try db.execute(
                        sql: """
                            DELETE FROM message WHERE id IN
                                (SELECT id FROM message WHERE state IN (?, ?) ORDER BY id LIMIT ?)
                            """,
                        arguments: [finished[0], finished[1], count - maxEntries]
                    )
                    deleted += db.changesCount
                }
                if deleted > 0 {
                    try db.execute(
                        sql: """
                            DELETE FROM platformCall
                            WHERE NOT EXISTS (SELECT 1 FROM callPart WHERE callId = platformCall.id)
                            """
                    )
                }
                return deleted
            }
        } catch {
            throw .journal("cannot prune the journal: \(error)")
        }
    }

    public func summary() async throws(WorkerError) -> JournalSummary {
        do {
            return try await read { db in
                var summary = JournalSummary()
                for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM message GROUP BY state") {
                    let count: Int = row["n"]
                    switch MessageState(rawValue: row["state"]) {
                    case .accepted: summary.unanswered = count
                    case .waiting: summary.waitingDuplicates = count
                    case .done: summary.repliesToPublish = count
                    case .replied: summary.finished = count
                    case .undeliverable: summary.undeliverable = count
                    case nil: break
                    }
                }
                summary.calls = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM platformCall") ?? 0
                return summary
            }
        } catch {
            throw .journal("cannot count entries: \(error)")
        }
    }

    public func backlog() async throws(WorkerError) -> JournalBacklog {
        do {
            return try await read { db in
                // Each a range of the (state, id) index: the finished entries (up to a million) are not counted.
                let count = { (state: MessageState) throws -> Int in
                    try Int.fetchOne(
                        db,
                        sql: "SELECT COUNT(*) FROM message WHERE state = ?",
                        arguments: [state.rawValue]
                    )
                        ?? 0
                }
                var backlog = JournalBacklog()
                backlog.unanswered = try count(.accepted)
                backlog.waitingDuplicates = try count(.waiting)
                backlog.repliesToPublish = try count(.done)
                // Ids grow with arrival: the lowest unanswered id is the oldest command.
                backlog.oldestUnansweredAt = try Double.fetchOne(
                    db,
                    sql: "SELECT receivedAt FROM message WHERE state = ? ORDER BY id LIMIT 1",
                    arguments: [MessageState.accepted.rawValue]
                ).map { Date(timeIntervalSince1970: $0) }
                return backlog
            }
        } catch {
            throw .journal("cannot read the backlog: \(error)")
        }
    }
}
