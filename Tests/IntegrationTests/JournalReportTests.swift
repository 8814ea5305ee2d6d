// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Testing
import Worker
import WorkerApp

/// The pure parts of `ota-cancel-worker journal`: flag values, `show ID` resolution, and every printed form, from
/// values built here (no journal file).
@Suite("Journal report")
struct JournalReportTests {
    private static let now = Date(timeIntervalSince1970: 1_795_000_000)

    private static func entry(
        _ id: Int64,
        _ correlationId: String?,
        status: JournalEntryStatus = .succeeded,
        progress: JournalProgress = .replied
    ) -> JournalEntrySummary {
        var entry = JournalEntrySummary(
            id: id,
            kind: .command,
            progress: progress,
            status: status,
            receivedAt: now,
            replyTopic: "ota/cancel/reply/t"
        )
        entry.correlationId = correlationId
        entry.productKey = "demoProduct"
        entry.firmwareId = "demoFirmware"
        entry.deviceCount = 450
        entry.calls = 3
        entry.completedAt = now.addingTimeInterval(1)
        entry.repliedAt = now.addingTimeInterval(1.01)
        return entry
    }

    private static func call(
        _ id: Int64,
        names: [String]?,
        outcome: JournalCallRecord.Outcome = .succeeded
    )
        -> JournalCallRecord
    {
        var call = JournalCallRecord(
            id: id,
            outcome: outcome,
            productKey: "demoProduct",
            firmwareId: "demoFirmware",
            sentAt: now.addingTimeInterval(0.1),
            deviceCount: names?.count ?? 200,
            shared: false
        )
        call.requestId = "R-\(id)"
        call.attempts = Int(id)
        call.answeredAt = now.addingTimeInterval(0.35)
        call.deviceNames = names
        call.segments = [Int(id) - 1]
        return call
    }

    /// A command answered after three calls, the second with a failure first.
    private static var threeCalls: JournalEntryDetail {
        let names = (1...450).map { String(format: "dev-%06d", $0) }
        var failed = call(2, names: Array(names[200..<400]), outcome: .failed)
        failed.code = "ServiceUnavailable"
        failed.message = "The request has failed due to a temporary failure of the server."
        failed.httpStatus = 503
        let reply = #"""
            {"version":2,"correlationId":"c-1","status":"succeeded","productKey":"demoProduct","firmwareId":"demoFirmware","deviceCount":450,"cancelledDevices":["dev-000001","dev-000002"],"calls":3,"attempts":6,"requestIds":["R-1","R-2","R-3"],"receivedAt":"2026-11-18T11:06:40.000Z","completedAt":"2026-11-18T11:06:41.000Z"}
            """#
        return JournalEntryDetail(
            summary: entry(7, "c-1"),
            command: nil,
            reply: Array(reply.utf8),
            calls: [call(1, names: Array(names[0..<200])), failed, call(3, names: nil)]
        )
    }

    @Test("--since: an RFC 3339 time or a duration back from now; anything else is refused")
    func since() {
        #expect(JournalQuery.since("2026-12-02T06:00:00Z", now: Self.now) == RFC3339.date(from: "2026-12-02T06:00:00Z"))
        #expect(JournalQuery.since("90s", now: Self.now) == Self.now.addingTimeInterval(-90))
        #expect(JournalQuery.since("15m", now: Self.now) == Self.now.addingTimeInterval(-900))
        #expect(JournalQuery.since("1h", now: Self.now) == Self.now.addingTimeInterval(-3600))
        #expect(JournalQuery.since("7d", now: Self.now) == Self.now.addingTimeInterval(-7 * 86_400))
        for bad in ["yesterday", "1w", "-5m", "h", "", "2026-12-02"] {
            #expect(JournalQuery.since(bad, now: Self.now) == nil, "\(bad)")
        }
    }

    @Test("--status: words, repeated or comma-separated; an unknown word is named with the valid ones")
    func statuses() throws {
        #expect(try JournalQuery.statuses(["failed,partial", " Expired"]).get() == [.failed, .partial, .expired])
        #expect(try JournalQuery.statuses(["dead-letter", "running"]).get() == [.deadLetter, .running])
        guard case .failure(let unknown) = JournalQuery.statuses(["failed", "fine"]) else {
            Issue.record("'fine' is no status")
            return
        }
        #expect(unknown.word == "fine")
        #expect(unknown.description.contains("succeeded, partial, failed"))
    }

    @Test("show ID: the exact correlation id first, else a unique prefix; a shared prefix names none")
    func lookup() {
        let entries = [Self.entry(1, "c-1"), Self.entry(2, "c-10"), Self.entry(3, "c-1"), Self.entry(4, "d-7")]
        #expect(
            JournalQuery.lookup("c-1", among: entries) == .found([entries[0], entries[2]]),
            "a command and its repeat"
        )
        #expect(JournalQuery.lookup("c-10", among: entries) == .found([entries[1]]))
        #expect(JournalQuery.lookup("d", among: entries) == .found([entries[3]]))
        #expect(JournalQuery.lookup("c", among: entries) == .ambiguous(["c-1", "c-10"]))
        #expect(JournalQuery.lookup("x", among: []) == .notFound)
    }

    @Test("list: aligned columns, a requester's control characters escaped, long ids clipped")
    func table() {
        let lines = JournalReport.table([
            Self.entry(7, "c-1"), Self.entry(12, "evil\u{1B}[2J\nforged", status: .running, progress: .running),
            Self.entry(130, String(repeating: "x", count: 80)),
        ])
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("ENTRY  RECEIVED"))
        #expect(lines[1].hasPrefix("    7  2026-11-18T11:06:40.000Z  succeeded  replied"))
        #expect(lines[2].contains(#"evil\u{1B}[2J\nforged"#))
        #expect(!lines.joined().contains("\u{1B}"))
        #expect(lines[3].contains(String(repeating: "x", count: 39) + "…"))
        let column = lines[0].range(of: "CORRELATION ID").map {
            lines[0].distance(from: lines[0].startIndex, to: $0.lowerBound)
        }
        for line in lines.dropFirst() {
            let start = line.index(line.startIndex, offsetBy: column ?? 0)
            #expect(line[start] != " ", "the correlation ids line up: \(line)")
        }
    }

    @Test("show: every timestamp, three calls with their request ids, attempts and shortened devices, the reply")
    func show() {
        let text = JournalReport.show(Self.threeCalls).joined(separator: "\n")
        for requestId in ["R-1", "R-2", "R-3"] { #expect(text.contains("RequestId \(requestId)")) }
        #expect(text.contains("Platform calls: 3"))
        #expect(text.contains("received       2026-11-18T11:06:40.000Z"))
        #expect(text.contains("completed      2026-11-18T11:06:41.000Z"))
        #expect(text.contains("replied        2026-11-18T11:06:41.010Z  (broker acknowledged)"))
        #expect(text.contains("sent 2026-11-18T11:06:40.100Z, ended 2026-11-18T11:06:40.350Z (0.250 s)"))
        #expect(text.contains("call 2  failed  RequestId R-2  attempts 2  HTTP 503"))
        #expect(text.contains("ServiceUnavailable: The request has failed"))
        #expect(text.contains("devices 200: dev-000001, dev-000002, "))
        #expect(text.contains("dev-000010 … and 190 more"))
        #expect(!text.contains("dev-000011"), "ten names of a call, not 200")
        #expect(text.contains("names not kept by journals before schema v4"))
        #expect(text.contains("Reply: succeeded"))
        #expect(text.contains("requestIds     R-1, R-2, R-3"))
        #expect(text.contains("Command (as the reply echoes it"))
        #expect(text.contains("devices        450"))
    }

    @Test("JSON: a fixed key order with nulls, the stored reply embedded, every device name; lines parse back")
    func json() throws {
        let detail = Self.threeCalls
        let line = JournalReport.json(detail).serialized()
        #expect(!line.contains("\n"))
        let parsed = try JSONParser.parse(line)
        let object = try #require(parsed.objectValue)
        #expect(
            Array(object.keys.prefix(8)) == [
                "entry", "kind", "status", "progress", "pending", "correlationId", "replyTopic", "productKey",
            ]
        )
        #expect(object["command"] == .null, "dropped once acknowledged: null, not absent")
        #expect(object["deadline"] == .null)
        #expect(object["reply"]?["requestIds"]?.arrayValue?.count == 3)
        let calls = try #require(object["calls"]?.arrayValue)
        #expect(calls.count == 3)
        #expect(calls[0]["deviceNames"]?.arrayValue?.count == 200, "every name")
        #expect(calls[2]["deviceNames"] == .null)
        #expect(calls[1]["httpStatus"] == .number(JSONNumber(503)))

        let summary = try JSONParser.parse(JournalReport.json(detail.summary).serialized())
        #expect(summary["calls"] == .number(JSONNumber(3)))
        #expect(summary["pending"] == .bool(false))
        #expect(summary["reply"] == nil, "list lines carry no payloads")
    }

    @Test("JSON lines escape what could drive a terminal (C1, bidirectional controls) and still parse back exactly")
    func jsonLineEscapes() throws {
        let sneaky = "c-1\u{9B}2J\u{202E}gpj.exe\u{7F}\\n"
        let line = JournalReport.line(JournalReport.json(Self.entry(1, sneaky)))
        #expect(line.contains(#"c-1\u009b2J\u202egpj.exe\u007f\\n"#))
        #expect(!line.unicodeScalars.contains { $0.value == 0x9B || $0.value == 0x202E || $0.value == 0x7F })
        #expect(try JSONParser.parse(line)["correlationId"]?.stringValue == sneaky)
        let plain = JournalReport.json(Self.entry(1, "c-1"))
        #expect(JournalReport.line(plain) == plain.serialized(), "nothing to escape: the serialized text as it is")
    }

    @Test("stats: text leaves zeros out, JSON lists every status, kind and progress")
    func stats() throws {
        var stats = JournalStats()
        stats.byStatus = [.succeeded: 3, .running: 1]
        stats.byKind = [.command: 4]
        stats.byProgress = [.replied: 3, .running: 1]
        stats.calls = 5
        stats.callsByOutcome = [.succeeded: 4, .interrupted: 1]
        stats.attempts = 6
        stats.devicesSent = 450
        stats.schemaVersion = "v4"
        stats.oldestPendingAt = Self.now
        let text = JournalReport.stats(stats, location: "state/journal.sqlite").joined(separator: "\n")
        #expect(text.contains("Entries         4, pending 1"))
        #expect(text.contains("By status       succeeded 3, running 1"))
        #expect(text.contains("Platform calls  5 (succeeded 4, interrupted 1), 6 attempts, 450 device names sent"))
        #expect(text.contains("Oldest pending  2026-11-18T11:06:40.000Z"))
        let json = try JSONParser.parse(JournalReport.json(stats, location: "state/journal.sqlite").serialized())
        #expect(json["byStatus"]?["failed"] == .number(JSONNumber(0)))
        #expect(json["byStatus"]?.objectValue?.count == JournalEntryStatus.allCases.count)
        #expect(json["pending"] == .number(JSONNumber(1)))
    }

    @Test("exit statuses before any journal is read: 66 for a folder without one, 64 for unusable flag values")
    func exitStatuses() async {
        var options = JournalTool.Options(stateDirectory: "/nonexistent-\(UUID().uuidString)", environment: [:])
        var problems = [String]()
        #expect(await JournalTool.list(options, output: { _ in }, problem: { problems.append($0) }) == 66)
        #expect(problems.last?.hasPrefix("Error: there is no journal at /nonexistent-") == true)
        options.since = "last week"
        #expect(await JournalTool.stats(options, output: { _ in }, problem: { problems.append($0) }) == 64)
        options.since = nil
        options.statuses = ["fine"]
        #expect(await JournalTool.export(options, output: { _ in }, problem: { problems.append($0) }) == 64)
        options.statuses = []
        options.limit = -1
        #expect(await JournalTool.list(options, output: { _ in }, problem: { problems.append($0) }) == 64)
        let fromEnvironment = JournalTool.Options(
            stateDirectory: nil,
            environment: ["OTA_CANCEL_STATE_DIR": "/srv/ota"]
        )
        #expect(JournalTool.journalPath(fromEnvironment) == "/srv/ota/journal.sqlite")
        #expect(JournalTool.journalPath(.init(stateDirectory: nil, environment: [:])) == "./state/journal.sqlite")
    }
}
