// SPDX-License-Identifier: Apache-2.0
public import Foundation
import GRDB
import Mosquitto
import Synchronization
import JSONSchema

extension SQLiteJournal {
    /// Journals what intake decided about one message, deduplicating commands (``DedupeVerdict``).
    ///
    /// - Important: called on the MQTT loop thread; one short write transaction.
    public func record(_ decision: IntakeDecision, at now: Date) throws(WorkerError) -> JournalVerdict {
        do {
            return try database.write { db -> JournalVerdict in
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
                        kind: .answer,
                        message: message,
                        route: route,
                        correlationId: reply.correlationId,
                        receivedAt: reply.receivedAt,
                        db: db
                    )
                    return .publish(
                        PendingReply(id: id, message: message, kind: .reply),
                        reply.status == .expired ? .expired : .rejected
                    )
                case .deadLetter(let message):
                    let route = ReplyRoute(
                        topic: message.topic,
                        source: .defaultTopic,
                        correlationData: message.properties.correlationData
                    )
                    let id = try insertStored(
                        kind: .deadLetter,
                        message: message,
                        route: route,
                        correlationId: nil,
                        receivedAt: now,
                        db: db
                    )
                    return .publish(PendingReply(id: id, message: message, kind: .deadLetter), .deadLetter)
                }
            }
        } catch let error as WorkerError {
            throw error
        } catch {
            throw .journal("cannot record a message: \(error)")
        }
    }

    private func recordCommand(_ accepted: AcceptedCommand, db: Database, now: Date) throws -> JournalVerdict {
        let key = accepted.dedupeKey.map { Data($0) }
        if let key {
            let since = now.timeIntervalSince1970 - configuration.retention.seconds
            let original = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT id, digest, state, reply, receivedAt FROM message
                        WHERE kind = ? AND dedupeKey = ? AND receivedAt >= ? ORDER BY id LIMIT 1
                        """
                ),
                arguments: [MessageKind.command, key, since]
            ).map { row -> DedupeVerdict.Original in
                let digest: Data? = row["digest"]
                let reply: Data? = row["reply"]
                return DedupeVerdict.Original(
                    id: row["id"],
                    digest: digest.map { Array($0) } ?? [],
                    state: row["state"],
                    reply: reply.map { Array($0) },
                    receivedAt: Date(timeIntervalSince1970: row["receivedAt"])
                )
            }
            switch DedupeVerdict.decide(digest: accepted.digest, original: original) {
            case .new:
                break
            case .conflict(let originalReceivedAt):
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
                            + "\(RFC3339.string(from: originalReceivedAt)); reuse a correlation id only to "
                            + "repeat the same command"
                    )
                ]
                let message = OutgoingMessage(
                    topic: accepted.route.topic,
                    payload: reply.jsonValue.serializedBytes(),
                    properties: accepted.route.replyProperties
                )
                let id = try insertStored(
                    kind: .answer,
                    message: message,
                    route: accepted.route,
                    correlationId: accepted.correlationId,
                    receivedAt: accepted.receivedAt,
                    db: db
                )
                return .publish(PendingReply(id: id, message: message), .conflict)
            case .replay(let originalId, let stored):
                let message = OutgoingMessage(
                    topic: accepted.route.topic,
                    payload: DedupeVerdict.markedDuplicate(stored),
                    properties: accepted.route.replyProperties
                )
                let id = try insertStored(
                    kind: .duplicate,
                    message: message,
                    route: accepted.route,
                    correlationId: accepted.correlationId,
                    receivedAt: accepted.receivedAt,
                    db: db,
                    originalId: originalId
                )
                return .publish(PendingReply(id: id, message: message), .duplicate)
            case .wait(let originalId):
                try db.cachedStatement(
                    sql: """
                        INSERT INTO message (kind, state, originalId, receivedAt, replyTopic, routeSource, correlationData, correlationId)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        MessageKind.duplicate, MessageState.waiting, originalId,
                        accepted.receivedAt.timeIntervalSince1970, accepted.route.topic,
                        accepted.route.source.rawValue, accepted.route.correlationData.map { Data($0) },
                        accepted.correlationId,
                    ]
                )
                waitingDuplicates.withLock { $0 += 1 }
                return .waitForOriginal(db.lastInsertedRowID)
            }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO message (kind, state, dedupeKey, digest, receivedAt, deadline, replyTopic, routeSource,
                                     correlationData, correlationId, payload)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                MessageKind.command, MessageState.accepted, key, Data(accepted.digest),
                accepted.receivedAt.timeIntervalSince1970, accepted.deadline?.timeIntervalSince1970,
                accepted.route.topic, accepted.route.source.rawValue, accepted.route.correlationData.map { Data($0) },
                accepted.correlationId, Data(accepted.payload),
            ]
        )
        return .execute(db.lastInsertedRowID)
    }

    func insertStored(
        kind: MessageKind,
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
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                kind, MessageState.done, originalId, receivedAt.timeIntervalSince1970, message.topic,
                route.source.rawValue, message.properties.correlationData.map { Data($0) }, correlationId,
                Data(message.payload), Date().timeIntervalSince1970,
            ]
        )
        return db.lastInsertedRowID
    }
}
