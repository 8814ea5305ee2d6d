// SPDX-License-Identifier: Apache-2.0

/// One answer of the RPC endpoint, ready to be written.
struct RPCAnswer: Sendable {
    var status: Int
    var body: String
    var requestId: String
    /// The error code of an error answer (gateway or business); `nil` for a success.
    var errorCode: String?
    /// Sent as `x-acs-retry-after` when set.
    var retryAfterMilliseconds: Int?
    /// When set, the body is written in pieces spread over this long (a fault rule's slow body).
    var slowBody: Duration?
}

/// What the HTTP layer does with a request.
enum RPCOutcome: Sendable {
    /// Wait `delay`, then write the answer.
    case answer(RPCAnswer, delay: Duration)
    /// Wait `delay`, then close the connection without writing anything.
    case drop(delay: Duration)
}

/// A gateway-level error: the answers every RPC API shares (authentication, quota, parameters), written as
/// `{"RequestId","HostId","Code","Message","Recommend"}` with a 4xx/5xx status.
struct GatewayError: Sendable, Error {
    var status: Int
    var code: String
    var message: String

    static func missingParameter(_ name: String) -> Self {
        Self(
            status: 400,
            code: "MissingParameter",
            message: "The input parameter \"\(name)\" that is mandatory for processing this request is not supplied."
        )
    }

    static func invalidParameter(_ message: String) -> Self {
        Self(status: 400, code: "InvalidParameter", message: message)
    }

    static let accessKeyNotFound = Self(
        status: 404,
        code: "InvalidAccessKeyId.NotFound",
        message: "Specified access key is not found."
    )
    static let invalidSignatureMethod = Self(
        status: 400,
        code: "InvalidSignatureMethod",
        message: "Specified signature method is not valid; only HMAC-SHA1 is accepted."
    )
    static let timestampFormat = Self(
        status: 400,
        code: "InvalidTimeStamp.Format",
        message: "Specified time stamp or date value is not well formatted; expected yyyy-MM-ddTHH:mm:ssZ (UTC)."
    )
    static let timestampExpired = Self(
        status: 400,
        code: "InvalidTimeStamp.Expired",
        message: "Specified time stamp or date value is expired (more than the allowed skew from server time)."
    )

    /// The prefix the official SDKs strip to compare the server's string-to-sign with their own.
    static let signatureMismatchPrefix =
        "Specified signature is not matched with our calculation. server string to sign is:"

    static func signatureDoesNotMatch(serverStringToSign: String) -> Self {
        Self(status: 400, code: "SignatureDoesNotMatch", message: signatureMismatchPrefix + serverStringToSign)
    }

    static let nonceUsed = Self(
        status: 400,
        code: "SignatureNonceUsed",
        message: "Specified signature nonce was used already."
    )
    static let throttlingUser = Self(
        status: 400,
        code: "Throttling.User",
        message: "Request was denied due to user flow control."
    )
    static let invalidVersion = Self(
        status: 400,
        code: "InvalidVersion",
        message: "Specified parameter Version is not valid; this API is 2018-01-20."
    )
    static let apiNotFound = Self(
        status: 404,
        code: "InvalidApi.NotFound",
        message: "Specified api is not found, please check your url and method."
    )
    static let unsupportedHTTPMethod = Self(
        status: 400,
        code: "UnsupportedHTTPMethod",
        message: "Specified HTTP method is not supported; use GET or POST."
    )

    static func unsupportedFormat(_ value: String) -> Self {
        Self(
            status: 400,
            code: "InvalidParameter.Format",
            message: "Format \"\(value)\" is not supported by the simulator, which only answers JSON."
        )
    }
}

/// An IoT Platform business error: HTTP 200 with `Success: false`, `Code` and `ErrorMessage`.
struct BusinessError: Sendable, Error {
    var code: String
    var message: String

    static func instanceNotFound(_ given: String?) -> Self {
        Self(
            code: "iot.system.InstanceNotFound",
            message: given.map { "The instance \($0) does not exist." } ?? "The IotInstanceId parameter is required."
        )
    }

    static let productNotFound = Self(
        code: "iot.prod.NotExistedProduct",
        message: "The specified product does not exist."
    )
    static let nullProductKey = Self(code: "iot.prod.NullProductKey", message: "The ProductKey is empty.")
    static let firmwareNotFound = Self(
        code: "iot.ota.FirmwareNotFound",
        message: "The specified firmware does not exist."
    )
    static let jobNotFound = Self(code: "iot.system.IllegalRequest", message: "The specified JobId does not exist.")
    static let nullDeviceName = Self(code: "iot.device.NullDeviceName", message: "The device name is empty.")

    static func deviceNotFound(_ name: String) -> Self {
        Self(code: "iot.device.NotExistedDevice", message: "The specified device does not exist: \(name).")
    }

    /// The answer of ``SimulatorConfiguration/CancelWithoutTask/fail`` (a code of the simulator's choosing: the
    /// `iot.ota.*` error list could not be read).
    static func taskNotCancellable(_ name: String) -> Self {
        Self(
            code: "iot.ota.TaskNotCancellable",
            message: "The device has no upgrade task of this firmware that can be cancelled: \(name)."
        )
    }

    static func invalidDeviceName(_ name: String) -> Self {
        Self(
            code: "iot.device.InvalidFormattedDeviceName",
            message: "The device name \"\(name)\" is invalid: use 4-32 of A-Z a-z 0-9 - _ @ . :"
        )
    }
}

/// Either kind of error an operation answers with.
enum OperationError: Error, Sendable {
    case gateway(GatewayError)
    case business(BusinessError)
}

/// Builds the JSON bodies by appending to a string: no encoder, no intermediate dictionaries, keys in the order
/// the platform's documents show them.
struct JSONObjectWriter {
    private(set) var text: String
    private var isEmpty = true
    /// Lower-cases the first letter of every key (Tuya's style).
    let lowerCamelKeys: Bool

    init(style: ResponseStyle = .aliyun, capacity: Int = 128) {
        text = "{"
        text.reserveCapacity(capacity)
        lowerCamelKeys = style == .tuya
    }

    private mutating func key(_ name: String) {
        if isEmpty { isEmpty = false } else { text += "," }
        text += "\""
        if lowerCamelKeys, let first = name.unicodeScalars.first, first.properties.isUppercase {
            text += first.properties.lowercaseMapping
            text.unicodeScalars.append(contentsOf: name.unicodeScalars.dropFirst())
        } else {
            text += name
        }
        text += "\":"
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        Self.appendQuoted(value, to: &text)
    }

    mutating func bool(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    mutating func int(_ name: String, _ value: Int) {
        key(name)
        text += String(value)
    }

    /// Appends already-serialized JSON (a nested object or array).
    mutating func raw(_ name: String, _ json: String) {
        key(name)
        text += json
    }

    func finished() -> String { text + "}" }

    /// Appends `value` as a JSON string literal: `"` and `\` escaped, control characters as `\n`, `\t`… or
    /// `\u00XX`, everything else (including non-ASCII) as UTF-8.
    static func appendQuoted(_ value: String, to text: inout String) {
        text += "\""
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            text += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16, uppercase: false)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default:
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        text += "\""
    }
}

/// Builds the bodies of each answer kind.
enum AnswerBuilder {
    static func gateway(_ error: GatewayError, requestId: String, hostId: String) -> RPCAnswer {
        var writer = JSONObjectWriter(capacity: 256 + error.message.utf8.count)
        writer.string("RequestId", requestId)
        writer.string("HostId", hostId)
        writer.string("Code", error.code)
        writer.string("Message", error.message)
        writer.string(
            "Recommend",
            "https://api.aliyun.com/troubleshoot?q=\(error.code)&product=Iot&requestId=\(requestId)"
        )
        return RPCAnswer(status: error.status, body: writer.finished(), requestId: requestId, errorCode: error.code)
    }

    static func business(_ error: BusinessError, style: ResponseStyle, requestId: String) -> RPCAnswer {
        var writer = JSONObjectWriter(style: style)
        switch style.kind {
        case .aliyun:
            writer.string("RequestId", requestId)
            writer.bool("Success", false)
            writer.string("Code", error.code)
            writer.string("ErrorMessage", error.message)
        case .tuya:
            writer.string("code", error.code)
            writer.string("errorMessage", error.message)
            writer.string("requestId", requestId)
            writer.bool("success", false)
        }
        return RPCAnswer(status: 200, body: writer.finished(), requestId: requestId, errorCode: error.code)
    }

    static func error(_ error: OperationError, style: ResponseStyle, requestId: String, hostId: String) -> RPCAnswer {
        switch error {
        case .gateway(let gateway): self.gateway(gateway, requestId: requestId, hostId: hostId)
        case .business(let business): self.business(business, style: style, requestId: requestId)
        }
    }

    /// `{"RequestId":"…","Success":true,…}` or `{"code":"","requestId":"…","success":true,…}`.
    static func success(
        style: ResponseStyle,
        requestId: String,
        fields: (inout JSONObjectWriter) -> Void = { _ in }
    ) -> RPCAnswer {
        var writer = JSONObjectWriter(style: style)
        switch style.kind {
        case .aliyun:
            writer.string("RequestId", requestId)
            writer.bool("Success", true)
        case .tuya:
            writer.string("code", "")
            writer.string("requestId", requestId)
            writer.bool("success", true)
        }
        fields(&writer)
        return RPCAnswer(status: 200, body: writer.finished(), requestId: requestId)
    }
}
