// SPDX-License-Identifier: Apache-2.0
import Mosquitto

/// What a failed publication means for the message: a pure classification of the error (STYLE §21).
///
/// Only a failure of the connection is worth waiting out: the same message goes out once the connection is
/// back. A failure of the message itself (libmosquitto refuses its topic, the packet is larger than the broker
/// accepts, the broker's PUBACK refuses it) happens again on every attempt, so retrying it would hold the reply
/// for ever and, with it, whatever waits behind it. Such a message is recorded as undeliverable instead.
public enum DeliveryFailure: Sendable, Hashable {
    /// The connection failed, is being rebuilt or is closing: try the same message again later.
    case connection
    /// The broker refused this message for a reason that may pass (quota exceeded, an unspecified or
    /// implementation-specific error): try again, a bounded number of times (``maximumRefusals``).
    case refused(reason: String)
    /// This message can never be published as it is: record it undeliverable with `reason`, never retry.
    case message(reason: String)

    /// How often a ``refused(reason:)`` message is tried before it counts as undeliverable.
    public static let maximumRefusals = 5

    /// Classifies whatever a publication threw.
    public init(_ error: any Error) {
        guard let error = error as? MosquittoError else {
            // The worker's own "connection is closing", cancellation: nothing is wrong with the message.
            self = .connection
            return
        }
        if let reasonCode = error.code.mqttReasonCode {
            self = Self.classify(reasonCode: reasonCode, error: error)
            return
        }
        if error.code == .invalidArgument {
            self = .message(reason: error.message)
            return
        }
        guard let result = error.resultCode else {
            // clientClosed (the client is being rebuilt) and configuration problems of the connection.
            self = .connection
            return
        }
        switch result {
        case .malformedUTF8, .inval, .oversizePacket, .payloadSize, .qosNotSupported, .retainNotSupported,
            .duplicateProperty, .notSupported, .malformedPacket, MosquittoError.ResultCode(rawValue: 29):
            // 29 is MOSQ_ERR_TOPIC_ALIAS_INVALID.
            self = .message(reason: "\(result.name): \(error.message)")
        default:
            // NO_CONN, CONN_LOST, KEEPALIVE, ERRNO, TLS, NOMEM, ...: the connection's trouble, not the message's.
            self = .connection
        }
    }

    /// A PUBACK reason code of 0x80 or more (MQTT 5.0 §3.4.2.1).
    private static func classify(reasonCode: UInt8, error: MosquittoError) -> DeliveryFailure {
        let reason = "the broker refused the message: \(error.shortDescription) \(error.message)"
        switch reasonCode {
        case 0x80, 0x83, 0x91, 0x97:
            // Unspecified error, implementation specific error, packet identifier in use, quota exceeded.
            return .refused(reason: reason)
        default:
            // Not authorized (0x87), topic name invalid (0x90), packet too large (0x95), payload format invalid
            // (0x99), and anything else a broker says about this message.
            return .message(reason: reason)
        }
    }
}
