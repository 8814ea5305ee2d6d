// SPDX-License-Identifier: Apache-2.0

/// The exact size on the wire of the packets this module sends, for checks against a Maximum Packet Size.
///
/// An MQTT 5 broker announces the largest packet it accepts in its CONNACK (Maximum Packet Size); an MQTT 3.1.1
/// broker cannot, and drops the connection when a packet is too big, so a message that can never fit would take
/// the connection down on every attempt. Knowing the size before sending lets the publisher refuse such a
/// message once, as a message-level failure.
public enum MQTTPacketSize {
    /// Bytes of a PUBLISH packet: fixed header, topic, packet identifier (QoS ≥ 1), properties (MQTT 5), payload.
    ///
    /// MQTT 5.0 §3.3 and §2.2.2: properties are counted as this module encodes them (each identifier one byte;
    /// strings and binary data with a 2-byte length; the property length as a variable byte integer).
    /// - Parameters:
    ///   - topic: the topic name.
    ///   - payloadCount: the payload's length in bytes.
    ///   - qos: the QoS (a packet identifier is sent for 1 and 2).
    ///   - properties: the properties; ignored on MQTT 3.1.1, where none are sent.
    ///   - protocolVersion: the connection's protocol version.
    public static func publish(
        topic: String,
        payloadCount: Int,
        qos: MQTTQoS,
        properties: MQTTProperties,
        protocolVersion: MQTTProtocolVersion
    ) -> Int {
        var remaining = 2 + topic.utf8.count + (qos == .atMostOnce ? 0 : 2) + payloadCount
        if protocolVersion == .v5 {
            let length = propertyLength(properties)
            remaining += variableByteIntegerSize(length) + length
        }
        return 1 + variableByteIntegerSize(remaining) + remaining
    }

    /// Bytes of the properties of a PUBLISH, without the property length itself.
    static func propertyLength(_ properties: MQTTProperties) -> Int {
        var length = 0
        if let topic = properties.responseTopic { length += 1 + 2 + topic.utf8.count }
        if let data = properties.correlationData { length += 1 + 2 + data.count }
        if let type = properties.contentType { length += 1 + 2 + type.utf8.count }
        if properties.payloadFormatIndicator != nil { length += 1 + 1 }
        if properties.messageExpiryInterval != nil { length += 1 + 4 }
        for property in properties.userProperties {
            length += 1 + 2 + property.name.utf8.count + 2 + property.value.utf8.count
        }
        return length
    }

    /// Bytes of a variable byte integer (MQTT 5.0 §1.5.5): 7 bits per byte.
    static func variableByteIntegerSize(_ value: Int) -> Int {
        switch value {
        case ..<128: 1
        case ..<16_384: 2
        case ..<2_097_152: 3
        default: 4
        }
    }
}
