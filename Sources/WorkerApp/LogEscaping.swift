// SPDX-License-Identifier: Apache-2.0
public import Logging

/// Escapes text so that a log record stays exactly one line, whatever the values in it hold.
///
/// The worker logs values that come from the network (a command's `correlationId`, `reason`, `requestedBy`,
/// `replyTo`, error texts): written raw, one payload with a newline and a fake timestamp forges whole `critical`
/// lines, and an escape character re-colours or rewrites the operator's terminal. Every control character (C0,
/// DEL, C1), the other line breaks (U+2028, U+2029; U+0085 is C1) and the bidirectional overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069, which reorder what a person reads) become escapes: `\n`, `\r`, `\t`, else
/// `\u{1B}` (hexadecimal, upper case). A backslash becomes `\\`, so an escaped newline cannot be confused with a
/// value that held a backslash and an `n`: the escaping is reversible.
///
/// A separate, pure function so that a later log format (logfmt, JSON) can reuse it; ``EscapingLogHandler``
/// applies it to every part of a record.
public enum LogEscaping {
    /// `text` with every character that could break or disguise a log line escaped; see ``LogEscaping``.
    public static func escape(_ text: String) -> String {
        // Fast path: most log text has nothing to escape.
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                result.append(scalar)
                continue
            }
            switch scalar {
            case "\n": result.append(contentsOf: #"\n"#.unicodeScalars)
            case "\r": result.append(contentsOf: #"\r"#.unicodeScalars)
            case "\t": result.append(contentsOf: #"\t"#.unicodeScalars)
            case "\\": result.append(contentsOf: #"\\"#.unicodeScalars)
            default:
                result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            }
        }
        return String(result)
    }

    /// Whether `scalar` is escaped by ``escape(_:)``.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1 (U+0085 NEXT LINE among them)
        case 0x2028, 0x2029: true  // LINE SEPARATOR, PARAGRAPH SEPARATOR
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides, isolates
        case 0x5C: true  // the backslash, so that the escaping is reversible
        default: false
        }
    }

    /// `value` with every string in it escaped, through lists and dictionaries (keys too).
    ///
    /// A `stringConvertible` value becomes the escaped string of its description.
    public static func escape(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text): .string(escape(text))
        case .stringConvertible(let convertible): .string(escape(convertible.description))
        case .array(let values): .array(values.map(escape))
        case .dictionary(let metadata): .dictionary(escape(metadata))
        }
    }

    /// `metadata` with its keys and values escaped; see ``escape(_:)-(Logger.MetadataValue)``.
    ///
    /// Two keys that escape to the same text cannot both be kept; the value of the one that sorts last wins,
    /// so the outcome does not depend on dictionary order.
    public static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var result = Logger.Metadata(minimumCapacity: metadata.count)
        for key in metadata.keys.sorted() {
            result[escape(key)] = escape(metadata[key]!)
        }
        return result
    }
}

/// A `LogHandler` that escapes every part of a record (message, metadata keys and values, source, the attached
/// error) with ``LogEscaping`` and hands it to the handler it wraps, so that every record is one line.
///
/// It keeps the metadata and the metadata provider itself, merging them with the record's own metadata (the
/// record's wins, then the provider's, as `StreamLogHandler` does) before escaping, and passes the wrapped
/// handler nothing it could print unescaped. The label is the wrapped handler's own: ``standardError(label:level:)``
/// escapes it too.
public struct EscapingLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped

    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    /// Wraps `wrapped`, taking over its metadata and metadata provider (the wrapped handler keeps none).
    public init(wrapping wrapped: Wrapped) {
        var wrapped = wrapped
        metadata = wrapped.metadata
        metadataProvider = wrapped.metadataProvider
        wrapped.metadata = [:]
        wrapped.metadataProvider = nil
        self.wrapped = wrapped
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var escaped = event
        escaped.message = "\(LogEscaping.escape(event.message.description))"
        escaped.metadata = merged.isEmpty ? nil : LogEscaping.escape(merged)
        escaped.source = LogEscaping.escape(event.source)
        escaped.error = nil
        wrapped.log(event: escaped)
    }
}

extension EscapingLogHandler where Wrapped == StreamLogHandler {
    /// The worker's log: escaped records on standard error, at `level`.
    public static func standardError(label: String, level: Logger.Level) -> Self {
        var stream = StreamLogHandler.standardError(label: LogEscaping.escape(label))
        stream.logLevel = level
        return EscapingLogHandler(wrapping: stream)
    }
}
