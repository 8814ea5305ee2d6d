// SPDX-License-Identifier: Apache-2.0

/// Why one logical `CancelOTATaskByDevice` call failed.
///
/// The worker decides between "reply failed", "retry later" and "alert a human" from this value alone, so it
/// carries the platform's own words (`platformCode`, `message`, `requestId`, `httpStatus`) next to a stable
/// ``Code`` and the retry classification. Two errors are equal when their codes are equal (compare with the
/// static templates: `error == .timeout`); the other fields are details. The message never contains the
/// AccessKey secret: the client scrubs it from anything the platform echoes back.
public struct PlatformAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable kind of failure: a struct over a private enum, so new kinds can be added without breaking
    /// anyone's `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: String, Sendable, Hashable {
            case transport
            case timeout
            case httpStatus
            case platform
            case invalidResponse
            case invalidRequest
            case deadlineExceeded
            case cancelled
            case shutdown
        }

        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The connection could not be made or broke (refused, reset, DNS, TLS): transient.
        public static let transport = Code(.transport)
        /// Connect or read timeout of one attempt: transient (the platform may or may not have acted).
        public static let timeout = Code(.timeout)
        /// A non-2xx answer whose JSON body names no platform error code.
        public static let httpStatus = Code(.httpStatus)
        /// The platform answered with an error code (`Code`/`code`), or `Success: false`.
        public static let platform = Code(.platform)
        /// The body was not the JSON object the platform always sends (an HTML error page, garbage, too large).
        public static let invalidResponse = Code(.invalidResponse)
        /// The call was refused before anything was sent: no device names, too many of them, or an endpoint that
        /// is not an http(s) URL. Permanent.
        public static let invalidRequest = Code(.invalidRequest)
        /// The caller's deadline passed before an answer; details of the last attempt, if any, are kept.
        public static let deadlineExceeded = Code(.deadlineExceeded)
        /// The calling task was cancelled.
        public static let cancelled = Code(.cancelled)
        /// The client was shut down (its service ended) before or while the call ran.
        public static let shutdown = Code(.shutdown)

        /// The code's name, e.g. `timeout`; stable, usable as a metric label.
        public var description: String { kind.rawValue }
    }

    /// The stable kind of failure.
    public var code: Code
    /// The platform's error code, e.g. `Throttling.User` or `iot.device.NotExistedDevice`, when it sent one.
    public var platformCode: String?
    /// A human-readable explanation: the platform's `ErrorMessage`/`Message`, or what went wrong locally.
    ///
    /// Never contains the AccessKey secret.
    public var message: String
    /// The platform's `RequestId` of the attempt that produced this error, when it sent one.
    public var requestId: String?
    /// The HTTP status of the attempt that produced this error, when a response arrived.
    public var httpStatus: Int?
    /// Whether trying again later may succeed (DESIGN §3): transport errors, timeouts, HTTP 5xx/408/429,
    /// `Throttling*`, `ServiceUnavailable`, `InternalError`, `iot.system.SystemException`, `SignatureNonceUsed`,
    /// plus deadline, cancellation and shutdown (the command itself was fine). Everything else is permanent.
    public var isTransient: Bool
    /// Where the error was created (`#fileID`), for debugging.
    public var file: String
    /// Where the error was created (`#line`), for debugging.
    public var line: Int

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: the stable kind.
    ///   - message: what happened; must not contain secrets.
    ///   - platformCode: the platform's error code, if any.
    ///   - requestId: the platform's request id, if any.
    ///   - httpStatus: the HTTP status, if a response arrived.
    ///   - isTransient: the retry classification; `nil` (default) derives it with
    ///     ``isTransient(code:platformCode:httpStatus:)``.
    public init(
        code: Code,
        message: String,
        platformCode: String? = nil,
        requestId: String? = nil,
        httpStatus: Int? = nil,
        isTransient: Bool? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.platformCode = platformCode
        self.requestId = requestId
        self.httpStatus = httpStatus
        self.isTransient =
            isTransient ?? Self.isTransient(code: code, platformCode: platformCode, httpStatus: httpStatus)
        self.file = file
        self.line = line
    }

    // MARK: Templates for comparison (`error == .timeout`); equality looks at the code only.

    /// Template for ``Code/transport``.
    public static let transport = PlatformAPIError(code: .transport, message: "transport error")
    /// Template for ``Code/timeout``.
    public static let timeout = PlatformAPIError(code: .timeout, message: "timed out")
    /// Template for ``Code/httpStatus``.
    public static let httpStatus = PlatformAPIError(code: .httpStatus, message: "unexpected HTTP status")
    /// Template for ``Code/platform``.
    public static let platform = PlatformAPIError(code: .platform, message: "platform error")
    /// Template for ``Code/invalidResponse``.
    public static let invalidResponse = PlatformAPIError(code: .invalidResponse, message: "invalid response")
    /// Template for ``Code/invalidRequest``.
    public static let invalidRequest = PlatformAPIError(code: .invalidRequest, message: "invalid request")
    /// Template for ``Code/deadlineExceeded``.
    public static let deadlineExceeded = PlatformAPIError(code: .deadlineExceeded, message: "deadline exceeded")
    /// Template for ``Code/cancelled``.
    public static let cancelled = PlatformAPIError(code: .cancelled, message: "cancelled")
    /// Template for ``Code/shutdown``.
    public static let shutdown = PlatformAPIError(code: .shutdown, message: "client shut down")

    public static func == (lhs: PlatformAPIError, rhs: PlatformAPIError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    // MARK: Descriptions

    /// `PlatformAPIError.platform: iot.device.NotExistedDevice (HTTP 200, RequestId ABC, permanent): message`.
    public var description: String {
        var text = "PlatformAPIError.\(code)"
        if let platformCode { text += ": " + platformCode }
        var details = [String]()
        if let httpStatus { details.append("HTTP \(httpStatus)") }
        if let requestId { details.append("RequestId \(requestId)") }
        details.append(isTransient ? "transient" : "permanent")
        text += " (" + details.joined(separator: ", ") + ")"
        if !message.isEmpty { text += ": " + message }
        return text
    }

    /// A bounded label for metrics: the code, plus the platform code for ``Code/platform`` errors.
    ///
    /// Platform codes are a small documented vocabulary, but an unknown platform could invent any; so the
    /// platform code is cut at 64 characters and reduced to `A-Za-z0-9._-`, which keeps the label set small
    /// and safe for any metrics backend. Examples: `timeout`, `platform:Throttling.User`, `http_status:503`.
    public var shortDescription: String {
        switch code {
        case .platform:
            guard let platformCode, !platformCode.isEmpty else { return "platform" }
            let cleaned = platformCode.prefix(64).map { character -> Character in
                character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
                    ? character : "_"
            }
            return "platform:" + String(cleaned)
        case .httpStatus:
            guard let httpStatus, (100...599).contains(httpStatus) else { return "http_status" }
            return "http_status:\(httpStatus)"
        default:
            return code.description
        }
    }

    /// A failure's kind in a fixed, small vocabulary, for metric labels: the platform's own code can be anything
    /// it answers, which would make the number of series unbounded.
    public enum Category: String, Sendable, Hashable, CaseIterable {
        /// Flow control (`Throttling*`, HTTP 429).
        case throttled
        /// Authentication or authorisation: signature, AccessKey, timestamp, permissions.
        case signature
        /// Something the call names does not exist (product, firmware, job, device, instance, action).
        case notFound = "not_found"
        /// The request is malformed or refused as invalid (by the platform or before sending).
        case invalid
        /// The platform failed (5xx, `InternalError`, `ServiceUnavailable`, `iot.system.SystemException`).
        case serverError = "server_error"
        /// No answer in time (an attempt's timeout, or the command's deadline).
        case timeout
        /// The connection could not be made or broke.
        case transport
        /// Anything else (an unreadable answer, a cancelled call, an unknown code).
        case other
    }

    /// This failure's ``Category``.
    public var category: Category {
        if Self.isThrottling(platformCode: platformCode, httpStatus: httpStatus) { return .throttled }
        switch code {
        case .transport: return .transport
        case .timeout, .deadlineExceeded:
            // A deadline that stopped retries carries the last platform answer: that is the better account.
            if code == .deadlineExceeded, platformCode != nil || httpStatus != nil {
                return Self.category(platformCode: platformCode, httpStatus: httpStatus)
            }
            return .timeout
        case .invalidRequest: return .invalid
        case .platform, .httpStatus: return Self.category(platformCode: platformCode, httpStatus: httpStatus)
        default: return .other
        }
    }

    private static func category(platformCode: String?, httpStatus: Int?) -> Category {
        if isThrottling(platformCode: platformCode, httpStatus: httpStatus) { return .throttled }
        if let lowered = platformCode?.lowercased(), !lowered.isEmpty {
            if ["internalerror", "serviceunavailable", "iot.system.systemexception"].contains(lowered) {
                return .serverError
            }
            if lowered.hasPrefix("signature") || lowered.hasPrefix("incompletesignature")
                || lowered.hasPrefix("invalidaccesskeyid") || lowered.hasPrefix("invalidtimestamp")
                || lowered.hasPrefix("forbidden") || lowered.contains("permissiondeny")
            {
                return .signature
            }
            if lowered.contains("notfound") || lowered.contains("notexist") { return .notFound }
            if lowered.contains("invalid") || lowered.contains("illegal") || lowered.contains("missing")
                || lowered.contains("null") || lowered.contains("none")
            {
                return .invalid
            }
        }
        if let httpStatus, httpStatus >= 500 { return .serverError }
        if httpStatus == 401 || httpStatus == 403 { return .signature }
        if httpStatus == 404 { return .notFound }
        if let httpStatus, (400..<500).contains(httpStatus), platformCode == nil { return .invalid }
        return .other
    }

    // MARK: Classification

    /// Platform error codes that are worth retrying (DESIGN §3, reference/platform-api.md §5).
    ///
    /// Compared case-insensitively: the platform's own documents spell `iot.system.SystemException` both ways.
    private static let transientPlatformCodes: Set<String> = [
        "serviceunavailable",
        "internalerror",
        "iot.system.systemexception",
        "signaturenonceused",
    ]

    /// Whether a platform error code is transient on its own: `Throttling` and every `Throttling.*`,
    /// `ServiceUnavailable`, `InternalError`, `iot.system.SystemException`, `SignatureNonceUsed`.
    public static func isTransientPlatformCode(_ platformCode: String) -> Bool {
        let lowered = platformCode.lowercased()
        return lowered == "throttling" || lowered.hasPrefix("throttling.") || transientPlatformCodes.contains(lowered)
    }

    /// Whether an HTTP status is transient on its own: 408, 429 and every 5xx.
    public static func isTransientHTTPStatus(_ status: Int) -> Bool {
        status == 408 || status == 429 || (500...599).contains(status)
    }

    /// Whether the throttling family of codes (`Throttling`, `Throttling.User`, `Throttling.Api`, ...) or HTTP
    /// 429 says "you are too fast": the rate limiter slows down on these.
    public static func isThrottling(platformCode: String?, httpStatus: Int?) -> Bool {
        if httpStatus == 429 { return true }
        guard let lowered = platformCode?.lowercased() else { return false }
        return lowered == "throttling" || lowered.hasPrefix("throttling.")
    }

    /// The retry classification of DESIGN §3.
    ///
    /// Transport errors, timeouts, deadline, cancellation and shutdown are transient (the command itself is
    /// fine); an invalid request is permanent; for the others, a transient HTTP status or a transient platform
    /// code makes the error transient.
    public static func isTransient(code: Code, platformCode: String?, httpStatus: Int?) -> Bool {
        switch code {
        case .transport, .timeout, .deadlineExceeded, .cancelled, .shutdown:
            return true
        case .invalidRequest:
            return false
        default:
            if let httpStatus, isTransientHTTPStatus(httpStatus) { return true }
            if let platformCode, isTransientPlatformCode(platformCode) { return true }
            return false
        }
    }
}
