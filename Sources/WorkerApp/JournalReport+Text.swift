// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
public import Worker

extension JournalReport {
    /// How many device names a text form prints before "… and N more" (`--json` has them all).
    public static let shownNames = 10

    /// `journal list`: a header and one aligned row per entry, oldest first.
    public static func table(_ entries: [JournalEntrySummary]) -> [String] {
        let header = [
            "ENTRY", "RECEIVED", "STATUS", "PROGRESS", "CORRELATION ID", "DEVICES", "CALLS", "PRODUCT/FIRMWARE",
        ]
        let rows = entries.map { entry -> [String] in
            [
                String(entry.id),
                RFC3339.string(from: entry.receivedAt),
                entry.status.rawValue,
                entry.progress.rawValue,
                text(entry.correlationId, limit: 40),
                entry.deviceCount.map(String.init) ?? "-",
                String(entry.calls),
                entry.productKey.map { text($0, limit: 24) + "/" + text(entry.firmwareId, limit: 24) } ?? "-",
            ]
        }
        let numeric: Set<Int> = [0, 5, 6]
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return ([header] + rows).map { row in
            row.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return numeric.contains(index) ? pad + cell : (index == row.count - 1 ? cell : cell + pad)
            }.joined(separator: "  ")
        }
    }

    /// `journal show`: the entry, its timestamps, the command, each platform call and the reply, for a person.
    public static func show(_ detail: JournalEntryDetail) -> [String] {
        let entry = detail.summary
        var lines = ["Entry \(entry.id): \(entry.kind.rawValue), \(entry.status.rawValue), \(entry.progress.rawValue)"]
        func field(_ name: String, _ value: String?) {
            guard let value else { return }
            lines.append("  " + name.padding(toLength: 15, withPad: " ", startingAt: 0) + value)
        }
        field("correlation id", entry.correlationId.map { text($0) } ?? "(none)")
        field("reply topic", text(entry.replyTopic))
        field("received", RFC3339.string(from: entry.receivedAt))
        field("deadline", entry.deadline.map(RFC3339.string(from:)))
        field("completed", entry.completedAt.map { RFC3339.string(from: $0) + "  (reply decided and stored)" })
        switch entry.progress {
        case .replied: field("replied", entry.repliedAt.map { RFC3339.string(from: $0) + "  (broker acknowledged)" })
        case .undeliverable: field("undeliverable", entry.repliedAt.map(RFC3339.string(from:)))
        case .running:
            field(
                "pending",
                "no reply yet: the worker runs it, or will at its next start (a call is stored when it ends)"
            )
        case .waiting:
            field("pending", "a duplicate, answered when entry \(entry.originalId.map(String.init) ?? "?") is")
        case .replyStored:
            field("pending", "the reply waits for the broker's acknowledgement (published again if needed)")
        }
        field("duplicate of", entry.kind == .duplicate ? entry.originalId.map { "entry \($0)" } : nil)
        field("delivery error", entry.deliveryError.map { text($0) })

        let command = detail.command.flatMap { try? JSONParser.parse($0) }
        let reply = detail.reply.flatMap { try? JSONParser.parse($0) }
        if entry.kind == .command || entry.kind == .duplicate || entry.kind == .answer {
            lines.append("")
            lines += commandLines(command: command, reply: reply, entry: entry)
        }
        if entry.kind == .command {
            lines.append("")
            lines.append("Platform calls: \(detail.calls.count)")
            for call in detail.calls { lines += callLines(call) }
        }
        lines.append("")
        lines += replyLines(reply, raw: detail.reply, kind: entry.kind)
        return lines
    }

    /// `journal stats` for a person.
    public static func stats(_ stats: JournalStats, location: String) -> [String] {
        func list<Key: RawRepresentable<String>>(_ keys: [Key], _ values: [Key: Int]) -> String {
            let shown = keys.compactMap { key in values[key].map { "\(key.rawValue) \($0)" } }
            return shown.isEmpty ? "-" : shown.joined(separator: ", ")
        }
        let outcomes: [JournalCallRecord.Outcome] = [.succeeded, .failed, .interrupted]
        var lines = [
            "Journal         \(text(location)) (schema \(stats.schemaVersion ?? "?"))",
            "Entries         \(stats.entries), pending \(stats.pending)",
            "By status       " + list(JournalEntryStatus.allCases, stats.byStatus),
            "By kind         " + list(JournalEntryKind.allCases, stats.byKind),
            "By progress     " + list(JournalProgress.allCases, stats.byProgress),
            "Platform calls  \(stats.calls) (\(list(outcomes, stats.callsByOutcome))), \(stats.attempts) attempts, "
                + "\(stats.devicesSent) device names sent",
        ]
        if let oldest = stats.oldestReceivedAt, let newest = stats.newestReceivedAt {
            lines.append("Received        \(RFC3339.string(from: oldest)) to \(RFC3339.string(from: newest))")
        }
        if let pending = stats.oldestPendingAt {
            lines.append("Oldest pending  \(RFC3339.string(from: pending))")
        }
        return lines
    }

    /// A device list as "N: a, b, … and M more".
    public static func names(_ names: [String]) -> String {
        let shown = names.prefix(shownNames).map { text($0) }.joined(separator: ", ")
        let rest = names.count - min(names.count, shownNames)
        return "\(names.count)" + (names.isEmpty ? "" : ": " + shown) + (rest > 0 ? " … and \(rest) more" : "")
    }

    // MARK: - Parts of `show`

    static func commandLines(command: JSONValue?, reply: JSONValue?, entry: JournalEntrySummary) -> [String] {
        // The command's bytes are dropped once its reply is acknowledged; the reply echoes its fields.
        let source = command ?? reply
        var lines = [
            command == nil ? "Command (as the reply echoes it; its bytes go once the reply is acknowledged)" : "Command"
        ]
        for key in ["productKey", "firmwareId", "jobId", "iotInstanceId", "reason", "requestedBy"] {
            if let value = source?[key]?.stringValue {
                lines.append("  " + key.padding(toLength: 15, withPad: " ", startingAt: 0) + text(value))
            }
        }
        if let dryRun = source?["dryRun"]?.boolValue, dryRun { lines.append("  dryRun         true") }
        if let devices = command?["deviceNames"]?.arrayValue {
            lines.append("  devices        " + names(devices.compactMap(\.stringValue)))
        } else if let count = entry.deviceCount {
            lines.append("  devices        \(count)")
        }
        return lines
    }

    static func callLines(_ call: JournalCallRecord) -> [String] {
        var head = "  call \(call.id)  \(call.outcome.rawValue)  RequestId \(call.requestId.map { text($0) } ?? "-")"
        head += "  attempts \(call.attempts.map(String.init) ?? "-")"
        if let status = call.httpStatus { head += "  HTTP \(status)" }
        if call.shared { head += "  (shared with other commands)" }
        var lines = [head]
        var times = "      sent \(RFC3339.string(from: call.sentAt))"
        if let answered = call.answeredAt {
            times += ", ended \(RFC3339.string(from: answered))"
            times += String(format: " (%.3f s)", answered.timeIntervalSince(call.sentAt))
        }
        lines.append(times)
        if let code = call.code {
            lines.append("      \(text(code)): \(text(call.message ?? "", limit: 200))")
        }
        let devices = call.deviceNames.map(names) ?? "\(call.deviceCount) (names not kept by journals before schema v4)"
        lines.append("      devices " + devices)
        return lines
    }

    static func replyLines(_ reply: JSONValue?, raw: [UInt8]?, kind: JournalEntryKind) -> [String] {
        let title = kind == .deadLetter ? "Dead letter" : kind == .notice ? "Notice" : "Reply"
        guard let raw else { return ["\(title): none yet"] }
        guard case .object(let object)? = reply else {
            return ["\(title) (\(raw.count) bytes, not JSON)"]
        }
        guard kind != .deadLetter, kind != .notice else {
            return ["\(title)", "  " + text(JSONValue.object(object).serialized(), limit: 2000)]
        }
        var lines = ["Reply: \(text(object["status"]?.stringValue ?? "?"))"]
        func field(_ name: String, _ value: String?) {
            guard let value else { return }
            lines.append("  " + name.padding(toLength: 15, withPad: " ", startingAt: 0) + value)
        }
        if object["duplicate"]?.boolValue == true { field("duplicate", "true (the original's reply)") }
        field("receivedAt", object["receivedAt"]?.stringValue)
        field("completedAt", object["completedAt"]?.stringValue)
        field("calls", object["calls"]?.numberValue.map(\.description))
        field("attempts", object["attempts"]?.numberValue.map(\.description))
        if let ids = object["requestIds"]?.arrayValue {
            field("requestIds", ids.compactMap(\.stringValue).map { text($0) }.joined(separator: ", "))
        }
        if let cancelled = object["cancelledDevices"]?.arrayValue {
            field("cancelled", names(cancelled.compactMap(\.stringValue)))
        }
        for group in object["failedGroups"]?.arrayValue ?? [] {
            let devices = group["deviceNames"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var line =
                "\(text(group["code"]?.stringValue ?? "?")): \(text(group["message"]?.stringValue ?? "", limit: 200))"
            line += " (RequestId \(group["requestId"]?.stringValue.map { text($0) } ?? "-"))"
            field("failed", line)
            field("", "devices " + names(devices))
        }
        if case .object(let devices)? = object["devices"] {
            for (group, value) in devices {
                guard group != "requestIds", let list = value.arrayValue, !list.isEmpty,
                    list.allSatisfy({ $0.stringValue != nil })
                else { continue }
                field("read-back", "\(group) " + names(list.compactMap(\.stringValue)))
            }
            if let reads = devices["requestIds"]?.arrayValue, !reads.isEmpty {
                field("read requests", reads.compactMap(\.stringValue).map { text($0) }.joined(separator: ", "))
            }
        }
        for problem in object["errors"]?.arrayValue ?? [] {
            let location = problem["instanceLocation"]?.stringValue ?? ""
            field(
                "error",
                "\(text(problem["code"]?.stringValue ?? "?")) at '\(text(location))': "
                    + text(problem["message"]?.stringValue ?? "", limit: 300)
            )
        }
        lines.append("  (the whole reply: journal show --json)")
        return lines
    }

    /// A requester's text made safe for a terminal (``LogEscaping``), clipped to `limit` characters.
    static func text(_ value: String?, limit: Int = .max) -> String {
        guard let value else { return "-" }
        let escaped = LogEscaping.escape(value)
        return escaped.count > limit ? String(escaped.prefix(limit - 1)) + "…" : escaped
    }
}
