// SPDX-License-Identifier: Apache-2.0
public import Foundation

/// A command that passed every check and is to be executed.
public struct AcceptedCommand: Sendable {
    public var command: CancelCommand
    /// The correlation id the reply carries (payload first, else UTF-8 Correlation Data).
    public var correlationId: String?
    public var route: ReplyRoute
    public var receivedAt: Date
    /// The effective deadline: the earliest of the command's `deadline`, the MQTT 5 Message Expiry and the
    /// configured default.
    public var deadline: Date?
    /// The payload as received (the journal keeps it to run the command again after a restart).
    public var payload: [UInt8]
    /// SHA-256 of the payload's canonical form: "the same command" for deduplication.
    public var digest: [UInt8]

    public init(
        command: CancelCommand,
        correlationId: String?,
        route: ReplyRoute,
        receivedAt: Date,
        deadline: Date?,
        payload: [UInt8],
        digest: [UInt8]
    ) {
        self.command = command
        self.correlationId = correlationId
        self.route = route
        self.receivedAt = receivedAt
        self.deadline = deadline
        self.payload = payload
        self.digest = digest
    }

    /// The deduplication key: the reply topic, then the MQTT 5 Correlation Data, else the payload's
    /// `correlationId` (each requester's correlation ids live in the namespace of its own reply topic).
    public var dedupeKey: [UInt8]? {
        guard let correlation = route.correlationData ?? correlationId.map({ Array($0.utf8) }) else { return nil }
        return Array(route.topic.utf8) + [0] + correlation
    }
}

/// What the worker does with one received message.
public enum IntakeDecision: Sendable {
    /// Execute the command, then reply.
    case execute(AcceptedCommand)
    /// Answer at once without executing (rejected or expired).
    case answer(CancelReply, ReplyRoute)
    /// Nothing can be answered: publish this to the dead-letter topic.
    case deadLetter(OutgoingMessage)
}
