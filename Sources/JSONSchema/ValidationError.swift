// SPDX-License-Identifier: Apache-2.0

/// One reason an instance does not conform, in JSON Schema's "basic" output shape.
///
/// Rejections are sent back to automated requesters, so each error says where in the instance the
/// problem is (``instanceLocation``), which keyword found it (``keywordLocation``, a JSON Pointer into
/// the schema that includes every `$ref` crossed on the way, as the specification defines it), and what
/// is wrong in words a person understands (``message``). Instance values quoted in messages are cut
/// to a short excerpt.
public struct ValidationError: Sendable, Hashable, CustomStringConvertible {
    /// JSON Pointer into the instance, e.g. `/deviceNames/3`; empty for the whole instance.
    public var instanceLocation: String
    /// JSON Pointer into the schema along the evaluation path, e.g. `/properties/deviceNames/items/minLength`.
    public var keywordLocation: String
    /// Absolute URI of the keyword (schema resource URI plus fragment pointer), present when a `$ref`
    /// was crossed, so the keyword can be found even though ``keywordLocation`` goes through references.
    public var absoluteKeywordLocation: String?
    /// What is wrong, e.g. `deviceNames/3: 'ab' is shorter than 4 characters`.
    public var message: String

    /// Creates an error.
    public init(
        instanceLocation: String,
        keywordLocation: String,
        absoluteKeywordLocation: String? = nil,
        message: String
    ) {
        self.instanceLocation = instanceLocation
        self.keywordLocation = keywordLocation
        self.absoluteKeywordLocation = absoluteKeywordLocation
        self.message = message
    }

    /// The message (which already names the instance location).
    public var description: String { message }
}

/// Why a schema could not be compiled.
///
/// Compilation fails loudly instead of guessing: something this validator cannot honour is refused
/// rather than ignored (ignoring it would accept instances the schema author meant to reject), and
/// malformed keyword values, unresolvable references, invalid patterns, unknown dialects and
/// required unknown vocabularies are all errors. ``code`` is stable for programs; ``schemaLocation``
/// points at the offending place; ``keyword`` names the keyword when one is to blame.
///
/// Equality compares the ``code`` only.
public struct SchemaCompilationError: Error, Sendable, CustomStringConvertible {
    /// Stable machine-readable reason.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case unsupportedKeyword, invalidKeywordValue, invalidSchema, unresolvableReference, invalidPattern
            case unsupportedDialect, unsupportedVocabulary, infiniteRecursion
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The schema uses a keyword in a way this validator cannot honour (see
        /// ``SchemaCompilationError/keyword``), e.g. `multipleOf` with more than 19 significant digits.
        public static let unsupportedKeyword = Code(.unsupportedKeyword)
        /// A keyword's value has the wrong type or range (e.g. `"minLength": -1`, `"type": "text"`).
        public static let invalidKeywordValue = Code(.invalidKeywordValue)
        /// A schema is neither an object nor a boolean.
        public static let invalidSchema = Code(.invalidSchema)
        /// A `$ref` (or `$schema`) points at nothing known: not in the document, not a preloaded remote.
        public static let unresolvableReference = Code(.unresolvableReference)
        /// A `pattern` or `patternProperties` key is not a valid ECMA-262 regular expression.
        public static let invalidPattern = Code(.invalidPattern)
        /// `$schema` names a dialect other than draft 2020-12 (or a meta-schema that cannot be loaded).
        public static let unsupportedDialect = Code(.unsupportedDialect)
        /// The meta-schema requires a vocabulary this validator does not know.
        public static let unsupportedVocabulary = Code(.unsupportedVocabulary)
        /// References form a loop that never consumes any of the instance, so validation could never end.
        public static let infiniteRecursion = Code(.infiniteRecursion)

        /// The code's name, e.g. `unsupportedKeyword`.
        public var description: String { base.rawValue }
    }

    /// Stable reason.
    public let code: Code
    /// Where: absolute URI of the schema location (resource URI + `#` + JSON Pointer), e.g.
    /// `https://example.com/s.json#/properties/a/minLength`; just `#/…` when the root schema has no `$id`.
    public let schemaLocation: String
    /// The keyword to blame, if any (e.g. `multipleOf`, `$ref`, `$schema`).
    public let keyword: String?
    /// What is wrong.
    public let message: String

    /// `schemaLocation: message`.
    public var description: String { "\(schemaLocation): \(message)" }

    /// Bounded label for metrics: the code's name.
    public var shortDescription: String { code.description }

    init(_ code: Code, at schemaLocation: String, keyword: String? = nil, _ message: String) {
        self.code = code
        self.schemaLocation = schemaLocation
        self.keyword = keyword
        self.message = message
    }
}

extension SchemaCompilationError: Hashable {
    /// Compares the ``code`` only.
    public static func == (lhs: SchemaCompilationError, rhs: SchemaCompilationError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
