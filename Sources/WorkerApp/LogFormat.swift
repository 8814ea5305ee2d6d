// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import Logging
import Worker

/// How the worker writes its log records (`--log-format`): `text` (logfmt) or `json` (one object per line).
///
/// Both start with the same fields, in this order: `timestamp` (RFC 3339, UTC, milliseconds), `level`, `message`,
/// `logger` (the logger's label), `source` (the module that logged), then the record's metadata sorted by key,
/// then `error.message` and `error.type` when an error is attached. A metadata key that is one of those five names
/// is written as `metadata.<key>`, so the fixed fields are never shadowed.
///
/// Whatever the values hold (they include text from the network: a command's `correlationId`, `reason`, error
/// texts), a record is exactly one line: see ``LogEscaping`` for the characters that are escaped.
public enum LogFormat: String, Sendable, CaseIterable {
    /// logfmt: `key=value` pairs separated by spaces. A value is quoted (`"`) when it is empty or holds a space, an
    /// `=`, a `"` or an escape (a `"` inside becomes `\"`); the escapes are ``LogEscaping``'s. A list is its
    /// elements joined by commas; a dictionary's entries become `key.entry=value`.
    case text
    /// JSON Lines: one object per record. The metadata are top-level members, lists are arrays, dictionaries are
    /// objects; integers, floating-point numbers and Booleans given as `.stringConvertible` are JSON numbers and
    /// Booleans. Besides what JSON requires, every character ``LogEscaping/needsEscape(_:)`` names (DEL, C1,
    /// U+2028/U+2029, bidirectional controls) is written as `\uXXXX`, so that no terminal or line-based tool
    /// sees it raw; a JSON parser reads the exact value back.
    case json
}

/// One log record as a line is made from it: the handler's, the provider's and the record's metadata merged.
public struct LogRecord: Sendable {
    public var timestamp: Date
    public var level: Logger.Level
    public var message: String
    /// The logger's label.
    public var label: String
    /// The module that logged (swift-log's `source`).
    public var source: String
    public var metadata: Logger.Metadata

    public init(
        timestamp: Date,
        level: Logger.Level,
        message: String,
        label: String,
        source: String,
        metadata: Logger.Metadata = [:]
    ) {
        self.timestamp = timestamp
        self.level = level
        self.message = message
        self.label = label
        self.source = source
        self.metadata = metadata
    }
}

extension LogFormat {
    /// The names of the fields every line starts with, in order.
    public static let fixedFields = ["timestamp", "level", "message", "logger", "source"]

    /// The record as one line, ending with a newline (and holding no other line break).
    ///
    /// A pure function of the record: the same record always gives the same line.
    public func line(for record: LogRecord) -> String {
        let fixed: [(String, Logger.MetadataValue)] = [
            ("timestamp", .string(RFC3339.string(from: record.timestamp))),
            ("level", .string(record.level.rawValue)),
            ("message", .string(record.message)),
            ("logger", .string(record.label)),
            ("source", .string(record.source)),
        ]
        var fields = fixed
        // Sorted, so that a record always gives the same line; the error fields, set by the handler, go last.
        let errorKeys: Set<String> = ["error.message", "error.type"]
        let keys = record.metadata.keys.sorted { a, b in
            let (aError, bError) = (errorKeys.contains(a), errorKeys.contains(b))
            return aError == bError ? a < b : bError
        }
        for key in keys {
            let name = Self.fixedFields.contains(key) ? "metadata." + key : key
            fields.append((name, record.metadata[key]!))
        }
        switch self {
        case .text: return LogfmtWriter.line(fields)
        case .json: return JSONLineWriter.line(fields)
        }
    }
}

/// logfmt lines; see ``LogFormat/text``.
enum LogfmtWriter {
    static func line(_ fields: [(String, Logger.MetadataValue)]) -> String {
        var out = ""
        for (key, value) in fields { append(key: key, value: value, to: &out) }
        out.append("\n")
        return out
    }

    private static func append(key: String, value: Logger.MetadataValue, to out: inout String) {
        if case .dictionary(let entries) = value, !entries.isEmpty {
            for entryKey in entries.keys.sorted() {
                append(key: key + "." + entryKey, value: entries[entryKey]!, to: &out)
            }
            return
        }
        if !out.isEmpty { out.append(" ") }
        out.append(self.key(key))
        out.append("=")
        out.append(quoted(text(of: value)))
    }

    /// A key as logfmt allows it: escaped, and with no space, `=`, `"` or backslash (each becomes `_`).
    static func key(_ key: String) -> String {
        guard !key.isEmpty else { return "_" }
        let escaped = LogEscaping.escape(key)
        guard escaped.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" }) else { return escaped }
        return String(escaped.map { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" ? "_" : $0 })
    }

    /// The value escaped (``LogEscaping``), not yet quoted.
    private static func text(of value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): LogEscaping.escape(string)
        case .stringConvertible(let convertible): LogEscaping.escape(convertible.description)
        case .array(let values): values.map(nested).joined(separator: ",")
        case .dictionary(let entries): nested(.dictionary(entries))
        }
    }

    /// A value inside a list: lists in brackets, dictionaries in braces.
    private static func nested(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string, .stringConvertible: text(of: value)
        case .array(let values): "[" + values.map(nested).joined(separator: ",") + "]"
        case .dictionary(let entries):
            "{" + entries.keys.sorted().map { key($0) + "=" + nested(entries[$0]!) }.joined(separator: ",") + "}"
        }
    }

    /// `text` in quotes when logfmt needs them (empty, or a space, `=`, `"` or backslash in it).
    static func quoted(_ text: String) -> String {
        guard text.isEmpty || text.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" }) else {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\"", with: #"\""#) + "\""
    }
}

/// JSON Lines; see ``LogFormat/json``.
enum JSONLineWriter {
    static func line(_ fields: [(String, Logger.MetadataValue)]) -> String {
        var out = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { out.append(",") }
            string(key, to: &out)
            out.append(":")
            append(value, to: &out)
        }
        out.append("}\n")
        return out
    }

    private static func append(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let text):
            string(text, to: &out)
        case .stringConvertible(let convertible):
            if let literal = literal(convertible) {
                out.append(literal)
            } else {
                string(convertible.description, to: &out)
            }
        case .array(let values):
            out.append("[")
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(",") }
                append(element, to: &out)
            }
            out.append("]")
        case .dictionary(let entries):
            out.append("{")
            for (index, key) in entries.keys.sorted().enumerated() {
                if index > 0 { out.append(",") }
                string(key, to: &out)
                out.append(":")
                append(entries[key]!, to: &out)
            }
            out.append("}")
        }
    }

    /// A JSON number or Boolean for the values that are one; `nil` for everything else.
    private static func literal(_ value: any CustomStringConvertible & Sendable) -> String? {
        switch value {
        case let bool as Bool: return bool ? "true" : "false"
        case let integer as any BinaryInteger: return "\(integer)"
        case let double as Double: return double.isFinite ? "\(double)" : nil
        case let float as Float: return float.isFinite ? "\(float)" : nil
        default: return nil
        }
    }

    /// `text` as a JSON string: `"` and `\` escaped, and every character ``LogEscaping`` escapes as `\uXXXX`.
    static func string(_ text: String, to out: inout String) {
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append(#"\""#)
            case "\\": out.append(#"\\"#)
            case "\n": out.append(#"\n"#)
            case "\r": out.append(#"\r"#)
            case "\t": out.append(#"\t"#)
            default:
                if LogEscaping.needsEscape(scalar) {
                    // Every such character is below U+FFFF (the last is U+2069): four digits suffice.
                    let hex = String(scalar.value, radix: 16)
                    out.append(#"\u"# + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }
}
