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
    var properties: [(key: String, node: Int)] = []
    /// Hash index into ``properties`` for schemas with many properties.
    var table: [ScalarKey: Int]? = nil
    var patterns: [(regex: ECMARegex, node: Int)] = []
    var additional: Int? = nil

    func propertyNode(_ key: String) -> Int? {
        if let table { return table[ScalarKey(key)].map { properties[$0].node } }
        for property in properties where ScalarString.equal(property.key, key) { return property.node }
        return nil
    }
}

/// One compiled assertion or applicator.
enum Keyword: Sendable {
    case constant(JSONValue)
    case enumeration([JSONValue], Set<JSONValue>?)
    case ref(Int)
    /// `$dynamicRef` whose initial target carries a matching `$dynamicAnchor`: resolved in the dynamic scope.
    case dynamicRef(initial: Int, anchor: String)
    case allOf([Int])
    case anyOf([Int])
    case oneOf([Int])
    case not(Int)
    case conditional(condition: Int, then: Int?, else: Int?)
    case dependentSchemas([(key: String, node: Int)])
    case multipleOf(JSONNumber)
    case minimum(JSONNumber)
    case exclusiveMinimum(JSONNumber)
    case maximum(JSONNumber)
    case exclusiveMaximum(JSONNumber)
    case minLength(Int)
    case maxLength(Int)
    case pattern(ECMARegex)
    case format(name: String, check: @Sendable (String) -> Bool)
    case minItems(Int)
    case maxItems(Int)
    case uniqueItems
    case prefixItems([Int])
    case items(Int, from: Int)
    case contains(Int, min: Int, max: Int?)
    case minProperties(Int)
    case maxProperties(Int)
    case required([String])
    case dependentRequired([(key: String, required: [String])])
    case properties(PropertyApplicator)
    case propertyNames(Int)
}

/// A compiled schema (object or boolean), stored in the validator's arena and referenced by index.
struct SchemaNode: Sendable {
    /// Keyword location relative to the evaluation entry (the root, or the target of a `$ref`).
    var path: String
    /// Absolute location: resource URI + `#` + percent-encoded JSON Pointer.
    var absolute: String
    /// Index of the schema resource this node belongs to (for the `$dynamicRef` dynamic scope).
    var resource: Int32
    /// `true`/`false` for boolean schemas, `nil` for object schemas.
    var boolean: Bool?
    /// Allowed types (``TypeSet/any`` when there is no `type` keyword).
    var types: TypeSet = .any
    /// Keywords that apply to every instance type (`const`, `enum`, in-place applicators).
    var general: [Keyword] = []
    var numberKeywords: [Keyword] = []
    var stringKeywords: [Keyword] = []
    var arrayKeywords: [Keyword] = []
    var objectKeywords: [Keyword] = []
    var unevaluatedItems: Int? = nil
    var unevaluatedProperties: Int? = nil

    var tracksAnnotations: Bool { unevaluatedItems != nil || unevaluatedProperties != nil }
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
    static let draft2020: Vocabularies = [.core, .applicator, .unevaluated, .validation, .metaData, .formatAnnotation, .content]

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
