// SPDX-License-Identifier: Apache-2.0

/// The canonical forms of Alibaba Cloud's RPC signature, version 1.0.
///
/// Client and simulator share this one implementation, so both sides of every test agree on what a
/// byte-exact request looks like; the vectors in `reference/platform-api.md` pin it to the real platform.
public enum RPCCanonicalization {
    /// Percent-encodes a name or value the way the platform signs it (RFC 3986).
    ///
    /// UTF-8 bytes; `A-Z a-z 0-9 - _ . ~` stay as they are, every other byte becomes `%XY` with uppercase hex.
    /// So a space is `%20` (never `+`), `*` is `%2A` and `~` stays `~`.
    public static func percentEncode(_ value: some StringProtocol) -> String {
        var out = [UInt8]()
        out.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a percent-encoded query component.
    ///
    /// - Parameters:
    ///   - component: the raw text between `&` and `=`.
    ///   - plusAsSpace: `true` for `application/x-www-form-urlencoded` text, where `+` means a space (servers
    ///     decode the query this way, which is why a literal `+` must travel as `%2B`).
    /// - Returns: the decoded string, or `nil` when an escape is malformed or the bytes are not UTF-8.
    public static func percentDecode(_ component: some StringProtocol, plusAsSpace: Bool = true) -> String? {
        let bytes = Array(component.utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                    let low = hexValue(bytes[index + 2])
                else { return nil }
                out.append(high << 4 | low)
                index += 3
            } else if byte == UInt8(ascii: "+") && plusAsSpace {
                out.append(UInt8(ascii: " "))
                index += 1
            } else {
                out.append(byte)
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// Joins the encoded `name=value` pairs, sorted by name in byte order, with `&`.
    ///
    /// Byte order puts upper case before lower case and `DeviceName.10` before `DeviceName.2`, as every
    /// official SDK does. A parameter named `Signature` is left out: it is never part of what is signed.
    public static func canonicalizedQueryString(_ parameters: [String: String]) -> String {
        parameters
            .filter { $0.key != "Signature" }
            .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            .map { percentEncode($0.key) + "=" + percentEncode($0.value) }
            .joined(separator: "&")
    }

    /// The string the HMAC is computed over: `METHOD&%2F&` + the canonicalized query string encoded once more.
    public static func stringToSign(method: RPCHTTPMethod, parameters: [String: String]) -> String {
        method.rawValue + "&" + percentEncode("/") + "&" + percentEncode(canonicalizedQueryString(parameters))
    }

    /// Parses `a=1&b=2` (a URL query or a form body) into a dictionary, decoding each component.
    ///
    /// - Returns: the parameters, or `nil` when a component cannot be decoded or a name repeats (a repeated
    ///   name has no defined meaning in a signed request, so it is refused rather than guessed at).
    public static func parseQuery(_ query: some StringProtocol) -> [String: String]? {
        var result = [String: String]()
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecode(parts[0]) else { return nil }
            let value = parts.count > 1 ? percentDecode(parts[1]) : ""
            guard let value, result.updateValue(value, forKey: name) == nil else { return nil }
        }
        return result
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// The HTTP method of an RPC call; it is the first token of the string-to-sign.
public enum RPCHTTPMethod: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Parameters in the query string: the request shape of the seed document.
    case get = "GET"
    /// The official SDKs' shape: parameters in the query (or a form body), signed the same way.
    case post = "POST"

    public var description: String { rawValue }
}
