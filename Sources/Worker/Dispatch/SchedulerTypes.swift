// SPDX-License-Identifier: Apache-2.0
public import Foundation

/// A call the scheduler has decided to make: up to 200 distinct device names of one key, taken from the
/// segments of one or more commands.
public struct CallPlan: Sendable, Hashable {
    /// The call's id, unique in the journal (the dispatcher starts it past the largest stored one).
    public var id: Int64
    public var key: BatchKey
    /// The names to send, in order, each once (a name wanted by several segments is sent once for all).
    public var deviceNames: [String]
    /// The segments the call carries, in the order their names were taken.
    public var parts: [SegmentID]
    /// The earliest deadline of the commands carried: the call stops retrying then (a command with a later
    /// deadline gets its names sent again).
    public var deadline: Date?
    /// How long each part waited in its queue before this call (same order as ``parts``).
    public var waited: [TimeInterval]
    /// The bisection group the call serves, if it re-sends part of a call that failed for an unknown reason.
    public var group: Int64?
    /// When the scheduler planned it (the call leaves right after).
    public var sentAt: Date

    public init(
        id: Int64,
        key: BatchKey,
        deviceNames: [String],
        parts: [SegmentID],
        deadline: Date?,
        waited: [TimeInterval],
        group: Int64?,
        sentAt: Date
    ) {
        self.id = id
        self.key = key
        self.deviceNames = deviceNames
        self.parts = parts
        self.deadline = deadline
        self.waited = waited
        self.group = group
        self.sentAt = sentAt
    }

    /// Whether the call carries names of more than one command.
    public var isShared: Bool {
        guard let first = parts.first?.command else { return false }
        return parts.contains { $0.command != first }
    }
}

/// What a finished call said, as the scheduler needs it.
public struct CallResult: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The platform accepted the cancel for every name.
        case succeeded
        /// Failed for now (outage, throttling, timeout): worth sending again while the deadline allows.
        case transientFailure
        /// Failed for good for the names it carried (all or nothing).
        case permanentFailure
        /// Not answered: the worker stopped the call (shutdown). Its names wait again, nothing is decided.
        case interrupted
    }

    public var kind: Kind
    public var requestId: String?
    public var code: String?
    public var message: String?
    public var httpStatus: Int?
    /// HTTP attempts made (the platform client retries inside one call).
    public var attempts: Int

    public init(
        kind: Kind,
        requestId: String? = nil,
        code: String? = nil,
        message: String? = nil,
        httpStatus: Int? = nil,
        attempts: Int
    ) {
        self.kind = kind
        self.requestId = requestId
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.attempts = attempts
    }
}

/// One call that carried some of a command's names, as its reply lists them.
public struct CallTrace: Sendable, Hashable, Codable {
    public var callId: Int64
    public var requestId: String?
    public var attempts: Int
    /// The call carried other commands' names too.
    public var shared: Bool

    public init(callId: Int64, requestId: String?, attempts: Int, shared: Bool) {
        self.callId = callId
        self.requestId = requestId
        self.attempts = attempts
        self.shared = shared
    }
}

/// A command the scheduler finished: its reply is decided.
public struct CompletedCommand: Sendable {
    public var id: Int64
    public var accepted: AcceptedCommand
    public var reply: CancelReply
    /// Whether the journal holds outcomes of its segments from earlier steps (they can go now).
    public var outcomesStored: Bool
    /// The command's device names, in its order (the scheduler keeps them apart from ``accepted``, whose
    /// command holds none): what a read-back reads.
    public var deviceNames: [String]

    public init(
        id: Int64,
        accepted: AcceptedCommand,
        reply: CancelReply,
        outcomesStored: Bool = true,
        deviceNames: [String] = []
    ) {
        self.id = id
        self.accepted = accepted
        self.reply = reply
        self.outcomesStored = outcomesStored
        self.deviceNames = deviceNames
    }
}

/// What one step of the scheduler decided, for the journal to store in one transaction and the publisher to send.
public struct Settlement: Sendable {
    /// The call that ended, with its result (nil for a step that ended no call, such as expiry).
    public var call: (plan: CallPlan, result: CallResult)?
    /// Segment outcomes to store: final ones are never sent again; non-final ones carry the attempts so far.
    public var outcomes: [SegmentID: BatchOutcome] = [:]
    /// Commands whose every segment is final, with their replies.
    public var completed: [CompletedCommand] = []
    /// Segments put back in their queue (transient failure, bisection, interruption).
    public var requeued = 0
    /// The call's failure could not be attributed and its segments were split in two (see ``FailureScope``).
    public var bisected = false

    public init() {}

    public var isEmpty: Bool { call == nil && outcomes.isEmpty && completed.isEmpty }
}
