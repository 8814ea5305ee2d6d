// SPDX-License-Identifier: Apache-2.0
public import Foundation
import PlatformSignature

/// RFC 3339 timestamps, as the contract uses them (`deadline`, `receivedAt`, `completedAt`).
///
/// The calendar arithmetic is `RPCTimestamp`'s (the platform's `Timestamp` format), so there is one
/// implementation of it in the project; this type adds offsets, fractions and milliseconds.
public enum RFC3339 {
    /// Parses an RFC 3339 `date-time` (any offset, optional fraction, `T`/`Z` in either case) to an instant.
    ///
    /// Called on strings that the schema's `date-time` format check has accepted; anything else gives `nil`.
    /// A leap second (`:60`) is read as the following second.
    public static func date(from text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") else { return nil }
        var index = 19
        var fraction = 0.0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < bytes.count else { return nil }
        var offsetSeconds = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == bytes.count, bytes[index + 3] == UInt8(ascii: ":"),
                let hours = Int(String(decoding: bytes[index + 1..<index + 3], as: UTF8.self)),
                let minutes = Int(String(decoding: bytes[index + 4..<index + 6], as: UTF8.self)),
                hours < 24, minutes < 60
            else { return nil }
            offsetSeconds = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }
        // The first 19 bytes in the platform's form: `yyyy-MM-ddTHH:mm:ssZ`, with a leap second folded.
        var base = Array(bytes[0..<19])
        base[10] = UInt8(ascii: "T")
        let leapSecond = base[17] == UInt8(ascii: "6") && base[18] == UInt8(ascii: "0")
        if leapSecond {
            base[17] = UInt8(ascii: "5")
            base[18] = UInt8(ascii: "9")
        }
        guard let instant = RPCTimestamp.date(from: String(decoding: base + [UInt8(ascii: "Z")], as: UTF8.self))
        else { return nil }
        return instant.addingTimeInterval(fraction + (leapSecond ? 1 : 0) - TimeInterval(offsetSeconds))
    }

    /// Formats an instant as UTC with millisecond precision, e.g. `2026-11-26T17:16:19.123Z`.
    public static func string(from date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        let wholeSeconds = Date(timeIntervalSince1970: (milliseconds / 1000).rounded(.down))
        let millisecond = Int(milliseconds - wholeSeconds.timeIntervalSince1970 * 1000)
        let seconds = RPCTimestamp.string(from: wholeSeconds).dropLast()  // without the "Z"
        let digits = String(millisecond)
        return seconds + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}
