// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Mosquitto
import Testing
import Worker

/// Issue 10: what is logged about a command (level, message, fields) follows from what happened.
@Suite("command log lines")
struct CommandLogTests {
    static let command =
        #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1","dev-2"],"correlationId":"c-1","reason":"why"}"#

    static let stored = OutgoingMessage(topic: "t", payload: [], properties: MQTTProperties())

    static func accepted() throws -> AcceptedCommand {
        let decision = try Fixtures.intake().decide(Fixtures.message(command, responseTopic: "ota/cancel/reply/x"))
        guard case .execute(let accepted) = decision else { throw CancellationError() }
        return accepted
    }

    static func completed(
        _ status: CancelReply.Status,
        groups: [CancelReply.FailedGroup]? = nil
    ) throws
        -> CompletedCommand
    {
        var reply = CancelReply(
            correlationId: "c-1",
            status: status,
            receivedAt: Fixtures.fixedNow,
            completedAt: Fixtures.fixedNow
        )
        reply.deviceCount = 2
        reply.calls = 1
        reply.attempts = 2
        reply.requestIds = ["r-1"]
        reply.failedGroups = groups
        return CompletedCommand(id: 1, accepted: try accepted(), reply: reply)
    }

    static func group(_ code: String, _ names: [String]) -> CancelReply.FailedGroup {
        .init(
            deviceNames: names,
            code: code,
            message: "\(code) happened",
            requestId: "r-1",
            httpStatus: 400,
            transient: false,
            attempts: 1
        )
    }

    @Test("a succeeded command is info; every line carries the correlation id and the command's fields")
    func succeeded() throws {
        let line = CommandLog.completed(try Self.completed(.succeeded))
        #expect(line.level == .info && line.message == "command done")
        #expect(line.metadata[LogKey.correlationId] == "c-1")
        #expect(line.metadata[LogKey.status] == "succeeded")
        #expect(line.metadata[LogKey.devices]?.description == "2")
        #expect(line.metadata[LogKey.reason] == "why")
        #expect(line.metadata[LogKey.platformRequestIds] == ["r-1"])
        #expect(line.metadata[LogKey.platformCode] == nil && line.metadata[LogKey.requestedBy] == nil)
    }

    @Test("failed and partial are warnings with the platform's code and message; several codes are all listed")
    func failed() throws {
        let failed = CommandLog.completed(
            try Self.completed(.failed, groups: [Self.group("SignatureDoesNotMatch", ["dev-1", "dev-2"])])
        )
        #expect(failed.level == .warning)
        #expect(failed.metadata[LogKey.platformCode] == "SignatureDoesNotMatch")
        #expect(failed.metadata[LogKey.platformMessage] == "SignatureDoesNotMatch happened")
        #expect(failed.metadata[LogKey.failedDevices]?.description == "2")
        #expect(failed.metadata[LogKey.platformCodes] == nil)
        let partial = CommandLog.completed(
            try Self.completed(
                .partial,
                groups: [
                    Self.group("iot.ota.A", ["dev-1"]), Self.group("iot.ota.B", ["dev-2"]), Self.group("iot.ota.A", []),
                ]
            )
        )
        #expect(partial.level == .warning)
        #expect(partial.metadata[LogKey.platformCode] == "iot.ota.A")
        #expect(partial.metadata[LogKey.platformCodes] == ["iot.ota.A", "iot.ota.B"])
        #expect(CommandLog.completed(try Self.completed(.expired)).level == .warning)
    }

    @Test("intake: rejected is notice with its codes, a dead letter is a warning named by its Correlation Data")
    func intakeAnswers() throws {
        let intake = try Fixtures.intake()
        let rejectedMessage = Fixtures.message(
            #"{"productKey":"p","correlationId":"c-2"}"#,
            responseTopic: "ota/cancel/reply/x"
        )
        let rejected = CommandLog.intake(
            intake.decide(rejectedMessage),
            verdict: .publish(PendingReply(id: 2, message: Self.stored), .rejected),
            message: rejectedMessage
        )
        #expect(rejected.level == .notice && rejected.message == "command rejected")
        #expect(rejected.metadata[LogKey.correlationId] == "c-2")
        guard case .array(let codes)? = rejected.metadata[LogKey.errorCodes] else {
            Issue.record("no codes: \(rejected)")
            return
        }
        #expect(codes.contains("SchemaViolation"))

        let garbage = Fixtures.message("not json", correlationData: Array("dl-1".utf8))
        let decision = intake.decide(garbage)
        let deadLetter = CommandLog.intake(
            decision,
            verdict: .publish(PendingReply(id: 3, message: Self.stored, kind: .deadLetter), .deadLetter),
            message: garbage
        )
        #expect(deadLetter.level == .warning)
        #expect(deadLetter.metadata[LogKey.correlationId] == "dl-1")
        #expect(deadLetter.metadata[LogKey.errorCode] == "InvalidJSON")
        #expect(deadLetter.metadata[LogKey.deadLetterTopic] == "ota/cancel/dead-letter")
        // Correlation Data that is not UTF-8 names nothing.
        let binary = Fixtures.message("not json", correlationData: [0xFF, 0xFE])
        let unnamed = CommandLog.intake(
            intake.decide(binary),
            verdict: .publish(PendingReply(id: 4, message: Self.stored), .deadLetter),
            message: binary
        )
        #expect(unnamed.metadata[LogKey.correlationId] == "-")
    }

    @Test("intake: a duplicate is info (answered or waiting), a conflicting one a warning, an accepted one debug")
    func intakeDuplicates() throws {
        let accepted = try Self.accepted()
        let message = Fixtures.message(Self.command, responseTopic: "ota/cancel/reply/x")
        let stored = PendingReply(id: 5, message: Self.stored)
        let replayed = CommandLog.intake(.execute(accepted), verdict: .publish(stored, .duplicate), message: message)
        #expect(replayed.level == .info && replayed.message.hasPrefix("duplicate command"))
        #expect(replayed.metadata[LogKey.correlationId] == "c-1")
        let waiting = CommandLog.intake(.execute(accepted), verdict: .waitForOriginal(5), message: message)
        #expect(waiting.level == .info && waiting.message.hasPrefix("duplicate command"))
        let conflict = CommandLog.intake(.execute(accepted), verdict: .publish(stored, .conflict), message: message)
        #expect(conflict.level == .warning && conflict.metadata[LogKey.errorCodes] == ["ConflictingDuplicate"])
        #expect(conflict.metadata[LogKey.correlationId] == "c-1")
        let new = CommandLog.intake(.execute(accepted), verdict: .execute(6), message: message)
        #expect(new.level == .debug && new.metadata[LogKey.devices]?.description == "2")
    }

    @Test("a platform call names its commands: ids clipped to a list of 20, with the count; failures say the code")
    func call() {
        let ids = (0..<25).map { "c-\($0)" } + [nil, String(repeating: "x", count: 1_000)]
        let metadata = CommandLog.call(correlationIds: ids)
        guard case .array(let listed)? = metadata[LogKey.correlationIds] else {
            Issue.record("no list: \(metadata)")
            return
        }
        #expect(listed.count == CommandLog.maxCorrelationIds && listed.first == "c-0")
        #expect(metadata[LogKey.commandCount]?.description == "27")
        let long = CommandLog.call(correlationIds: [String(repeating: "x", count: 1_000), nil])
        #expect(long[LogKey.correlationIds] == [.string(String(repeating: "x", count: 256) + "…"), "-"])

        let transient = CommandLog.callEnded(
            CallResult(
                kind: .transientFailure,
                code: "ServiceUnavailable",
                message: "busy",
                httpStatus: 503,
                attempts: 4
            ),
            metadata: metadata
        )
        #expect(transient?.level == .info && transient?.metadata[LogKey.platformCode] == "ServiceUnavailable")
        #expect(transient?.metadata[LogKey.commandCount]?.description == "27")
        #expect(CommandLog.callEnded(CallResult(kind: .succeeded, attempts: 1), metadata: metadata) == nil)
    }

    @Test("the scheduler names the commands a call carries, each once, in order")
    func schedulerCorrelationIds() throws {
        var scheduler = CallScheduler()
        var first = try Self.accepted()
        first.command.deviceNames = ["dev-1"]
        var second = first
        second.correlationId = "c-2"
        second.command.deviceNames = ["dev-2", "dev-3"]
        _ = scheduler.add(1, accepted: first, outcomes: [:], calls: [], retryRound: 0, now: Fixtures.fixedNow)
        _ = scheduler.add(2, accepted: second, outcomes: [:], calls: [], retryRound: 0, now: Fixtures.fixedNow)
        let next = scheduler.nextCall(now: Fixtures.fixedNow)
        let plan = try #require(next)
        #expect(scheduler.correlationIds(of: plan) == ["c-1", "c-2"])
    }
}
