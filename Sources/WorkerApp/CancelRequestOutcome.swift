// SPDX-License-Identifier: Apache-2.0
public import JSONSchema

/// How `ota-cancel-worker request` ended, its exit status, and the short summary it prints.
///
/// The exit status is the interface of a rollback script (`request ... || page-someone`), so every outcome has
/// its own number and the mapping is documented in `request --help` and the README. Pure: tested on replies.
public enum CancelRequestOutcome: Sendable, Hashable {
    /// The worker's reply (its `status` decides the exit status).
    case replied(JSONValue)
    /// Refused before anything was published: the reply the worker would have sent.
    case rejectedLocally(JSONValue)
    /// Published, but no reply came within the timeout (the worker may still be at it).
    case noReply(correlationId: String, timeoutSeconds: Double)

    /// Exit statuses: 0 succeeded, 1 partial, 2 failed, 3 rejected (by the worker, or here before publishing),
    /// 4 expired, 5 no reply within `--timeout`. Usage and connection problems use the sysexits codes of the other
    /// subcommands (64 usage, 69 broker unavailable, 78 configuration).
    public enum ExitStatus {
        public static let succeeded: Int32 = 0
        public static let partial: Int32 = 1
        public static let failed: Int32 = 2
        public static let rejected: Int32 = 3
        public static let expired: Int32 = 4
        public static let noReply: Int32 = 5
    }

    public var exitStatus: Int32 {
        switch self {
        case .rejectedLocally: return ExitStatus.rejected
        case .noReply: return ExitStatus.noReply
        case .replied(let reply):
            switch reply["status"]?.stringValue {
            case "succeeded": return ExitStatus.succeeded
            case "partial": return ExitStatus.partial
            case "failed": return ExitStatus.failed
            case "rejected": return ExitStatus.rejected
            case "expired": return ExitStatus.expired
            // A reply the contract does not define is not a success a script may act on.
            default: return ExitStatus.failed
            }
        }
    }

    /// The reply as one JSON line (`--json`); `nil` when there is none.
    public var jsonLine: String? {
        switch self {
        case .replied(let reply), .rejectedLocally(let reply): return reply.serialized()
        case .noReply: return nil
        }
    }

    /// A few lines for a person: the status and counts first, then what went wrong, device by group.
    public var summary: [String] {
        switch self {
        case .noReply(let correlationId, let timeout):
            return [
                "no reply within \(Self.number(timeout)) s (correlation id \(correlationId)); the worker may still be "
                    + "running the command: send it again with --correlation-id \(correlationId) (and the same reply topic) to get "
                    + "its reply: the worker answers a repeated command from its journal and cancels nothing twice"
            ]
        case .rejectedLocally(let reply):
            return ["rejected here, nothing was published:"] + Self.problems(reply)
        case .replied(let reply):
            return Self.lines(reply)
        }
    }

    private static func lines(_ reply: JSONValue) -> [String] {
        let status = reply["status"]?.stringValue ?? "unknown"
        let correlation = reply["correlationId"]?.stringValue.map { " (correlation id \($0))" } ?? ""
        let duplicate = reply["duplicate"]?.boolValue == true ? ", a repeated command answered from the journal" : ""
        let devices = count(reply["deviceCount"])
        let calls = count(reply["calls"])
        var lines: [String] = []
        switch status {
        case "rejected":
            return ["rejected by the worker\(correlation)\(duplicate):"] + problems(reply)
        case "expired":
            let deadline = reply["deadline"]?.stringValue.map { " (\($0))" } ?? ""
            return [
                "expired\(correlation): the deadline\(deadline) passed before the command ran; nothing was cancelled"
            ]
        default:
            if reply["dryRun"]?.boolValue == true {
                let planned = reply["plannedCalls"]?.arrayValue?.count ?? 0
                lines.append(
                    "\(status) (dry run)\(correlation): \(devices) devices in \(planned) planned call"
                        + "\(planned == 1 ? "" : "s") signed, nothing called"
                )
                return lines
            }
            let cancelled = reply["cancelledDevices"]?.arrayValue?.count ?? 0
            lines.append(
                "\(status)\(correlation)\(duplicate): \(cancelled) of \(devices) devices cancelled in \(calls) "
                    + "platform call\(calls == 1 ? "" : "s")"
            )
        }
        if let ids = reply["requestIds"]?.arrayValue?.compactMap(\.stringValue), !ids.isEmpty {
            lines.append("  request ids: " + clippedList(ids))
        }
        for group in reply["failedGroups"]?.arrayValue ?? [] {
            let names = group["deviceNames"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let code = group["code"]?.stringValue ?? "?"
            let message = group["message"]?.stringValue ?? ""
            let request = group["requestId"]?.stringValue.map { ", request id \($0)" } ?? ""
            lines.append(
                "  failed: \(names.count) device\(names.count == 1 ? "" : "s") (\(clippedList(names))): \(code): "
                    + "\(message)\(request)"
            )
        }
        if let groups = reply["devices"], groups.objectValue != nil {
            let counted = ["canceled", "alreadyUpgraded", "failed", "stillActive", "noTask", "unverified"].map {
                "\(groups[$0]?.arrayValue?.count ?? 0) \($0)"
            }
            lines.append("  read back: " + counted.joined(separator: ", "))
            for name in ["alreadyUpgraded", "stillActive"] {
                let names = groups[name]?.arrayValue?.compactMap(\.stringValue) ?? []
                if !names.isEmpty { lines.append("    \(name): " + clippedList(names)) }
            }
            for reason in groups["unverifiedReasons"]?.arrayValue ?? [] {
                lines.append(
                    "    unverified: \(count(reason["deviceCount"])) (\(reason["code"]?.stringValue ?? "?"): "
                        + "\(reason["message"]?.stringValue ?? ""))"
                )
            }
        }
        return lines
    }

    private static func problems(_ reply: JSONValue) -> [String] {
        (reply["errors"]?.arrayValue ?? []).map { problem in
            let location = problem["instanceLocation"]?.stringValue.flatMap { $0.isEmpty ? nil : " at \($0)" } ?? ""
            return "  \(problem["code"]?.stringValue ?? "?")\(location): \(problem["message"]?.stringValue ?? "")"
        }
    }

    private static func count(_ value: JSONValue?) -> Int {
        value?.numberValue?.int64Value.map { Int($0) } ?? 0
    }

    /// At most five names, then how many more: a 10,000-device failure stays one line.
    private static func clippedList(_ names: [String]) -> String {
        let shown = names.prefix(5).joined(separator: ", ")
        return names.count > 5 ? shown + " and \(names.count - 5) more" : shown
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
