// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import TestSupport
import Testing
import WorkerApp

/// Issue 8: a secret file given by mistake as `--config`, `sign --command` or a `validate` input must not have a
/// byte of it printed. Every case runs the real executable twice on the same path: once with a harmless bad file
/// (the baseline: what a normal message says), once with a secret made of characters that baseline never prints.
/// Any character, and any two-character piece, of the secret that shows up only in the second run is a leak, so
/// even the one quoted first character of the original defect fails the test.
@Suite("secret files are never quoted", .timeLimit(.minutes(3)))
struct SecretFileTests {
    /// One way of giving the tool a file: the arguments for the file's path, and whether it is read from
    /// standard input.
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var arguments: @Sendable (String) -> [String]
        var fromStandardInput = false
        var description: String { name }
    }

    static let schemas = WorkerStack.repositoryRoot + "/schemas"
    static let environment = ["OTA_CANCEL_ACCESS_KEY_SECRET": "testsecret"]

    static let cases: [Case] = [
        Case(name: "run --config") { ["run", "--config", $0] },
        Case(name: "check-config --config") { ["check-config", "--config", $0] },
        Case(name: "sign --command") {
            ["sign", "--command", $0, "--access-key-id", "testid", "--schema-dir", schemas]
        },
        Case(name: "validate FILE") { ["validate", "--schema-dir", schemas, $0] },
        Case(
            name: "validate -",
            arguments: { _ in ["validate", "--schema-dir", schemas, "-"] },
            fromStandardInput: true
        ),
    ]

    /// Characters no normal message is likely to hold; each case keeps those its baseline does not print.
    static let pool = Array("ZQXJKVWzqxjkvw~^`|")

    /// Runs the executable on `content` written to `path` (or fed to standard input), all output together.
    static func output(_ testCase: Case, content: [UInt8], path: String) async throws -> String {
        try Data(content).write(to: URL(fileURLWithPath: path))
        let binary = try workerBinary()
        let result: ProcessResult
        if testCase.fromStandardInput {
            let command = ([binary] + testCase.arguments(path)).map { "'\($0)'" }.joined(separator: " ")
            result = try await runProcess("/bin/sh", ["-c", "exec \(command) < '\(path)'"], environment: environment)
        } else {
            result = try await runProcess(binary, testCase.arguments(path), environment: environment)
        }
        #expect(!result.timedOut, "\(result)")
        #expect(result.exitCode != 0, "a bad file is an error: \(result)")
        return result.stdout + result.stderr
    }

    /// What of `secret` appears in `output` and not in `baseline`: its first character in quotes, single
    /// characters, and substrings of `length` characters.
    static func leaks(of secret: String, in output: String, baseline: String, length: Int) -> [String] {
        var found: [String] = []
        let characters = Array(secret)
        if let first = characters.first, output.contains("'\(first)'") { found.append("'\(first)' (quoted)") }
        for character in Set(characters) where output.contains(character) && !baseline.contains(character) {
            found.append(String(character))
        }
        if characters.count >= length {
            for start in 0...(characters.count - length) {
                let piece = String(characters[start..<start + length])
                if output.contains(piece) && !baseline.contains(piece) { found.append(piece) }
            }
        }
        return Array(Set(found)).sorted()
    }

    @Test("a secret of unusual letters and symbols: no character of it is printed", arguments: cases)
    func letters(_ testCase: Case) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/access-key.secret"
        let baseline = try await Self.output(testCase, content: Array("harmless\n".utf8), path: path)

        let usable = Self.pool.filter { !baseline.contains($0) }
        let letters = usable.filter(\.isLetter)
        try #require(usable.count >= 6 && !letters.isEmpty, "the baseline prints too many of the pool: \(baseline)")
        // Starts with a letter (as a token does), then every usable character in a scrambled order, twice.
        var secret = String(letters[0])
        for index in 0..<(usable.count * 2) { secret.append(usable[(index * 7 + 3) % usable.count]) }
        let output = try await Self.output(testCase, content: Array((secret + "\n").utf8), path: path)

        let leaked = Self.leaks(of: secret, in: output, baseline: baseline, length: 2)
        #expect(leaked.isEmpty, "\(testCase): the output shows \(leaked) of the secret \(secret):\n\(output)")
        #expect(output.contains("line 1, column 1 (byte 0)"), "the position is given instead:\n\(output)")
    }

    @Test(
        "a numeric secret (valid JSON) is not echoed by the schema's messages",
        arguments: cases.filter { $0.name.hasPrefix("validate") || $0.name.hasPrefix("sign") }
    )
    func number(_ testCase: Case) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/pin.secret"
        let baseline = try await Self.output(testCase, content: Array("7\n".utf8), path: path)
        let secret = "80412795536170"
        let output = try await Self.output(testCase, content: Array((secret + "\n").utf8), path: path)
        // Digits are in every message (positions, lengths): three in a row from the secret are a leak.
        let leaked = Self.leaks(of: secret, in: output, baseline: baseline, length: 3).filter { $0.count >= 3 }
        #expect(leaked.isEmpty, "\(testCase): the output shows \(leaked) of \(secret):\n\(output)")
        #expect(output.contains("one bare JSON number (14 characters"), "\(output)")
    }

    @Test("--access-key-secret-file and --broker-password-file: nothing of an unusable secret file is printed")
    func secretFiles() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/broken.secret"
        for option in ["--access-key-secret-file", "--broker-password-file"] {
            let testCase = Case(name: option) {
                [
                    "check-config", option, $0, "--platform-endpoint", "http://127.0.0.1:9", "--access-key-id", "id",
                    "--schema-dir", Self.schemas,
                ]
            }
            // Not UTF-8 (a binary key file given by mistake): refused, with nothing of it shown.
            let baseline = try await Self.output(testCase, content: [0xFF] + Array("harmless".utf8), path: path)
            let secret = "ZqXjKvWq~^`|zQxJkV"
            let output = try await Self.output(testCase, content: [0xFF] + Array(secret.utf8), path: path)
            let leaked = Self.leaks(of: secret, in: output, baseline: baseline, length: 2)
            #expect(leaked.isEmpty, "\(option): the output shows \(leaked):\n\(output)")
            #expect(output.contains("is not UTF-8 text"), "\(output)")
        }
    }

    @Test("content-free parse errors: every code has its own wording, with no byte of the input")
    func contentFreeWording() throws {
        let inputs = [
            "Zq", "[1,Zq]", "{\"a\":1,\"a\":2}", "\"\\q\"", "\"\\uD800\"", "\"\u{01}\"", "01", "[] Zq", "[", "\"Zq",
        ]
        var seen = Set<String>()
        for input in inputs {
            do {
                _ = try JSONParser.parse(input)
                Issue.record("\(input) parsed")
            } catch {
                let text = error.contentFreeDescription
                #expect(!text.contains("Zq") && !text.contains("'a'") && !text.contains("\"a\""), "\(text)")
                #expect(text.hasPrefix("line 1, column "), "\(text)")
                #expect(text.hasSuffix("(\(error.code))"), "\(text)")
                seen.insert(error.code.contentFreeSummary)
            }
        }
        #expect(seen.count >= 8, "distinct kinds: \(seen)")
    }
}
