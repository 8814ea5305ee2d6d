// SPDX-License-Identifier: Apache-2.0
//
// MQTT vocabulary (after mqtt-nio): plain Swift values that never mention a C type, so modules above this one
// can build, compare and log messages without seeing libmosquitto.

/// The MQTT protocol version a client speaks.
///
/// MQTT 5 is the default because request/response needs its Response Topic and Correlation Data properties;
/// 3.1.1 is kept for brokers and requesters that have nothing newer (replies are then routed by payload fields).
public enum MQTTProtocolVersion: Sendable, Hashable, CustomStringConvertible {
    /// MQTT 3.1.1 (protocol level 4). Properties are not sent on this version.
    case v3_1_1
    /// MQTT 5.0 (protocol level 5).
    case v5

    /// Parses the spellings used in configuration files and command lines.
    ///
    /// Accepts `"5"`, `"5.0"`, `"v5"`, `"mqttv5"` and `"3.1.1"`, `"311"`, `"v311"`, `"4"` (the protocol level of
    /// 3.1.1), case-insensitively; anything else is `nil` so that configuration errors can name the setting.
    /// - Parameter string: The text to parse.
    public init?(string: String) {
        switch string.lowercased() {
        case "5", "5.0", "v5", "v5.0", "mqttv5", "mqtt5":
            self = .v5
        case "3.1.1", "311", "v311", "v3.1.1", "4", "mqttv311", "mqtt311":
            self = .v3_1_1
        default:
            return nil
        }
    }

    /// `"5"` or `"3.1.1"`, the canonical spelling accepted by ``init(string:)``.
    public var description: String {
        switch self {
        case .v3_1_1: "3.1.1"
        case .v5: "5"
        }
    }
}

/// MQTT quality of service levels; the protocol fixes this set, so it is a plain enum.
public enum MQTTQoS: UInt8, Sendable, Hashable, CaseIterable {
    /// QoS 0: fire and forget; lost when the connection is down.
    case atMostOnce = 0
    /// QoS 1: acknowledged with PUBACK; may be delivered more than once. The project's choice for commands.
    case atLeastOnce = 1
    /// QoS 2: four-way handshake. Not recommended here: libmosquitto loses a QoS 2 message that already got
    /// PUBREC if the process crashes before the callback (see the libmosquitto reference, §1).
    case exactlyOnce = 2
}

/// One MQTT 5 User Property: a name/value pair that may repeat and whose order is kept.
public struct MQTTUserProperty: Sendable, Hashable {
    /// The property name (UTF-8).
    public var name: String
    /// The property value (UTF-8).
    public var value: String

    /// Creates a user property.
    /// - Parameters:
    ///   - name: The property name.
    ///   - value: The property value.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The MQTT 5 PUBLISH properties this project uses, as plain Swift values.
///
/// Every field is optional and the whole struct is empty by default. On an MQTT 3.1.1 connection properties
/// cannot be sent; ``MosquittoClient/publish(to:payload:qos:retain:properties:)`` then drops them silently, and
/// received messages carry an empty value.
public struct MQTTProperties: Sendable, Hashable {
    /// Response Topic: where the requester expects the reply. Default `nil`.
    public var responseTopic: String?
    /// Correlation Data: opaque bytes that tie a reply to its request, copied byte for byte (need not be UTF-8).
    /// Default `nil`.
    public var correlationData: [UInt8]?
    /// Content Type, for example `application/json`. Default `nil`.
    public var contentType: String?
    /// Payload Format Indicator: 0 = unspecified bytes, 1 = UTF-8 text. Default `nil` (not sent).
    public var payloadFormatIndicator: UInt8?
    /// Message Expiry Interval in seconds. When receiving, this is the *remaining* lifetime the broker computed
    /// at delivery time, not the value the publisher sent. Default `nil` (never expires).
    public var messageExpiryInterval: UInt32?
    /// User Properties in wire order. Default empty.
    public var userProperties: [MQTTUserProperty]

    /// Creates a property set; every argument defaults to "absent".
    public init(
        responseTopic: String? = nil,
        correlationData: [UInt8]? = nil,
        contentType: String? = nil,
        payloadFormatIndicator: UInt8? = nil,
        messageExpiryInterval: UInt32? = nil,
        userProperties: [MQTTUserProperty] = []
    ) {
        self.responseTopic = responseTopic
        self.correlationData = correlationData
        self.contentType = contentType
        self.payloadFormatIndicator = payloadFormatIndicator
        self.messageExpiryInterval = messageExpiryInterval
        self.userProperties = userProperties
    }

    /// `true` when no property is set, so nothing would go on the wire.
    public var isEmpty: Bool {
        responseTopic == nil && correlationData == nil && contentType == nil && payloadFormatIndicator == nil
            && messageExpiryInterval == nil && userProperties.isEmpty
    }
}

/// A received PUBLISH, fully copied out of libmosquitto's memory before the callback returned.
///
/// Because it owns all of its bytes it can be kept, sent across tasks and journaled after the C callback
/// returns (libmosquitto frees the original right after).
public struct MQTTMessage: Sendable, Hashable {
    /// The topic the message was published to.
    public var topic: String
    /// The payload bytes, unchanged.
    public var payload: [UInt8]
    /// The QoS the message was delivered with (the lower of the publish and subscription QoS).
    public var qos: MQTTQoS
    /// Whether the broker delivered it from its retained store.
    public var retain: Bool
    /// MQTT 5 properties; empty for MQTT 3.1.1.
    public var properties: MQTTProperties
    /// The packet identifier libmosquitto reported (0 for QoS 0). Useful in logs only: identifiers are reused.
    public var messageID: Int32

    /// Creates a message value (mostly for tests of code that consumes messages).
    public init(
        topic: String,
        payload: [UInt8],
        qos: MQTTQoS = .atLeastOnce,
        retain: Bool = false,
        properties: MQTTProperties = MQTTProperties(),
        messageID: Int32 = 0
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.messageID = messageID
    }
}

/// One subscription request: a topic filter, its maximum QoS and the MQTT 5 subscription options.
///
/// The v5 options are ignored on an MQTT 3.1.1 connection (the protocol has no field for them).
public struct MQTTSubscribeInfo: Sendable, Hashable {
    /// MQTT 5 Retain Handling: when the broker sends retained messages for a new subscription.
    public enum RetainHandling: UInt8, Sendable, Hashable {
        /// Send retained messages on every subscribe (the protocol default).
        case sendAlways = 0
        /// Send retained messages only if the subscription did not exist yet.
        case sendIfNew = 1
        /// Never send retained messages.
        case doNotSend = 2
    }

    /// The topic filter, for example `ota/cancel/cmd` or `$share/workers/ota/cancel/cmd`.
    public var topicFilter: String
    /// The maximum QoS to receive messages with. Default ``MQTTQoS/atLeastOnce``.
    public var qos: MQTTQoS
    /// MQTT 5 No Local: do not receive our own publications. Default `false`.
    public var noLocal: Bool
    /// MQTT 5 Retain As Published: keep the retain flag as the publisher set it. Default `false`.
    public var retainAsPublished: Bool
    /// MQTT 5 Retain Handling. Default ``RetainHandling/sendAlways``.
    public var retainHandling: RetainHandling

    /// Creates a subscription request.
    /// - Parameters:
    ///   - topicFilter: The topic filter.
    ///   - qos: Maximum QoS; default ``MQTTQoS/atLeastOnce``.
    ///   - noLocal: MQTT 5 No Local; default `false`.
    ///   - retainAsPublished: MQTT 5 Retain As Published; default `false`.
    ///   - retainHandling: MQTT 5 Retain Handling; default ``RetainHandling/sendAlways``.
    public init(
        topicFilter: String,
        qos: MQTTQoS = .atLeastOnce,
        noLocal: Bool = false,
        retainAsPublished: Bool = false,
        retainHandling: RetainHandling = .sendAlways
    ) {
        self.topicFilter = topicFilter
        self.qos = qos
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
    }
}
