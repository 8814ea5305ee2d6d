// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import WorkerApp

/// `ota-cancel-worker validate`: check payload files against the command schema (or `--schema FILE`).
///
/// Thin: the flags become ``ValidateArguments`` and `SchemaFileValidation.run` does the work (tested as a
/// library); this prints its lines and exits with its status.
struct Validate: ParsableCommand, ValidateArguments {
    static let configuration = CommandConfiguration(
        abstract: "Validate JSON files against the command schema (or --schema FILE): one JSON line per file.",
        discussion: """
            Each line is {"file": ..., "valid": true|false, "errors": [...]}, the errors in JSON Schema's basic \
            output format (instanceLocation, keywordLocation, absoluteKeywordLocation, message), as the worker's \
            rejected reply lists them. The command schema is found and compiled as 'run' does it (--schema-dir, \
            OTA_CANCEL_SCHEMA_DIR, else the copy built into the binary; --max-device-names, OTA_CANCEL_MAX_DEVICE_NAMES). \
            Exit status: 0 all valid, 1 some invalid, 2 unusable input (unreadable file, invalid schema).
            """
    )

    @Option(help: "A draft 2020-12 schema file to validate against instead of the command schema.")
    var schema: String?

    @Option(
        help:
            "Folder holding cancel-command.schema.json, to use instead of the copy built into the binary. (default: the built-in copy)"
    )
    var schemaDir: String?

    @Option(help: "Most devices one command may name, as the worker is configured. (default: 10000)")
    var maxDeviceNames: Int?

    @Option(help: "With --schema: a folder of schemas (*.json, recursively) that $ref may name, preloaded.")
    var remoteDir: String?

    @Option(
        help: "The URI --remote-dir is served under, e.g. http://localhost:1234/. (default: the folder's file:// URI)"
    )
    var remoteBase: String?

    @Flag(help: "With --schema: treat format as an assertion (draft 2020-12 makes it an annotation by default).")
    var formatAssertion = false

    @Argument(help: "The JSON files to validate; - reads standard input.")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one file to validate (- for standard input)") }
    }

    func run() throws {
        let outcome = SchemaFileValidation.run(self)
        for line in outcome.lines { print(line) }
        for diagnostic in outcome.diagnostics {
            FileHandle.standardError.write(Data(("error: " + diagnostic + "\n").utf8))
        }
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }
}
