// SPDX-License-Identifier: Apache-2.0
import Foundation
import Mosquitto
import TestSupport
import Testing

/// Topic names libmosquitto refuses, and packet sizes measured against a real broker's `max_packet_size`.
@Suite("Topic names and packet sizes")
struct PacketLimitTests {
    private static func scalar(_ value: UInt32) -> String { String(Character(Unicode.Scalar(value)!)) }

    @Test("libmosquitto's verdict on topic names: every forbidden character named by code point, never quoted")
    func topicNames() {
        #expect(MQTTTopicName.problem(with: "ota/cancel/reply/x") == nil)
        #expect(MQTTTopicName.problem(with: "ota/cancel/reply/é/日本/\u{1F600}") == nil)
        #expect(MQTTTopicName.problem(with: String(repeating: "a", count: 65_535)) == nil)
        #expect(MQTTTopicName.problem(with: String(repeating: "a", count: 65_536))?.contains("65,535") == true)
        #expect(MQTTTopicName.problem(with: String(repeating: "é", count: 32_768))?.contains("65536 bytes") == true)
        #expect(MQTTTopicName.problem(with: "") == "the topic is empty")
        #expect(MQTTTopicName.problem(with: "a/+/b")?.contains("wildcard") == true)
        #expect(MQTTTopicName.problem(with: "a/#")?.contains("wildcard") == true)
        let forbidden: [(UInt32, String)] = [
            (0x00, "NUL"), (0x01, "control"), (0x0A, "control"), (0x1F, "control"), (0x7F, "control"),
            (0x85, "control"), (0x9F, "control"), (0xFDD0, "noncharacter"), (0xFDEF, "noncharacter"),
            (0xFFFE, "noncharacter"), (0xFFFF, "noncharacter"), (0x1_FFFE, "noncharacter"),
            (0x10_FFFF, "noncharacter"),
        ]
        for (value, kind) in forbidden {
            let problem = MQTTTopicName.problem(with: "ota/" + Self.scalar(value) + "/x")
            let hex = String(value, radix: 16, uppercase: true)
            #expect(
                problem?.contains("U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex) == true,
                "\(problem ?? "nil")"
            )
            #expect(problem?.contains(kind) == true, "\(problem ?? "nil")")
            #expect(problem?.contains("at character 5") == true, "\(problem ?? "nil")")
        }
        // Neighbours of the forbidden ranges are fine.
        for value: UInt32 in [0x20, 0x7E, 0xA0, 0xFDCF, 0xFDF0, 0xFFFD, 0x1_FFFD, 0x10_0000] {
            #expect(MQTTTopicName.problem(with: "a" + Self.scalar(value)) == nil, "U+\(String(value, radix: 16))")
        }
    }

    @Test(
        "against max_packet_size N a PUBLISH of N bytes (as MQTT counts them) goes through, one of N+1 is refused before sending, and the connection stays up (MQTT 5 and 3.1.1)",
        arguments: [MQTTProtocolVersion.v5, .v3_1_1]
    )
    func exactSizes(version: MQTTProtocolVersion) async throws {
        let limit = 2_000
        try await withMosquittoBroker(extraConfig: ["max_packet_size \(limit)"]) { broker in
            var configuration = testConfiguration(broker, clientID: uniqueClientID("size"), version: version)
            if version == .v3_1_1 { configuration.maximumPacketSize = limit }
            let received = MessageCollector()
            try await withMosquittoClient(
                configuration: configuration,
                logger: makeTestLogger("size"),
                onMessage: received.handler
            ) { client in
                try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "size/#", qos: .atLeastOnce)])
                if version == .v5 { #expect(client.brokerMaximumPacketSize == limit, "announced in the CONNACK") }
                #expect(client.maximumPacketSize == limit)
                let properties = MQTTProperties(
                    correlationData: Array("correlation".utf8),
                    contentType: "application/json",
                    payloadFormatIndicator: 1,
                    userProperties: [MQTTUserProperty(name: "k", value: "v")]
                )
                func payload(filling size: Int) -> [UInt8] {
                    // The payload count that makes the packet exactly `size` bytes (solved by trying).
                    var count = size - 100
                    while MQTTPacketSize.publish(
                        topic: "size/a",
                        payloadCount: count,
                        qos: .atLeastOnce,
                        properties: properties,
                        protocolVersion: version
                    ) < size {
                        count += 1
                    }
                    return [UInt8](repeating: 0x61, count: count)
                }
                let fits = payload(filling: limit)
                try await client.publish(to: "size/a", payload: fits, qos: .atLeastOnce, properties: properties)
                let tooBig = fits + [0x61]
                let error = await #expect(throws: MosquittoError.self) {
                    try await client.publish(to: "size/a", payload: tooBig, qos: .atLeastOnce, properties: properties)
                }
                #expect(error?.resultCode == .oversizePacket)
                // The refusal cost nothing: still connected, and the next message goes through.
                try await client.publish(to: "size/b", payload: [1], qos: .atLeastOnce)
                #expect(client.isConnected)
                let messages = try await received.waitFor(count: 2)
                #expect(messages.map(\.topic) == ["size/a", "size/b"])
                #expect(messages.first?.payload.count == fits.count)
            }
        }
    }

    @Test("packet sizes by the book (MQTT 5.0 §2.1.4, §3.3): fixed header, variable byte integers, properties")
    func sizesByHand() {
        func size(
            _ topic: String,
            _ payload: Int,
            _ qos: MQTTQoS,
            _ properties: MQTTProperties,
            _ version: MQTTProtocolVersion
        ) -> Int {
            MQTTPacketSize.publish(
                topic: topic,
                payloadCount: payload,
                qos: qos,
                properties: properties,
                protocolVersion: version
            )
        }
        // Topic "a/b", 10 bytes of payload, QoS 1, MQTT 3.1.1: remaining = 2 + 3 + 2 + 10 = 17; total 1 + 1 + 17.
        #expect(size("a/b", 10, .atLeastOnce, .init(), .v3_1_1) == 19)
        // QoS 0 has no packet identifier.
        #expect(size("a/b", 10, .atMostOnce, .init(), .v3_1_1) == 17)
        // MQTT 5 with Correlation Data "xy" (1+2+2), Content Type application/json (1+2+16), Payload Format (1+1):
        // properties 26, their length 1 byte; remaining = 2 + 3 + 2 + 1 + 26 + 10 = 44; total 46.
        let properties = MQTTProperties(
            correlationData: Array("xy".utf8),
            contentType: "application/json",
            payloadFormatIndicator: 1
        )
        #expect(size("a/b", 10, .atLeastOnce, properties, .v5) == 46)
        // MQTT 5 without properties still has the 1-byte property length.
        #expect(size("a/b", 10, .atLeastOnce, .init(), .v5) == 20)
        // The remaining length's own size: 127 fits one byte, 128 needs two.
        #expect(size("t", 127 - 5, .atLeastOnce, .init(), .v3_1_1) == 1 + 1 + 127)
        #expect(size("t", 128 - 5, .atLeastOnce, .init(), .v3_1_1) == 1 + 2 + 128)
        // User properties: name and value each with a 2-byte length.
        let user = MQTTProperties(userProperties: [MQTTUserProperty(name: "ab", value: "cde")])
        #expect(size("t", 0, .atMostOnce, user, .v5) == 1 + 1 + (2 + 1 + 1 + 10))
    }
}
