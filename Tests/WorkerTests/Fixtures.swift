// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Mosquitto
import Testing
import Worker

/// Paths and loaded schemas shared by the worker's unit tests.
enum Fixtures {
    /// The repository root, found from this file's path (tests run from any working directory).
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let commandSchemaPath = repositoryRoot + "/schemas/cancel-command.schema.json"

    static func commandSchema(maxDeviceNames: Int? = nil) throws -> CommandSchema {
        try CommandSchema.load(path: commandSchemaPath, maxDeviceNames: maxDeviceNames)
    }

    /// The reply contract, compiled with format assertion (so timestamps are checked too).
    static let resultValidator: JSONSchemaValidator = {
        let data = FileManager.default.contents(atPath: repositoryRoot + "/schemas/cancel-result.schema.json")!
        let document = try! JSONParser.parse(data)
        return try! JSONSchemaValidator(schema: document, options: .init(formatAssertion: true))
    }()

    /// Checks a reply against `schemas/cancel-result.schema.json`, with the errors in the failure message.
    static func expectConforms(_ reply: CancelReply, sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = reply.jsonValue.serializedBytes()
        guard let parsed = try? JSONParser.parse(bytes) else {
            Issue.record(
                "reply does not parse back: \(String(decoding: bytes, as: UTF8.self))",
                sourceLocation: sourceLocation
            )
            return
        }
        let errors = resultValidator.validate(parsed)
        #expect(
            errors.isEmpty,
            "reply breaks the result schema: \(errors) in \(String(decoding: bytes, as: UTF8.self))",
            sourceLocation: sourceLocation
        )
    }

    static let fixedNow = Date(timeIntervalSince1970: 1_795_000_000)

    static func intake(
        _ configuration: CancelWorkerConfiguration = .init(),
        maxDeviceNames: Int? = nil
    ) throws -> CommandIntake {
        CommandIntake(
            configuration: configuration,
            schema: try commandSchema(maxDeviceNames: maxDeviceNames),
            now: { fixedNow }
        )
    }

    static func message(
        _ payload: String,
        responseTopic: String? = nil,
        correlationData: [UInt8]? = nil,
        expiry: UInt32? = nil,
        retain: Bool = false
    ) -> MQTTMessage {
        MQTTMessage(
            topic: "ota/cancel/request",
            payload: Array(payload.utf8),
            qos: .atLeastOnce,
            retain: retain,
            properties: MQTTProperties(
                responseTopic: responseTopic,
                correlationData: correlationData,
                messageExpiryInterval: expiry
            ),
            messageID: 1
        )
    }

    static let validPayload =
        #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000001","dev-000002"]}"#
}
