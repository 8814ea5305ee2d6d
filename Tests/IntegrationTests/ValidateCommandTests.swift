// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import TestSupport
import Testing
import WorkerApp

/// `ota-cancel-worker validate`: the library function (verdicts, exact lines, exit statuses, schema lookup,
/// preloaded remotes) and, once, the built binary against a file of the official test suite.
@Suite("validate command", .timeLimit(.minutes(3)))
struct ValidateCommandTests {
    struct Arguments: ValidateArguments {
        var files: [String]
        var schema: String?
        var schemaDir: String? = WorkerStack.repositoryRoot + "/schemas"
        var maxDeviceNames: Int?
        var remoteDir: String?
        var remoteBase: String?
        var formatAssertion = false
    }

    /// A fresh folder for one test's files.
    final class Folder {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("validate-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        /// Writes `text` to `name` (sub-folders created) and returns the file's path.
        @discardableResult
        func file(_ name: String, _ text: String) throws -> String {
            let url = URL(fileURLWithPath: path).appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try Data(text.utf8).write(to: url)
            return url.path
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static let valid = #"{"productKey":"a1B2c3D4e5F","firmwareId":"fw-1.4.2","deviceNames":["dev-0001","dev-0002"]}"#
    static let shortName =
        #"{"productKey":"a1B2c3D4e5F","firmwareId":"fw-1.4.2","deviceNames":["dev-0001","ab"],"dryRun":1}"#

    /// Runs the library with no environment (the lookup of the command schema must not depend on the caller's).
    static func run(_ arguments: Arguments, environment: [String: String] = [:]) -> SchemaFileValidation.Outcome {
        SchemaFileValidation.run(arguments, environment: environment, standardInput: { nil })
    }

    @Test("valid and invalid payloads against the command schema: exact lines, exit 0 or 1")
    func commandSchema() throws {
        let folder = try Folder()
        let good = try folder.file("good.json", Self.valid)
        let bad = try folder.file("bad.json", Self.shortName)
        let allGood = Self.run(Arguments(files: [good, good]))
        #expect(allGood.exitStatus == 0)
        #expect(allGood.lines == Array(repeating: #"{"file":"\#(good)","valid":true,"errors":[]}"#, count: 2))
        #expect(allGood.diagnostics.isEmpty)

        let mixed = Self.run(Arguments(files: [good, bad]))
        #expect(mixed.exitStatus == 1)
        #expect(mixed.diagnostics.isEmpty)
        #expect(
            mixed.lines == [
                #"{"file":"\#(good)","valid":true,"errors":[]}"#,
                #"{"file":"\#(bad)","valid":false,"errors":["#
                    + #"{"instanceLocation":"/deviceNames/1","keywordLocation":"/properties/deviceNames/items/minLength","#
                    + #""message":"deviceNames/1: 'ab' is shorter than 4 characters"},"#
                    + #"{"instanceLocation":"/dryRun","keywordLocation":"/properties/dryRun/type","#
                    + #""message":"dryRun: 1 is not of type boolean"}]}"#,
            ]
        )
    }

    @Test("a file that is not JSON is invalid, with the parser's position and the kind of problem, not its bytes")
    func notJSON() throws {
        let folder = try Folder()
        let broken = try folder.file("broken.json", #"{"productKey":"p","deviceNames":["a""b"]}"#)
        let outcome = Self.run(Arguments(files: [broken]))
        #expect(outcome.exitStatus == 1)
        let line = try JSONParser.parse(try #require(outcome.lines.first))
        #expect(line["valid"] == false)
        let error = try #require(line["errors"]?.arrayValue?.first)
        #expect(error["instanceLocation"] == "")
        #expect(error["keywordLocation"] == "")
        #expect(
            error["message"]
                == #"not valid JSON: line 1, column 37 (byte 36): a character that cannot start or continue a JSON value here (unexpectedCharacter)"#
        )
        #expect(line["errors"]?.arrayValue?.count == 1)
    }

    @Test("an unreadable file or a folder makes the input unusable (exit 2), the other files are still checked")
    func unreadableFiles() throws {
        let folder = try Folder()
        let good = try folder.file("good.json", Self.valid)
        let missing = folder.path + "/missing.json"
        let outcome = Self.run(Arguments(files: [missing, good, folder.path]))
        #expect(outcome.exitStatus == 2)
        #expect(
            outcome.lines == [
                #"{"file":"\#(missing)","valid":false,"errors":[],"problem":"no such file"}"#,
                #"{"file":"\#(good)","valid":true,"errors":[]}"#,
                #"{"file":"\#(folder.path)","valid":false,"errors":[],"problem":"is a folder, not a file"}"#,
            ]
        )
        #expect(outcome.diagnostics == ["\(missing): no such file", "\(folder.path): is a folder, not a file"])
    }

    @Test(
        "an unusable schema is exit 2 with no lines",
        arguments: [
            (#"{"type":"text"}"#, "invalidKeywordValue"), (#"{"$ref":"other.json"}"#, "unresolvableReference"),
            (#"{"pattern":"("}"#, "invalidPattern"), (#"{"type":"#, "is not valid JSON"),
            (#"{"$schema":"http://json-schema.org/draft-07/schema#"}"#, "unsupportedDialect"),
        ]
    )
    func unusableSchema(schema: String, expected: String) throws {
        let folder = try Folder()
        let outcome = Self.run(
            Arguments(
                files: [try folder.file("i.json", "{}")],
                schema: try folder.file("s.json", schema),
                schemaDir: nil
            )
        )
        #expect(outcome.exitStatus == 2)
        #expect(outcome.lines.isEmpty)
        #expect(outcome.diagnostics.count == 1)
        #expect(outcome.diagnostics.first?.contains(expected) == true, "\(outcome.diagnostics)")
    }

    @Test("unusable settings are exit 2: missing schema file or folder, options that do not go together")
    func unusableSettings() throws {
        let folder = try Folder()
        let file = try folder.file("i.json", "{}")
        let cases: [(Arguments, String)] = [
            (Arguments(files: [file], schema: folder.path + "/none.json", schemaDir: nil), "no such file"),
            (Arguments(files: [file], schemaDir: folder.path), "cancel-command.schema.json"),
            (Arguments(files: [file], remoteDir: folder.path), "--remote-dir"),
            (Arguments(files: [file], formatAssertion: true), "--format-assertion"),
            (Arguments(files: [file], schema: file, schemaDir: folder.path), "--schema-dir"),
            (
                Arguments(files: [file], schema: file, schemaDir: nil, remoteBase: "http://x/"),
                "--remote-base needs --remote-dir"
            ),
            (Arguments(files: [file], schema: file, schemaDir: nil, remoteDir: file), "is not a folder"),
        ]
        for (arguments, expected) in cases {
            let outcome = Self.run(arguments)
            #expect(outcome.exitStatus == 2)
            #expect(outcome.lines.isEmpty)
            #expect(outcome.diagnostics.first?.contains(expected) == true, "\(outcome.diagnostics)")
        }
    }

    @Test("the command schema is found and limited as run does it: OTA_CANCEL_SCHEMA_DIR, OTA_CANCEL_MAX_DEVICE_NAMES")
    func environment() throws {
        let folder = try Folder()
        let file = try folder.file(
            "three.json",
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1","dev-2","dev-3"]}"#
        )
        let environment = [
            "OTA_CANCEL_SCHEMA_DIR": WorkerStack.repositoryRoot + "/schemas", "OTA_CANCEL_MAX_DEVICE_NAMES": "2",
        ]
        let limited = Self.run(Arguments(files: [file], schemaDir: nil), environment: environment)
        #expect(limited.exitStatus == 1)
        #expect(
            limited.lines == [
                #"{"file":"\#(file)","valid":false,"errors":[{"instanceLocation":"/deviceNames","#
                    + #""keywordLocation":"/properties/deviceNames/maxItems","#
                    + #""message":"deviceNames: the array has 3 items, more than the maximum of 2"}]}"#
            ]
        )
        // The flag beats the variable.
        #expect(
            Self.run(Arguments(files: [file], schemaDir: nil, maxDeviceNames: 3), environment: environment).exitStatus
                == 0
        )
        let bad = Self.run(Arguments(files: [file], schemaDir: nil), environment: ["OTA_CANCEL_SCHEMA_DIR": ""])
        #expect(bad.exitStatus == 2)
        #expect(bad.diagnostics.first?.contains("OTA_CANCEL_SCHEMA_DIR") == true, "\(bad.diagnostics)")
    }

    @Test("- reads standard input")
    func standardInput() throws {
        let outcome = SchemaFileValidation.run(
            Arguments(files: ["-"]),
            environment: [:],
            standardInput: { Array(Self.valid.utf8) }
        )
        #expect(outcome.exitStatus == 0)
        #expect(outcome.lines == [#"{"file":"-","valid":true,"errors":[]}"#])
        let closed = SchemaFileValidation.run(Arguments(files: ["-"]), environment: [:], standardInput: { nil })
        #expect(closed.exitStatus == 2)
    }

    @Test("--remote-dir preloads a folder under --remote-base (or its file:// URI); errors across $ref are absolute")
    func remoteDirectory() throws {
        let folder = try Folder()
        try folder.file("remotes/defs/name.json", #"{"$defs":{"name":{"type":"string","minLength":4}}}"#)
        try folder.file("remotes/notes.txt", "not a schema, not loaded")
        let instance = try folder.file("i.json", #"{"name":"ab"}"#)
        let served = try folder.file(
            "served.json",
            #"{"properties":{"name":{"$ref":"https://schemas.example/base/defs/name.json#/$defs/name"}}}"#
        )
        let outcome = Self.run(
            Arguments(
                files: [instance],
                schema: served,
                schemaDir: nil,
                remoteDir: folder.path + "/remotes",
                remoteBase: "https://schemas.example/base"
            )
        )
        #expect(outcome.exitStatus == 1)
        #expect(
            outcome.lines == [
                #"{"file":"\#(instance)","valid":false,"errors":[{"instanceLocation":"/name","#
                    + #""keywordLocation":"/properties/name/$ref/minLength","#
                    + #""absoluteKeywordLocation":"https://schemas.example/base/defs/name.json#/$defs/name/minLength","#
                    + #""message":"name: 'ab' is shorter than 4 characters"}]}"#
            ]
        )

        // Without --remote-base the folder is served under its own file:// URI.
        let base = URL(fileURLWithPath: folder.path + "/remotes", isDirectory: true).standardizedFileURL.absoluteString
        let local = try folder.file(
            "local.json",
            #"{"properties":{"name":{"$ref":"\#(base)defs/name.json#/$defs/name"}}}"#
        )
        let byFile = Self.run(
            Arguments(files: [instance], schema: local, schemaDir: nil, remoteDir: folder.path + "/remotes")
        )
        #expect(byFile.exitStatus == 1, "\(byFile.diagnostics)")
        // Without the folder the reference cannot be resolved: the schema is unusable.
        #expect(Self.run(Arguments(files: [instance], schema: served, schemaDir: nil)).exitStatus == 2)
    }

    @Test("format is an annotation for --schema unless --format-assertion; the command schema always asserts it")
    func formatAssertion() throws {
        let folder = try Folder()
        let schema = try folder.file("s.json", #"{"format":"date-time"}"#)
        let instance = try folder.file("i.json", #""yesterday""#)
        #expect(Self.run(Arguments(files: [instance], schema: schema, schemaDir: nil)).exitStatus == 0)
        #expect(
            Self.run(Arguments(files: [instance], schema: schema, schemaDir: nil, formatAssertion: true)).exitStatus
                == 1
        )
        let late = try folder.file(
            "late.json",
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"deadline":"tomorrow"}"#
        )
        #expect(Self.run(Arguments(files: [late])).exitStatus == 1)
    }

    // MARK: The binary

    /// `$JSON_SCHEMA_TEST_SUITE`, else the copy next to the repository.
    static let suite: String? = {
        let path =
            ProcessInfo.processInfo.environment["JSON_SCHEMA_TEST_SUITE"]
            ?? WorkerStack.repositoryRoot + "/../shared/json-schema-test-suite"
        return FileManager.default.fileExists(atPath: path + "/tests/draft2020-12/refRemote.json") ? path : nil
    }()
    static let suiteNeeded = suite != nil || ProcessInfo.processInfo.environment["OTA_REQUIRE_SHARED"] == "1"

    @Test(
        "the built binary: refRemote.json of the official suite with its remotes served as http://localhost:1234/",
        .enabled(if: suiteNeeded, "the JSON-Schema-Test-Suite is absent (set JSON_SCHEMA_TEST_SUITE)")
    )
    func binaryAgainstTheSuite() async throws {
        let suite = try #require(Self.suite, "the JSON-Schema-Test-Suite is absent and OTA_REQUIRE_SHARED=1")
        let binary = try workerBinary()
        let groups = try #require(
            try JSONParser.parse(Data(contentsOf: URL(fileURLWithPath: suite + "/tests/draft2020-12/refRemote.json")))
                .arrayValue
        )
        #expect(groups.count >= 10)
        var checked = 0
        for group in groups {
            let folder = try Folder()
            let schema = try folder.file("schema.json", try #require(group["schema"]).serialized())
            let tests = try #require(group["tests"]?.arrayValue)
            var files: [String] = []
            for (position, test) in tests.enumerated() {
                files.append(try folder.file("instance-\(position).json", try #require(test["data"]).serialized()))
            }
            let result = try await runProcess(
                binary,
                [
                    "validate", "--schema", schema, "--remote-dir", suite + "/remotes", "--remote-base",
                    "http://localhost:1234/",
                ] + files
            )
            let description = group["description"]?.stringValue ?? "?"
            let expected = tests.map { $0["valid"] == true }
            #expect(result.exitCode == (expected.allSatisfy { $0 } ? 0 : 1), "\(description): \(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == tests.count, "\(description): \(result)")
            for (position, line) in lines.enumerated() where position < tests.count {
                let output = try JSONParser.parse(line)
                #expect(output["file"] == .string(files[position]))
                #expect(
                    output["valid"] == .bool(expected[position]),
                    "\(description) / \(tests[position]["description"] ?? "?")"
                )
                #expect(output["errors"]?.arrayValue?.isEmpty == expected[position])
                checked += 1
            }
        }
        #expect(checked >= 30)

        // And the default schema, as the worker validates: exit 1, one line per file.
        let folder = try Folder()
        let good = try folder.file("good.json", Self.valid)
        let bad = try folder.file("bad.json", Self.shortName)
        let result = try await runProcess(
            binary,
            ["validate", "--schema-dir", WorkerStack.repositoryRoot + "/schemas", good, bad]
        )
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout.split(separator: "\n").count == 2)
        #expect(result.stdout.hasPrefix(#"{"file":"\#(good)","valid":true,"errors":[]}"#))
    }
}
