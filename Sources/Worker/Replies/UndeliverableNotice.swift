// SPDX-License-Identifier: Apache-2.0
public import Foundation
import Mosquitto
import JSONSchema

/// The small message published on the dead-letter topic in place of a reply (or dead letter) that can never be
/// delivered, so that the loss is visible where operators already look for what went wrong.
///
/// It has the dead letter's shape (`version`, `code` = `Undeliverable`, `reason`, `topic`), plus what identifies
/// the lost message: its journal `entry`, its `kind`, the `correlationId` and `status` a reply carried, the
/// length and SHA-256 of its payload, and the reply topic it was meant for (`topic`, clipped to 256 characters).
/// It never carries the payload itself, so it is small whatever the lost message was; its Correlation Data
/// property is the lost message's when that is at most 1 KiB.
public struct UndeliverableNotice: Sendable {
    /// The message that could not be delivered.
    public var undelivered: PendingReply
    /// Why (libmosquitto's or the broker's words).
    public var reason: String
    /// When the failure was recorded.
    public var at: Date

    public init(undelivered: PendingReply, reason: String, at: Date) {
        self.undelivered = undelivered
        self.reason = reason
        self.at = at
    }

    /// The notice as a message for the dead-letter topic `topic`.
    public func outgoing(topic: String) -> OutgoingMessage {
        let message = undelivered.message
        var object = JSONObject()
        object["version"] = .number(JSONNumber(1))
        object["code"] = .string("Undeliverable")
        object["reason"] = .string(reason.clipped(toScalars: 1_024))
        object["topic"] = .string(message.topic.clipped(toScalars: 256))
        object["topicBytes"] = .number(JSONNumber(message.topic.utf8.count))
        object["entry"] = .number(JSONNumber(Int(undelivered.id)))
        object["kind"] = .string(undelivered.kind.rawValue)
        object["at"] = .string(RFC3339.string(from: at))
        if case .object(let stored)? = try? JSONParser.parse(message.payload) {
            // What the requester would need to find its command again (a dead letter has neither).
            if let correlationId = stored["correlationId"]?.stringValue {
                object["correlationId"] = .string(correlationId.clipped(toScalars: 256))
            }
            if let status = stored["status"]?.stringValue {
                object["status"] = .string(status.clipped(toScalars: 32))
            }
        }
        if let data = message.properties.correlationData {
            object["correlationDataBase64"] = .string(
                Data(data.prefix(DeadLetter.maxCorrelationExcerptBytes)).base64EncodedString()
            )
            object["correlationDataBytes"] = .number(JSONNumber(data.count))
        }
        object["payloadBytes"] = .number(JSONNumber(message.payload.count))
        object["payloadSHA256"] = .string(DeadLetter.sha256Hex(message.payload))
        let correlationData = message.properties.correlationData.flatMap {
            $0.count <= DeadLetter.maxCorrelationExcerptBytes ? $0 : nil
        }
        return OutgoingMessage(
            topic: topic,
            payload: JSONValue.object(object).serializedBytes(),
            properties: MQTTProperties(
                correlationData: correlationData,
                contentType: "application/json",
                payloadFormatIndicator: 1
            )
        )
    }
}
