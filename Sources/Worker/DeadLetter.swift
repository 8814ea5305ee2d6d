// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import Mosquitto
import JSONSchema

/// A message that could not be answered, kept with its reason and its original payload.
///
/// Published as JSON to the dead-letter topic: `code`, `reason`, `topic`, `receivedAt`, the payload as
/// `payloadBase64` (always; the first MiB, with `payloadTruncated` when cut) and `payloadText` (when it is UTF-8), and the MQTT 5 properties that came with it.
public struct DeadLetter: Sendable {
    public var message: MQTTMessage
    public var code: String
    public var reason: String
    public var receivedAt: Date

    /// At most this much of the original payload is kept (1 MiB), so a huge message cannot make a huger one.
    public static let maxKeptPayloadBytes = 1 << 20

    public init(message: MQTTMessage, code: String, reason: String, receivedAt: Date) {
        self.message = message
        self.code = code
        self.reason = reason
        self.receivedAt = receivedAt
    }

    /// The entry as a message for `topic`.
    public func outgoing(topic: String) -> OutgoingMessage {
        var object = JSONObject()
        object["version"] = .number(JSONNumber(1))
        object["code"] = .string(code)
        object["reason"] = .string(reason)
        object["topic"] = .string(message.topic)
        object["receivedAt"] = .string(RFC3339.string(from: receivedAt))
        object["payloadBytes"] = .number(JSONNumber(message.payload.count))
        let kept = message.payload.prefix(Self.maxKeptPayloadBytes)
        if kept.count < message.payload.count { object["payloadTruncated"] = .bool(true) }
        object["payloadBase64"] = .string(Data(kept).base64EncodedString())
        if let text = String(validating: kept, as: UTF8.self) { object["payloadText"] = .string(text) }
        if let data = message.properties.correlationData {
            object["correlationDataBase64"] = .string(Data(data).base64EncodedString())
        }
        if let contentType = message.properties.contentType { object["contentType"] = .string(contentType) }
        if !message.properties.userProperties.isEmpty {
            object["userProperties"] = .array(
                message.properties.userProperties.map { property in
                    var entry = JSONObject()
                    entry["name"] = .string(property.name)
                    entry["value"] = .string(property.value)
                    return .object(entry)
                }
            )
        }
        return OutgoingMessage(
            topic: topic,
            payload: JSONValue.object(object).serializedBytes(),
            properties: MQTTProperties(
                correlationData: message.properties.correlationData,
                contentType: "application/json",
                payloadFormatIndicator: 1
            )
        )
    }
}
