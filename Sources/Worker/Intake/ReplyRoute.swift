// SPDX-License-Identifier: Apache-2.0
public import Mosquitto

/// Where a reply goes and what it carries back for correlation (DESIGN §2, "Where the reply goes").
public struct ReplyRoute: Sendable, Hashable {
    /// How the topic was chosen.
    public enum Source: String, Sendable, Hashable {
        /// The request's MQTT 5 Response Topic property.
        case responseTopic
        /// The payload's `replyTo` field (MQTT 3.1.1 requesters).
        case replyTo
        /// The configured default reply topic.
        case defaultTopic
    }

    public var topic: String
    public var source: Source
    /// The request's MQTT 5 Correlation Data, echoed byte for byte.
    public var correlationData: [UInt8]?

    public init(topic: String, source: Source, correlationData: [UInt8]?) {
        self.topic = topic
        self.source = source
        self.correlationData = correlationData
    }

    /// The MQTT 5 properties of a reply on this route (ignored by 3.1.1 connections).
    public var replyProperties: MQTTProperties {
        MQTTProperties(
            correlationData: correlationData,
            contentType: "application/json",
            payloadFormatIndicator: 1
        )
    }
}

/// A message ready to be published.
public struct OutgoingMessage: Sendable, Hashable {
    public var topic: String
    public var payload: [UInt8]
    public var properties: MQTTProperties

    public init(topic: String, payload: [UInt8], properties: MQTTProperties) {
        self.topic = topic
        self.payload = payload
        self.properties = properties
    }
}
