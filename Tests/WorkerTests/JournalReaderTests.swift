// SPDX-License-Identifier: Apache-2.0
import Foundation
import GRDB
import JSONSchema
import Mosquitto
import Testing

@testable import Worker

/// ``SQLiteJournalReader`` against journals written by the real ``SQLiteJournal``.
@Suite("Journal reader")
struct JournalReaderTests {
    /// A fresh folder holding `journal.sqlite` (the caller removes the folder).
    private static func temporaryJournal() throws -> (folder: String, path: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("reader-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return (folder, folder + "/journal.sqlite")
    }

    private static func decision(
        _ payload: String = Fixtures.validPayload,
        correlation: String
    ) throws -> IntakeDecision {
        try Fixtures.intake().decide(
            Fixtures.message(payload, responseTopic: "ota/cancel/reply/r", correlationData: Array(correlation.utf8))
        )
    }

    private static func accepted(_ decision: IntakeDecision) throws -> AcceptedCommand {
        guard case .execute(let accepted) = decision else { throw ReaderTestError.notAccepted }
        return accepted
    }

    private enum ReaderTestError: Error { case notAccepted, notExecuted }

    /// Journals a command; returns its id and what intake accepted.
    private static func record(_ journal: SQLiteJournal, _ correlation: String) throws -> (Int64, AcceptedCommand) {
        let decision = try decision(correlation: correlation)
        guard case .execute(let id) = try journal.record(decision, at: Fixtures.fixedNow) else {
            throw ReaderTestError.notExecuted
        }
        return (id, try accepted(decision))
    }

    private static let key = BatchKey(
        account: "a",
        iotInstanceId: nil,
        productKey: "demoProduct",
        firmwareId: "demoFirmware",
        jobId: nil
    )

    /// One stored call for segment `segment` of command `id`, the way the dispatcher stores it.
    private static func call(
        _ journal: SQLiteJournal,
        id: Int64,
        command: Int64,
        segment: Int,
        names: [String],
        result: CallResult,
        completing: CompletedCommand? = nil
    ) async throws -> [PendingReply] {
        let part = SegmentID(command: command, index: segment)
        var settlement = Settlement()
        settlement.call = (
            CallPlan(
                id: id,
                key: key,
                deviceNames: names,
                parts: [part],
                deadline: nil,
                waited: [0],
                group: nil,
                sentAt: Fixtures.fixedNow.addingTimeInterval(Double(id))
            ),
            result
        )
        settlement.outcomes[part] = BatchOutcome(
            succeeded: result.kind == .succeeded,
            final: true,
            requestId: result.requestId,
            attempts: result.attempts
        )
        if let completing { settlement.completed = [completing] }
        return try await journal.record(settlement, at: Fixtures.fixedNow.addingTimeInterval(Double(id) + 0.5))
    }

    private static func reply(for accepted: AcceptedCommand, requestIds: [String]) -> CancelReply {
        var reply = CancelReply(
            correlationId: accepted.correlationId,
            status: .succeeded,
            receivedAt: accepted.receivedAt,
            completedAt: Fixtures.fixedNow.addingTimeInterval(4)
        )
        reply.echo(accepted.command)
        reply.calls = requestIds.count
        reply.requestIds = requestIds
        reply.cancelledDevices = ["dev-000001", "dev-000002"]
        return reply
    }

    @Test("a command answered after three calls: its three request ids, devices, attempts, times and reply")
    func threeCalls() async throws {
        let (folder, path) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let journal = try SQLiteJournal(configuration: .init(path: path))
        let (id, accepted) = try Self.record(journal, "three-calls")
        _ = try await Self.call(
            journal,
            id: 1,
            command: id,
            segment: 0,
            names: ["dev-000001"],
            result: CallResult(kind: .succeeded, requestId: "R-1", attempts: 1)
        )
        _ = try await Self.call(
            journal,
            id: 2,
            command: id,
            segment: 1,
            names: ["dev-000002"],
            result: CallResult(
                kind: .transientFailure,
                requestId: "R-2",
                code: "ServiceUnavailable",
                httpStatus: 503,
                attempts: 3
            )
        )
        let published = try await Self.call(
            journal,
            id: 3,
            command: id,
            segment: 1,
            names: ["dev-000002"],
            result: CallResult(kind: .succeeded, requestId: "R-3", attempts: 2),
            completing: CompletedCommand(
                id: id,
                accepted: accepted,
                reply: Self.reply(for: accepted, requestIds: ["R-1", "R-3"])
            )
        )
        #expect(published.map(\.id) == [id])

        let reader = try SQLiteJournalReader(path: path)
        #expect(reader.access == .shared)
        #expect(reader.schemaVersion == "v4")
        var detail = try #require(try await reader.details(matching: JournalFilter(), after: 0, limit: 10).first)
        #expect(detail.summary.correlationId == "three-calls")
        #expect(detail.summary.status == .succeeded)
        #expect(detail.summary.progress == .replyStored, "stored, not yet acknowledged by the broker")
        #expect(detail.summary.calls == 3)
        #expect(detail.summary.deviceCount == 2)
        #expect(detail.summary.productKey == "demoProduct")
        #expect(detail.calls.map(\.requestId) == ["R-1", "R-2", "R-3"])
        #expect(detail.calls.map(\.attempts) == [1, 3, 2])
        #expect(detail.calls.map(\.outcome) == [.succeeded, .failed, .succeeded])
        #expect(detail.calls.map(\.deviceNames) == [["dev-000001"], ["dev-000002"], ["dev-000002"]])
        #expect(detail.calls.map(\.segments) == [[0], [1], [1]])
        #expect(detail.calls[1].code == "ServiceUnavailable" && detail.calls[1].httpStatus == 503)
        #expect(detail.calls[0].sentAt == Fixtures.fixedNow.addingTimeInterval(1))
        #expect(detail.calls[0].answeredAt == Fixtures.fixedNow.addingTimeInterval(1.5))
        #expect(detail.summary.completedAt == Fixtures.fixedNow.addingTimeInterval(3.5))
        #expect(detail.command == accepted.payload, "the command as received, until acknowledged")
        let reply = try JSONParser.parse(try #require(detail.reply))
        #expect(reply["requestIds"] == .array([.string("R-1"), .string("R-3")]))

        // Acknowledged: the command's bytes go (the worker drops them), the reply and the calls stay.
        try await journal.markReplied([id])
        detail = try #require(try await reader.details(matching: JournalFilter(), after: 0, limit: 10).first)
        #expect(detail.summary.progress == .replied)
        #expect(detail.summary.repliedAt != nil)
        #expect(detail.command == nil)
        #expect(detail.summary.deviceCount == 2, "from the reply's echo")
        #expect(detail.calls.count == 3)

        let stats = try await reader.stats(matching: JournalFilter())
        #expect(stats.entries == 1 && stats.pending == 0)
        #expect(stats.calls == 3 && stats.attempts == 6 && stats.devicesSent == 3)
        #expect(stats.callsByOutcome == [.succeeded: 2, .failed: 1])
    }

    @Test("pending is what the worker still owes: running, a waiting duplicate, a reply not acknowledged")
    func pending() async throws {
        let (folder, path) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let journal = try SQLiteJournal(configuration: .init(path: path))
        let (running, _) = try Self.record(journal, "p-running")
        guard
            case .waitForOriginal(let waiting) = try journal.record(
                try Self.decision(correlation: "p-running"),
                at: Fixtures.fixedNow
            )
        else {
            Issue.record("a repeat of an unanswered command waits for it")
            return
        }
        let (stored, storedCommand) = try Self.record(journal, "p-stored")
        let (replied, repliedCommand) = try Self.record(journal, "q-replied")
        for (id, accepted) in [(stored, storedCommand), (replied, repliedCommand)] {
            var settlement = Settlement()
            settlement.completed = [
                CompletedCommand(id: id, accepted: accepted, reply: Self.reply(for: accepted, requestIds: []))
            ]
            _ = try await journal.record(settlement, at: Fixtures.fixedNow)
        }
        try await journal.markReplied([replied])
        // A rejected command (answered at intake) and a dead letter.
        _ = try journal.record(
            try Self.decision(#"{"productKey": 1}"#, correlation: "q-rejected"),
            at: Fixtures.fixedNow
        )

        let reader = try SQLiteJournalReader(path: path)
        let all = try await reader.entries(matching: JournalFilter(), limit: nil, newest: false)
        #expect(all.map(\.correlationId) == ["p-running", "p-running", "p-stored", "q-replied", "q-rejected"])
        #expect(all.map(\.status) == [.running, .waiting, .succeeded, .succeeded, .rejected])
        #expect(all.map(\.kind) == [.command, .duplicate, .command, .command, .answer])
        #expect(all[1].originalId == running)

        let pending = try await reader.entries(matching: JournalFilter(pendingOnly: true), limit: nil, newest: false)
        #expect(
            pending.map(\.id) == [running, waiting, stored, all[4].id],
            "the rejection's reply is not acknowledged"
        )
        #expect(pending.allSatisfy { $0.progress.isPending })

        let rejected = try await reader.entries(
            matching: JournalFilter(statuses: [.rejected]),
            limit: nil,
            newest: false
        )
        #expect(rejected.map(\.correlationId) == ["q-rejected"])
        let prefixed = try await reader.entries(
            matching: JournalFilter(correlationIdPrefix: "q-"),
            limit: nil,
            newest: false
        )
        #expect(prefixed.map(\.correlationId) == ["q-replied", "q-rejected"])
        let newest = try await reader.entries(matching: JournalFilter(), limit: 2, newest: true)
        #expect(newest.map(\.correlationId) == ["q-replied", "q-rejected"], "the newest two, oldest first")
        let later = try await reader.entries(
            matching: JournalFilter(since: Fixtures.fixedNow.addingTimeInterval(1)),
            limit: nil,
            newest: false
        )
        #expect(later.isEmpty)
        let page = try await reader.details(matching: JournalFilter(), after: all[1].id, limit: 2)
        #expect(page.map(\.summary.id) == [all[2].id, all[3].id], "export pages go on after the last id")

        let stats = try await reader.stats(matching: JournalFilter())
        #expect(stats.entries == 5 && stats.pending == 4)
        #expect(stats.byStatus == [.running: 1, .waiting: 1, .succeeded: 2, .rejected: 1])
        #expect(stats.oldestPendingAt == Fixtures.fixedNow)
    }

    @Test("reads beside a writer in WAL mode, sees its later commits, and never writes")
    func besideWriter() async throws {
        let (folder, path) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let journal = try SQLiteJournal(configuration: .init(path: path))
        _ = try Self.record(journal, "w-1")
        #expect(FileManager.default.fileExists(atPath: path + "-wal"), "the writer keeps its WAL open")
        let reader = try SQLiteJournalReader(path: path)
        #expect(try await reader.entries(matching: JournalFilter(), limit: nil, newest: false).count == 1)
        _ = try Self.record(journal, "w-2")
        #expect(try await reader.entries(matching: JournalFilter(), limit: nil, newest: false).count == 2)
        // A read-only connection refuses writes; the writer is not held up by the open reader.
        #expect(throws: (any Error).self) {
            try reader.database.write { db in try db.execute(sql: "DELETE FROM message") }
        }
        _ = try Self.record(journal, "w-3")
        #expect(try await reader.stats(matching: JournalFilter()).entries == 3)
    }

    @Test("a journal closed cleanly (no -wal, no -shm) is read; a folder nobody may write is read immutable")
    func withoutCompanions() async throws {
        let (folder, path) = try Self.temporaryJournal()
        defer {
            chmod(folder, 0o700)
            try? FileManager.default.removeItem(atPath: folder)
        }
        do {
            let journal = try SQLiteJournal(configuration: .init(path: path))
            _ = try Self.record(journal, "closed")
        }
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the last connection removes the WAL")
        do {
            let reader = try SQLiteJournalReader(path: path)
            #expect(reader.access == .shared)
            #expect(try await reader.entries(matching: JournalFilter(), limit: nil, newest: false).count == 1)
        }
        // Root may write anywhere, so only another user sees a folder it cannot write.
        guard geteuid() != 0 else { return }
        for companion in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + companion) }
        chmod(folder, 0o500)
        let reader = try SQLiteJournalReader(path: path)
        #expect(reader.access == .immutable)
        #expect(try await reader.entries(matching: JournalFilter(), limit: nil, newest: false).count == 1)
    }

    @Test("a journal of schema v3 is read (calls without names), and the worker's migration to v4 keeps it readable")
    func olderSchema() async throws {
        let (folder, path) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let pool = try DatabasePool(path: path)
            try SQLiteJournal.migrator.migrate(pool, upTo: "v3")
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO message (id, kind, state, receivedAt, replyTopic, routeSource, correlationId,
                            payload)
                        VALUES (1, 'command', 'accepted', 1795000000, 'ota/cancel/reply/r', 'responseTopic', 'old', ?);
                        INSERT INTO platformCall (id, state, productKey, firmwareId, deviceCount, shared, sentAt,
                            answeredAt, succeeded, attempts, requestId)
                        VALUES (1, 'answered', 'demoProduct', 'demoFirmware', 2, 0, 1795000001, 1795000002, 1, 1, 'R-old');
                        INSERT INTO callPart (callId, messageId, segment) VALUES (1, 1, 0);
                        """,
                    arguments: [Data(Fixtures.validPayload.utf8)]
                )
            }
        }
        var reader = try SQLiteJournalReader(path: path)
        #expect(reader.schemaVersion == "v3")
        var call = try #require(
            try await reader.details(matching: JournalFilter(), after: 0, limit: 1).first?.calls.first
        )
        #expect(call.requestId == "R-old" && call.deviceCount == 2 && call.deviceNames == nil)

        let journal = try SQLiteJournal(configuration: .init(path: path))
        #expect(
            try await journal.unansweredCommands(after: 0, limit: 10).map(\.id) == [1],
            "the old command still runs"
        )
        reader = try SQLiteJournalReader(path: path)
        #expect(reader.schemaVersion == "v4")
        call = try #require(try await reader.details(matching: JournalFilter(), after: 0, limit: 1).first?.calls.first)
        #expect(call.requestId == "R-old" && call.deviceNames == nil, "a call stored before v4 has no names")
    }

    @Test("a file that is not a journal, or none, is refused with a journal error")
    func notAJournal() throws {
        let (folder, path) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: WorkerError.journal("")) { try SQLiteJournalReader(path: path) }
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: WorkerError.journal("")) { try SQLiteJournalReader(path: path) }
    }
}
