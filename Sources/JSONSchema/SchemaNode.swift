// SPDX-License-Identifier: Apache-2.0

/// The JSON types a `type` keyword can name, as a bit set (`integer` is its own bit).
struct TypeSet: OptionSet, Sendable {
    let rawValue: UInt8
    static let null = TypeSet(rawValue: 1)
    static let boolean = TypeSet(rawValue: 2)
    static let object = TypeSet(rawValue: 4)
    static let array = TypeSet(rawValue: 8)
    static let number = TypeSet(rawValue: 16)
    static let string = TypeSet(rawValue: 32)
    static let integer = TypeSet(rawValue: 64)
    static let any: TypeSet = [.null, .boolean, .object, .array, .number, .string, .integer]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        switch name {
        case "null": self = .null
        case "boolean": self = .boolean
        case "object": self = .object
        case "array": self = .array
        case "number": self = .number
        case "string": self = .string
        case "integer": self = .integer
        default: return nil
        }
    }

    /// The bits an instance has (`1.0` is both number and integer).
    static func of(_ value: JSONValue) -> TypeSet {
        switch value {
        case .null: return .null
        case .bool: return .boolean
        case .object: return .object
        case .array: return .array
        case .string: return .string
        case .number(let number): return number.isInteger ? [.number, .integer] : .number
        }
    }

    var names: [String] {
        var result: [String] = []
        for (bit, name) in [
            (TypeSet.null, "null"), (.boolean, "boolean"), (.object, "object"), (.array, "array"), (.number, "number"),
            (.integer, "integer"), (.string, "string"),
        ] where contains(bit) {
            result.append(name)
        }
        return result
    }
}

/// `properties`, `patternProperties` and `additionalProperties` of one schema, applied in one pass.
struct PropertyApplicator: Sendable {
    var properties: [(key: String, node: Int32)] = []
    /// Hash index into ``properties`` for schemas with many properties.
    var table: [ScalarKey: Int]? = nil
    /// Indexes into ``CompiledSchema/regexes`` and the nodes they apply.
    var patterns: [(regex: Int32, node: Int32)] = []
    var additional: Int32 = -1

    func propertyNode(_ key: String) -> Int32 {
        if let table {
            guard let position = table[ScalarKey(key)] else { return -1 }
            return properties[position].node
        }
        for property in properties where ScalarString.equal(property.key, key) { return property.node }
        return -1
    }
}

/// A run of entries in one of the compiled schema's flat tables (`start..<end`).
struct TableRange: Sendable {
    var start: Int32
    var end: Int32
    static let empty = TableRange(start: 0, end: 0)
    var isEmpty: Bool { start == end }
}

/// One compiled assertion or applicator.
///
/// Plain data only (node indexes, table indexes, counts): copying a keyword never touches a reference
/// count, which keeps the evaluation loop free of retain/release traffic. Larger payloads (values,
/// numbers, regexes, name lists) live in side tables of ``CompiledSchema``.
enum Keyword: Sendable {
    /// `values[i]`.
    case constant(Int32)
    /// `enums[i]`.
    case enumeration(Int32)
    case ref(Int32)
    /// `$dynamicRef` whose initial target carries a matching `$dynamicAnchor`: resolved in the dynamic
    /// scope. `anchor` indexes `anchorNames`.
    case dynamicRef(initial: Int32, anchor: Int32)
    /// Children are `children[range]`.
    case allOf(TableRange)
    case anyOf(TableRange)
    case oneOf(TableRange)
    case not(Int32)
    /// `-1` for an absent branch.
    case conditional(condition: Int32, then: Int32, else: Int32)
    /// `dependentSchemas[i]`.
    case dependentSchemas(Int32)
    /// `numbers[i]`.
    case multipleOf(Int32)
    case minimum(Int32)
    case exclusiveMinimum(Int32)
    case maximum(Int32)
    case exclusiveMaximum(Int32)
    case minLength(Int)
    case maxLength(Int)
    /// `regexes[i]`.
    case pattern(Int32)
    /// `formats[i]`.
    case format(Int32)
    case minItems(Int)
    case maxItems(Int)
    case uniqueItems
    case prefixItems(TableRange)
    case items(Int32, from: Int32)
    /// `max < 0`: no maximum.
    case contains(Int32, min: Int, max: Int)
    case minProperties(Int)
    case maxProperties(Int)
    /// `stringLists[i]`.
    case required(Int32)
    /// `dependentRequired[i]`.
    case dependentRequired(Int32)
    /// `dependentRequired[i]`, from the string-array members of draft 7's `dependencies` (its schema
    /// members become a ``dependentSchemas(_:)``): the same check, reported under its own keyword.
    case dependencies(Int32)
    /// `applicators[i]`.
    case properties(Int32)
    case propertyNames(Int32)
}

/// A compiled schema (object or boolean), stored in the validator's arena and referenced by index.
///
/// Plain data: its keywords are ranges of ``CompiledSchema/keywords``, grouped by the instance type
/// they apply to so that evaluation only visits the relevant ones. Its locations (for error output)
/// are in ``CompiledSchema/paths`` and ``CompiledSchema/absolutes`` at the same index.
struct SchemaNode: Sendable {
    /// `1`/`0` for the boolean schemas `true`/`false`, `-1` for object schemas.
    var boolean: Int8 = -1
    /// Allowed types (``TypeSet/any`` when there is no `type` keyword).
    var types: TypeSet = .any
    /// Index of the schema resource this node belongs to (for the `$dynamicRef` dynamic scope).
    var resource: Int32 = 0
    /// Keywords that apply to every instance type (`const`, `enum`, in-place applicators).
    var general: TableRange = .empty
    var numberKeywords: TableRange = .empty
    var stringKeywords: TableRange = .empty
    var arrayKeywords: TableRange = .empty
    var objectKeywords: TableRange = .empty
    /// Nodes of `unevaluatedItems` / `unevaluatedProperties`, or `-1`.
    var unevaluatedItems: Int32 = -1
    var unevaluatedProperties: Int32 = -1

    var tracksAnnotations: Bool { unevaluatedItems >= 0 || unevaluatedProperties >= 0 }
}

/// The vocabularies in force for a schema resource (from its meta-schema's `$vocabulary`).
struct Vocabularies: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    static let core = Vocabularies(rawValue: 1)
    static let applicator = Vocabularies(rawValue: 2)
    static let unevaluated = Vocabularies(rawValue: 4)
    static let validation = Vocabularies(rawValue: 8)
    static let metaData = Vocabularies(rawValue: 16)
    static let formatAnnotation = Vocabularies(rawValue: 32)
    static let formatAssertion = Vocabularies(rawValue: 64)
    static let content = Vocabularies(rawValue: 128)
    /// What a draft 2020-12 schema without a custom meta-schema gets.
    static let draft2020: Vocabularies = [
        .core, .applicator, .unevaluated, .validation, .metaData, .formatAnnotation, .content,
    ]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    static let byURI: [String: Vocabularies] = [
        "https://json-schema.org/draft/2020-12/vocab/core": .core,
        "https://json-schema.org/draft/2020-12/vocab/applicator": .applicator,
        "https://json-schema.org/draft/2020-12/vocab/unevaluated": .unevaluated,
        "https://json-schema.org/draft/2020-12/vocab/validation": .validation,
        "https://json-schema.org/draft/2020-12/vocab/meta-data": .metaData,
        "https://json-schema.org/draft/2020-12/vocab/format-annotation": .formatAnnotation,
        "https://json-schema.org/draft/2020-12/vocab/format-assertion": .formatAssertion,
        "https://json-schema.org/draft/2020-12/vocab/content": .content,
    ]
}
