// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import JSONSchema
public import Mosquitto
public import Worker

/// One cancel command as `ota-cancel-worker request` publishes it: the payload, and how the reply finds its way
/// back (MQTT 5 Response Topic + Correlation Data, or `replyTo` + `correlationId` in the payload for 3.1.1).
///
/// Pure: building the message and checking it need no broker, so both are unit tested. The check is the worker's
/// own intake (``CommandIntake``) run on the message about to be published, so a command refused here would be
/// refused by the worker with the same codes and messages, and a refused command is never sent.
public struct CancelRequest: Sendable, Hashable {
    public var productKey: String
    public var firmwareId: String
    /// In the order given; repetitions are the schema's to refuse (`uniqueItems`), not ours to drop silently.
    public var deviceNames: [String]
    public var jobId: String?
    public var iotInstanceId: String?
    public var deadline: Date?
    public var dryRun = false
    /// The command's `verify`; `nil` leaves it to the worker's `--verify`.
    public var verify: Bool?
    public var reason: String?
    public var requestedBy: String?
    /// Copied into the reply: how the reply is recognised among others on the same topic.
    public var correlationId: String
    /// Where the worker is asked to publish the reply.
    public var replyTopic: String
    /// MQTT 5 carries the ids in properties; MQTT 3.1.1 has none, so they go into the payload.
    public var protocolVersion: MQTTProtocolVersion

    public init(
        productKey: String,
        firmwareId: String,
        deviceNames: [String],
        correlationId: String,
        replyTopic: String,
        protocolVersion: MQTTProtocolVersion = .v5
    ) {
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.deviceNames = deviceNames
        self.correlationId = correlationId
        self.replyTopic = replyTopic
        self.protocolVersion = protocolVersion
    }

    /// The payload, fields in the schema's order, absent ones left out.
    public var payload: JSONValue {
        var object = JSONObject()
        object["productKey"] = .string(productKey)
        object["firmwareId"] = .string(firmwareId)
        object["deviceNames"] = .array(deviceNames.map(JSONValue.string))
        object["jobId"] = jobId.map(JSONValue.string)
        object["iotInstanceId"] = iotInstanceId.map(JSONValue.string)
        if protocolVersion == .v3_1_1 {
            object["correlationId"] = .string(correlationId)
            object["replyTo"] = .string(replyTopic)
        }
        object["deadline"] = deadline.map { .string(RFC3339.string(from: $0)) }
        if dryRun { object["dryRun"] = .bool(true) }
        object["verify"] = verify.map(JSONValue.bool)
        object["reason"] = reason.map(JSONValue.string)
        object["requestedBy"] = requestedBy.map(JSONValue.string)
        return .object(object)
    }

    /// The MQTT message for `topic`, QoS 1, never retained (the worker refuses retained commands).
    public func message(topic: String) -> MQTTMessage {
        MQTTMessage(
            topic: topic,
            payload: payload.serializedBytes(),
            qos: .atLeastOnce,
            properties: protocolVersion == .v5
                ? MQTTProperties(responseTopic: replyTopic, correlationData: Array(correlationId.utf8))
                : MQTTProperties()
        )
    }

    /// What the worker's intake says of this command before it is sent.
    public enum LocalVerdict: Sendable {
        /// The worker would take it: publish it.
        case send
        /// The worker would refuse it with this reply (status `rejected`, its `errors` as the worker words them).
        case rejected(CancelReply)
    }

    /// Runs the worker's intake on the message that would be published to `topic`.
    ///
    /// `schema` carries the device limit (compiled in, as the worker compiles it from `max-device-names`).
    /// The intake is configured as the worker is by default except for the reply-topic allow-list, which is the
    /// worker's own setting and unknown here: any reply topic a worker could publish to passes, and a worker whose
    /// allow-list excludes it answers `rejected` (`ReplyTopicNotAllowed`) itself. An expired deadline is not
    /// refused here either: whether the command ran in time is the worker's answer to give (and to journal).
    public func check(topic: String, schema: CommandSchema, now: Date = Date()) -> LocalVerdict {
        var configuration = CancelWorkerConfiguration()
        configuration.replyTopicAllowList = ["#"]
        let intake = CommandIntake(configuration: configuration, schema: schema, now: { now })
        switch intake.decide(message(topic: topic)) {
        case .execute:
            return .send
        case .answer(let reply, _):
            return reply.status == .rejected ? .rejected(reply) : .send
        case .deadLetter:
            // Only a message without any reply route is dead-lettered, and this one always names its route.
            var reply = CancelReply(correlationId: correlationId, status: .rejected, receivedAt: now, completedAt: now)
            reply.errors = [
                .init(
                    code: "InvalidReplyTopic",
                    instanceLocation: "",
                    keywordLocation: "#worker/replyTopic",
                    message: "the worker could not answer this command on '\(replyTopic)'"
                )
            ]
            return .rejected(reply)
        }
    }
}

/// `--deadline`: an RFC 3339 date-time, or a duration from now (`90s`, `5m`, `2h`, `1d`, or plain seconds), which
/// is what a rollback script knows ("stop it within five minutes").
public enum RequestDeadline {
    /// The instant, or `nil` when `text` is neither form.
    public static func parse(_ text: String, now: Date = Date()) -> Date? {
        if let date = RFC3339.date(from: text) { return date }
        // Plain seconds when no unit is given.
        let (number, scale) = DurationText.split(text) ?? (Substring(text), 1)
        guard let value = Double(number), value.isFinite, value > 0, !number.hasPrefix("+") else { return nil }
        return now.addingTimeInterval(value * scale)
    }
}

/// Device names from a file or standard input: one per line; blank lines are skipped and the spaces around a name
/// dropped (a trailing `\r` included), so a list saved on any system reads the same.
public enum DeviceNameList {
    public static func parse(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}
