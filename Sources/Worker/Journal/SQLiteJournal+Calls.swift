// SPDX-License-Identifier: Apache-2.0
public import Foundation
import GRDB
import JSONSchema
import Synchronization
import Mosquitto

extension SQLiteJournal {
    public func unansweredCommands(after id: Int64, limit: Int) async throws(WorkerError) -> [JournaledCommand] {
        guard limit > 0 else { return [] }
        let loaded: [(StoredMessage, [Int: BatchOutcome], [CallTrace])]
        do {
            loaded = try await read { db in
                let messages = try StoredMessage.fetchAll(
                    db.cachedStatement(
                        sql: "SELECT * FROM message WHERE state = ? AND id > ? ORDER BY id LIMIT ?"
                    ),
                    arguments: [MessageState.accepted, id, limit]
                )
                guard let first = messages.first?.id, let last = messages.last?.id else { return [] }
                var outcomes = [Int64: [Int: BatchOutcome]]()
                for record in try SegmentOutcomeRecord.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM segmentOutcome WHERE messageId BETWEEN ? AND ?"),
                    arguments: [first, last]
                ) {
                    outcomes[record.messageId, default: [:]][record.segment] = try JSONDecoder().decode(
                        BatchOutcome.self,
                        from: record.outcome
                    )
                }
                var calls = [Int64: [CallTrace]]()
                for row in try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT p.messageId, c.id, c.requestId, c.attempts, c.shared FROM callPart p
                            JOIN platformCall c ON c.id = p.callId
                            WHERE p.messageId BETWEEN ? AND ? AND c.state = ? ORDER BY c.id
                            """
                    ),
                    arguments: [first, last, CallState.answered]
                ) {
                    let trace = CallTrace(
                        callId: row["id"],
                        requestId: row["requestId"],
                        attempts: row["attempts"] ?? 0,
                        shared: row["shared"]
                    )
                    calls[row["messageId"], default: []].append(trace)
                }
                return messages.map { ($0, outcomes[$0.id] ?? [:], calls[$0.id] ?? []) }
            }
        } catch {
            throw .journal("cannot read unanswered commands: \(error)")
        }
        var commands = [JournaledCommand]()
        commands.reserveCapacity(loaded.count)
        for (message, outcomes, calls) in loaded {
            guard let payload = message.payload, let value = try? JSONParser.parse(payload),
                let command = CancelCommand(validated: value)
            else {
                // Only a journal written by another version could hold this.
                throw .journal("journal entry \(message.id) holds a command this version cannot read")
            }
            let accepted = AcceptedCommand(
                command: command,
                correlationId: message.correlationId,
                route: message.route,
                receivedAt: message.receivedAt,
                deadline: message.deadline,
                payload: payload,
                digest: []
            )
            commands.append(
                JournaledCommand(
                    id: message.id,
                    accepted: accepted,
                    outcomes: outcomes,
                    calls: calls,
                    retryRound: message.retryRound
                )
            )
        }
        return commands
    }

    public func lastCallId() async throws(WorkerError) -> Int64 {
        do {
            return try await read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM platformCall") ?? 0 }
        } catch {
            throw .journal("cannot read the last call id: \(error)")
        }
    }

    public func record(_ settlement: Settlement, at now: Date) async throws(WorkerError) -> [PendingReply] {
        guard !settlement.isEmpty else { return [] }
        let completedIds = Set(settlement.completed.map(\.id))
        let outcomes: [SegmentOutcomeRecord]
        let replies: [(id: Int64, route: ReplyRoute, payload: [UInt8], outcomesStored: Bool)]
        do {
            outcomes = try settlement.outcomes.filter { !completedIds.contains($0.key.command) }.map {
                SegmentOutcomeRecord(
                    messageId: $0.key.command,
                    segment: $0.key.index,
                    outcome: try JSONEncoder().encode($0.value)
                )
            }
            replies = settlement.completed.map {
                ($0.id, $0.accepted.route, $0.reply.jsonValue.serializedBytes(), $0.outcomesStored)
            }
        } catch {
            throw .journal("cannot encode segment outcomes: \(error)")
        }
        let call = settlement.call
        let callDevices = call.map { Data(JSONValue.strings($0.plan.deviceNames).serializedBytes()) }
        let stamp = now.timeIntervalSince1970
        let sentAt = (settlement.call?.plan.sentAt ?? now).timeIntervalSince1970
        do {
            return try await grouped.write { db -> [PendingReply] in
                if let (plan, result) = call {
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO platformCall (id, state, productKey, firmwareId, jobId, iotInstanceId,
                                deviceCount, shared, sentAt, answeredAt, succeeded, code, message, httpStatus,
                                attempts, requestId, deviceNames)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """
                    ).execute(
                        arguments: [
                            plan.id, result.kind == .interrupted ? CallState.interrupted : CallState.answered,
                            plan.key.productKey, plan.key.firmwareId, plan.key.jobId, plan.key.iotInstanceId,
                            plan.deviceNames.count, plan.isShared, sentAt, stamp, result.kind == .succeeded,
                            result.code, result.message, result.httpStatus, result.attempts, result.requestId,
                            callDevices,
                        ]
                    )
                    let part = try db.cachedStatement(
                        sql: "INSERT INTO callPart (callId, messageId, segment) VALUES (?, ?, ?)"
                    )
                    for segment in plan.parts {
                        try part.execute(arguments: [plan.id, segment.command, segment.index])
                    }
                }
                if !outcomes.isEmpty {
                    let save = try db.cachedStatement(
                        sql: "INSERT OR REPLACE INTO segmentOutcome (messageId, segment, outcome) VALUES (?, ?, ?)"
                    )
                    for outcome in outcomes {
                        try save.execute(arguments: [outcome.messageId, outcome.segment, outcome.outcome])
                    }
                }
                var published = [PendingReply]()
                for reply in replies {
                    try db.cachedStatement(
                        sql:
                            "UPDATE message SET state = ?, reply = ?, completedAt = ?, retryAt = NULL WHERE id = ? AND state = ?"
                    ).execute(arguments: [
                        MessageState.done, Data(reply.payload), stamp, reply.id, MessageState.accepted,
                    ])
                    guard db.changesCount == 1 else { continue }
                    if reply.outcomesStored {
                        try db.cachedStatement(sql: "DELETE FROM segmentOutcome WHERE messageId = ?")
                            .execute(arguments: [reply.id])
                    }
                    published.append(
                        PendingReply(
                            id: reply.id,
                            message: OutgoingMessage(
                                topic: reply.route.topic,
                                payload: reply.payload,
                                properties: reply.route.replyProperties
                            )
                        )
                    )
                    published += try self.answerWaitingDuplicates(of: reply.id, reply: reply.payload, at: stamp, db: db)
                }
                return published
            }
        } catch {
            throw .journal("cannot store a dispatcher step: \(error)")
        }
    }

    /// Gives the duplicates waiting for command `id` its reply, marked; returns them to publish.
    private func answerWaitingDuplicates(
        of id: Int64,
        reply: [UInt8],
        at stamp: Double,
        db: Database
    ) throws
        -> [PendingReply]
    {
        guard waitingDuplicates.withLock({ $0 > 0 }) else { return [] }
        let waiting = try StoredMessage.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM message WHERE originalId = ? AND state = ?"),
            arguments: [id, MessageState.waiting]
        )
        guard !waiting.isEmpty else { return [] }
        waitingDuplicates.withLock { $0 -= waiting.count }
        let duplicate = DedupeVerdict.markedDuplicate(reply)
        var replies = [PendingReply]()
        for entry in waiting {
            try db.cachedStatement(sql: "UPDATE message SET state = ?, reply = ?, completedAt = ? WHERE id = ?")
                .execute(arguments: [MessageState.done, Data(duplicate), stamp, entry.id])
            replies.append(
                PendingReply(
                    id: entry.id,
                    message: OutgoingMessage(
                        topic: entry.route.topic,
                        payload: duplicate,
                        properties: entry.route.replyProperties
                    )
                )
            )
        }
        return replies
    }
}
