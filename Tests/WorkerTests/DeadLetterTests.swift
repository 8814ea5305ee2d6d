// SPDX-License-Identifier: Apache-2.0
import Crypto
import Foundation
import JSONSchema
import Mosquitto
import Testing
import Worker

/// Dead letters and undeliverable notices stay small whatever came in (issue 8: a 1 MB payload made a 7.7 MB
/// dead letter that no broker limit let through).
@Suite("Dead letters and notices")
struct DeadLetterTests {
    private static func letter(_ payload: [UInt8], properties: MQTTProperties = .init()) throws -> JSONValue {
        let message = MQTTMessage(topic: "ota/cancel/request", payload: payload, properties: properties)
        let outgoing = DeadLetter(
            message: message,
            code: "InvalidJSON",
            reason: "not JSON",
            receivedAt: Fixtures.fixedNow
        )
        .outgoing(topic: "ota/cancel/dead-letter")
        #expect(outgoing.topic == "ota/cancel/dead-letter")
        let value = try JSONParser.parse(outgoing.payload)
        Self.expectValid(value)
        return value
    }

    /// `schemas/dead-letter.schema.json`, the contract of what the dead-letter topic carries.
    static let schema: JSONSchemaValidator = {
        let data = FileManager.default.contents(atPath: Fixtures.repositoryRoot + "/schemas/dead-letter.schema.json")!
        return try! JSONSchemaValidator(schema: try! JSONParser.parse(data), options: .init(formatAssertion: true))
    }()

    static func expectValid(_ value: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
        let errors = schema.validate(value)
        #expect(errors.isEmpty, "breaks dead-letter.schema.json: \(errors)", sourceLocation: sourceLocation)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    @Test("a 1 MB control-byte payload: a 4 KiB excerpt, its length and digest; no text; under 8 KB in all")
    func bigControlPayload() throws {
        let payload = [UInt8](repeating: 0x01, count: 1_000_000)
        let message = MQTTMessage(topic: "ota/cancel/request", payload: payload)
        let outgoing = DeadLetter(message: message, code: "InvalidJSON", reason: "r", receivedAt: Fixtures.fixedNow)
            .outgoing(topic: "dl")
        #expect(outgoing.payload.count < 8_000, "\(outgoing.payload.count) bytes")
        let entry = try JSONParser.parse(outgoing.payload)
        #expect(entry["payloadBytes"]?.numberValue?.int64Value == 1_000_000)
        #expect(entry["payloadTruncated"]?.boolValue == true)
        #expect(entry["payloadSHA256"]?.stringValue == Self.hex(payload))
        let excerpt = try #require(entry["payloadBase64"]?.stringValue.flatMap { Data(base64Encoded: $0) })
        #expect(excerpt.count == DeadLetter.maxExcerptBytes)
        #expect(entry["payloadText"] == nil)
    }

    @Test("readable text is kept as text; a multi-byte character cut by the excerpt is left out of it")
    func text() throws {
        let small = try Self.letter(Array("{not json\n\tat all".utf8))
        #expect(small["payloadText"]?.stringValue == "{not json\n\tat all")
        #expect(small["payloadTruncated"] == nil)
        // 4,095 ASCII bytes and then "é" (2 bytes): the excerpt ends inside it.
        let cut = try Self.letter(Array((String(repeating: "a", count: 4_095) + "é and more").utf8))
        #expect(cut["payloadText"]?.stringValue == String(repeating: "a", count: 4_095))
        #expect(try Self.letter([0x7B, 0x1B, 0x7D])["payloadText"] == nil, "an escape character is not text")
    }

    @Test("properties are bounded: 1 KiB of Correlation Data in the body, 16 user properties of 256 characters")
    func boundedProperties() throws {
        let properties = MQTTProperties(
            correlationData: [UInt8](repeating: 7, count: 60_000),
            userProperties: (0..<100).map {
                MQTTUserProperty(name: "n\($0)", value: String(repeating: "v", count: 10_000))
            }
        )
        let entry = try Self.letter(Array("x".utf8), properties: properties)
        #expect(entry["correlationDataBase64"]?.stringValue.flatMap { Data(base64Encoded: $0) }?.count == 1_024)
        #expect(entry["correlationDataBytes"]?.numberValue?.int64Value == 60_000)
        let users = try #require(entry["userProperties"]?.arrayValue)
        #expect(users.count == 16)
        #expect(users.allSatisfy { ($0["value"]?.stringValue?.unicodeScalars.count ?? 0) <= 257 })
        #expect(entry.serializedBytes().count < 20_000)
    }

    @Test("a notice names the lost reply (entry, kind, correlation id, status, size, digest), never carries it")
    func notice() throws {
        let reply = Array(
            (#"{"version":1,"correlationId":"c-9","status":"succeeded","cancelledDevices":["#
                + String(repeating: #""dev-000001","#, count: 10_000) + #""dev-000002"]}"#).utf8
        )
        let pending = PendingReply(
            id: 42,
            message: OutgoingMessage(
                topic: "ota/cancel/reply/x",
                payload: reply,
                properties: MQTTProperties(correlationData: Array("cd".utf8), contentType: "application/json")
            ),
            kind: .reply
        )
        let notice = UndeliverableNotice(
            undelivered: pending,
            reason: "MOSQ_ERR_OVERSIZE_PACKET",
            at: Fixtures.fixedNow
        )
        .outgoing(topic: "ota/cancel/dead-letter")
        #expect(notice.topic == "ota/cancel/dead-letter")
        #expect(notice.properties.correlationData == Array("cd".utf8))
        #expect(notice.payload.count < 2_000)
        let entry = try JSONParser.parse(notice.payload)
        Self.expectValid(entry)
        #expect(entry["code"]?.stringValue == "Undeliverable")
        #expect(entry["reason"]?.stringValue == "MOSQ_ERR_OVERSIZE_PACKET")
        #expect(entry["entry"]?.numberValue?.int64Value == 42)
        #expect(entry["kind"]?.stringValue == "reply")
        #expect(entry["correlationId"]?.stringValue == "c-9")
        #expect(entry["status"]?.stringValue == "succeeded")
        #expect(entry["topic"]?.stringValue == "ota/cancel/reply/x")
        #expect(entry["payloadBytes"]?.numberValue?.int64Value == Int64(reply.count))
        #expect(entry["payloadSHA256"]?.stringValue == Self.hex(reply))
    }
}
