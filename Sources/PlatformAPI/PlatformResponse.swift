// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature

/// The platform's answer to one attempt, parsed tolerantly.
///
/// Alibaba answers `{"RequestId", "Success", "Code", "ErrorMessage"}`, its gateway `{"RequestId", "Code",
/// "Message", "HostId"}`, Tuya's copy `{"requestId", "success", "code"}` with `"code": ""` on success. Keys are
/// matched case-insensitively so all of them (and `RequestID`) read the same.
public struct PlatformResponse: Sendable, Hashable {
    /// The HTTP status of the attempt.
    public var httpStatus: Int
    /// Whether the platform says the call succeeded: see ``parse(httpStatus:body:)`` for the exact rule.
    public var success: Bool
    /// The platform's error code; `nil` when absent, `null` or empty (`"code": ""` means no error).
    public var code: String?
    /// `ErrorMessage`, else `Message`, when present and non-empty.
    public var message: String?
    /// `RequestId` (any casing), when present and non-empty.
    public var requestId: String?
    /// The body as received, for the answers that carry data (``OTATaskPage/parse(_:)``).
    public var body: [UInt8]

    /// Creates a response value (for tests and for callers that build results by hand).
    public init(
        httpStatus: Int,
        success: Bool,
        code: String? = nil,
        message: String? = nil,
        requestId: String? = nil,
        body: [UInt8] = []
    ) {
        self.httpStatus = httpStatus
        self.success = success
        self.code = code
        self.message = message
        self.requestId = requestId
        self.body = body
    }

    /// Parses a response body.
    ///
    /// The rule, in order:
    /// 1. The body must be a JSON object, else ``PlatformAPIError/Code/invalidResponse`` (transient for
    ///    HTTP 5xx/408/429, permanent otherwise). An HTML error page from a proxy lands here.
    /// 2. `Success`/`success` may be a boolean or the strings `"true"`/`"false"`; any other value is
    ///    ``PlatformAPIError/Code/invalidResponse`` (an answer we cannot read must not count as a success).
    /// 3. With a `Success` key: success means `Success` is true **and** the status is 2xx. HTTP 200 with
    ///    `Success: false` is a failure.
    /// 4. Without it: success means a 2xx status and no (or an empty) code.
    ///
    /// - Parameters:
    ///   - httpStatus: the response's status code.
    ///   - body: the response body.
    ///   - secret: text that must not appear in an error message (the AccessKey secret); an unreadable body is
    ///     quoted in the message, scrubbed of it first.
    /// - Returns: the response, successful or not; use ``error(redacting:file:line:)`` to turn a failure into an
    ///   error.
    /// - Throws: ``PlatformAPIError`` with code ``PlatformAPIError/Code/invalidResponse``.
    public static func parse(
        httpStatus: Int,
        body: [UInt8],
        redacting secret: String? = nil
    ) throws(PlatformAPIError) -> PlatformResponse {
        let object: [String: LooseJSONValue]
        do {
            object = try JSONDecoder().decode([String: LooseJSONValue].self, from: Data(body))
        } catch {
            throw PlatformAPIError(
                code: .invalidResponse,
                message: "HTTP \(httpStatus) with a body that is not a JSON object (\(body.count) bytes"
                    + (body.isEmpty ? ")" : ", starting \(Self.preview(body, redacting: secret)))"),
                httpStatus: httpStatus
            )
        }
        // Keys are matched case-insensitively. On a clash (`Code` and `code` both present) the first key in
        // byte order wins: PascalCase, the Alibaba form, sorts before lower camel case.
        var lowered = [String: LooseJSONValue](minimumCapacity: object.count)
        for key in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let lowerKey = key.lowercased()
            if lowered[lowerKey] == nil { lowered[lowerKey] = object[key] }
        }
        let code = lowered["code"]?.text.flatMap { $0.isEmpty ? nil : $0 }
        let message =
            (lowered["errormessage"]?.text).flatMap { $0.isEmpty ? nil : $0 }
            ?? (lowered["message"]?.text).flatMap { $0.isEmpty ? nil : $0 }
        let requestId = lowered["requestid"]?.text.flatMap { $0.isEmpty ? nil : $0 }
        let is2xx = (200...299).contains(httpStatus)

        let success: Bool
        switch lowered["success"] {
        case nil, .null?:
            success = is2xx && code == nil
        case .bool(let flag)?:
            success = flag && is2xx
        case .string(let text)? where text.lowercased() == "true":
            success = is2xx
        case .string(let text)? where text.lowercased() == "false":
            success = false
        default:
            throw PlatformAPIError(
                code: .invalidResponse,
                message: "HTTP \(httpStatus) with a Success field that is neither a boolean nor \"true\"/\"false\"",
                platformCode: code,
                requestId: requestId,
                httpStatus: httpStatus
            )
        }
        return PlatformResponse(
            httpStatus: httpStatus,
            success: success,
            code: code,
            message: message,
            requestId: requestId,
            body: body
        )
    }

    /// The error this response stands for, or `nil` when it is a success.
    ///
    /// A response with a platform code is ``PlatformAPIError/Code/platform``; a non-2xx one without a code is
    /// ``PlatformAPIError/Code/httpStatus``; a 2xx `Success: false` without a code is
    /// ``PlatformAPIError/Code/platform`` with no platform code.
    /// - Parameter secret: text to scrub from the message (the AccessKey secret), so that a platform or proxy
    ///   echoing it back cannot put it into a log or reply.
    public func error(redacting secret: String? = nil, file: String = #fileID, line: Int = #line) -> PlatformAPIError? {
        guard !success else { return nil }
        var text =
            message ?? (code == nil && !(200...299).contains(httpStatus) ? "HTTP \(httpStatus)" : "Success: false")
        text = Redaction.scrub(text, secret: secret)
        return PlatformAPIError(
            code: code == nil && !(200...299).contains(httpStatus) ? .httpStatus : .platform,
            message: text,
            platformCode: code,
            requestId: requestId,
            httpStatus: httpStatus,
            file: file,
            line: line
        )
    }

    /// The first characters of a body, printable ASCII only and scrubbed of `secret` before it is cut (so not
    /// even a prefix of the secret can show), for an error message about an unreadable answer.
    static func preview(_ body: [UInt8], redacting secret: String?) -> String {
        let text = Redaction.scrub(String(decoding: body.prefix(4096), as: UTF8.self), secret: secret)
        let printable = text.unicodeScalars.prefix(64).map { scalar -> Character in
            (0x20..<0x7F).contains(scalar.value) ? Character(scalar) : "."
        }
        return "\"" + String(printable) + (text.unicodeScalars.count > 64 || body.count > 4096 ? "...\"" : "\"")
    }
}

/// Any JSON value, read loosely: enough to find strings and booleans without failing on the rest.
enum LooseJSONValue: Decodable, Sendable, Hashable {
    case null
    case bool(Bool)
    case string(String)
    case number(Double)
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .other
        }
    }

    /// The value as text: strings as they are, numbers in their shortest form (some gateways send numeric
    /// codes), everything else `nil`.
    var text: String? {
        switch self {
        case .string(let text): text
        case .number(let number):
            number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        default: nil
        }
    }
}

/// Keeps the AccessKey secret out of anything that leaves the client.
enum Redaction {
    static let mask = "<redacted>"

    /// Replaces every occurrence of `secret` (and of its percent-encoded form) in `text`.
    ///
    /// Secrets shorter than 4 characters are not searched for: they would mask ordinary words, and such a
    /// secret is a configuration error anyway.
    static func scrub(_ text: String, secret: String?) -> String {
        guard let secret, secret.count >= 4 else { return text }
        var result = text
        if result.contains(secret) { result = result.replacingOccurrences(of: secret, with: mask) }
        let encoded = RPCCanonicalization.percentEncode(secret)
        if encoded != secret, result.contains(encoded) { result = result.replacingOccurrences(of: encoded, with: mask) }
        return result
    }
}
