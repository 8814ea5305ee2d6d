// SPDX-License-Identifier: Apache-2.0
import Foundation
public import JSONSchema
public import Worker

/// What `ota-cancel-worker journal` prints, from the values a ``JournalAudit`` returns: pure functions, no I/O.
///
/// JSON is one object per line with a fixed key order and every key present (`null` when absent), so an audit
/// store can rely on the shape; timestamps are RFC 3339 in UTC with milliseconds. The text forms are for a person:
/// every value that came from a requester is escaped (``LogEscaping``), and long device lists are shortened.
public enum JournalReport {
    /// One `journal list --json` line: an entry without its payloads and calls (`calls` is their number).
    public static func json(_ entry: JournalEntrySummary) -> JSONValue {
        var object = JSONObject()
        object["entry"] = .number(JSONNumber(Int(entry.id)))
        object["kind"] = .string(entry.kind.rawValue)
        object["status"] = .string(entry.status.rawValue)
        object["progress"] = .string(entry.progress.rawValue)
        object["pending"] = .bool(entry.progress.isPending)
        object["correlationId"] = optional(entry.correlationId)
        object["replyTopic"] = .string(entry.replyTopic)
        object["productKey"] = optional(entry.productKey)
        object["firmwareId"] = optional(entry.firmwareId)
        object["deviceCount"] = entry.deviceCount.map { .number(JSONNumber($0)) } ?? .null
        object["receivedAt"] = timestamp(entry.receivedAt)
        object["deadline"] = timestamp(entry.deadline)
        object["completedAt"] = timestamp(entry.completedAt)
        object["repliedAt"] = timestamp(entry.repliedAt)
        object["originalEntry"] = entry.originalId.map { .number(JSONNumber(Int($0))) } ?? .null
        object["deliveryError"] = optional(entry.deliveryError)
        object["calls"] = .number(JSONNumber(entry.calls))
        return .object(object)
    }

    /// One `journal export` line, and `journal show --json`: the entry, the command and the reply as stored (JSON
    /// embedded as JSON; `null` once dropped), and every call with all its device names.
    public static func json(_ detail: JournalEntryDetail) -> JSONValue {
        guard case .object(var object) = json(detail.summary) else { return .null }
        object["calls"] = .array(detail.calls.map(json))
        object["command"] = embedded(detail.command)
        object["reply"] = embedded(detail.reply)
        return .object(object)
    }

    /// One call, with every name it sent (`null` for calls stored before the journal kept them).
    public static func json(_ call: JournalCallRecord) -> JSONValue {
        var object = JSONObject()
        object["call"] = .number(JSONNumber(Int(call.id)))
        object["outcome"] = .string(call.outcome.rawValue)
        object["requestId"] = optional(call.requestId)
        object["attempts"] = call.attempts.map { .number(JSONNumber($0)) } ?? .null
        object["code"] = optional(call.code)
        object["message"] = optional(call.message)
        object["httpStatus"] = call.httpStatus.map { .number(JSONNumber($0)) } ?? .null
        object["productKey"] = .string(call.productKey)
        object["firmwareId"] = .string(call.firmwareId)
        object["jobId"] = optional(call.jobId)
        object["iotInstanceId"] = optional(call.iotInstanceId)
        object["sentAt"] = timestamp(call.sentAt)
        object["answeredAt"] = timestamp(call.answeredAt)
        object["deviceCount"] = .number(JSONNumber(call.deviceCount))
        object["deviceNames"] = call.deviceNames.map { .array($0.map(JSONValue.string)) } ?? .null
        object["shared"] = .bool(call.shared)
        object["segments"] = .array(call.segments.map { .number(JSONNumber($0)) })
        return .object(object)
    }

    /// `journal stats --json`: every status, kind and progress with its count (zeros included).
    public static func json(_ stats: JournalStats, location: String) -> JSONValue {
        var object = JSONObject()
        object["journal"] = .string(location)
        object["schema"] = optional(stats.schemaVersion)
        object["entries"] = .number(JSONNumber(stats.entries))
        object["pending"] = .number(JSONNumber(stats.pending))
        object["byStatus"] = counts(JournalEntryStatus.allCases, stats.byStatus)
        object["byKind"] = counts(JournalEntryKind.allCases, stats.byKind)
        object["byProgress"] = counts(JournalProgress.allCases, stats.byProgress)
        object["calls"] = .number(JSONNumber(stats.calls))
        object["callsByOutcome"] = counts(
            [JournalCallRecord.Outcome.succeeded, .failed, .interrupted],
            stats.callsByOutcome
        )
        object["attempts"] = .number(JSONNumber(stats.attempts))
        object["devicesSent"] = .number(JSONNumber(stats.devicesSent))
        object["oldestReceivedAt"] = timestamp(stats.oldestReceivedAt)
        object["newestReceivedAt"] = timestamp(stats.newestReceivedAt)
        object["oldestPendingAt"] = timestamp(stats.oldestPendingAt)
        return .object(object)
    }

    /// `value` as one line of JSON for a terminal or a pipe: besides JSON's own escapes, every character
    /// ``LogEscaping`` escapes (DEL, C1, U+2028/U+2029, bidirectional controls) is written `\uXXXX`, as the log's
    /// `json` format does, so a requester's correlation id cannot drive the operator's terminal. A JSON parser reads
    /// the same text back.
    public static func line(_ value: JSONValue) -> String {
        let text = value.serialized()
        // Outside strings a serialized document is ASCII without controls, and the writer escapes the C0 controls
        // and the backslash inside strings: what remains to escape can only be inside a string.
        guard text.unicodeScalars.contains(where: { $0 != "\\" && LogEscaping.needsEscape($0) }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar != "\\" && LogEscaping.needsEscape(scalar) {
                let hex = String(scalar.value, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    // MARK: - Helpers

    static func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }

    static func timestamp(_ date: Date?) -> JSONValue { date.map { .string(RFC3339.string(from: $0)) } ?? .null }

    /// Stored JSON as JSON; bytes that do not parse (never written by the worker) as a string.
    static func embedded(_ bytes: [UInt8]?) -> JSONValue {
        guard let bytes else { return .null }
        return (try? JSONParser.parse(bytes)) ?? .string(String(decoding: bytes, as: UTF8.self))
    }

    static func counts<Key: RawRepresentable<String>>(_ keys: [Key], _ values: [Key: Int]) -> JSONValue {
        var object = JSONObject()
        for key in keys { object[key.rawValue] = .number(JSONNumber(values[key] ?? 0)) }
        return .object(object)
    }
}
