// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing
import WorkerApp

/// What the build bakes into the binary: the git revision (`--version`) and the schemas (`validate` from `/`).
@Suite("Build information")
struct BuildInfoTests {
    /// The revision of the checkout being tested, as the build plugin reads it.
    static func checkoutRevision() async throws -> String {
        let result = try await runProcess("git", ["-C", WorkerStack.repositoryRoot, "rev-parse", "--short=12", "HEAD"])
        try #require(result.exitCode == 0, "git rev-parse failed: \(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("--version prints the version and the git revision the binary was built from")
    func versionNamesTheRevision() async throws {
        let revision = try await Self.checkoutRevision()
        #expect(revision.count == 12)
        let result = try await runProcess(try workerBinary(), ["--version"])
        #expect(result.exitCode == 0, "\(result)")
        let line = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // `-dirty` follows when the tree had uncommitted changes at build time (a developer's build).
        #expect(line.hasPrefix("ota-cancel-worker \(BuildInfo.version) (revision \(revision)"), "\(line)")
        #expect(BuildInfo.revision.hasPrefix(revision))
    }

    @Test("validate works from /, with the schema built into the binary, and --schema-dir still overrides it")
    func validateFromTheRoot() async throws {
        let binary = try workerBinary()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ota-root-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let valid = folder.appendingPathComponent("valid.json").path
        let invalid = folder.appendingPathComponent("invalid.json").path
        try #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-0001"]}"#.write(
            toFile: valid,
            atomically: true,
            encoding: .utf8
        )
        try #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":[]}"#.write(
            toFile: invalid,
            atomically: true,
            encoding: .utf8
        )
        // From /, with no OTA_CANCEL_SCHEMA_DIR: only the embedded copy can answer.
        let fromRoot = try await runProcess(
            "/bin/sh",
            ["-c", "cd / && unset OTA_CANCEL_SCHEMA_DIR && exec \"$0\" validate \"$1\" \"$2\"", binary, valid, invalid]
        )
        #expect(fromRoot.exitCode == 1, "one file is invalid: \(fromRoot)")
        let lines = fromRoot.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines.first?.contains(#""valid":true"#) == true, "\(fromRoot)")
        #expect(lines.last?.contains(#""valid":false"#) == true && lines.last?.contains("/deviceNames") == true)

        // --schema-dir names a folder whose schema wins: here one that accepts only "other" as a product key.
        let schemas = folder.appendingPathComponent("schemas")
        try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
        try #"{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"productKey":{"const":"other"}}}"#
            .write(
                toFile: schemas.appendingPathComponent("cancel-command.schema.json").path,
                atomically: true,
                encoding: .utf8
            )
        let overridden = try await runProcess(binary, ["validate", "--schema-dir", schemas.path, valid])
        #expect(overridden.exitCode == 1 && overridden.stdout.contains("/productKey"), "\(overridden)")
    }
}
