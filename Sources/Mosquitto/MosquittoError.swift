// SPDX-License-Identifier: Apache-2.0
import CMosquitto

/// The one error type of the `Mosquitto` module.
///
/// A struct with a stable ``code`` (what callers branch on and what equality compares), a human ``description``
/// that carries libmosquitto's own text (`mosquitto_strerror`, `mosquitto_reason_string`,
/// `mosquitto_connack_string`), a bounded ``shortDescription`` for metric labels, and the `#fileID`/`#line`
/// where it was raised. It never contains a password or a payload.
public struct MosquittoError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A libmosquitto return code (`MOSQ_ERR_*`), wrapped so callers never see the C enum.
    public struct ResultCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The raw `MOSQ_ERR_*` value.
        public var rawValue: CInt

        /// Wraps a raw `MOSQ_ERR_*` value.
        public init(rawValue: CInt) { self.rawValue = rawValue }

        /// `MOSQ_ERR_SUCCESS`.
        public static let success = ResultCode(rawValue: 0)
        /// `MOSQ_ERR_NOMEM`.
        public static let nomem = ResultCode(rawValue: 1)
        /// `MOSQ_ERR_PROTOCOL`; also what an MQTT 5 CONNACK refusal turns into inside libmosquitto.
        public static let `protocol` = ResultCode(rawValue: 2)
        /// `MOSQ_ERR_INVAL`.
        public static let inval = ResultCode(rawValue: 3)
        /// `MOSQ_ERR_NO_CONN`.
        public static let noConn = ResultCode(rawValue: 4)
        /// `MOSQ_ERR_CONN_REFUSED`; an MQTT 3.1.1 CONNACK refusal.
        public static let connRefused = ResultCode(rawValue: 5)
        /// `MOSQ_ERR_NOT_FOUND`.
        public static let notFound = ResultCode(rawValue: 6)
        /// `MOSQ_ERR_CONN_LOST`.
        public static let connLost = ResultCode(rawValue: 7)
        /// `MOSQ_ERR_TLS`.
        public static let tls = ResultCode(rawValue: 8)
        /// `MOSQ_ERR_PAYLOAD_SIZE`.
        public static let payloadSize = ResultCode(rawValue: 9)
        /// `MOSQ_ERR_NOT_SUPPORTED`.
        public static let notSupported = ResultCode(rawValue: 10)
        /// `MOSQ_ERR_AUTH`.
        public static let auth = ResultCode(rawValue: 11)
        /// `MOSQ_ERR_ACL_DENIED`.
        public static let aclDenied = ResultCode(rawValue: 12)
        /// `MOSQ_ERR_UNKNOWN`.
        public static let unknown = ResultCode(rawValue: 13)
        /// `MOSQ_ERR_ERRNO`: a system call failed; the description carries `strerror(errno)`.
        public static let errno = ResultCode(rawValue: 14)
        /// `MOSQ_ERR_EAI`: host name lookup failed.
        public static let eai = ResultCode(rawValue: 15)
        /// `MOSQ_ERR_PROXY`.
        public static let proxy = ResultCode(rawValue: 16)
        /// `MOSQ_ERR_MALFORMED_UTF8`.
        public static let malformedUTF8 = ResultCode(rawValue: 18)
        /// `MOSQ_ERR_KEEPALIVE`: the broker stopped answering within the keep alive.
        public static let keepalive = ResultCode(rawValue: 19)
        /// `MOSQ_ERR_LOOKUP`.
        public static let lookup = ResultCode(rawValue: 20)
        /// `MOSQ_ERR_MALFORMED_PACKET`.
        public static let malformedPacket = ResultCode(rawValue: 21)
        /// `MOSQ_ERR_DUPLICATE_PROPERTY`.
        public static let duplicateProperty = ResultCode(rawValue: 22)
        /// `MOSQ_ERR_TLS_HANDSHAKE`.
        public static let tlsHandshake = ResultCode(rawValue: 23)
        /// `MOSQ_ERR_QOS_NOT_SUPPORTED`.
        public static let qosNotSupported = ResultCode(rawValue: 24)
        /// `MOSQ_ERR_OVERSIZE_PACKET`.
        public static let oversizePacket = ResultCode(rawValue: 25)
        /// `MOSQ_ERR_TIMEOUT`.
        public static let timeout = ResultCode(rawValue: 27)
        /// `MOSQ_ERR_RETAIN_NOT_SUPPORTED`.
        public static let retainNotSupported = ResultCode(rawValue: 28)

        private static let names: [CInt: String] = [
            -4: "MOSQ_ERR_AUTH_CONTINUE", -3: "MOSQ_ERR_NO_SUBSCRIBERS", -2: "MOSQ_ERR_SUB_EXISTS",
            -1: "MOSQ_ERR_CONN_PENDING", 0: "MOSQ_ERR_SUCCESS", 1: "MOSQ_ERR_NOMEM", 2: "MOSQ_ERR_PROTOCOL",
            3: "MOSQ_ERR_INVAL", 4: "MOSQ_ERR_NO_CONN", 5: "MOSQ_ERR_CONN_REFUSED", 6: "MOSQ_ERR_NOT_FOUND",
            7: "MOSQ_ERR_CONN_LOST", 8: "MOSQ_ERR_TLS", 9: "MOSQ_ERR_PAYLOAD_SIZE", 10: "MOSQ_ERR_NOT_SUPPORTED",
            11: "MOSQ_ERR_AUTH", 12: "MOSQ_ERR_ACL_DENIED", 13: "MOSQ_ERR_UNKNOWN", 14: "MOSQ_ERR_ERRNO",
            15: "MOSQ_ERR_EAI", 16: "MOSQ_ERR_PROXY", 17: "MOSQ_ERR_PLUGIN_DEFER", 18: "MOSQ_ERR_MALFORMED_UTF8",
            19: "MOSQ_ERR_KEEPALIVE", 20: "MOSQ_ERR_LOOKUP", 21: "MOSQ_ERR_MALFORMED_PACKET",
            22: "MOSQ_ERR_DUPLICATE_PROPERTY", 23: "MOSQ_ERR_TLS_HANDSHAKE", 24: "MOSQ_ERR_QOS_NOT_SUPPORTED",
            25: "MOSQ_ERR_OVERSIZE_PACKET", 26: "MOSQ_ERR_OCSP", 27: "MOSQ_ERR_TIMEOUT",
            28: "MOSQ_ERR_RETAIN_NOT_SUPPORTED", 29: "MOSQ_ERR_TOPIC_ALIAS_INVALID",
            30: "MOSQ_ERR_ADMINISTRATIVE_ACTION", 31: "MOSQ_ERR_ALREADY_EXISTS",
        ]

        /// The C constant's name, e.g. `MOSQ_ERR_NO_CONN` (`MOSQ_ERR_<n>` for values this version does not know).
        public var name: String { Self.names[rawValue] ?? "MOSQ_ERR_\(rawValue)" }

        /// libmosquitto's text for the code (`mosquitto_strerror`). For ``errno`` it reads the calling thread's
        /// `errno`, so errors are built right after the failing call.
        public var message: String { String(cString: mosquitto_strerror(rawValue)) }

        /// The constant's name.
        public var description: String { name }

        /// Whether libmosquitto's own `loop_forever` gives up for good after `mosquitto_loop` returns this code
        /// (lib/loop.c): the connection cannot recover by retrying.
        public var endsNetworkLoop: Bool {
            switch self {
            case .nomem, .protocol, .inval, .notFound, .tls, .payloadSize, .notSupported, .auth, .aclDenied,
                .unknown, .eai, .proxy:
                true
            default:
                false
            }
        }
    }

    /// What went wrong, as a stable identity that callers and tests branch on.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case library(CInt)
            case connectionRefused(CInt)
            case reasonCode(CInt)
            case clientClosed
            case invalidConfiguration
            case invalidArgument
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// A libmosquitto call returned an error code.
        public static func library(_ code: ResultCode) -> Code { Code(.library(code.rawValue)) }
        /// The broker refused the connection in its CONNACK: MQTT 3.1.1 return codes 1-5 or an MQTT 5 reason
        /// code of 0x80 or more.
        public static func connectionRefused(_ returnCode: UInt8) -> Code { Code(.connectionRefused(CInt(returnCode))) }
        /// The broker answered with an MQTT 5 failure reason code (0x80 or more): in a PUBACK, a SUBACK or a
        /// DISCONNECT it sent.
        public static func reasonCode(_ reasonCode: UInt8) -> Code { Code(.reasonCode(CInt(reasonCode))) }
        /// The client was disconnected or shut down before, or while, the operation waited.
        public static let clientClosed = Code(.clientClosed)
        /// A ``MosquittoConfiguration`` value is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// An argument is not acceptable (for example a topic containing NUL).
        public static let invalidArgument = Code(.invalidArgument)

        /// The libmosquitto result code, if this is a ``library(_:)`` code.
        public var resultCode: ResultCode? {
            if case .library(let raw) = base { return ResultCode(rawValue: raw) }
            return nil
        }

        /// The CONNACK return/reason code, if this is a ``connectionRefused(_:)`` code.
        public var connackCode: UInt8? {
            if case .connectionRefused(let raw) = base { return UInt8(truncatingIfNeeded: raw) }
            return nil
        }

        /// The MQTT 5 reason code, if this is a ``reasonCode(_:)`` code.
        public var mqttReasonCode: UInt8? {
            if case .reasonCode(let raw) = base { return UInt8(truncatingIfNeeded: raw) }
            return nil
        }

        /// A short, bounded identifier, e.g. `MOSQ_ERR_NO_CONN`, `CONNACK_0x86`, `REASON_0x87`, `CLIENT_CLOSED`.
        public var description: String {
            switch base {
            case .library(let raw): ResultCode(rawValue: raw).name
            case .connectionRefused(let raw): "CONNACK_" + hex(raw)
            case .reasonCode(let raw): "REASON_" + hex(raw)
            case .clientClosed: "CLIENT_CLOSED"
            case .invalidConfiguration: "INVALID_CONFIGURATION"
            case .invalidArgument: "INVALID_ARGUMENT"
            }
        }

        /// libmosquitto's human text for this code, where it has one.
        var libraryText: String? {
            switch base {
            case .library(let raw):
                return String(cString: mosquitto_strerror(raw))
            case .connectionRefused(let raw):
                // MQTT 3.1.1 return codes are 1-5; MQTT 5 reason codes start at 0x80.
                return raw < 0x80
                    ? String(cString: mosquitto_connack_string(raw)) : String(cString: mosquitto_reason_string(raw))
            case .reasonCode(let raw):
                return String(cString: mosquitto_reason_string(raw))
            case .clientClosed, .invalidConfiguration, .invalidArgument:
                return nil
            }
        }
    }

    /// The stable identity of the error; ``==`` compares only this.
    public let code: Code
    /// Human detail: libmosquitto's text plus what the client was doing. Never contains secrets or payloads.
    public let message: String
    /// The file that raised the error (`#fileID`).
    public let file: String
    /// The line that raised the error.
    public let line: Int

    /// Creates an error; the library text for `code` is prepended to `detail` automatically.
    /// - Parameters:
    ///   - code: The stable code.
    ///   - detail: What the client was doing (e.g. `"publish to ota/cancel/reply"`); optional.
    ///   - file: Defaults to the caller's `#fileID`.
    ///   - line: Defaults to the caller's `#line`.
    public init(_ code: Code, detail: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        let text = code.libraryText
        switch (text, detail) {
        case (let text?, let detail?): self.message = "\(text) (\(detail))"
        case (let text?, nil): self.message = text
        case (nil, let detail?): self.message = detail
        case (nil, nil): self.message = code.description
        }
        self.file = file
        self.line = line
    }

    /// Creates an error from a libmosquitto return code.
    /// - Parameters:
    ///   - result: The raw `MOSQ_ERR_*` value returned by the call.
    ///   - detail: What the client was doing.
    public init(result: CInt, detail: String? = nil, file: String = #fileID, line: Int = #line) {
        self.init(.library(ResultCode(rawValue: result)), detail: detail, file: file, line: line)
    }

    /// The libmosquitto result code, if the error came from a libmosquitto call.
    public var resultCode: ResultCode? { code.resultCode }

    /// A bounded label for metrics and short log fields: the code's description (e.g. `MOSQ_ERR_CONN_LOST`).
    public var shortDescription: String { code.description }

    /// `MosquittoError.<code>: <message> (at <file>:<line>)`.
    public var description: String { "MosquittoError.\(code): \(message) (at \(file):\(line))" }

    /// Compares ``code`` only: two errors with the same code are the same error whatever their detail.
    public static func == (lhs: MosquittoError, rhs: MosquittoError) -> Bool { lhs.code == rhs.code }

    /// Hashes ``code`` only, consistent with ``==``.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// A ``Code/clientClosed`` error.
    public static func clientClosed(_ detail: String, file: String = #fileID, line: Int = #line) -> MosquittoError {
        MosquittoError(.clientClosed, detail: detail, file: file, line: line)
    }

    /// A ``Code/invalidConfiguration`` error naming the setting.
    public static func invalidConfiguration(
        _ detail: String,
        file: String = #fileID,
        line: Int = #line
    ) -> MosquittoError {
        MosquittoError(.invalidConfiguration, detail: detail, file: file, line: line)
    }

    /// A ``Code/invalidArgument`` error.
    public static func invalidArgument(_ detail: String, file: String = #fileID, line: Int = #line) -> MosquittoError {
        MosquittoError(.invalidArgument, detail: detail, file: file, line: line)
    }
}

private func hex(_ value: CInt) -> String {
    let digits = String(UInt8(truncatingIfNeeded: value), radix: 16, uppercase: true)
    return "0x" + (digits.count < 2 ? "0" + digits : digits)
}
