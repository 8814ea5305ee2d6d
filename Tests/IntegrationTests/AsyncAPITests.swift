// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing
import WorkerApp

/// `asyncapi.yaml`, the published message contract: valid AsyncAPI 3.0.0 by the official schema, and its payloads
/// are the very schema files the worker is built with.
@Suite("AsyncAPI document")
struct AsyncAPITests {
    static let root = WorkerStack.repositoryRoot

    /// What checking `document` found: each problem (`invalid: ` from the official schema, `unresolved: ` for a
    /// `$ref`), and the summary line (`version`, the `files` referred to, the number of `refs`).
    static func check(_ document: String) async throws -> (problems: [String], summary: [String: Any]) {
        let schema = PackagingTests.sharedDirectory + "/asyncapi-spec/asyncapi-3.0.0-without-id.json"
        try #require(
            FileManager.default.fileExists(atPath: schema),
            "the AsyncAPI schema is missing at \(schema): put the shared folder beside the project or set OTA_SHARED_DIR"
        )
        // The official schema is draft-07; Python's jsonschema is the reference validator for it (as for Compose).
        // Then every $ref: a local one must point at something in the document, a file one at a JSON file.
        let script = """
            import json, os, sys, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            path = sys.argv[2]
            document = yaml.safe_load(open(path))
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
            for error in errors:
                print("invalid: " + "/".join(map(str, error.path)) + ": " + error.message[:300])
            refs = []
            def walk(node):
                if isinstance(node, dict):
                    for key, value in node.items():
                        if key == "$ref":
                            refs.append(value)
                        else:
                            walk(value)
                elif isinstance(node, list):
                    for value in node:
                        walk(value)
            walk(document)
            files = set()
            for ref in refs:
                if ref.startswith("#/"):
                    target = document
                    for part in ref[2:].split("/"):
                        part = part.replace("~1", "/").replace("~0", "~")
                        if not isinstance(target, dict) or part not in target:
                            print("unresolved: " + ref)
                            break
                        target = target[part]
                else:
                    file = os.path.normpath(os.path.join(os.path.dirname(path), ref))
                    try:
                        json.load(open(file))
                        files.add(ref)
                    except Exception as error:
                        print("unresolved: " + ref + " (" + str(error) + ")")
            print(json.dumps({"version": document["info"]["version"], "files": sorted(files), "refs": len(refs)}))
            """
        let result = try await runProcess("python3", ["-c", script, schema, document], timeout: .seconds(60))
        #expect(result.exitCode == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let problems = lines.filter { $0.hasPrefix("invalid: ") || $0.hasPrefix("unresolved: ") }
        let summary = try #require(lines.last.map { Data($0.utf8) })
        return (problems, try #require(try JSONSerialization.jsonObject(with: summary) as? [String: Any]))
    }

    @Test("asyncapi.yaml validates against the official AsyncAPI 3.0.0 schema, and every $ref resolves")
    func validates() async throws {
        let (problems, found) = try await Self.check(Self.root + "/asyncapi.yaml")
        #expect(problems.isEmpty, "asyncapi.yaml:\n\(problems.joined(separator: "\n"))")
        // The three payloads are the schema files in schemas/, the ones built into the worker.
        let files = found["files"] as? [String] ?? []
        #expect(
            files == [
                "./schemas/cancel-command.schema.json", "./schemas/cancel-result.schema.json",
                "./schemas/dead-letter.schema.json",
            ]
        )
        let names = files.map { ($0 as NSString).lastPathComponent }
        #expect(Set(names).isSubset(of: Set(BuildInfo.embeddedSchemaNames)), "\(BuildInfo.embeddedSchemaNames)")
        #expect((found["refs"] as? Int ?? 0) >= 12)
        #expect(found["version"] as? String == BuildInfo.version)
    }

    @Test("a broken document is refused: the check can fail")
    func refusesABrokenDocument() async throws {
        let broken = try String(contentsOfFile: Self.root + "/asyncapi.yaml", encoding: .utf8)
            .replacingOccurrences(of: "action: receive", with: "action: listen")
            .replacingOccurrences(of: "qos: 1", with: "qos: 3")
        let directory = try makeTemporaryDirectory("asyncapi")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try broken.write(toFile: directory + "/asyncapi.yaml", atomically: true, encoding: .utf8)
        let (problems, _) = try await Self.check(directory + "/asyncapi.yaml")
        #expect(problems.contains { $0.hasPrefix("invalid: ") }, "\(problems)")
    }
}
