// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Mosquitto
import Testing
import Worker

@Suite("Journal")
struct JournalTests {
    private static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString).sqlite").path
    }

    private static func intakeDecision(
        _ payload: String = Fixtures.validPayload,
        responseTopic: String = "ota/cancel/reply/j",
        correlation: String = "c-1"
    ) throws -> IntakeDecision {
        try Fixtures.intake().decide(
            Fixtures.message(payload, responseTopic: responseTopic, correlationData: Array(correlation.utf8))
        )
    }

    /// The accepted command a decision carries.
    private static func accepted(_ decision: IntakeDecision) throws -> AcceptedCommand {
        guard case .execute(let accepted) = decision else { throw JournalTestError.notAccepted }
        return accepted
    }

    private enum JournalTestError: Error { case notAccepted }

    /// Stores a finished command's reply the way the dispatcher does (one settlement).
    @discardableResult
    private static func complete(
        _ journal: SQLiteJournal,
        _ id: Int64,
        accepted: AcceptedCommand,
        status: CancelReply.Status = .succeeded
    ) async throws -> [PendingReply] {
        var reply = CancelReply(
            correlationId: accepted.correlationId,
            status: status,
            receivedAt: accepted.receivedAt,
            completedAt: accepted.receivedAt
        )
        reply.calls = 1
        var settlement = Settlement()
        settlement.completed = [CompletedCommand(id: id, accepted: accepted, reply: reply)]
        return try await journal.record(settlement, at: Fixtures.fixedNow)
    }

    @Test("a new command is recorded accepted and comes back unanswered, with its route and payload")
    func recordAndRead() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil))
        let action = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        guard case .execute(let id) = action else {
            Issue.record("expected execution, got \(action)")
            return
        }
        let ready = try await journal.unansweredCommands(after: 0, limit: 10)
        #expect(ready.map(\.id) == [id])
        #expect(ready.first?.accepted.command.deviceNames == ["dev-000001", "dev-000002"])
        #expect(ready.first?.accepted.route.topic == "ota/cancel/reply/j")
        #expect(ready.first?.accepted.route.correlationData == Array("c-1".utf8))
        #expect(ready.first?.accepted.correlationId == "c-1")
        #expect(try await journal.unansweredCommands(after: id, limit: 10).isEmpty, "only ids after the one given")
        #expect(try await journal.summary().unanswered == 1)
    }

    @Test("duplicates: waiting while the original runs, answered with it; after it, answered from the stored reply")
    func duplicates() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected execution")
            return
        }
        // Same key, same payload, while the original runs.
        let waiting = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        guard case .waitForOriginal = waiting else {
            Issue.record("expected to wait for the original, got \(waiting)")
            return
        }
        let published = try await Self.complete(journal, id, accepted: try Self.accepted(try Self.intakeDecision()))
        #expect(published.count == 2)
        let original = String(decoding: published[0].message.payload, as: UTF8.self)
        #expect(original.hasPrefix(#"{"version":2,"correlationId":"c-1","status":"succeeded","#))
        #expect(
            String(decoding: published[1].message.payload, as: UTF8.self)
                == original.replacingOccurrences(
                    of: #""status":"succeeded","#,
                    with: #""status":"succeeded","duplicate":true,"#
                )
        )
        #expect(published.allSatisfy { $0.message.properties.correlationData == Array("c-1".utf8) })

        // After the original finished: answered at once.
        guard
            case .publish(let later, let outcome) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        else {
            Issue.record("expected an immediate answer")
            return
        }
        #expect(later.message.payload == published[1].message.payload)
        #expect(outcome == .duplicate)

        // The same correlation id under another reply topic is another requester's: a new command.
        guard
            case .execute = try journal.record(
                try Self.intakeDecision(responseTopic: "ota/cancel/reply/other"),
                at: Fixtures.fixedNow
            )
        else {
            Issue.record("another reply topic is another namespace")
            return
        }
        // The same key with another command is refused.
        let other = #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000009"]}"#
        guard
            case .publish(let refusal, .conflict) = try journal.record(
                try Self.intakeDecision(other),
                at: Fixtures.fixedNow
            )
        else {
            Issue.record("expected a refusal, typed as a conflict")
            return
        }
        let refused = try JSONParser.parse(refusal.message.payload)
        #expect(refused["status"]?.stringValue == "rejected")
        #expect(refused["errors"]?.arrayValue?.first?["code"]?.stringValue == "ConflictingDuplicate")
    }

    @Test("key order and whitespace do not make another command")
    func canonicalPayload() throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil))
        _ = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        let reordered =
            #"{ "deviceNames" : ["dev-000001","dev-000002"], "firmwareId":"demoFirmware", "productKey":"demoProduct" }"#
        guard case .waitForOriginal = try journal.record(try Self.intakeDecision(reordered), at: Fixtures.fixedNow)
        else {
            Issue.record("the same command, written differently, is a duplicate")
            return
        }
    }

    @Test("calls: stored when they end, with the segments they carried; the outcomes so far come back")
    func callsAndOutcomes() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected execution")
            return
        }
        let key = BatchKey(
            account: "a",
            iotInstanceId: nil,
            productKey: "demoProduct",
            firmwareId: "demoFirmware",
            jobId: nil
        )
        let segment = SegmentID(command: id, index: 0)
        let plan = CallPlan(
            id: 7,
            key: key,
            deviceNames: ["dev-000001", "dev-000002"],
            parts: [segment],
            deadline: nil,
            waited: [0],
            group: nil,
            sentAt: Fixtures.fixedNow
        )
        #expect(try await journal.lastCallId() == 0)
        var settlement = Settlement()
        settlement.call = (
            plan, CallResult(kind: .transientFailure, requestId: "R-1", code: "ServiceUnavailable", attempts: 3)
        )
        settlement.outcomes[segment] = BatchOutcome(
            succeeded: false,
            final: false,
            requestId: "R-1",
            code: "ServiceUnavailable",
            transient: true,
            attempts: 3
        )
        #expect(try await journal.record(settlement, at: Fixtures.fixedNow).isEmpty, "no command finished")
        let again = try #require(try await journal.unansweredCommands(after: 0, limit: 10).first)
        #expect(again.outcomes[0] == settlement.outcomes[segment], "the segment's outcome so far comes back")
        #expect(again.calls == [CallTrace(callId: 7, requestId: "R-1", attempts: 3, shared: false)])

        // Call ids go on after the stored ones; a call stopped by a shutdown is stored too (its names wait again).
        #expect(try await journal.lastCallId() == 7)
        var second = settlement
        second.call = (
            CallPlan(
                id: 8,
                key: key,
                deviceNames: plan.deviceNames,
                parts: [segment],
                deadline: nil,
                waited: [0],
                group: nil,
                sentAt: Fixtures.fixedNow
            ),
            CallResult(kind: .interrupted, attempts: 0)
        )
        _ = try await journal.record(second, at: Fixtures.fixedNow)
        #expect(try await journal.lastCallId() == 8)
        #expect(try await journal.summary().calls == 2)
        let traces = try #require(try await journal.unansweredCommands(after: 0, limit: 10).first).calls
        #expect(traces.map(\.callId) == [7], "an interrupted call is no call the reply lists")

        // The command finishes: its reply is stored, its segment outcomes are no longer needed.
        let published = try await Self.complete(journal, id, accepted: try Self.accepted(try Self.intakeDecision()))
        #expect(published.map(\.id) == [id])
        #expect(try await journal.unansweredCommands(after: 0, limit: 10).isEmpty)
        #expect(
            try await Self.complete(journal, id, accepted: try Self.accepted(try Self.intakeDecision())).isEmpty,
            "a command is answered once"
        )
    }

    @Test("a cancelled caller (a worker shutting down) still reads and records: nothing fails with CancellationError")
    func cancelledCaller() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected execution")
            return
        }
        let accepted = try Self.accepted(try Self.intakeDecision())
        let shutdown = Task {
            // Cancelled before it does anything, as the worker's tasks are when it stops.
            withUnsafeCurrentTask { $0?.cancel() }
            #expect(Task.isCancelled)
            let ready = try await journal.unansweredCommands(after: 0, limit: 10)
            let published = try await Self.complete(journal, id, accepted: accepted)
            try await journal.markReplied(published.map(\.id))
            return (ready.map(\.id), try await journal.summary())
        }
        let (ready, summary) = try await shutdown.value
        #expect(ready == [id])
        #expect(summary.finished == 1 && summary.unanswered == 0)
        #expect(try await journal.pendingReplies().isEmpty)
    }

    @Test("everything survives closing and reopening the file")
    func reopen() async throws {
        let path = Self.temporaryPath()
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        var id: Int64 = 0
        do {
            let journal = try SQLiteJournal(configuration: .init(path: path, synchronous: .full))
            guard case .execute(let recorded) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
            else { return }
            id = recorded
            guard
                case .execute(let second) = try journal.record(
                    try Self.intakeDecision(correlation: "c-2"),
                    at: Fixtures.fixedNow
                )
            else { return }
            try await Self.complete(
                journal,
                second,
                accepted: try Self.accepted(try Self.intakeDecision(correlation: "c-2"))
            )
            guard case .deadLetter = try Fixtures.intake().decide(Fixtures.message("{oops")) else { return }
            _ = try journal.record(try Fixtures.intake().decide(Fixtures.message("{oops")), at: Fixtures.fixedNow)
        }
        let reopened = try SQLiteJournal(configuration: .init(path: path))
        #expect(try await reopened.unansweredCommands(after: 0, limit: 10).map(\.id) == [id])
        let pending = try await reopened.pendingReplies()
        #expect(pending.count == 2, "the stored reply and the dead letter")
        #expect(pending.contains { $0.message.topic == "ota/cancel/dead-letter" })
        try await reopened.markReplied(pending.map(\.id))
        #expect(try await reopened.pendingReplies().isEmpty)
        let summary = try await reopened.summary()
        #expect(summary.unanswered == 1 && summary.finished == 2 && summary.repliesToPublish == 0)
    }

    @Test("pruning: replied entries older than the retention, and the oldest beyond the maximum")
    func pruning() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil, retention: .seconds(3600), maxEntries: 3))
        var ids = [Int64]()
        // Six commands received at fixedNow; five of them replied, one still running.
        for index in 0..<6 {
            guard
                case .execute(let id) = try journal.record(
                    try Self.intakeDecision(correlation: "p-\(index)"),
                    at: Fixtures.fixedNow
                )
            else { return }
            ids.append(id)
        }
        for (index, id) in ids.prefix(5).enumerated() {
            let accepted = try Self.accepted(try Self.intakeDecision(correlation: "p-\(index)"))
            let stored = try await Self.complete(journal, id, accepted: accepted)
            try await journal.markReplied(stored.map(\.id))
        }
        let deleted = try await journal.prune(now: Fixtures.fixedNow)
        #expect(deleted == 2, "five replied, at most three kept")
        var summary = try await journal.summary()
        #expect(summary.finished == 3 && summary.unanswered == 1)
        #expect(
            try await journal.prune(now: Fixtures.fixedNow.addingTimeInterval(7200)) == 3,
            "all replied ones are past the retention"
        )
        summary = try await journal.summary()
        #expect(summary.finished == 0 && summary.unanswered == 1)
    }
    @Test("an undeliverable reply: recorded with its reason, never pending again; its notice stored in its place")
    func undeliverable() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil, retention: .seconds(3600)))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected execution")
            return
        }
        let stored = try await Self.complete(journal, id, accepted: try Self.accepted(try Self.intakeDecision()))
        #expect(try await journal.pendingReplies().map(\.id) == [id])
        let notice = OutgoingMessage(topic: "ota/cancel/dead-letter", payload: Array("{}".utf8), properties: .init())
        let noticeEntry = try #require(
            try await journal.markUndeliverable(id, reason: "MOSQ_ERR_OVERSIZE_PACKET", notice: notice)
        )
        #expect(noticeEntry.kind == .notice)
        #expect(stored.first?.kind == .reply)
        let pending = try await journal.pendingReplies()
        #expect(pending.map(\.id) == [noticeEntry.id], "only the notice is left to publish")
        #expect(pending.first?.kind == .notice)
        #expect(pending.first?.message.topic == notice.topic && pending.first?.message.payload == notice.payload)
        let summary = try await journal.summary()
        #expect(summary.undeliverable == 1 && summary.repliesToPublish == 1)

        // A duplicate of the command (on a route that works) still gets the stored reply.
        guard
            case .publish(let again, .duplicate) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        else {
            Issue.record("a duplicate of an undeliverable command is answered from the stored reply")
            return
        }
        #expect(String(decoding: again.message.payload, as: UTF8.self).contains(#""duplicate":true"#))

        // Finished entries are pruned like replied ones.
        try await journal.markUndeliverable(noticeEntry.id, reason: "again", notice: nil)
        try await journal.markReplied([again.id])
        #expect(try await journal.prune(now: Date().addingTimeInterval(7_200)) == 3)
        #expect(try await journal.summary() == JournalSummary())
    }

    @Test("pending replies in bounded reads: oldest first, skipping the ids in hand")
    func boundedPendingReads() async throws {
        let journal = try SQLiteJournal(configuration: .init(path: nil))
        var ids = [Int64]()
        for index in 0..<6 {
            guard
                case .publish(let reply, .deadLetter) = try journal.record(
                    try Fixtures.intake().decide(Fixtures.message("{oops \(index)")),
                    at: Fixtures.fixedNow
                )
            else { return }
            ids.append(reply.id)
            #expect(reply.kind == .deadLetter)
        }
        #expect(try await journal.pendingReplies(limit: 2).map(\.id) == Array(ids.prefix(2)))
        #expect(
            try await journal.pendingReplies(excluding: [ids[0], ids[2]], limit: 3).map(\.id) == [
                ids[1], ids[3], ids[4],
            ]
        )
        #expect(try await journal.pendingReplies(excluding: Set(ids), limit: 3).isEmpty)
        #expect(try await journal.pendingReplies().allSatisfy { $0.kind == .deadLetter })
    }
}
