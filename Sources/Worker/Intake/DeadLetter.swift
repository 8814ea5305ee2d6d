// SPDX-License-Identifier: Apache-2.0
import Crypto
public import Foundation
public import Mosquitto
import JSONSchema

/// A message that could not be answered, kept with its reason and a bounded excerpt of its payload.
///
/// Published as JSON to the dead-letter topic: `code`, `reason`, `topic`, `receivedAt`, `payloadBytes` (the whole
/// payload's length), `payloadSHA256` (of the whole payload, lower-case hex: enough to find the original in the
/// publisher's records), the first ``maxExcerptBytes`` of the payload as `payloadBase64` (with `payloadTruncated`
/// when cut), the same excerpt as `payloadText` when it is UTF-8 without control characters (tab and line breaks
/// aside), and the MQTT 5 properties that came with it (bounded too, see ``outgoing(topic:)``).
///
/// Why bounded: a dead letter that carried the whole payload was larger than the payload itself (a 1 MB message of
/// control bytes became a 7.7 MB dead letter), so the broker's Maximum Packet Size could refuse it for ever. An
/// excerpt, the length and the digest are what an operator needs; a dead letter stays under 20 KB whatever came in.
public struct DeadLetter: Sendable {
    public var message: MQTTMessage
    public var code: String
    public var reason: String
    public var receivedAt: Date

    /// At most this much of the original payload is kept (4 KiB).
    public static let maxExcerptBytes = 4 << 10
    /// At most this much of the original Correlation Data is copied into the body (1 KiB); the reply's own
    /// Correlation Data property carries all of it.
    public static let maxCorrelationExcerptBytes = 1 << 10
    /// At most this many User Properties are copied, each name and value clipped to 256 characters.
    public static let maxUserProperties = 16

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
        object["reason"] = .string(reason.clipped(toScalars: 1_024))
        object["topic"] = .string(message.topic.clipped(toScalars: 256))
        object["receivedAt"] = .string(RFC3339.string(from: receivedAt))
        Self.describe(payload: message.payload, into: &object)
        if let data = message.properties.correlationData {
            let kept = data.prefix(Self.maxCorrelationExcerptBytes)
            object["correlationDataBase64"] = .string(Data(kept).base64EncodedString())
            if kept.count < data.count { object["correlationDataBytes"] = .number(JSONNumber(data.count)) }
        }
        if let contentType = message.properties.contentType {
            object["contentType"] = .string(contentType.clipped(toScalars: 256))
        }
        if !message.properties.userProperties.isEmpty {
            object["userProperties"] = .array(
                message.properties.userProperties.prefix(Self.maxUserProperties).map { property in
                    var entry = JSONObject()
                    entry["name"] = .string(property.name.clipped(toScalars: 256))
                    entry["value"] = .string(property.value.clipped(toScalars: 256))
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

    /// Adds `payloadBytes`, `payloadSHA256`, `payloadBase64`, `payloadTruncated` and `payloadText` for `payload`.
    static func describe(payload: [UInt8], into object: inout JSONObject) {
        object["payloadBytes"] = .number(JSONNumber(payload.count))
        object["payloadSHA256"] = .string(sha256Hex(payload))
        let kept = payload.prefix(maxExcerptBytes)
        if kept.count < payload.count { object["payloadTruncated"] = .bool(true) }
        object["payloadBase64"] = .string(Data(kept).base64EncodedString())
        if let text = readableText(kept, truncated: kept.count < payload.count) {
            object["payloadText"] = .string(text)
        }
    }

    /// The excerpt as text when it is UTF-8 (a sequence cut at the end of a truncated excerpt aside) without
    /// control characters other than tab, LF and CR: then its JSON form is at most twice its size.
    private static func readableText(_ bytes: ArraySlice<UInt8>, truncated: Bool) -> String? {
        var candidate = bytes
        for _ in 0...(truncated ? 3 : 0) {
            if let text = String(validating: candidate, as: UTF8.self) {
                let readable = text.unicodeScalars.allSatisfy { scalar in
                    !(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value))
                        || scalar == "\t" || scalar == "\n" || scalar == "\r"
                }
                return readable ? text : nil
            }
            guard !candidate.isEmpty else { return nil }
            candidate = candidate.dropLast()
        }
        return nil
    }

    /// The SHA-256 of `bytes`, lower-case hex.
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in SHA256.hash(data: bytes) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
