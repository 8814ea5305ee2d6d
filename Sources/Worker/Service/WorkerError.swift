// SPDX-License-Identifier: Apache-2.0

/// Errors of the worker pipeline, with a stable code (STYLE §6): equality compares the code only.
public struct WorkerError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case schemaNotFound = "SchemaNotFound"
        case invalidSchema = "InvalidSchema"
        case invalidConfiguration = "InvalidConfiguration"
        case mqtt = "MQTT"
        case journal = "Journal"
    }

    private let code: Code
    /// What went wrong, for a person; never contains a secret.
    public let message: String
    public let file: String
    public let line: Int

    private init(_ code: Code, _ message: String, file: String, line: Int) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    /// The command schema file does not exist or cannot be read.
    public static func schemaNotFound(_ path: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(
            .schemaNotFound,
            "the command schema was not found at \(path): set --schema-dir (OTA_CANCEL_SCHEMA_DIR) to the folder "
                + "holding cancel-command.schema.json",
            file: file,
            line: line
        )
    }

    /// The schema file is not a usable JSON Schema.
    public static func invalidSchema(_ detail: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.invalidSchema, "the command schema cannot be used: \(detail)", file: file, line: line)
    }

    /// A setting has a value the worker cannot use; the message names the setting.
    public static func invalidConfiguration(_ detail: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.invalidConfiguration, detail, file: file, line: line)
    }

    /// The MQTT connection failed in a way the worker cannot recover from by itself.
    public static func mqtt(_ detail: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.mqtt, detail, file: file, line: line)
    }

    /// The journal (the SQLite database in the state folder) could not be opened, read or written.
    public static func journal(_ detail: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.journal, detail, file: file, line: line)
    }

    /// The stable code, e.g. `InvalidConfiguration`.
    public var codeName: String { code.rawValue }

    /// A bounded label for metrics.
    public var shortDescription: String { code.rawValue }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
