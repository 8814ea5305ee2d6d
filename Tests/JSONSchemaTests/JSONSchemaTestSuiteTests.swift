// SPDX-License-Identifier: Apache-2.0

import Foundation
import JSONSchema
import Testing

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12) against the validator.
///
/// The suite is not copied into this repository. It is read from `$JSON_SCHEMA_TEST_SUITE`, or, when
/// that is unset, from `../shared/json-schema-test-suite` next to the repository. `remotes/` is served
/// as `http://localhost:1234/` through ``JSONSchemaValidator/Options/remoteSchemas`` (no network).
/// Without the suite the tests are skipped, saying so, unless `OTA_REQUIRE_SHARED=1` (`scripts/test`,
/// CI), where its absence is a failure.
///
/// A test group counts as skipped only when compiling its schema fails with
/// ``SchemaCompilationError/Code/unsupportedKeyword``; the skip is counted under that keyword's name.
/// Any other compilation error, any wrong verdict, and any disagreement between the flag output
/// (``JSONSchemaValidator/isValid(_:)``) and the basic output (``JSONSchemaValidator/validate(_:)``)
/// is a failure.
@Suite("JSON-Schema-Test-Suite draft 2020-12", .serialized)
struct JSONSchemaTestSuiteTests {
    /// `$JSON_SCHEMA_TEST_SUITE` if set (and only that), else the copy next to the repository.
    static let root: String? = {
        let path =
            ProcessInfo.processInfo.environment["JSON_SCHEMA_TEST_SUITE"]
            ?? repositoryRoot() + "/../shared/json-schema-test-suite"
        return FileManager.default.fileExists(atPath: path + "/tests/draft2020-12") ? path : nil
    }()

    static let absent =
        "the test suite is absent: set JSON_SCHEMA_TEST_SUITE to a JSON-Schema-Test-Suite checkout (with tests/draft2020-12)"

    /// `OTA_REQUIRE_SHARED=1` (set by `scripts/test`, hence by CI): an absent suite is a failure, not a skip.
    static let suiteRequired = ProcessInfo.processInfo.environment["OTA_REQUIRE_SHARED"] == "1"

    /// Runs the tests when the suite is there, and also when it must be (so that they fail saying why);
    /// otherwise they are skipped with ``absent`` as the reason.
    static let presence = ConditionTrait.enabled(if: root != nil || suiteRequired, Comment(rawValue: absent))

    /// Outcome of one suite file.
    struct FileResult {
        var file: String
        var passed = 0
        var failed = 0
        var skipped = 0
    }

    /// Outcome of a directory of suite files.
    struct RunResult {
        var files: [FileResult] = []
        var failures: [String] = []
        var skipsByKeyword: [String: Int] = [:]

        var passed: Int { files.reduce(0) { $0 + $1.passed } }
        var failed: Int { files.reduce(0) { $0 + $1.failed } }
        var skipped: Int { files.reduce(0) { $0 + $1.skipped } }

        /// Per-file table, skips by keyword, and the closing `N passed, M failed, K skipped` line.
        func report(title: String) -> String {
            let width = max(4, files.map(\.file.count).max() ?? 4)
            func pad(_ text: String, _ count: Int) -> String {
                text + String(repeating: " ", count: max(0, count - text.count))
            }
            func number(_ value: Int) -> String {
                String(repeating: " ", count: max(0, 6 - String(value).count)) + String(value)
            }
            var lines = ["", "== \(title) ==", pad("file", width) + "  passed failed skipped"]
            for file in files {
                lines.append(
                    pad(file.file, width) + "  " + number(file.passed) + " " + number(file.failed) + "  "
                        + number(file.skipped)
                )
            }
            for (keyword, count) in skipsByKeyword.sorted(by: { $0.key < $1.key }) {
                lines.append("skipped (refused keyword \(keyword)): \(count)")
            }
            for failure in failures.prefix(50) { lines.append("FAILED: " + failure) }
            lines.append("\(passed) passed, \(failed) failed, \(skipped) skipped")
            return lines.joined(separator: "\n")
        }
    }

    static func loadRemotes(_ root: String) throws -> [String: JSONValue] {
        var remotes: [String: JSONValue] = [:]
        let base = root + "/remotes/"
        guard let enumerator = FileManager.default.enumerator(atPath: base) else { return remotes }
        while let path = enumerator.nextObject() as? String {
            guard path.hasSuffix(".json") else { continue }
            let data = try Data(contentsOf: URL(fileURLWithPath: base + path))
            remotes["http://localhost:1234/" + path] = try JSONParser.parse(data)
        }
        return remotes
    }

    /// Runs every `.json` file directly in `directory` (relative to `tests/draft2020-12`).
    static func run(_ directory: String, formatAssertion: Bool) throws -> RunResult {
        let root = try #require(
            Self.root,
            Comment(rawValue: absent + " (OTA_REQUIRE_SHARED=1 makes that a failure: CI must run the suite)")
        )
        let remotes = try loadRemotes(root)
        let path = root + "/tests/draft2020-12/" + directory
        let files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".json") }.sorted()
        var result = RunResult()
        for file in files {
            var fileResult = FileResult(file: directory.isEmpty ? file : directory + "/" + file)
            let groups = try #require(
                try JSONParser.parse(Data(contentsOf: URL(fileURLWithPath: path + "/" + file))).arrayValue
            )
            for group in groups {
                let description = group["description"]?.stringValue ?? "?"
                let tests = group["tests"]?.arrayValue ?? []
                let schema = try #require(group["schema"])
                let validator: JSONSchemaValidator
                do {
                    validator = try JSONSchemaValidator(
                        schema: schema,
                        options: .init(formatAssertion: formatAssertion, remoteSchemas: remotes)
                    )
                } catch {
                    if error.code == .unsupportedKeyword, let keyword = error.keyword {
                        fileResult.skipped += tests.count
                        result.skipsByKeyword[keyword, default: 0] += tests.count
                    } else {
                        fileResult.failed += tests.count
                        result.failures.append("\(fileResult.file): \(description): schema did not compile: \(error)")
                    }
                    continue
                }
                for test in tests {
                    let data = try #require(test["data"])
                    let expected = try #require(test["valid"]?.boolValue as Bool?)
                    let flag = validator.isValid(data)
                    let errors = validator.validate(data)
                    if flag == expected && errors.isEmpty == expected {
                        fileResult.passed += 1
                    } else {
                        fileResult.failed += 1
                        let name = test["description"]?.stringValue ?? "?"
                        result.failures.append(
                            "\(fileResult.file): \(description) / \(name): expected \(expected ? "valid" : "invalid"), "
                                + "isValid \(flag), \(errors.count) errors \(errors.prefix(2).map(\.message))"
                        )
                    }
                }
            }
            result.files.append(fileResult)
        }
        return result
    }

    /// Optional-suite cases this validator is known not to pass, with the reason. Each entry must
    /// still fail (an entry that starts passing is reported, so the list cannot go stale), and each
    /// failure it covers is recorded as a known issue rather than hidden.
    static let knownGaps: [(file: String, group: String, reason: String)] = [
        ("optional/cross-draft.json", "", "draft 2019-09 resources are refused (only 2020-12 is supported)")
    ]

    /// Records every failure of `result`; those covered by ``knownGaps`` as known issues.
    static func record(_ result: RunResult) {
        var used = Set<Int>()
        for failure in result.failures {
            if let gap = knownGaps.indices.first(where: {
                failure.hasPrefix(knownGaps[$0].file + ": " + knownGaps[$0].group)
            }) {
                used.insert(gap)
                withKnownIssue(Comment(rawValue: knownGaps[gap].reason)) { Issue.record(Comment(rawValue: failure)) }
            } else {
                Issue.record(Comment(rawValue: failure))
            }
        }
        let directories = Set(result.files.map { $0.file.split(separator: "/").dropLast().joined(separator: "/") })
        for (index, gap) in knownGaps.enumerated() where !used.contains(index) {
            let directory = gap.file.split(separator: "/").dropLast().joined(separator: "/")
            if directories.contains(directory) {
                Issue.record("known gap \(gap.file) '\(gap.group)' no longer fails: remove it from knownGaps")
            }
        }
    }

    @Test("required tests", presence)
    func required() throws {
        let result = try Self.run("", formatAssertion: false)
        print(result.report(title: "draft2020-12 (required)"))
        for failure in result.failures { Issue.record(Comment(rawValue: failure)) }
        #expect(result.failed == 0)
        #expect(result.passed + result.skipped == 1299, "every required test is either run or skipped by keyword")
    }

    @Test("optional tests", presence)
    func optional() throws {
        let result = try Self.run("optional", formatAssertion: false)
        print(result.report(title: "draft2020-12/optional"))
        Self.record(result)
    }

    @Test("optional format tests (format assertion on)", presence)
    func optionalFormats() throws {
        let result = try Self.run("optional/format", formatAssertion: true)
        print(result.report(title: "draft2020-12/optional/format"))
        Self.record(result)
    }
}
