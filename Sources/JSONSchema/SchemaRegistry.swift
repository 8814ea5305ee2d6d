// SPDX-License-Identifier: Apache-2.0

/// A schema (or sub-schema) in a document, with the context needed to compile it.
struct SchemaPlace {
    var value: JSONValue
    /// URI of the schema resource it belongs to (its base URI); may be empty for a root without `$id`.
    var resource: String
    /// JSON Pointer from the resource root (unescaped form, not percent-encoded).
    var pointer: String
    /// The effective `$schema` of its resource, if any was declared.
    var dialect: String?

    /// `resource#pointer`, percent-encoded: the absolute location used in errors.
    var absolute: String { resource + "#" + JSONPointer.percentEncodeFragment(pointer) }

    /// The place of a sub-schema reached through `tokens` (e.g. `["properties", "a"]`).
    func child(_ value: JSONValue, _ tokens: String...) -> SchemaPlace {
        var pointer = self.pointer
        for token in tokens { pointer += "/" + JSONPointer.escape(token) }
        return SchemaPlace(value: value, resource: resource, pointer: pointer, dialect: dialect)
    }
}

/// Every schema resource, anchor and sub-schema location known to one compilation.
///
/// Documents are indexed with one walk that follows only keywords whose values are schemas, so an
/// `$id` inside `enum` or `const` data is not mistaken for a resource. `$ref` resolution then is a
/// lookup: RFC 3986 resolution against the base URI, then the resource, then a JSON Pointer or anchor.
struct SchemaRegistry {
    /// Resource URI (no fragment) → resource root.
    private(set) var resources: [String: SchemaPlace] = [:]
    /// `uri#pointer` → sub-schema, recorded under every enclosing resource.
    private var locations: [String: SchemaPlace] = [:]
    /// `uri#name` → schema carrying `$anchor` or `$dynamicAnchor` `name`.
    private var anchors: [String: SchemaPlace] = [:]
    /// Resource URI → names of its `$dynamicAnchor`s → schema.
    private(set) var dynamicAnchors: [String: [String: SchemaPlace]] = [:]
    private var loaded: Set<String> = []
    private let remotes: [String: JSONValue]

    init(remotes: [String: JSONValue]) {
        var normalized: [String: JSONValue] = [:]
        for (uri, document) in remotes { normalized[URIReference.splitFragment(uri).base] = document }
        for (uri, text) in Metaschemas.documents where normalized[uri] == nil {
            // The bundled texts are fixed and valid; a parse failure would be a build defect.
            if let document = try? JSONParser.parse(text) { normalized[uri] = document }
        }
        self.remotes = normalized
    }

    /// Keywords whose value is one schema.
    static let schemaKeywords: Set<String> = [
        "additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema",
    ]
    /// Keywords whose value is an object of schemas.
    static let schemaMapKeywords: Set<String> = ["properties", "patternProperties", "$defs", "dependentSchemas"]
    /// Keywords whose value is an array of schemas.
    static let schemaArrayKeywords: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]

    /// Indexes a document retrieved from `uri` (empty for an anonymous root).
    mutating func addDocument(_ document: JSONValue, uri: String) throws(SchemaCompilationError) {
        let base = URIReference.splitFragment(uri).base
        loaded.insert(base)
        let root = SchemaPlace(value: document, resource: base, pointer: "", dialect: nil)
        resources[base] = root
        try index(root, scopes: [(base, "")])
    }

    /// Records `registered` (as seen from its parent, before its own `$id` applies: the compiler
    /// applies `$id` itself) and walks its sub-schemas with the base URI its `$id` establishes.
    private mutating func index(
        _ registered: SchemaPlace,
        scopes: [(uri: String, pointer: String)]
    ) throws(SchemaCompilationError) {
        var place = registered
        var scopes = scopes
        if case .object(let object) = place.value {
            if let id = object["$id"] {
                guard case .string(let text) = id else {
                    throw SchemaCompilationError(
                        .invalidKeywordValue,
                        at: place.absolute,
                        keyword: "$id",
                        "$id must be a string"
                    )
                }
                let (uri, fragment) = URIReference.splitFragment(URIReference.resolve(text, against: place.resource))
                if let fragment, !fragment.isEmpty {
                    throw SchemaCompilationError(
                        .invalidKeywordValue,
                        at: place.absolute,
                        keyword: "$id",
                        "$id must not contain a fragment (use $anchor): \(Excerpt.quoted(text))"
                    )
                }
                place.resource = uri
                place.pointer = ""
                if case .string(let dialect) = object["$schema"] { place.dialect = dialect }
                scopes.append((uri, ""))
                if resources[uri] == nil { resources[uri] = registered }
            } else if scopes.count == 1 && scopes[0].pointer.isEmpty, case .string(let dialect) = object["$schema"] {
                place.dialect = dialect
            }
            for scope in scopes {
                let key = scope.uri + "#" + scope.pointer
                if locations[key] == nil { locations[key] = registered }
            }
            for keyword in ["$anchor", "$dynamicAnchor"] {
                guard let value = object[keyword] else { continue }
                guard case .string(let name) = value, Self.isAnchorName(name) else {
                    throw SchemaCompilationError(
                        .invalidKeywordValue,
                        at: place.absolute,
                        keyword: keyword,
                        "\(keyword) must be a plain name like 'node' (letters, digits, '-', '_', '.')"
                    )
                }
                let key = place.resource + "#" + name
                if anchors[key] == nil { anchors[key] = registered }
                if keyword == "$dynamicAnchor" { dynamicAnchors[place.resource, default: [:]][name] = registered }
            }
            for (keyword, value) in object {
                if Self.schemaKeywords.contains(keyword) {
                    try index(
                        place.child(value, keyword),
                        scopes: scopes.map { ($0.uri, $0.pointer + "/" + JSONPointer.escape(keyword)) }
                    )
                } else if Self.schemaMapKeywords.contains(keyword), case .object(let members) = value {
                    for (name, schema) in members {
                        let suffix = "/" + JSONPointer.escape(keyword) + "/" + JSONPointer.escape(name)
                        try index(
                            place.child(schema, keyword, name),
                            scopes: scopes.map { ($0.uri, $0.pointer + suffix) }
                        )
                    }
                } else if keyword == "dependencies", case .object(let members) = value {
                    // Draft 7's combined keyword: only its object and boolean members are schemas.
                    for (name, schema) in members where schema.objectValue != nil || schema.boolValue != nil {
                        let suffix = "/dependencies/" + JSONPointer.escape(name)
                        try index(
                            place.child(schema, keyword, name),
                            scopes: scopes.map { ($0.uri, $0.pointer + suffix) }
                        )
                    }
                } else if Self.schemaArrayKeywords.contains(keyword), case .array(let elements) = value {
                    for (position, schema) in elements.enumerated() {
                        let suffix = "/" + JSONPointer.escape(keyword) + "/\(position)"
                        try index(
                            place.child(schema, keyword, String(position)),
                            scopes: scopes.map { ($0.uri, $0.pointer + suffix) }
                        )
                    }
                }
            }
        } else {
            for scope in scopes {
                let key = scope.uri + "#" + scope.pointer
                if locations[key] == nil { locations[key] = place }
            }
        }
    }

    /// `$anchor` syntax: `^[A-Za-z_][-A-Za-z0-9._]*$`.
    static func isAnchorName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII,
            FormatChecker.isAlpha(first) || first == "_"
        else { return false }
        return name.unicodeScalars.allSatisfy {
            FormatChecker.isAlpha($0) || FormatChecker.isDigit($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// Loads the document for `uri` from the preloaded remotes or bundled meta-schemas, if not yet indexed.
    mutating func load(_ uri: String) throws(SchemaCompilationError) -> Bool {
        if resources[uri] != nil { return true }
        guard !loaded.contains(uri), let document = remotes[uri] else { return false }
        try addDocument(document, uri: uri)
        return resources[uri] != nil
    }

    /// Resolves `reference` against `base` to the schema it identifies, or `nil`.
    mutating func resolve(_ reference: String, against base: String) throws(SchemaCompilationError) -> SchemaPlace? {
        let absolute = URIReference.resolve(reference, against: base)
        let (uri, rawFragment) = URIReference.splitFragment(absolute)
        guard try load(uri), let resource = resources[uri] else { return nil }
        guard let rawFragment, !rawFragment.isEmpty else { return resource }
        guard let fragment = JSONPointer.percentDecode(rawFragment) else { return nil }
        if fragment.unicodeScalars.first == "/" {
            if let place = locations[uri + "#" + fragment] { return place }
            // Not a known sub-schema position (e.g. inside an unknown keyword): walk the pointer.
            guard let tokens = JSONPointer.tokens(fragment) else { return nil }
            var value = resource.value
            for token in tokens {
                switch value {
                case .object(let object):
                    guard let next = object[token] else { return nil }
                    value = next
                case .array(let elements):
                    guard let position = Int(token), position >= 0, position < elements.count,
                        token == String(position)
                    else { return nil }
                    value = elements[position]
                default:
                    return nil
                }
            }
            let dialect = resource.value["$schema"]?.stringValue ?? resource.dialect
            return SchemaPlace(value: value, resource: resource.resource, pointer: fragment, dialect: dialect)
        }
        return anchors[uri + "#" + fragment]
    }

    /// The document text of a meta-schema URI, if known (for `$vocabulary`).
    mutating func metaschema(_ uri: String) throws(SchemaCompilationError) -> JSONValue? {
        let base = URIReference.splitFragment(uri).base
        guard try load(base) else { return nil }
        return resources[base]?.value
    }
}
