// SPDX-License-Identifier: Apache-2.0

/// Why a document is not acceptable JSON, and where.
///
/// Rejected payloads are answered to automated senders, who need to know exactly what to fix, so the
/// error carries a stable ``code`` (for programs and metric labels), the byte ``offset`` and the
/// 1-based ``line``/``column`` (column counted in Unicode scalars) of the problem, and a message for
/// people: `line 1, column 17: duplicate key "a"`. Messages quote at most a short excerpt of the
/// input, never the whole document.
///
/// Equality compares the ``code`` only, so `error == JSONParseError.Code.duplicateKey`-style checks
/// do not depend on positions; compare ``offset``/``line``/``column`` explicitly when they matter.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    /// Stable machine-readable reason.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case unexpectedEnd, unexpectedCharacter, invalidUTF8, invalidEscape, loneSurrogate
            case controlCharacterInString, duplicateKey, tooDeep, invalidNumber, trailingData, tooLarge
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input ended inside a value (or contained no value at all).
        public static let unexpectedEnd = Code(.unexpectedEnd)
        /// A byte that cannot start or continue a value here.
        public static let unexpectedCharacter = Code(.unexpectedCharacter)
        /// The bytes are not well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// A backslash escape that RFC 8259 does not define, or a malformed `\uXXXX`.
        public static let invalidEscape = Code(.invalidEscape)
        /// A `\uD800`–`\uDFFF` escape that is not part of a valid surrogate pair.
        public static let loneSurrogate = Code(.loneSurrogate)
        /// A raw control character (U+0000–U+001F) inside a string.
        public static let controlCharacterInString = Code(.controlCharacterInString)
        /// An object has the same key twice (compared by Unicode scalars).
        public static let duplicateKey = Code(.duplicateKey)
        /// Arrays and objects are nested deeper than ``JSONParser/Options/maxDepth``.
        public static let tooDeep = Code(.tooDeep)
        /// A number that does not follow RFC 8259 syntax, or whose exponent is out of range.
        public static let invalidNumber = Code(.invalidNumber)
        /// Something other than whitespace follows the value.
        public static let trailingData = Code(.trailingData)
        /// The input is longer than ``JSONParser/Options/maxBytes``.
        public static let tooLarge = Code(.tooLarge)

        /// The code's name, e.g. `duplicateKey`.
        public var description: String { base.rawValue }

        /// The kind of problem in words that name no byte of the input, e.g. `a character that cannot start or
        /// continue a JSON value here`.
        ///
        /// ``JSONParseError/message`` quotes the offending character (or a key) because a sender fixing its own
        /// payload needs it; a file given by mistake (a secret file passed as `--config`) must not have its first
        /// character printed, so tools that parse files say what and where with this and a position instead. The
        /// switch is exhaustive, so a new code cannot be added without its content-free wording.
        public var contentFreeSummary: String {
            switch base {
            case .unexpectedEnd: "the input ends inside a value (or holds no value)"
            case .unexpectedCharacter: "a character that cannot start or continue a JSON value here"
            case .invalidUTF8: "bytes that are not well-formed UTF-8"
            case .invalidEscape: "a backslash escape that JSON does not define"
            case .loneSurrogate: "a \\u escape of a lone surrogate"
            case .controlCharacterInString: "an unescaped control character in a string"
            case .duplicateKey: "a key that the object already has"
            case .tooDeep: "nesting deeper than the limit"
            case .invalidNumber: "a malformed number"
            case .trailingData: "more than whitespace after the JSON value"
            case .tooLarge: "the input is larger than the limit"
            }
        }
    }

    /// Stable reason.
    public let code: Code
    /// Byte offset (0-based) of the problem in the input.
    public let offset: Int
    /// Line (1-based) of the problem.
    public let line: Int
    /// Column (1-based, in Unicode scalars) of the problem.
    public let column: Int
    /// What is wrong, without the position, e.g. `duplicate key "a"`.
    public let message: String

    /// `line L, column C: message`.
    public var description: String { "line \(line), column \(column): \(message)" }

    /// What is wrong and where, without a byte of the input: `line 1, column 1 (byte 0): a character that cannot
    /// start or continue a JSON value here (unexpectedCharacter)`.
    ///
    /// For files that may hold a secret by mistake; see ``Code/contentFreeSummary``. ``description`` (which
    /// quotes) stays the rendering for payloads answered to their own sender.
    public var contentFreeDescription: String {
        "line \(line), column \(column) (byte \(offset)): \(code.contentFreeSummary) (\(code))"
    }

    /// Bounded label for metrics: the code's name.
    public var shortDescription: String { code.description }

    init(code: Code, offset: Int, line: Int, column: Int, message: String) {
        self.code = code
        self.offset = offset
        self.line = line
        self.column = column
        self.message = message
    }
}

extension JSONParseError: Hashable {
    /// Compares the ``code`` only.
    public static func == (lhs: JSONParseError, rhs: JSONParseError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
