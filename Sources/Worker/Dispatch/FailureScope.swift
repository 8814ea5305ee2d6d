// SPDX-License-Identifier: Apache-2.0

/// Whom a permanent failure of a call concerns, decided from the platform's code and message alone.
///
/// The platform checks a call all or nothing: one unknown device fails every name in it. When a call carried
/// several commands, the dispatcher must find out which of them the failure belongs to, so that every command
/// gets the answer it would have got alone. The scope says how much is known without asking again:
/// - ``key``: the failure does not depend on the names (unknown product, firmware or instance, a permission or
///   signature error): every command of the call would have failed alone in the same way. Nothing is re-sent.
/// - ``device(_:)``: the message names one of the call's devices (the platform reports the first bad name in
///   the order sent): that name fails on its own, in the segments that sent it first, and everything else is
///   sent again without it (a segment of that one name fails).
/// - ``unknown``: nothing says who is at fault: the call's segments are split in two halves and each half is
///   sent on its own (bisection), until a failing part holds one segment.
public enum FailureScope: Sendable, Hashable {
    case key
    case device(String)
    case unknown

    /// Codes whose cause is in the call's key or the account, never in a device name (reference/platform-api.md,
    /// "Error codes", and the gateway's authentication errors). Compared without regard to case.
    static let keyCodes: Set<String> = [
        "iot.ota.firmwarenotfound", "iot.system.instancenotfound", "iot.sre.iotinstancenotfound",
        "iot.system.uidnotfound", "iot.system.billisoverdue",
        "iot.common.ramactionpermissiondeny", "iot.common.authactionpermissiondeny", "iot.common.invalidtenant",
        "invalidaccesskeyid", "invalidaccesskeyid.notfound", "invalidaccesskeyid.inactive", "signaturedoesnotmatch",
        "incompletesignature", "forbidden", "forbidden.ram", "forbidden.accesskeydisabled", "invalidversion",
        "invalidaction.notfound", "invalidrequest", "unsupportedhttpmethod", "invalidtimestamp.expired",
        "invalidtimestamp.format",
    ]

    /// The scope of a permanent failure of a call that sent `deviceNames`.
    ///
    /// - Parameters:
    ///   - code: the platform's error code (or the worker's own, such as `InvalidRequest`).
    ///   - message: the platform's message, searched for one of `deviceNames`.
    public static func of(code: String, message: String, deviceNames: [String]) -> FailureScope {
        let lowered = code.lowercased()
        if keyCodes.contains(lowered) || lowered.hasPrefix("iot.prod.") { return .key }
        // The unknown JobId answer: the job belongs to the key, whatever the devices.
        if lowered == "iot.system.illegalrequest", message.contains("JobId") { return .key }
        // A device's own error (`iot.device.*`), or an OTA error naming one device (a task it cannot cancel).
        if lowered.hasPrefix("iot.device.") || lowered.hasPrefix("iot.ota."),
            let name = namedDevice(in: message, among: deviceNames)
        {
            return .device(name)
        }
        return .unknown
    }

    /// The one device name of the call that the message contains, when exactly one does (a name that is part of
    /// another matching name, as `dev1` of `dev10`, does not count).
    static func namedDevice(in message: String, among deviceNames: [String]) -> String? {
        guard !message.isEmpty else { return nil }
        let found = deviceNames.filter { !$0.isEmpty && message.contains($0) }
        let maximal = found.filter { name in !found.contains { $0 != name && $0.contains(name) } }
        return maximal.count == 1 ? maximal[0] : nil
    }
}
