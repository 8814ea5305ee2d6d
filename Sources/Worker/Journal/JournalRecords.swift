// SPDX-License-Identifier: Apache-2.0
import Foundation
import GRDB

/// What a journal entry is (the `message.kind` column).
enum MessageKind: String, Sendable, Hashable, Codable, DatabaseValueConvertible {
    /// An accepted command (the only kind that is executed and deduplicated).
    case command
    /// A rejection or expiry answered at intake.
    case answer
    case deadLetter
    /// A repeat of a command: answered with the original's reply.
    case duplicate
    /// The notice that a stored reply or dead letter was undeliverable.
    case notice

    var pendingKind: PendingReply.Kind {
        switch self {
        case .deadLetter: .deadLetter
        case .notice: .notice
        case .command, .answer, .duplicate: .reply
        }
    }
}

/// Where a journal entry is in its life (the `message.state` column).
package enum MessageState: String, Sendable, Hashable, Codable, DatabaseValueConvertible {
    /// A command to execute.
    case accepted
    /// A duplicate waiting for its original's reply.
    case waiting
    /// A reply is stored and waits for the broker's acknowledgement.
    case done
    /// The broker acknowledged the reply: kept for deduplication until pruned.
    case replied
    /// The reply can never be published (see `deliveryError`).
    case undeliverable

    /// Whether the entry holds its final reply.
    package var hasReply: Bool { self == .done || self == .replied || self == .undeliverable }
}

/// How a stored platform call ended (the `platformCall.state` column).
enum CallState: String, Sendable, Hashable, Codable, DatabaseValueConvertible {
    /// The platform answered (success or failure).
    case answered
    /// The worker stopped it before an answer (shutdown): its names were sent again later.
    case interrupted
}

/// A `segmentOutcome` row: the latest outcome of one segment of a command not answered yet.
struct SegmentOutcomeRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "segmentOutcome"
    var messageId: Int64
    var segment: Int
    /// ``BatchOutcome`` as JSON.
    var outcome: Data
}

/// The columns of a `message` row the dispatcher and the publisher read, by name.
struct StoredMessage: FetchableRecord, Sendable {
    var id: Int64
    var kind: MessageKind
    var state: MessageState
    var receivedAt: Date
    var deadline: Date?
    var route: ReplyRoute
    var correlationId: String?
    var payload: [UInt8]?
    var reply: [UInt8]?
    var retryRound: Int

    init(row: Row) {
        id = row["id"]
        kind = row["kind"]
        state = row["state"]
        receivedAt = Date(timeIntervalSince1970: row["receivedAt"])
        let deadline: Double? = row["deadline"]
        self.deadline = deadline.map { Date(timeIntervalSince1970: $0) }
        let correlationData: Data? = row["correlationData"]
        let source: String = row["routeSource"]
        route = ReplyRoute(
            topic: row["replyTopic"],
            source: ReplyRoute.Source(rawValue: source) ?? .defaultTopic,
            correlationData: correlationData.map { Array($0) }
        )
        correlationId = row["correlationId"]
        let payload: Data? = row["payload"]
        self.payload = payload.map { Array($0) }
        let reply: Data? = row["reply"]
        self.reply = reply.map { Array($0) }
        retryRound = row["retryRound"] ?? 0
    }

    /// The stored reply as a message to publish.
    var pendingReply: PendingReply {
        PendingReply(
            id: id,
            message: OutgoingMessage(topic: route.topic, payload: reply ?? [], properties: route.replyProperties),
            kind: kind.pendingKind
        )
    }
}
