// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature

/// Why the platform answered `SignatureDoesNotMatch`: our string-to-sign next to the server's.
///
/// The platform puts its own string-to-sign into the message of that error. The official SDKs compare it with
/// theirs: when the two are equal the request was canonicalised correctly and only the secret can differ
/// (Python's `InvalidAccessKeySecret`); when they differ, the canonicalisation is wrong and the secret may be
/// fine. This type does the same, and also says *where* they differ (the method, a parameter only one side
/// has, a value, or only the encoding), which is what a person needs to fix it.
public struct StringToSignComparison: Sendable, Hashable {
    /// Our string-to-sign.
    public var ours: String
    /// The server's string-to-sign, as extracted from what was given.
    public var server: String
    /// The differences, one human-readable line each; empty when the strings are equal.
    public var differences: [String]

    /// Whether the two strings are identical, so that only the secret can explain the mismatch.
    public var secretDiffers: Bool { ours == server }

    /// A one-line verdict for people.
    public var verdict: String {
        secretDiffers
            ? "The strings to sign are identical: the request is canonicalised as the platform does, so the AccessKey "
                + "secret differs from the platform's (the official SDKs report InvalidAccessKeySecret). Check the "
                + "secret the worker reads and that it belongs to this AccessKeyId."
            : "The strings to sign differ: the canonicalisation differs (the secret may well be right). Differences: "
                + differences.joined(separator: "; ")
    }

    /// The prefix of the platform's `SignatureDoesNotMatch` message in front of its string-to-sign.
    public static let messageMarker = "string to sign is:"

    /// Compares our string-to-sign with the server's.
    ///
    /// - Parameters:
    ///   - ours: the string-to-sign we computed.
    ///   - server: the server's string-to-sign, or the whole `SignatureDoesNotMatch` message, or the whole JSON
    ///     error body (see ``extractServerStringToSign(from:)``).
    public init(ours: String, server: String) {
        self.ours = ours
        self.server = Self.extractServerStringToSign(from: server)
        self.differences = ours == self.server ? [] : Self.differences(ours: ours, server: self.server)
    }

    /// Finds the string-to-sign in what a user pasted: a JSON error body (its `Message`), the message itself
    /// (the part after `string to sign is:`), or the bare string; surrounding whitespace is ignored.
    public static func extractServerStringToSign(from text: String) -> String {
        var text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let message = (object["Message"] ?? object["message"] ?? object["ErrorMessage"]) as? String
        {
            text = message
        }
        if let range = text.range(of: messageMarker, options: .caseInsensitive) {
            text = String(text[range.upperBound...])
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Splits a string-to-sign (`METHOD&%2F&<encoded canonical query>`) into its method and decoded parameters.
    ///
    /// - Returns: `nil` when the text does not have that shape.
    public static func parse(stringToSign: String) -> (method: String, parameters: [(name: String, value: String)])? {
        let parts = stringToSign.split(separator: "&", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "%2F",
            let canonical = RPCCanonicalization.percentDecode(parts[2], plusAsSpace: false)
        else { return nil }
        var parameters = [(name: String, value: String)]()
        for pair in canonical.split(separator: "&", omittingEmptySubsequences: true) {
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = RPCCanonicalization.percentDecode(halves[0], plusAsSpace: false),
                let value = halves.count > 1 ? RPCCanonicalization.percentDecode(halves[1], plusAsSpace: false) : ""
            else { return nil }
            parameters.append((name: name, value: value))
        }
        return (String(parts[0]), parameters)
    }

    private static func differences(ours: String, server: String) -> [String] {
        guard let mine = parse(stringToSign: ours) else { return ["our string-to-sign cannot be parsed"] }
        guard let theirs = parse(stringToSign: server) else {
            return [
                "the server's text is not a string-to-sign (METHOD&%2F&...): give the part after \"\(messageMarker)\""
            ]
        }
        var lines = [String]()
        if mine.method != theirs.method {
            lines.append(
                "method: we signed \(mine.method), the platform received \(theirs.method) (the method is the first "
                    + "token of the string-to-sign: sign with the method you send)"
            )
        }
        let ourValues = Dictionary(mine.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let theirValues = Dictionary(
            theirs.parameters.map { ($0.name, $0.value) },
            uniquingKeysWith: { first, _ in first }
        )
        for (name, value) in mine.parameters where theirValues[name] == nil {
            lines.append("only we signed \(name)=\(quoted(value)) (the platform did not receive it)")
        }
        for (name, value) in theirs.parameters where ourValues[name] == nil {
            lines.append("only the platform has \(name)=\(quoted(value)) (sent but not signed, or added on the way)")
        }
        for (name, value) in mine.parameters {
            if let other = theirValues[name], other != value {
                lines.append("\(name): we signed \(quoted(value)), the platform received \(quoted(other))")
            }
        }
        let ourOrder = mine.parameters.map(\.name)
        let theirOrder = theirs.parameters.map(\.name)
        if lines.isEmpty, ourOrder != theirOrder {
            lines.append(
                "the same parameters in another order: ours \(ourOrder.joined(separator: ",")), the platform's "
                    + "\(theirOrder.joined(separator: ",")) (sort names by byte)"
            )
        }
        if lines.isEmpty {
            // Same method, names, order and decoded values: only the percent-encoding differs.
            let offset = zip(ours.utf8, server.utf8).prefix { $0 == $1 }.count
            func around(_ text: String) -> String {
                let bytes = Array(text.utf8)
                let start = max(0, offset - 20)
                let end = min(bytes.count, offset + 20)
                return String(decoding: bytes[start..<end], as: UTF8.self)
            }
            lines.append(
                "the same parameters and values, encoded differently from byte \(offset): ours …\(around(ours))…, "
                    + "the platform's …\(around(server))… (encode with %20 for space, %2A for *, ~ as is, uppercase hex)"
            )
        }
        return lines
    }

    private static func quoted(_ value: String) -> String {
        "\"" + value + "\""
    }
}
