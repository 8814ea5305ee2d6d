// SPDX-License-Identifier: Apache-2.0
public import Foundation
import Crypto

/// Signs RPC requests with signature version 1.0 (HMAC-SHA1): a pure, deterministic function.
///
/// Time and nonce are inputs, never read inside, so the same parameters always give the same signature;
/// that is what lets the test vectors of `reference/platform-api.md` be unit tests, and what lets the
/// `sign` command reproduce a request the platform refused.
public struct RPCSigner: Sendable {
    /// The AccessKey ID sent as `AccessKeyId`.
    public var accessKeyId: String
    /// The AccessKey secret; the HMAC key is this secret followed by `&`.
    public var accessKeySecret: AccessKeySecret

    public init(accessKeyId: String, accessKeySecret: AccessKeySecret) {
        self.accessKeyId = accessKeyId
        self.accessKeySecret = accessKeySecret
    }

    /// Signs a complete parameter set (every common and operation parameter, without `Signature`).
    ///
    /// The signer adds nothing: which common parameters a request carries is the caller's choice (the
    /// request profiles differ), and exactly what is sent is what is signed.
    public func sign(method: RPCHTTPMethod, parameters: [String: String]) -> SignedRPCRequest {
        var parameters = parameters
        parameters.removeValue(forKey: "Signature")
        let stringToSign = RPCCanonicalization.stringToSign(method: method, parameters: parameters)
        let signature = Self.signature(stringToSign: stringToSign, accessKeySecret: accessKeySecret)
        return SignedRPCRequest(
            method: method,
            unsignedParameters: parameters,
            stringToSign: stringToSign,
            signature: signature
        )
    }

    /// `Base64(HMAC-SHA1(key: secret + "&", message: UTF-8(stringToSign)))`.
    public static func signature(stringToSign: String, accessKeySecret: AccessKeySecret) -> String {
        hmacSHA1Base64(key: accessKeySecret.value + "&", message: stringToSign)
    }

    /// The bare primitive: `Base64(HMAC-SHA1(key, message))`, with the key used as given.
    public static func hmacSHA1Base64(key: String, message: String) -> String {
        let mac = HMAC<Insecure.SHA1>.authenticationCode(
            for: Array(message.utf8),
            using: SymmetricKey(data: Array(key.utf8))
        )
        return Data(mac).base64EncodedString()
    }
}

/// A signed request: everything needed to send it, and to explain it when the platform disagrees.
public struct SignedRPCRequest: Sendable, Hashable {
    public var method: RPCHTTPMethod
    /// The parameters that were signed (no `Signature`).
    public var unsignedParameters: [String: String]
    /// The exact string the HMAC was computed over.
    public var stringToSign: String
    /// The Base64 signature (not URL-encoded).
    public var signature: String

    /// All parameters including `Signature`.
    public var parameters: [String: String] {
        var all = unsignedParameters
        all["Signature"] = signature
        return all
    }

    /// The encoded query (or form body): the canonical pairs in signing order, then `Signature`.
    ///
    /// The values travel with the same strict encoding that was signed (`%20`, never `+`), as the official
    /// Python core SDK sends them, so no server-side decoding convention can change what it verifies.
    public var encodedQuery: String {
        RPCCanonicalization.canonicalizedQueryString(unsignedParameters) + "&Signature="
            + RPCCanonicalization.percentEncode(signature)
    }

    /// The full URL for a GET (or a POST with parameters in the query) against `endpoint`.
    ///
    /// - Parameter endpoint: e.g. `https://iot.cn-shanghai.aliyuncs.com/` or `http://127.0.0.1:8080`; a
    ///   missing path becomes `/`, which is the path that is signed.
    public func url(endpoint: String) -> String {
        var base = endpoint
        if let schemeEnd = base.range(of: "://") {
            let rest = base[schemeEnd.upperBound...]
            if !rest.contains("/") { base += "/" }
        }
        return base + (base.contains("?") ? "&" : "?") + encodedQuery
    }
}

/// The `Timestamp` parameter: UTC, `yyyy-MM-ddTHH:mm:ssZ`.
public enum RPCTimestamp {
    /// Formats a date without a formatter (no locale, no calendar surprises, cheap on every attempt).
    public static func string(from date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civilDate(fromDaysSinceEpoch: days)
        let hour = secondOfDay / 3600
        let minute = secondOfDay % 3600 / 60
        let second = secondOfDay % 60
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(hour, 2) + ":" + pad(minute, 2)
            + ":" + pad(second, 2) + "Z"
    }

    /// Parses the exact `yyyy-MM-ddTHH:mm:ssZ` form; anything else is `nil` (the platform answers
    /// `InvalidTimeStamp.Format`).
    public static func date(from string: String) -> Date? {
        let bytes = Array(string.utf8)
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            bytes[19] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), hour < 24, minute < 60, second < 60,
            day >= 1, day <= daysInMonth(year: year, month: month)
        else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days-from-civil and civil-from-days algorithms (proleptic Gregorian calendar).
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilDate(fromDaysSinceEpoch days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// The `SignatureNonce` parameter: unique per request, so that every attempt (and every retry) is new.
public enum RPCNonce {
    /// 32 lowercase hex digits from a random UUID.
    public static func make() -> String {
        UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }
}
