// SPDX-License-Identifier: Apache-2.0
package import Foundation

/// What an earlier command with the same correlation key means for a new one (DESIGN §2, "Duplicates"): decided
/// here, without the store, from what the store found.
package enum DedupeVerdict: Sendable, Hashable {
    /// No earlier command within the retention window: execute this one.
    case new
    /// Same key, different command: never guess which one the requester meant; refuse this one.
    case conflict(originalReceivedAt: Date)
    /// The same command, answered already: send its stored reply again, marked `duplicate`.
    case replay(originalId: Int64, reply: [UInt8])
    /// The same command, not answered yet: answer this one when the original is.
    case wait(originalId: Int64)

    /// The earlier command as the store found it.
    package struct Original: Sendable, Hashable {
        package var id: Int64
        package var digest: [UInt8]
        package var state: MessageState
        package var reply: [UInt8]?
        package var receivedAt: Date

        package init(id: Int64, digest: [UInt8], state: MessageState, reply: [UInt8]?, receivedAt: Date) {
            self.id = id
            self.digest = digest
            self.state = state
            self.reply = reply
            self.receivedAt = receivedAt
        }
    }

    /// The verdict for a command with payload digest `digest`, given the earliest stored command with its key.
    package static func decide(digest: [UInt8], original: Original?) -> DedupeVerdict {
        guard let original else { return .new }
        guard original.digest == digest else { return .conflict(originalReceivedAt: original.receivedAt) }
        // An undeliverable reply is still the command's answer: a duplicate on another route may get it.
        if original.state.hasReply, let reply = original.reply {
            return .replay(originalId: original.id, reply: reply)
        }
        return .wait(originalId: original.id)
    }

    /// A stored reply with `"duplicate": true` inserted after `status` (the reply keeps its key order).
    package static func markedDuplicate(_ reply: [UInt8]) -> [UInt8] {
        let marker = Array(#""status":""#.utf8)
        guard let start = reply.firstRange(of: marker)?.upperBound,
            let end = reply[start...].firstIndex(of: UInt8(ascii: "\""))
        else { return reply }
        return Array(reply[...end]) + Array(#","duplicate":true"#.utf8) + Array(reply[(end + 1)...])
    }
}
