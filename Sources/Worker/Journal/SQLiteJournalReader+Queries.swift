// SPDX-License-Identifier: Apache-2.0
import Foundation
import GRDB
import JSONSchema

extension SQLiteJournalReader {
    public func entries(
        matching filter: JournalFilter,
        limit: Int?,
        newest: Bool
    ) async throws(WorkerError) -> [JournalEntrySummary] {
        let query = Self.summaryQuery(filter, after: nil, limit: limit, newest: newest, payloads: false)
        let rows = try await read("entries") { db in
            try Row.fetchAll(db, sql: query.sql, arguments: query.arguments).map(Self.summary(from:))
        }
        return newest ? rows.reversed() : rows
    }

    public func details(
        matching filter: JournalFilter,
        after: Int64,
        limit: Int
    ) async throws(WorkerError) -> [JournalEntryDetail] {
        let query = Self.summaryQuery(filter, after: after, limit: max(1, limit), newest: false, payloads: true)
        // A v3 journal has no such column. (An `if`, not a conditional expression: LogFormatTests reads a quoted
        // dotted string followed by a colon as a log key.)
        let deviceNames: String
        if hasCallDeviceNames { deviceNames = "c.deviceNames" } else { deviceNames = "NULL" }
        return try await read("entries") { db in
            let calls = try db.cachedStatement(
                sql: """
                    SELECT c.*, \(deviceNames) AS names, group_concat(p.segment) AS segments
                    FROM callPart p JOIN platformCall c ON c.id = p.callId
                    WHERE p.messageId = ? GROUP BY c.id ORDER BY c.id
                    """
            )
            return try Row.fetchAll(db, sql: query.sql, arguments: query.arguments).map { row in
                var detail = JournalEntryDetail(summary: Self.summary(from: row))
                detail.command = (row["payload"] as Data?).map { Array($0) }
                detail.reply = (row["reply"] as Data?).map { Array($0) }
                detail.calls = try Row.fetchAll(calls, arguments: [detail.summary.id]).map(Self.call(from:))
                return detail
            }
        }
    }

    public func stats(matching filter: JournalFilter) async throws(WorkerError) -> JournalStats {
        let query = Self.summaryQuery(filter, after: nil, limit: nil, newest: false, payloads: false)
        let filtered = filter != JournalFilter()
        return try await read("statistics") { db in
            var stats = JournalStats()
            stats.schemaVersion = self.schemaVersion
            let groups = try Row.fetchAll(
                db,
                sql: """
                    SELECT kind, state, status, COUNT(*) AS n, MIN(receivedAt) AS oldest, MAX(receivedAt) AS newest,
                        MIN(CASE WHEN state IN ('accepted', 'waiting', 'done') THEN receivedAt END) AS oldestPending
                    FROM (\(query.sql)) GROUP BY kind, state, status
                    """,
                arguments: query.arguments
            )
            for row in groups {
                let count: Int = row["n"]
                let kind = Self.kind(row["kind"])
                let progress = Self.progress(row["state"])
                let status = Self.status(row["status"])
                stats.byKind[kind, default: 0] += count
                stats.byProgress[progress, default: 0] += count
                stats.byStatus[status, default: 0] += count
                stats.oldestReceivedAt = Self.earlier(stats.oldestReceivedAt, Self.date(row["oldest"]))
                stats.newestReceivedAt = Self.later(stats.newestReceivedAt, Self.date(row["newest"]))
                stats.oldestPendingAt = Self.earlier(stats.oldestPendingAt, Self.date(row["oldestPending"]))
            }
            let scope =
                filtered
                ? "WHERE id IN (SELECT callId FROM callPart WHERE messageId IN (SELECT id FROM (\(query.sql))))" : ""
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT state, succeeded, COUNT(*) AS n, SUM(attempts) AS attempts, SUM(deviceCount) AS devices
                    FROM platformCall \(scope) GROUP BY state, succeeded
                    """,
                arguments: filtered ? query.arguments : []
            ) {
                let count: Int = row["n"]
                let outcome = Self.outcome(state: row["state"], succeeded: row["succeeded"])
                stats.calls += count
                stats.callsByOutcome[outcome, default: 0] += count
                stats.attempts += row["attempts"] ?? 0
                stats.devicesSent += row["devices"] ?? 0
            }
            return stats
        }
    }

    // MARK: - SQL

    /// The journal's `message` rows with their status word and the fields a list shows, filtered; the JSON
    /// fields are read only from valid JSON (a malformed blob would fail the whole query). The command and reply
    /// bytes come along only with `payloads` (a reply can list 10,000 names).
    static func summaryQuery(
        _ filter: JournalFilter,
        after: Int64?,
        limit: Int?,
        newest: Bool,
        payloads: Bool
    ) -> (sql: String, arguments: StatementArguments) {
        let reply = "CASE WHEN json_valid(CAST(m.reply AS TEXT)) THEN CAST(m.reply AS TEXT) END"
        let command = "CASE WHEN json_valid(CAST(m.payload AS TEXT)) THEN CAST(m.payload AS TEXT) END"
        var conditions = [String]()
        var arguments = StatementArguments()
        if filter.pendingOnly { conditions.append("m.state IN ('accepted', 'waiting', 'done')") }
        if let since = filter.since {
            conditions.append("m.receivedAt >= ?")
            _ = arguments.append(contentsOf: [since.timeIntervalSince1970])
        }
        if let prefix = filter.correlationIdPrefix {
            conditions.append("instr(m.correlationId, ?) = 1")
            _ = arguments.append(contentsOf: [prefix])
        }
        if let correlationId = filter.correlationId {
            conditions.append("m.correlationId = ?")
            _ = arguments.append(contentsOf: [correlationId])
        }
        if let id = filter.id {
            conditions.append("m.id = ?")
            _ = arguments.append(contentsOf: [id])
        }
        if let after {
            conditions.append("m.id > ?")
            _ = arguments.append(contentsOf: [after])
        }
        var outer = [String]()
        if let statuses = filter.statuses {
            let words = statuses.map(\.rawValue).sorted()
            outer.append("status IN (\(words.map { _ in "?" }.joined(separator: ", ")))")
            _ = arguments.append(contentsOf: StatementArguments(words))
        }
        var sql = """
            SELECT * FROM (
                SELECT m.id, m.kind, m.state, m.receivedAt, m.deadline, m.completedAt, m.repliedAt, m.replyTopic,
                    m.correlationId, m.originalId, m.deliveryError, \(payloads ? "m.payload, m.reply" : "NULL AS payload, NULL AS reply"),
                    CASE
                        WHEN m.state = 'accepted' THEN 'running'
                        WHEN m.state = 'waiting' THEN 'waiting'
                        WHEN m.kind = 'deadLetter' THEN 'dead-letter'
                        WHEN m.kind = 'notice' THEN 'notice'
                        ELSE json_extract(\(reply), '$.status')
                    END AS status,
                    coalesce(json_extract(\(command), '$.productKey'), json_extract(\(reply), '$.productKey'))
                        AS productKey,
                    coalesce(json_extract(\(command), '$.firmwareId'), json_extract(\(reply), '$.firmwareId'))
                        AS firmwareId,
                    coalesce(json_array_length(\(command), '$.deviceNames'), json_extract(\(reply), '$.deviceCount'))
                        AS deviceCount,
                    (SELECT COUNT(DISTINCT p.callId) FROM callPart p WHERE p.messageId = m.id) AS calls
                FROM message m
                \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            )
            \(outer.isEmpty ? "" : "WHERE " + outer.joined(separator: " AND "))
            ORDER BY id \(newest ? "DESC" : "ASC")
            """
        if let limit {
            sql += " LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
        }
        return (sql, arguments)
    }

    // MARK: - Rows to values

    static func summary(from row: Row) -> JournalEntrySummary {
        let kind = kind(row["kind"])
        let progress = progress(row["state"])
        var summary = JournalEntrySummary(
            id: row["id"],
            kind: kind,
            progress: progress,
            status: status(row["status"]),
            receivedAt: Date(timeIntervalSince1970: row["receivedAt"]),
            replyTopic: row["replyTopic"]
        )
        summary.correlationId = row["correlationId"]
        summary.deadline = date(row["deadline"])
        summary.completedAt = date(row["completedAt"])
        summary.repliedAt = date(row["repliedAt"])
        summary.originalId = row["originalId"]
        summary.deliveryError = row["deliveryError"]
        summary.productKey = row["productKey"]
        summary.firmwareId = row["firmwareId"]
        summary.deviceCount = row["deviceCount"]
        summary.calls = row["calls"] ?? 0
        return summary
    }

    static func call(from row: Row) -> JournalCallRecord {
        var call = JournalCallRecord(
            id: row["id"],
            outcome: outcome(state: row["state"], succeeded: row["succeeded"]),
            productKey: row["productKey"],
            firmwareId: row["firmwareId"],
            sentAt: Date(timeIntervalSince1970: row["sentAt"]),
            deviceCount: row["deviceCount"],
            shared: row["shared"]
        )
        call.requestId = row["requestId"]
        call.attempts = row["attempts"]
        call.code = row["code"]
        call.message = row["message"]
        call.httpStatus = row["httpStatus"]
        call.jobId = row["jobId"]
        call.iotInstanceId = row["iotInstanceId"]
        call.answeredAt = date(row["answeredAt"])
        if let names = row["names"] as Data?, case .array(let values)? = try? JSONParser.parse(Array(names)) {
            call.deviceNames = values.compactMap(\.stringValue)
        }
        let segments: String? = row["segments"]
        call.segments = (segments ?? "").split(separator: ",").compactMap { Int($0) }.sorted()
        return call
    }

    static func kind(_ raw: String) -> JournalEntryKind {
        switch MessageKind(rawValue: raw) {
        case .command: .command
        case .duplicate: .duplicate
        case .deadLetter: .deadLetter
        case .notice: .notice
        case .answer, nil: .answer
        }
    }

    static func progress(_ raw: String) -> JournalProgress {
        switch MessageState(rawValue: raw) {
        case .accepted: .running
        case .waiting: .waiting
        case .done: .replyStored
        case .replied: .replied
        case .undeliverable, nil: .undeliverable
        }
    }

    /// The status word; a reply whose status this version does not know counts as `failed` (never as success).
    static func status(_ raw: String?) -> JournalEntryStatus {
        raw.flatMap(JournalEntryStatus.init(rawValue:)) ?? .failed
    }

    static func outcome(state: String, succeeded: Bool?) -> JournalCallRecord.Outcome {
        if CallState(rawValue: state) == .interrupted { return .interrupted }
        return succeeded == true ? .succeeded : .failed
    }

    static func date(_ seconds: Double?) -> Date? { seconds.map { Date(timeIntervalSince1970: $0) } }

    static func earlier(_ a: Date?, _ b: Date?) -> Date? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    static func later(_ a: Date?, _ b: Date?) -> Date? {
        guard let a else { return b }
        guard let b else { return a }
        return max(a, b)
    }
}
