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

    @Test("a new command is recorded accepted and comes back ready, with its route and payload")
    func recordAndRead() async throws {
        let journal = try Journal(configuration: .init(path: nil))
        let action = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        guard case .execute(let id) = action else {
            Issue.record("expected execution, got \(action)")
            return
        }
        var cursor = Journal.Cursor()
        let ready = try await journal.readyCommands(after: &cursor, excluding: [], limit: 10, now: Date())
        #expect(ready.map(\.id) == [id])
        #expect(cursor.lastId == id)
        #expect(ready.first?.accepted.command.deviceNames == ["dev-000001", "dev-000002"])
        #expect(ready.first?.accepted.route.topic == "ota/cancel/reply/j")
        #expect(ready.first?.accepted.route.correlationData == Array("c-1".utf8))
        #expect(ready.first?.accepted.correlationId == "c-1")
        // Read once: the cursor has moved past it (and it is running).
        #expect(try await journal.readyCommands(after: &cursor, excluding: [id], limit: 10, now: Date()).isEmpty)
        var fresh = Journal.Cursor()
        #expect(try await journal.readyCommands(after: &fresh, excluding: [], limit: 10, now: Date()).map(\.id) == [id])
        #expect(try await journal.counts() == ["accepted": 1])
    }

    @Test("duplicates: waiting while the original runs, answered with it; after it, answered from the stored reply")
    func duplicates() async throws {
        let journal = try Journal(configuration: .init(path: nil))
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
        let reply = Array(#"{"version":1,"correlationId":"c-1","status":"succeeded","calls":1}"#.utf8)
        let route = ReplyRoute(topic: "ota/cancel/reply/j", source: .responseTopic, correlationData: Array("c-1".utf8))
        let published = try await journal.complete(id, reply: reply, route: route)
        #expect(published.count == 2)
        #expect(published[0].message.payload == reply)
        #expect(
            String(decoding: published[1].message.payload, as: UTF8.self)
                == #"{"version":1,"correlationId":"c-1","status":"succeeded","duplicate":true,"calls":1}"#
        )
        #expect(published.allSatisfy { $0.message.properties.correlationData == Array("c-1".utf8) })

        // After the original finished: answered at once.
        guard case .publish(let later) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected an immediate answer")
            return
        }
        #expect(later.message.payload == published[1].message.payload)

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
        guard case .publish(let refusal) = try journal.record(try Self.intakeDecision(other), at: Fixtures.fixedNow)
        else {
            Issue.record("expected a refusal")
            return
        }
        let refused = try JSONParser.parse(refusal.message.payload)
        #expect(refused["status"]?.stringValue == "rejected")
        #expect(refused["errors"]?.arrayValue?.first?["code"]?.stringValue == "ConflictingDuplicate")
    }

    @Test("key order and whitespace do not make another command")
    func canonicalPayload() throws {
        let journal = try Journal(configuration: .init(path: nil))
        _ = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
        let reordered =
            #"{ "deviceNames" : ["dev-000001","dev-000002"], "firmwareId":"demoFirmware", "productKey":"demoProduct" }"#
        guard case .waitForOriginal = try journal.record(try Self.intakeDecision(reordered), at: Fixtures.fixedNow)
        else {
            Issue.record("the same command, written differently, is a duplicate")
            return
        }
    }

    @Test("calls: final outcomes are kept, transient ones add up their attempts; retries wait for their time")
    func callsAndRetries() async throws {
        let journal = try Journal(configuration: .init(path: nil))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            return
        }
        var cursor = Journal.Cursor()
        #expect(
            try await journal.readyCommands(after: &cursor, excluding: [], limit: 10, now: Date()).map(\.id) == [id]
        )
        try await journal.recordCall(
            id,
            batch: 1,
            outcome: BatchOutcome(succeeded: true, final: true, requestId: "R-1", attempts: 1)
        )
        let later = Date().addingTimeInterval(60)
        try await journal.scheduleRetry(
            id,
            at: later,
            outcomes: [
                0: BatchOutcome(
                    succeeded: false,
                    final: false,
                    code: "ServiceUnavailable",
                    transient: true,
                    attempts: 8
                )
            ]
        )
        #expect(
            try await journal.readyCommands(after: &cursor, excluding: [], limit: 10, now: Date()).isEmpty,
            "not due yet"
        )
        let due = try await journal.readyCommands(after: &cursor, excluding: [], limit: 10, now: later)
        #expect(due.map(\.id) == [id], "due: read again although the cursor is past it")
        #expect(
            try await journal.readyCommands(after: &cursor, excluding: [id], limit: 10, now: later).isEmpty,
            "but not while it runs"
        )
        #expect(due.first?.retryRound == 1)
        #expect(due.first?.batches[0]?.attempts == 8)
        #expect(due.first?.batches[0]?.final == false)
        #expect(due.first?.batches[1] == BatchOutcome(succeeded: true, final: true, requestId: "R-1", attempts: 1))
    }

    @Test("a cancelled caller (a worker shutting down) still reads and records: nothing fails with CancellationError")
    func cancelledCaller() async throws {
        let journal = try Journal(configuration: .init(path: nil))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected execution")
            return
        }
        let reply = Array(#"{"version":1,"correlationId":"c-1","status":"succeeded","calls":1}"#.utf8)
        let route = ReplyRoute(topic: "ota/cancel/reply/j", source: .responseTopic, correlationData: Array("c-1".utf8))
        let shutdown = Task {
            // Cancelled before it does anything, as the worker's tasks are when it stops.
            withUnsafeCurrentTask { $0?.cancel() }
            #expect(Task.isCancelled)
            var cursor = Journal.Cursor()
            let ready = try await journal.readyCommands(after: &cursor, excluding: [], limit: 10, now: Date())
            try await journal.recordCall(
                id,
                batch: 0,
                outcome: BatchOutcome(succeeded: true, final: true, requestId: "R-1", attempts: 1)
            )
            let published = try await journal.complete(id, reply: reply, route: route)
            try await journal.markReplied(published.map(\.id))
            return (ready.map(\.id), try await journal.counts())
        }
        let (ready, counts) = try await shutdown.value
        #expect(ready == [id])
        #expect(counts == ["replied": 1])
        #expect(try await journal.pendingReplies().isEmpty)
    }

    @Test("everything survives closing and reopening the file")
    func reopen() async throws {
        let path = Self.temporaryPath()
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        var id: Int64 = 0
        do {
            let journal = try Journal(configuration: .init(path: path, synchronous: .full))
            guard case .execute(let recorded) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow)
            else { return }
            id = recorded
            guard
                case .execute(let second) = try journal.record(
                    try Self.intakeDecision(correlation: "c-2"),
                    at: Fixtures.fixedNow
                )
            else { return }
            _ = try await journal.complete(
                second,
                reply: Array(#"{"status":"succeeded"}"#.utf8),
                route: ReplyRoute(topic: "t", source: .defaultTopic, correlationData: nil)
            )
            guard case .deadLetter = try Fixtures.intake().decide(Fixtures.message("{oops")) else { return }
            _ = try journal.record(try Fixtures.intake().decide(Fixtures.message("{oops")), at: Fixtures.fixedNow)
        }
        let reopened = try Journal(configuration: .init(path: path))
        var cursor = Journal.Cursor()
        #expect(
            try await reopened.readyCommands(after: &cursor, excluding: [], limit: 10, now: Date()).map(\.id) == [id]
        )
        let pending = try await reopened.pendingReplies()
        #expect(pending.count == 2, "the stored reply and the dead letter")
        #expect(pending.contains { $0.message.topic == "ota/cancel/dead-letter" })
        try await reopened.markReplied(pending.map(\.id))
        #expect(try await reopened.pendingReplies().isEmpty)
        #expect(try await reopened.counts() == ["accepted": 1, "replied": 2])
    }

    @Test("pruning: replied entries older than the retention, and the oldest beyond the maximum")
    func pruning() async throws {
        let journal = try Journal(configuration: .init(path: nil, retention: .seconds(3600), maxEntries: 3))
        let route = ReplyRoute(topic: "t", source: .defaultTopic, correlationData: nil)
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
        for id in ids.prefix(5) {
            let stored = try await journal.complete(id, reply: Array(#"{"status":"succeeded"}"#.utf8), route: route)
            try await journal.markReplied(stored.map(\.id))
        }
        let deleted = try await journal.prune(now: Fixtures.fixedNow)
        #expect(deleted == 2, "five replied, at most three kept")
        #expect(try await journal.counts() == ["replied": 3, "accepted": 1])
        #expect(
            try await journal.prune(now: Fixtures.fixedNow.addingTimeInterval(7200)) == 3,
            "all replied ones are past the retention"
        )
        #expect(try await journal.counts() == ["accepted": 1])
    }
    @Test("an undeliverable reply: recorded with its reason, never pending again; its notice stored in its place")
    func undeliverable() async throws {
        let journal = try Journal(configuration: .init(path: nil, retention: .seconds(3600)))
        guard case .execute(let id) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("expected execution")
            return
        }
        let reply = Array(#"{"version":1,"correlationId":"c-1","status":"succeeded"}"#.utf8)
        let stored = try await journal.complete(
            id,
            reply: reply,
            route: ReplyRoute(topic: "ota/cancel/reply/j", source: .responseTopic, correlationData: Array("c-1".utf8))
        )
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
        #expect(try await journal.counts() == ["undeliverable": 1, "done": 1])

        // A duplicate of the command (on a route that works) still gets the stored reply.
        guard case .publish(let again) = try journal.record(try Self.intakeDecision(), at: Fixtures.fixedNow) else {
            Issue.record("a duplicate of an undeliverable command is answered from the stored reply")
            return
        }
        #expect(String(decoding: again.message.payload, as: UTF8.self).contains(#""duplicate":true"#))

        // Finished entries are pruned like replied ones.
        try await journal.markUndeliverable(noticeEntry.id, reason: "again", notice: nil)
        try await journal.markReplied([again.id])
        #expect(try await journal.prune(now: Date().addingTimeInterval(7_200)) == 3)
        #expect(try await journal.counts().isEmpty)
    }

    @Test("pending replies in bounded reads: oldest first, skipping the ids in hand")
    func boundedPendingReads() async throws {
        let journal = try Journal(configuration: .init(path: nil))
        var ids = [Int64]()
        for index in 0..<6 {
            guard
                case .publish(let reply) = try journal.record(
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
