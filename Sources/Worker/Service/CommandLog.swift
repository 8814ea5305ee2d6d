// SPDX-License-Identifier: Apache-2.0
public import Logging
public import Mosquitto
import JSONSchema

/// A log record decided from values: its level, message and metadata.
public struct LogLine: Sendable, Equatable {
    public var level: Logger.Level
    public var message: String
    public var metadata: Logger.Metadata

    public init(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

extension Logger {
    /// Logs `line` at its level.
    func log(_ line: LogLine, file: String = #fileID, function: String = #function, line number: UInt = #line) {
        log(
            level: line.level,
            "\(line.message)",
            metadata: line.metadata,
            file: file,
            function: function,
            line: number
        )
    }
}

/// What the worker logs about a command: pure functions of what happened, so that levels and fields are
/// unit-tested without a logger (and the service only writes what they decide).
///
/// Levels: a command answered `succeeded` is `info`; `failed`, `partial` and `expired` after execution are
/// `warning`, with the platform's code and message; a command refused at intake is `notice` (the requester's
/// mistake), except a conflicting duplicate, a `warning` (two different commands with one id suggest a requester
/// bug); a duplicate is `info`; a dead letter is a `warning`. Every line carries ``LogKey/correlationId``.
public enum CommandLog {
    /// At most this many correlation ids are listed for a platform call (the count is always given).
    public static let maxCorrelationIds = 20
    /// Values from the network are clipped to this many characters in the log.
    public static let maxValueLength = 256
    /// At most this many problems (codes and messages) are listed for a rejected command.
    public static let maxProblems = 10

    /// A correlation id as logged: clipped; `-` when there is none.
    public static func correlation(_ id: String?) -> Logger.MetadataValue {
        .string(id.map(clip) ?? "-")
    }

    /// The correlation id of a message whose payload was not read: its MQTT 5 Correlation Data, when that is UTF-8.
    public static func correlation(data: [UInt8]?) -> Logger.MetadataValue {
        correlation(data.flatMap { String(validating: $0, as: UTF8.self) })
    }

    // MARK: - Intake

    /// The line for a message the intake decided on and the journal recorded (`verdict`).
    ///
    /// - Parameter message: the message as received (its Correlation Data names a dead letter's command).
    public static func intake(_ decision: IntakeDecision, verdict: JournalVerdict, message: MQTTMessage) -> LogLine {
        switch decision {
        case .deadLetter(let deadLetter):
            var metadata: Logger.Metadata = [
                LogKey.correlationId: correlation(data: message.properties.correlationData),
                LogKey.deadLetterTopic: .string(deadLetter.topic),
            ]
            if case .object(let body)? = try? JSONParser.parse(deadLetter.payload) {
                if let code = body["code"]?.stringValue { metadata[LogKey.errorCode] = .string(clip(code)) }
                if let reason = body["reason"]?.stringValue { metadata[LogKey.error] = .string(clip(reason)) }
            }
            return LogLine(.warning, "message dead-lettered: it cannot be answered", metadata)
        case .answer(let reply, _):
            var metadata = problems(reply)
            metadata[LogKey.correlationId] = correlation(reply.correlationId)
            metadata[LogKey.status] = .string(reply.status.rawValue)
            return reply.status == .expired
                ? LogLine(.notice, "command not executed: its deadline had passed on arrival", metadata)
                : LogLine(.notice, "command rejected", metadata)
        case .execute(let accepted):
            var metadata: Logger.Metadata = [LogKey.correlationId: correlation(accepted.correlationId)]
            switch verdict {
            case .execute(let id):
                metadata[LogKey.entry] = .stringConvertible(id)
                metadata[LogKey.devices] = .stringConvertible(accepted.command.deviceNames.count)
                metadata[LogKey.productKey] = .string(clip(accepted.command.productKey))
                metadata[LogKey.firmwareId] = .string(clip(accepted.command.firmwareId))
                return LogLine(.debug, "command accepted", metadata)
            case .waitForOriginal:
                return LogLine(.info, "duplicate command: answered when the original is", metadata)
            case .publish(_, .conflict):
                metadata[LogKey.status] = .string(CancelReply.Status.rejected.rawValue)
                metadata[LogKey.errorCodes] = .array(["ConflictingDuplicate"])
                return LogLine(
                    .warning,
                    "command rejected: a different command was received with this correlation id",
                    metadata
                )
            case .publish(_, .duplicate):
                return LogLine(.info, "duplicate command: answered with the stored reply", metadata)
            case .publish(_, let outcome):
                metadata[LogKey.status] = .string("\(outcome)")
                return LogLine(.notice, "command answered at intake", metadata)
            }
        }
    }

    /// The codes and messages of a rejected reply's problems.
    private static func problems(_ reply: CancelReply) -> Logger.Metadata {
        guard let errors = reply.errors, !errors.isEmpty else { return [:] }
        let listed = errors.prefix(maxProblems)
        return [
            LogKey.errorCodes: .array(listed.map { .string(clip($0.code)) }),
            LogKey.errors: .array(listed.map { .string(clip($0.message)) }),
        ]
    }

    // MARK: - Completed commands

    /// The line for a command whose reply is decided after execution: `info` when it succeeded, else `warning`
    /// with the platform's code (every distinct code when several calls failed differently) and first message.
    public static func completed(_ completed: CompletedCommand) -> LogLine {
        let reply = completed.reply
        let command = completed.accepted.command
        var metadata: Logger.Metadata = [
            LogKey.correlationId: correlation(completed.accepted.correlationId),
            LogKey.status: .string(reply.status.rawValue),
            LogKey.devices: .stringConvertible(reply.deviceCount ?? command.deviceNames.count),
            LogKey.calls: .stringConvertible(reply.calls ?? 0),
            LogKey.sharedCalls: .stringConvertible(reply.sharedCalls ?? 0),
            LogKey.attempts: .stringConvertible(reply.attempts ?? 0),
            LogKey.productKey: .string(clip(command.productKey)),
            LogKey.firmwareId: .string(clip(command.firmwareId)),
        ]
        if let devices = reply.devices {
            metadata[LogKey.readBack] = .dictionary([
                "canceled": .stringConvertible(devices.canceled.count),
                "already_upgraded": .stringConvertible(devices.alreadyUpgraded.count),
                "failed": .stringConvertible(devices.failed.count),
                "still_active": .stringConvertible(devices.stillActive.count),
                "no_task": .stringConvertible(devices.noTask.count),
                "unverified": .stringConvertible(devices.unverified.count),
                "reads": .stringConvertible(devices.reads),
            ])
        }
        if let reason = command.reason { metadata[LogKey.reason] = .string(clip(reason)) }
        if let requestedBy = command.requestedBy { metadata[LogKey.requestedBy] = .string(clip(requestedBy)) }
        if let requestIds = reply.requestIds, !requestIds.isEmpty {
            metadata[LogKey.platformRequestIds] = .array(requestIds.prefix(maxCorrelationIds).map { .string(clip($0)) })
        }
        if let groups = reply.failedGroups, let first = groups.first {
            metadata[LogKey.failedDevices] = .stringConvertible(groups.reduce(0) { $0 + $1.deviceNames.count })
            metadata[LogKey.platformCode] = .string(clip(first.code))
            metadata[LogKey.platformMessage] = .string(clip(first.message))
            if let status = first.httpStatus { metadata[LogKey.platformHTTPStatus] = .stringConvertible(status) }
            var codes = [String]()
            for group in groups where !codes.contains(group.code) { codes.append(group.code) }
            if codes.count > 1 {
                metadata[LogKey.platformCodes] = .array(codes.prefix(maxProblems).map { .string(clip($0)) })
            }
        } else if let errors = reply.errors, !errors.isEmpty {
            metadata.merge(problems(reply)) { _, new in new }
        }
        switch reply.status {
        case .succeeded:
            return LogLine(.info, "command done", metadata)
        case .rejected:
            return LogLine(.notice, "command done", metadata)
        case .failed, .partial, .expired:
            return LogLine(.warning, "command done", metadata)
        }
    }

    // MARK: - Platform calls

    /// The metadata of a platform call: the correlation ids of the commands it carries (each once, in order,
    /// at most ``maxCorrelationIds``) and how many commands that is.
    public static func call(correlationIds: [String?]) -> Logger.Metadata {
        [
            LogKey.correlationIds: .array(correlationIds.prefix(maxCorrelationIds).map { correlation($0) }),
            LogKey.commandCount: .stringConvertible(correlationIds.count),
        ]
    }

    /// The line for a platform call that ended without success, or `nil`: a transient failure (its names are
    /// sent again later) is `info`, a permanent one too (each command's own line says `warning`).
    public static func callEnded(_ result: CallResult, metadata: Logger.Metadata) -> LogLine? {
        var metadata = metadata
        if let code = result.code { metadata[LogKey.platformCode] = .string(clip(code)) }
        if let message = result.message { metadata[LogKey.platformMessage] = .string(clip(message)) }
        if let status = result.httpStatus { metadata[LogKey.platformHTTPStatus] = .stringConvertible(status) }
        metadata[LogKey.attempts] = .stringConvertible(result.attempts)
        switch result.kind {
        case .succeeded, .interrupted:
            return nil
        case .transientFailure:
            return LogLine(.info, "platform call failed for now; its device names are sent again later", metadata)
        case .permanentFailure:
            return LogLine(.info, "platform call failed", metadata)
        }
    }

    static func clip(_ text: String) -> String { text.clipped(toScalars: maxValueLength) }

    /// A duration in whole milliseconds, for `_ms` fields.
    static func milliseconds(_ duration: Duration) -> Int64 { Int64((duration.seconds * 1000).rounded()) }

    /// An error as a log value: its code and message, without the source location some errors carry in their
    /// description (an operator needs what went wrong, not where in the code).
    public static func errorText(_ error: any Error) -> String {
        switch error {
        case let error as MosquittoError: "\(error.shortDescription): \(error.message)"
        default: "\(error)"
        }
    }
}
