// SPDX-License-Identifier: Apache-2.0

import JSONSchema
import Testing

import Foundation

/// The repository root, found from this file's path (`Tests/JSONSchemaTests/…`).
func repositoryRoot(_ file: String = #filePath) -> String {
    var components = file.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)
    return components.joined(separator: "/")
}

/// The `schemas/cancel-command.schema.json` contract, as the worker loads it.
@Suite("cancel-command.schema.json")
struct CancelCommandSchemaTests {
    let schema: JSONValue
    let validator: JSONSchemaValidator

    init() throws {
        let path = repositoryRoot() + "/schemas/cancel-command.schema.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        schema = try JSONParser.parse(data)
        validator = try JSONSchemaValidator(schema: schema, options: .init(formatAssertion: true))
    }

    private func command(_ edit: (inout JSONObject) -> Void) -> JSONValue {
        var object: JSONObject = [
            "productKey": "a1B2c3D4e5F",
            "firmwareId": "s8b3KSHpJUdwbRlfbXhO031100",
            "deviceNames": ["dev-0001", "dev-0002", "dev-0003", "dev-0004"],
        ]
        edit(&object)
        return .object(object)
    }

    /// The single error for `instance`, with its locations.
    private func onlyError(_ instance: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> ValidationError?
    {
        let errors = validator.validate(instance)
        #expect(!validator.isValid(instance), sourceLocation: sourceLocation)
        #expect(errors.count == 1, "\(errors)", sourceLocation: sourceLocation)
        return errors.first
    }

    private func expectError(
        _ instance: JSONValue,
        at instanceLocation: String,
        keyword keywordLocation: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = onlyError(instance, sourceLocation: sourceLocation)
        #expect(error?.instanceLocation == instanceLocation, sourceLocation: sourceLocation)
        #expect(error?.keywordLocation == keywordLocation, sourceLocation: sourceLocation)
    }

    @Test func documentsTheContract() throws {
        #expect(schema["$id"] == "https://schemas.ota-cancel-worker.dev/cancel-command.schema.json")
        #expect(schema["$schema"] == "https://json-schema.org/draft/2020-12/schema")
        #expect(schema["title"]?.stringValue?.isEmpty == false)
        #expect(schema["additionalProperties"] == false)
        let properties = try #require(schema["properties"]?.objectValue)
        #expect(
            Set(properties.keys) == [
                "productKey", "firmwareId", "deviceNames", "jobId", "iotInstanceId", "correlationId", "replyTo",
                "deadline", "dryRun", "verify", "reason", "requestedBy",
            ]
        )
        for (name, property) in properties {
            #expect(property["title"]?.stringValue?.isEmpty == false, "\(name) has a title")
            #expect(property["description"]?.stringValue?.isEmpty == false, "\(name) has a description")
        }
    }

    @Test func acceptsValidCommands() throws {
        #expect(validator.validate(command { _ in }) == [])
        let full = command {
            $0["jobId"] = "job_01:2.3-x"
            $0["iotInstanceId"] = "iot-cn-0pp1n8t0001"
            $0["correlationId"] = "räksmörgås-🐲-42"
            $0["replyTo"] = "ota/cancel/reply/rollback-bot/7"
            $0["deadline"] = "2026-11-26T18:00:00.5+01:00"
            $0["dryRun"] = true
            $0["reason"] = "crash loop after 1.4.2"
            $0["requestedBy"] = "rollback-monitor"
        }
        #expect(validator.validate(full) == [])
        // Boundary lengths are inclusive and counted in characters.
        let boundaries = command {
            $0["productKey"] = .string(String(repeating: "k", count: 64))
            $0["firmwareId"] = "f"
            $0["deviceNames"] = ["abcd", .string(String(repeating: "d", count: 32)), "a.b@c:d-e_f"]
            $0["correlationId"] = .string(String(repeating: "🐲", count: 128))
            $0["reason"] = .string(String(repeating: "é", count: 1024))
            $0["requestedBy"] = .string(String(repeating: "x", count: 256))
        }
        #expect(validator.validate(boundaries) == [])
    }

    @Test func reportsTheBadDeviceNameExactly() throws {
        let instance = command { $0["deviceNames"] = ["dev-0001", "dev-0002", "dev-0003", "ab"] }
        let error = try #require(onlyError(instance))
        #expect(error.instanceLocation == "/deviceNames/3")
        #expect(error.keywordLocation == "/properties/deviceNames/items/minLength")
        #expect(error.absoluteKeywordLocation == nil)
        #expect(error.message == "deviceNames/3: 'ab' is shorter than 4 characters")
    }

    @Test func rejectsUnknownFields() throws {
        let error = try #require(onlyError(command { $0["foo"] = 1 }))
        #expect(error.instanceLocation == "/foo")
        #expect(error.keywordLocation == "/additionalProperties")
        #expect(error.message == "foo: property 'foo' is not allowed")
    }

    @Test func requiresTheThreeIdentifyingFields() throws {
        for field in ["productKey", "firmwareId", "deviceNames"] {
            let error = try #require(onlyError(command { $0[field] = nil }))
            #expect(error.instanceLocation == "")
            #expect(error.keywordLocation == "/required")
            #expect(error.message == "missing required property '\(field)'")
        }
        let error = try #require(validator.validate(["productKey": "p"]).first)
        #expect(error.keywordLocation == "/required")
        expectError(["not", "an", "object"], at: "", keyword: "/type")
    }

    @Test(arguments: [
        ("productKey", 64, "^[A-Za-z0-9_-]*$", "pk.1"),
        ("firmwareId", 64, "^[A-Za-z0-9_.:-]*$", "fw/1"),
        ("jobId", 64, "^[A-Za-z0-9_.:-]*$", "job 1"),
        ("iotInstanceId", 64, "^[A-Za-z0-9_.:-]*$", "iot@1"),
    ])
    func identifiersHaveLengthsAndCharsets(_ field: String, _ maximum: Int, _ pattern: String, _ badCharacters: String)
    {
        // The pattern only checks the character set; lengths are separate keywords, so an error
        // says exactly which rule failed (an empty value is "too short", not "bad characters").
        #expect(schema["properties"]?[field]?["pattern"] == .string(pattern))
        expectError(command { $0[field] = "" }, at: "/\(field)", keyword: "/properties/\(field)/minLength")
        expectError(
            command { $0[field] = .string(String(repeating: "a", count: maximum + 1)) },
            at: "/\(field)",
            keyword: "/properties/\(field)/maxLength"
        )
        expectError(
            command { $0[field] = .string(badCharacters) },
            at: "/\(field)",
            keyword: "/properties/\(field)/pattern"
        )
        expectError(command { $0[field] = "ok\n" }, at: "/\(field)", keyword: "/properties/\(field)/pattern")
        expectError(command { $0[field] = "ÄÖ" }, at: "/\(field)", keyword: "/properties/\(field)/pattern")
        expectError(command { $0[field] = 12 }, at: "/\(field)", keyword: "/properties/\(field)/type")
        #expect(validator.isValid(command { $0[field] = .string(String(repeating: "a", count: maximum)) }))
    }

    @Test func deviceNameListRules() {
        expectError(command { $0["deviceNames"] = [] }, at: "/deviceNames", keyword: "/properties/deviceNames/minItems")
        expectError(
            command { $0["deviceNames"] = "dev-0001" },
            at: "/deviceNames",
            keyword: "/properties/deviceNames/type"
        )
        expectError(
            command { $0["deviceNames"] = ["dev-0001", "dev-0002", "dev-0001"] },
            at: "/deviceNames",
            keyword: "/properties/deviceNames/uniqueItems"
        )
        let tooMany = JSONValue.array((0...10_000).map { .string("device-\($0)") })
        expectError(
            command { $0["deviceNames"] = tooMany },
            at: "/deviceNames",
            keyword: "/properties/deviceNames/maxItems"
        )
        let maximum = JSONValue.array((0..<10_000).map { .string("device-\($0)") })
        #expect(validator.isValid(command { $0["deviceNames"] = maximum }))
        expectError(
            command { $0["deviceNames"] = ["dev-0001", .string(String(repeating: "d", count: 33))] },
            at: "/deviceNames/1",
            keyword: "/properties/deviceNames/items/maxLength"
        )
        expectError(
            command { $0["deviceNames"] = ["dev 0001"] },
            at: "/deviceNames/0",
            keyword: "/properties/deviceNames/items/pattern"
        )
        expectError(
            command { $0["deviceNames"] = ["dev-0001", 1234] },
            at: "/deviceNames/1",
            keyword: "/properties/deviceNames/items/type"
        )
        // Case matters: these are two different devices.
        #expect(validator.isValid(command { $0["deviceNames"] = ["Dev-0001", "dev-0001"] }))
    }

    @Test func everyBadItemIsReported() {
        let errors = validator.validate(command { $0["deviceNames"] = ["ok-0001", "x", "ok-0002", "y y y", 3] })
        #expect(errors.map(\.instanceLocation) == ["/deviceNames/1", "/deviceNames/3", "/deviceNames/4"])
        #expect(
            errors.map(\.keywordLocation) == [
                "/properties/deviceNames/items/minLength", "/properties/deviceNames/items/pattern",
                "/properties/deviceNames/items/type",
            ]
        )
    }

    @Test func correlationIdAndAuditFieldLengths() {
        expectError(
            command { $0["correlationId"] = "" },
            at: "/correlationId",
            keyword: "/properties/correlationId/minLength"
        )
        expectError(
            command { $0["correlationId"] = .string(String(repeating: "c", count: 129)) },
            at: "/correlationId",
            keyword: "/properties/correlationId/maxLength"
        )
        expectError(
            command { $0["reason"] = .string(String(repeating: "r", count: 1025)) },
            at: "/reason",
            keyword: "/properties/reason/maxLength"
        )
        expectError(
            command { $0["requestedBy"] = .string(String(repeating: "r", count: 257)) },
            at: "/requestedBy",
            keyword: "/properties/requestedBy/maxLength"
        )
        expectError(command { $0["reason"] = ["list"] }, at: "/reason", keyword: "/properties/reason/type")
        #expect(validator.isValid(command { $0["reason"] = "" }))
    }

    @Test func replyToIsATopicNameWithoutWildcards() {
        #expect(validator.isValid(command { $0["replyTo"] = "ota/cancel/reply/x" }))
        #expect(validator.isValid(command { $0["replyTo"] = "/" }))
        for topic in ["ota/+/reply", "ota/cancel/#", "ota/\u{0}/x"] {
            expectError(
                command { $0["replyTo"] = .string(topic) },
                at: "/replyTo",
                keyword: "/properties/replyTo/pattern"
            )
        }
        expectError(command { $0["replyTo"] = "" }, at: "/replyTo", keyword: "/properties/replyTo/minLength")
        expectError(
            command { $0["replyTo"] = .string(String(repeating: "t", count: 65_536)) },
            at: "/replyTo",
            keyword: "/properties/replyTo/maxLength"
        )
    }

    @Test func deadlineMustBeAnRFC3339DateTime() {
        for deadline in ["2026-11-26T18:00:00Z", "2026-11-26t18:00:00.123z", "2026-11-26T23:30:00-05:30"] {
            #expect(validator.isValid(command { $0["deadline"] = .string(deadline) }), "\(deadline)")
        }
        for deadline in [
            "tomorrow", "2026-11-26", "2026-02-30T10:00:00Z", "2026-11-26T18:00:00", "2026-11-26T24:00:00Z",
        ] {
            expectError(
                command { $0["deadline"] = .string(deadline) },
                at: "/deadline",
                keyword: "/properties/deadline/format"
            )
        }
        expectError(command { $0["deadline"] = 1_764_180_000 }, at: "/deadline", keyword: "/properties/deadline/type")
    }

    @Test func dryRunIsABoolean() {
        #expect(validator.isValid(command { $0["dryRun"] = false }))
        expectError(command { $0["dryRun"] = "true" }, at: "/dryRun", keyword: "/properties/dryRun/type")
        expectError(command { $0["dryRun"] = 1 }, at: "/dryRun", keyword: "/properties/dryRun/type")
    }

    @Test func theWorkerCanLowerTheDeviceLimitBeforeCompiling() throws {
        var edited = try #require(schema.objectValue)
        var properties = try #require(edited["properties"]?.objectValue)
        var deviceNames = try #require(properties["deviceNames"]?.objectValue)
        deviceNames["maxItems"] = 2
        properties["deviceNames"] = .object(deviceNames)
        edited["properties"] = .object(properties)
        let lowered = try JSONSchemaValidator(schema: .object(edited), options: .init(formatAssertion: true))
        #expect(lowered.isValid(command { $0["deviceNames"] = ["dev-0001", "dev-0002"] }))
        let error = lowered.validate(command { _ in }).first
        #expect(error?.keywordLocation == "/properties/deviceNames/maxItems")
        #expect(error?.message == "deviceNames: the array has 4 items, more than the maximum of 2")
    }
}
