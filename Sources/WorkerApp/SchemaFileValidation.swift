// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Worker

/// The `validate` command's settings as given on the command line: `nil` means "not given".
///
/// The command-line tool conforms to this protocol; tests pass their own values (STYLE §16).
public protocol ValidateArguments: Sendable {
    /// The instance files, in order; `-` reads standard input. At least one.
    var files: [String] { get }
    /// A schema file to validate against instead of the command schema. Default: the command schema.
    var schema: String? { get }
    /// Where the command schema is looked for, as `run` looks (`OTA_CANCEL_SCHEMA_DIR`, then `./schemas`, then
    /// the installed copy). Ignored with ``schema``.
    var schemaDir: String? { get }
    /// The worker's device limit applied to the command schema (`OTA_CANCEL_MAX_DEVICE_NAMES`; default 10,000,
    /// as `run`). Ignored with ``schema``.
    var maxDeviceNames: Int? { get }
    /// A folder whose `*.json` files (searched recursively) are preloaded as schemas that `$ref` may name.
    /// Only with ``schema``. Default: none.
    var remoteDir: String? { get }
    /// The URI the folder is served under: `<remoteBase><relative path>`. Default: the folder's `file://` URI.
    var remoteBase: String? { get }
    /// Whether `format` is an assertion for ``schema`` (draft 2020-12 makes it an annotation by default). The
    /// command schema is always validated as the worker validates it, with format assertion on. Default `false`.
    var formatAssertion: Bool { get }
}

extension ValidateArguments {
    public var schema: String? { nil }
    public var schemaDir: String? { nil }
    public var maxDeviceNames: Int? { nil }
    public var remoteDir: String? { nil }
    public var remoteBase: String? { nil }
    public var formatAssertion: Bool { false }
}

/// `ota-cancel-worker validate`: checks payload files against the command schema (or any draft 2020-12
/// schema) with the worker's own parser and validator, so a rollback trigger can be tested before it fires.
///
/// The library half of the command: the executable only parses flags and prints. Each instance file gets one
/// JSON line, `{"file": ..., "valid": true|false, "errors": [...]}`, whose errors are the specification's
/// "basic" output units (`instanceLocation`, `keywordLocation`, `absoluteKeywordLocation` where a `$ref` was
/// crossed, `message`): exactly what the worker's `rejected` reply would list. A file that is not JSON is
/// invalid, with the parser's position in its one error (the worker rejects it too). A file that cannot be
/// read gets a line with `"valid": false`, no errors and a `problem`, and makes the run unusable.
///
/// Exit status: 0 when every file is valid, 1 when some file is invalid, 2 when the input is unusable (a file
/// cannot be read; the schema, or a preloaded schema, cannot be read, parsed or compiled; conflicting options).
public enum SchemaFileValidation {
    /// What `validate` produced.
    public struct Outcome: Sendable {
        /// One compact JSON object per instance file, in the order given (none when the schema is unusable).
        public var lines: [String]
        /// Why the input is unusable, for standard error; empty when it is usable.
        public var diagnostics: [String]
        /// 0 all valid, 1 some invalid, 2 unusable input.
        public var exitStatus: Int32
    }

    /// The command schema's file name in a schema folder.
    public static let commandSchemaFileName = "cancel-command.schema.json"

    /// Validates every file of `arguments`.
    ///
    /// - Parameters:
    ///   - arguments: The settings; see ``ValidateArguments``.
    ///   - environment: The variables to read; `nil` (the default) reads the process environment.
    ///   - standardInput: Reads standard input, for the file `-`; `nil` when it cannot be read.
    /// - Returns: The lines to print and the exit status.
    public static func run(
        _ arguments: some ValidateArguments,
        environment: [String: String]? = nil,
        standardInput: () -> [UInt8]? = readStandardInput
    ) -> Outcome {
        let validator: JSONSchemaValidator
        do {
            validator = try loadValidator(arguments, environment: environment ?? ProcessInfo.processInfo.environment)
        } catch {
            return Outcome(lines: [], diagnostics: [error.message], exitStatus: 2)
        }
        var lines: [String] = []
        var diagnostics: [String] = []
        var anyInvalid = false
        var anyUnusable = false
        for file in arguments.files {
            let bytes: [UInt8]
            switch read(file, standardInput: standardInput) {
            case .success(let content):
                bytes = content
            case .failure(let problem):
                anyUnusable = true
                diagnostics.append("\(file): \(problem.message)")
                lines.append(line(file: file, valid: false, errors: [], problem: problem.message))
                continue
            }
            let errors: [JSONValue]
            do {
                let instance = try JSONParser.parse(bytes)
                errors = FileDiagnostics.printable(validator.validate(instance), instance: instance).map(errorObject)
            } catch {
                // The position and the kind of problem, never the bytes: the file may be a secret given by mistake.
                errors = [
                    .object([
                        "instanceLocation": "", "keywordLocation": "",
                        "message": .string("not valid JSON: \(FileDiagnostics.notJSON(error))"),
                    ])
                ]
            }
            if !errors.isEmpty { anyInvalid = true }
            lines.append(line(file: file, valid: errors.isEmpty, errors: errors, problem: nil))
        }
        return Outcome(lines: lines, diagnostics: diagnostics, exitStatus: anyUnusable ? 2 : anyInvalid ? 1 : 0)
    }

    // MARK: Schema

    /// The validator for `arguments`: the command schema exactly as `run` compiles it, or `--schema` with the
    /// preloaded remotes.
    static func loadValidator(
        _ arguments: some ValidateArguments,
        environment: [String: String]
    ) throws(WorkerError) -> JSONSchemaValidator {
        let settings = SettingResolver(environment: environment)
        guard let schemaFile = arguments.schema else {
            if arguments.remoteDir != nil || arguments.remoteBase != nil {
                throw .invalidConfiguration(
                    "--remote-dir and --remote-base preload schemas for --schema; the command schema refers to none"
                )
            }
            if arguments.formatAssertion {
                throw .invalidConfiguration(
                    "--format-assertion applies to --schema; the command schema always asserts formats"
                )
            }
            let path = try WorkerConfiguration.commandSchemaPath(
                schemaDir: try settings.optionalString("schema-dir", arguments.schemaDir)
            )
            let maxDeviceNames = try settings.int(
                "max-device-names",
                arguments.maxDeviceNames,
                default: CancelWorkerConfiguration().maxDeviceNames,
                range: 1...10_000
            )
            return try WorkerApp.commandSchema(path: path, maxDeviceNames: maxDeviceNames).validator
        }
        if arguments.schemaDir != nil || arguments.maxDeviceNames != nil {
            throw .invalidConfiguration(
                "--schema-dir and --max-device-names apply to the command schema, not to --schema"
            )
        }
        if arguments.remoteBase != nil && arguments.remoteDir == nil {
            throw .invalidConfiguration("--remote-base needs --remote-dir")
        }
        var remotes: [String: JSONValue] = [:]
        if let directory = arguments.remoteDir {
            remotes = try loadRemotes(directory: directory, base: arguments.remoteBase)
        }
        let document = try parseSchemaFile(schemaFile, what: "schema")
        do {
            return try JSONSchemaValidator(
                schema: document,
                options: .init(formatAssertion: arguments.formatAssertion, remoteSchemas: remotes)
            )
        } catch {
            throw .invalidSchema("\(schemaFile): \(error) (\(error.code))")
        }
    }

    /// Every `*.json` file under `directory` (recursively), parsed, by URI: `base` + its relative path.
    static func loadRemotes(directory: String, base: String?) throws(WorkerError) -> [String: JSONValue] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .invalidConfiguration("--remote-dir '\(directory)' is not a folder")
        }
        let root = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL
        var prefix = base ?? root.absoluteString
        if !prefix.hasSuffix("/") { prefix += "/" }
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else {
            throw .invalidConfiguration("--remote-dir '\(directory)' cannot be read")
        }
        var relativePaths: [String] = []
        while let relative = enumerator.nextObject() as? String {
            if relative.hasSuffix(".json") { relativePaths.append(relative) }
        }
        var remotes: [String: JSONValue] = [:]
        for relative in relativePaths.sorted() {
            remotes[prefix + relative] = try parseSchemaFile(
                root.appendingPathComponent(relative).path,
                what: "remote schema"
            )
        }
        return remotes
    }

    private static func parseSchemaFile(_ path: String, what: String) throws(WorkerError) -> JSONValue {
        let bytes: [UInt8]
        switch read(path, standardInput: { nil }) {
        case .success(let content): bytes = content
        case .failure(let problem): throw .invalidSchema("\(what) \(path): \(problem.message)")
        }
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw .invalidSchema("\(what) \(path) is not valid JSON: \(FileDiagnostics.notJSON(error))")
        }
    }

    // MARK: Files and lines

    /// Why a file could not be read.
    struct ReadProblem: Error {
        var message: String
    }

    /// All of standard input (empty when it is closed), or `nil` when reading fails.
    public static func readStandardInput() -> [UInt8]? {
        do {
            return try FileHandle.standardInput.readToEnd().map { [UInt8]($0) } ?? []
        } catch {
            return nil
        }
    }

    /// The bytes of `path` (`-`: standard input), or why they cannot be had.
    static func read(_ path: String, standardInput: () -> [UInt8]?) -> Result<[UInt8], ReadProblem> {
        if path == "-" {
            guard let bytes = standardInput() else {
                return .failure(ReadProblem(message: "cannot read standard input"))
            }
            return .success(bytes)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .failure(ReadProblem(message: "no such file"))
        }
        if isDirectory.boolValue { return .failure(ReadProblem(message: "is a folder, not a file")) }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ReadProblem(message: "cannot be read (permission denied?)"))
        }
        return .success([UInt8](data))
    }

    /// One basic-output error unit.
    private static func errorObject(_ error: ValidationError) -> JSONValue {
        var object: JSONObject = [
            "instanceLocation": .string(error.instanceLocation),
            "keywordLocation": .string(error.keywordLocation),
        ]
        if let absolute = error.absoluteKeywordLocation { object["absoluteKeywordLocation"] = .string(absolute) }
        object["message"] = .string(error.message)
        return .object(object)
    }

    private static func line(file: String, valid: Bool, errors: [JSONValue], problem: String?) -> String {
        var object: JSONObject = ["file": .string(file), "valid": .bool(valid), "errors": .array(errors)]
        if let problem { object["problem"] = .string(problem) }
        return JSONValue.object(object).serialized()
    }
}
