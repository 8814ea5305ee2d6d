// SPDX-License-Identifier: Apache-2.0

/// Compiles schema documents into the validator's node arena.
///
/// Each sub-schema becomes one ``SchemaNode``; applicators refer to children by index, and `$ref`
/// targets are compiled once and shared (memoised by absolute location), so recursive schemas are
/// finite graphs. Every keyword value is checked here, once, so that validation never meets a
/// malformed schema.
struct SchemaCompiler {
    var registry: SchemaRegistry
    var tables = CompiledTables()
    /// Absolute location → node, for reference targets.
    private var entries: [String: Int32] = [:]
    private(set) var resourceIDs: [String: Int32] = [:]
    private var dialects: [String: Vocabularies] = [:]
    let formatAssertion: Bool
    /// Keywords refused at compile time (not implemented). Empty: every draft 2020-12 keyword is
    /// implemented; the mechanism stays so that a future keyword can be refused rather than ignored.
    static let refusedKeywords: [String] = []
    /// Anchor names used by dynamic `$dynamicRef`s, by index into `tables.anchorNames`.
    private var anchorIndexes: [String: Int32] = [:]

    init(registry: SchemaRegistry, formatAssertion: Bool) {
        self.registry = registry
        self.formatAssertion = formatAssertion
    }

    // MARK: Entry points

    /// Compiles the schema at `place` as an evaluation entry (its keyword paths start at "").
    mutating func compileEntry(_ place: SchemaPlace) throws(SchemaCompilationError) -> Int32 {
        let key = place.absolute
        if let existing = entries[key] { return existing }
        let index = reserve(place, path: "")
        entries[key] = index
        try compileNode(place, index: index)
        return index
    }

    private mutating func compileChild(_ place: SchemaPlace, path: String) throws(SchemaCompilationError) -> Int32 {
        let index = reserve(place, path: path)
        try compileNode(place, index: index)
        return index
    }

    private mutating func reserve(_ place: SchemaPlace, path: String) -> Int32 {
        tables.nodes.append(SchemaNode())
        tables.paths.append(path)
        tables.absolutes.append(place.absolute)
        return Int32(tables.nodes.count - 1)
    }

    private mutating func internResource(_ uri: String) -> Int32 {
        if let id = resourceIDs[uri] { return id }
        let id = Int32(resourceIDs.count)
        resourceIDs[uri] = id
        return id
    }

    private mutating func intern<T>(_ value: T, into table: WritableKeyPath<CompiledTables, [T]>) -> Int32 {
        tables[keyPath: table].append(value)
        return Int32(tables[keyPath: table].count - 1)
    }

    private mutating func childRange(_ nodes: [Int32]) -> TableRange {
        let start = Int32(tables.children.count)
        tables.children.append(contentsOf: nodes)
        return TableRange(start: start, end: Int32(tables.children.count))
    }

    private mutating func keywordRange(_ keywords: [Keyword]) -> TableRange {
        let start = Int32(tables.keywords.count)
        tables.keywords.append(contentsOf: keywords)
        return TableRange(start: start, end: Int32(tables.keywords.count))
    }

    // MARK: Dialects

    static let draft2020URI = "https://json-schema.org/draft/2020-12/schema"
    static let olderDialects: Set<String> = [
        "http://json-schema.org/draft-03/schema", "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-06/schema", "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
    ]

    private mutating func vocabularies(
        _ dialect: String?,
        at place: SchemaPlace
    ) throws(SchemaCompilationError) -> Vocabularies {
        guard let dialect else { return .draft2020 }
        let uri = URIReference.splitFragment(dialect).base
        if uri == Self.draft2020URI { return .draft2020 }
        if let cached = dialects[uri] { return cached }
        if Self.olderDialects.contains(uri) {
            throw SchemaCompilationError(
                .unsupportedDialect,
                at: place.absolute,
                keyword: "$schema",
                "only draft 2020-12 is supported, this schema declares \(Excerpt.quoted(dialect))"
            )
        }
        guard case .object(let metaschema) = try registry.metaschema(uri) else {
            throw SchemaCompilationError(
                .unsupportedDialect,
                at: place.absolute,
                keyword: "$schema",
                "unknown meta-schema \(Excerpt.quoted(dialect)) (not draft 2020-12 and not among the preloaded schemas)"
            )
        }
        var result: Vocabularies = .draft2020
        if case .object(let declared) = metaschema["$vocabulary"] {
            result = [.core]
            for (vocabulary, required) in declared {
                if let known = Vocabularies.byURI[vocabulary] {
                    result.insert(known)
                } else if required == .bool(true) {
                    throw SchemaCompilationError(
                        .unsupportedVocabulary,
                        at: place.absolute,
                        keyword: "$schema",
                        "the meta-schema requires the unknown vocabulary \(Excerpt.quoted(vocabulary))"
                    )
                }
            }
        }
        dialects[uri] = result
        return result
    }

    // MARK: Keyword values

    private func invalid(_ place: SchemaPlace, _ keyword: String, _ message: String) -> SchemaCompilationError {
        SchemaCompilationError(
            .invalidKeywordValue,
            at: place.absolute + "/" + JSONPointer.percentEncodeFragment(JSONPointer.escape(keyword)),
            keyword: keyword,
            "\(keyword) \(message)"
        )
    }

    private func count(
        _ value: JSONValue,
        _ keyword: String,
        _ place: SchemaPlace
    ) throws(SchemaCompilationError) -> Int {
        guard case .number(let number) = value, number.isInteger, !number.negative || number.isZero else {
            throw invalid(place, keyword, "must be a non-negative integer")
        }
        return number.int64Value.map { Int($0) } ?? Int.max
    }

    private func number(
        _ value: JSONValue,
        _ keyword: String,
        _ place: SchemaPlace
    ) throws(SchemaCompilationError) -> JSONNumber {
        guard case .number(let number) = value else { throw invalid(place, keyword, "must be a number") }
        return number
    }

    private func strings(
        _ value: JSONValue,
        _ keyword: String,
        _ place: SchemaPlace
    ) throws(SchemaCompilationError) -> [String] {
        guard case .array(let elements) = value else { throw invalid(place, keyword, "must be an array of strings") }
        var result: [String] = []
        var seen: Set<ScalarKey> = []
        for element in elements {
            guard case .string(let text) = element else { throw invalid(place, keyword, "must be an array of strings") }
            guard seen.insert(ScalarKey(text)).inserted else {
                throw invalid(place, keyword, "must not repeat \(Excerpt.quoted(text))")
            }
            result.append(text)
        }
        return result
    }

    private mutating func schemaArray(
        _ value: JSONValue,
        _ keyword: String,
        _ place: SchemaPlace,
        _ path: String
    ) throws(SchemaCompilationError) -> [Int32] {
        guard case .array(let elements) = value, !elements.isEmpty else {
            throw invalid(place, keyword, "must be a non-empty array of schemas")
        }
        var result: [Int32] = []
        for (position, element) in elements.enumerated() {
            result.append(
                try compileChild(
                    place.child(element, keyword, String(position)),
                    path: path + "/\(keyword)/\(position)"
                )
            )
        }
        return result
    }

    private mutating func schemaMap(
        _ value: JSONValue,
        _ keyword: String,
        _ place: SchemaPlace,
        _ path: String
    ) throws(SchemaCompilationError) -> [(key: String, node: Int32)] {
        guard case .object(let members) = value else { throw invalid(place, keyword, "must be an object of schemas") }
        var result: [(key: String, node: Int32)] = []
        for (key, schema) in members {
            let child = try compileChild(
                place.child(schema, keyword, key),
                path: path + "/\(keyword)/" + JSONPointer.escape(key)
            )
            result.append((key, child))
        }
        return result
    }

    private mutating func regex(
        _ source: String,
        _ keyword: String,
        _ place: SchemaPlace
    ) throws(SchemaCompilationError) -> ECMARegex {
        do {
            return try ECMARegex(source)
        } catch {
            throw SchemaCompilationError(
                .invalidPattern,
                at: place.absolute + "/" + JSONPointer.percentEncodeFragment(JSONPointer.escape(keyword)),
                keyword: keyword,
                "\(Excerpt.quoted(source)) is not a valid ECMA-262 regular expression: \(error.message) at position \(error.offset)"
            )
        }
    }

    // MARK: Nodes

    private mutating func compileNode(_ original: SchemaPlace, index: Int32) throws(SchemaCompilationError) {
        var place = original
        switch place.value {
        case .bool(let flag):
            tables.nodes[Int(index)] = SchemaNode(boolean: flag ? 1 : 0, resource: internResource(place.resource))
        case .object(let object):
            if case .string(let id) = object["$id"] {
                place.resource = URIReference.splitFragment(URIReference.resolve(id, against: place.resource)).base
                place.pointer = ""
                tables.absolutes[Int(index)] = place.absolute
            }
            if case .string(let dialect) = object["$schema"] { place.dialect = dialect }
            tables.nodes[Int(index)] = try compileObject(object, place: place, path: tables.paths[Int(index)])
        default:
            throw SchemaCompilationError(
                .invalidSchema,
                at: place.absolute,
                "a schema must be an object or a boolean, found \(place.value.typeName)"
            )
        }
    }

    private mutating func compileObject(
        _ object: JSONObject,
        place: SchemaPlace,
        path: String
    ) throws(SchemaCompilationError) -> SchemaNode {
        let vocabularies = try vocabularies(place.dialect, at: place)
        var node = SchemaNode(resource: internResource(place.resource))
        for keyword in Self.refusedKeywords where object[keyword] != nil {
            throw SchemaCompilationError(
                .unsupportedKeyword,
                at: place.absolute + "/" + JSONPointer.percentEncodeFragment(keyword),
                keyword: keyword,
                "\(keyword) is not supported by this validator; the schema is refused rather than half-checked"
            )
        }
        func value(_ keyword: String, _ vocabulary: Vocabularies) -> JSONValue? {
            vocabularies.contains(vocabulary) ? object[keyword] : nil
        }
        let validation = Vocabularies.validation
        let applicator = Vocabularies.applicator
        var general: [Keyword] = []
        var numberKeywords: [Keyword] = []
        var stringKeywords: [Keyword] = []
        var arrayKeywords: [Keyword] = []
        var objectKeywords: [Keyword] = []

        // Validation keywords that apply to any type come first: they are the cheapest.
        if let type = value("type", validation) {
            switch type {
            case .string(let name):
                guard let set = TypeSet(name: name) else {
                    throw invalid(place, "type", "names an unknown type \(Excerpt.quoted(name))")
                }
                node.types = set
            case .array(let names):
                var set: TypeSet = []
                for name in names {
                    guard case .string(let text) = name, let bit = TypeSet(name: text) else {
                        throw invalid(place, "type", "must be a type name or an array of type names")
                    }
                    set.insert(bit)
                }
                node.types = set
            default:
                throw invalid(place, "type", "must be a type name or an array of type names")
            }
            if node.types.isEmpty { throw invalid(place, "type", "must name at least one type") }
        }
        if let constant = value("const", validation) { general.append(.constant(intern(constant, into: \.values))) }
        if let enumeration = value("enum", validation) {
            guard case .array(let values) = enumeration else { throw invalid(place, "enum", "must be an array") }
            general.append(.enumeration(intern((values, values.count > 8 ? Set(values) : nil), into: \.enums)))
        }

        // Core: $ref.
        if let reference = value("$ref", .core) {
            guard case .string(let text) = reference else { throw invalid(place, "$ref", "must be a string") }
            guard let target = try registry.resolve(text, against: place.resource) else {
                throw SchemaCompilationError(
                    .unresolvableReference,
                    at: place.absolute + "/$ref",
                    keyword: "$ref",
                    "cannot resolve $ref \(Excerpt.quoted(text)) (resolved to \(Excerpt.quoted(URIReference.resolve(text, against: place.resource), limit: 200)))"
                )
            }
            general.append(.ref(try compileEntry(target)))
        }

        // Core: $dynamicRef. It behaves like $ref unless its initial target carries a $dynamicAnchor with
        // the fragment's name ("bookending"); then the outermost resource in the dynamic scope that
        // declares that anchor wins at validation time.
        if let reference = value("$dynamicRef", .core) {
            guard case .string(let text) = reference else { throw invalid(place, "$dynamicRef", "must be a string") }
            guard let target = try registry.resolve(text, against: place.resource) else {
                throw SchemaCompilationError(
                    .unresolvableReference,
                    at: place.absolute + "/$dynamicRef",
                    keyword: "$dynamicRef",
                    "cannot resolve $dynamicRef \(Excerpt.quoted(text)) (resolved to \(Excerpt.quoted(URIReference.resolve(text, against: place.resource), limit: 200)))"
                )
            }
            let initial = try compileEntry(target)
            var anchor: Int32 = -1
            if let fragment = URIReference.splitFragment(text).fragment, !fragment.isEmpty,
                fragment.unicodeScalars.first != "/",
                case .string(let declared) = target.value["$dynamicAnchor"], declared == fragment
            {
                anchor = internAnchor(fragment)
            }
            general.append(.dynamicRef(initial: initial, anchor: anchor))
        }

        // In-place applicators.
        if let all = value("allOf", applicator) {
            general.append(.allOf(childRange(try schemaArray(all, "allOf", place, path))))
        }
        if let any = value("anyOf", applicator) {
            general.append(.anyOf(childRange(try schemaArray(any, "anyOf", place, path))))
        }
        if let one = value("oneOf", applicator) {
            general.append(.oneOf(childRange(try schemaArray(one, "oneOf", place, path))))
        }
        if let not = value("not", applicator) {
            general.append(.not(try compileChild(place.child(not, "not"), path: path + "/not")))
        }
        if let condition = value("if", applicator) {
            let conditionNode = try compileChild(place.child(condition, "if"), path: path + "/if")
            var thenNode: Int32 = -1
            var elseNode: Int32 = -1
            if let then = value("then", applicator) {
                thenNode = try compileChild(place.child(then, "then"), path: path + "/then")
            }
            if let otherwise = value("else", applicator) {
                elseNode = try compileChild(place.child(otherwise, "else"), path: path + "/else")
            }
            general.append(.conditional(condition: conditionNode, then: thenNode, else: elseNode))
        }
        if let dependent = value("dependentSchemas", applicator) {
            let pairs = try schemaMap(dependent, "dependentSchemas", place, path)
            objectKeywords.append(.dependentSchemas(intern(pairs, into: \.dependentSchemas)))
        }

        // `dependencies`: draft 7's keyword, split in 2019-09 into `dependentSchemas` (its schema members)
        // and `dependentRequired` (its string-array members). The 2020-12 meta-schema still declares it,
        // deprecated, with exactly that shape, and schemas written for older drafts still use it: applying
        // its old meaning is what their authors expect, where treating it as an annotation would silently
        // accept what they meant to reject.
        if let dependencies = value("dependencies", applicator) {
            guard case .object(let members) = dependencies else {
                throw invalid(place, "dependencies", "must be an object of schemas and string arrays")
            }
            var schemas: [(key: String, node: Int32)] = []
            var required: [(key: String, required: [String])] = []
            for (key, member) in members {
                switch member {
                case .array:
                    required.append((key, try strings(member, "dependencies", place)))
                case .object, .bool:
                    let child = try compileChild(
                        place.child(member, "dependencies", key),
                        path: path + "/dependencies/" + JSONPointer.escape(key)
                    )
                    schemas.append((key, child))
                default:
                    throw invalid(place, "dependencies", "must be an object of schemas and string arrays")
                }
            }
            if !required.isEmpty { objectKeywords.append(.dependencies(intern(required, into: \.dependentRequired))) }
            if !schemas.isEmpty { objectKeywords.append(.dependentSchemas(intern(schemas, into: \.dependentSchemas))) }
        }

        // Numbers.
        if let multiple = value("multipleOf", validation) {
            let divisor = try number(multiple, "multipleOf", place)
            guard !divisor.negative, !divisor.isZero else {
                throw invalid(place, "multipleOf", "must be greater than 0")
            }
            guard divisor.digitCount <= JSONNumber.maxSmallDigits else {
                throw SchemaCompilationError(
                    .unsupportedKeyword,
                    at: place.absolute + "/multipleOf",
                    keyword: "multipleOf",
                    "multipleOf with more than 19 significant digits is not supported"
                )
            }
            numberKeywords.append(.multipleOf(intern(divisor, into: \.numbers)))
        }
        if let bound = value("minimum", validation) {
            numberKeywords.append(.minimum(intern(try number(bound, "minimum", place), into: \.numbers)))
        }
        if let bound = value("exclusiveMinimum", validation) {
            numberKeywords.append(
                .exclusiveMinimum(intern(try number(bound, "exclusiveMinimum", place), into: \.numbers))
            )
        }
        if let bound = value("maximum", validation) {
            numberKeywords.append(.maximum(intern(try number(bound, "maximum", place), into: \.numbers)))
        }
        if let bound = value("exclusiveMaximum", validation) {
            numberKeywords.append(
                .exclusiveMaximum(intern(try number(bound, "exclusiveMaximum", place), into: \.numbers))
            )
        }

        // Strings: lengths before pattern, so the regex never sees over-long input when maxLength is set.
        if let bound = value("minLength", validation) {
            stringKeywords.append(.minLength(try count(bound, "minLength", place)))
        }
        if let bound = value("maxLength", validation) {
            stringKeywords.append(.maxLength(try count(bound, "maxLength", place)))
        }
        if let pattern = value("pattern", validation) {
            guard case .string(let source) = pattern else { throw invalid(place, "pattern", "must be a string") }
            stringKeywords.append(.pattern(intern(try regex(source, "pattern", place), into: \.regexes)))
        }
        let formatVocabulary = vocabularies.contains(.formatAssertion) || vocabularies.contains(.formatAnnotation)
        if formatVocabulary, let format = object["format"] {
            guard case .string(let name) = format else { throw invalid(place, "format", "must be a string") }
            if formatAssertion || vocabularies.contains(.formatAssertion), let check = FormatChecker.checker(for: name)
            {
                stringKeywords.append(.format(intern((name, check), into: \.formats)))
            }
        }

        // Arrays.
        if let bound = value("minItems", validation) {
            arrayKeywords.append(.minItems(try count(bound, "minItems", place)))
        }
        if let bound = value("maxItems", validation) {
            arrayKeywords.append(.maxItems(try count(bound, "maxItems", place)))
        }
        if let unique = value("uniqueItems", validation) {
            guard case .bool(let flag) = unique else { throw invalid(place, "uniqueItems", "must be a boolean") }
            if flag { arrayKeywords.append(.uniqueItems) }
        }
        var prefixCount: Int32 = 0
        if let prefix = value("prefixItems", applicator) {
            let children = try schemaArray(prefix, "prefixItems", place, path)
            prefixCount = Int32(children.count)
            arrayKeywords.append(.prefixItems(childRange(children)))
        }
        if let items = value("items", applicator) {
            let child = try compileChild(place.child(items, "items"), path: path + "/items")
            arrayKeywords.append(.items(child, from: prefixCount))
        }
        if let contains = value("contains", applicator) {
            let child = try compileChild(place.child(contains, "contains"), path: path + "/contains")
            var minimum = 1
            var maximum = -1
            if let bound = value("minContains", validation) { minimum = try count(bound, "minContains", place) }
            if let bound = value("maxContains", validation) { maximum = try count(bound, "maxContains", place) }
            arrayKeywords.append(.contains(child, min: minimum, max: maximum))
        }

        // Objects.
        if let bound = value("minProperties", validation) {
            objectKeywords.append(.minProperties(try count(bound, "minProperties", place)))
        }
        if let bound = value("maxProperties", validation) {
            objectKeywords.append(.maxProperties(try count(bound, "maxProperties", place)))
        }
        if let required = value("required", validation) {
            let names = try strings(required, "required", place)
            if !names.isEmpty { objectKeywords.append(.required(intern(names, into: \.stringLists))) }
        }
        if let dependent = value("dependentRequired", validation) {
            guard case .object(let members) = dependent else {
                throw invalid(place, "dependentRequired", "must be an object of string arrays")
            }
            var pairs: [(key: String, required: [String])] = []
            for (key, names) in members { pairs.append((key, try strings(names, "dependentRequired", place))) }
            objectKeywords.append(.dependentRequired(intern(pairs, into: \.dependentRequired)))
        }
        var propertyApplicator = PropertyApplicator()
        var hasPropertyApplicator = false
        if let properties = value("properties", applicator) {
            propertyApplicator.properties = try schemaMap(properties, "properties", place, path)
            if propertyApplicator.properties.count > 8 {
                var table: [ScalarKey: Int] = [:]
                for (position, property) in propertyApplicator.properties.enumerated() {
                    table[ScalarKey(property.key)] = position
                }
                propertyApplicator.table = table
            }
            hasPropertyApplicator = true
        }
        if let patterns = value("patternProperties", applicator) {
            guard case .object(let members) = patterns else {
                throw invalid(place, "patternProperties", "must be an object of schemas")
            }
            for (source, schema) in members {
                let compiled = intern(try regex(source, "patternProperties", place), into: \.regexes)
                let child = try compileChild(
                    place.child(schema, "patternProperties", source),
                    path: path + "/patternProperties/" + JSONPointer.escape(source)
                )
                propertyApplicator.patterns.append((compiled, child))
            }
            hasPropertyApplicator = true
        }
        if let additional = value("additionalProperties", applicator) {
            propertyApplicator.additional = try compileChild(
                place.child(additional, "additionalProperties"),
                path: path + "/additionalProperties"
            )
            hasPropertyApplicator = true
        }
        if hasPropertyApplicator { objectKeywords.append(.properties(intern(propertyApplicator, into: \.applicators))) }
        if let names = value("propertyNames", applicator) {
            objectKeywords.append(
                .propertyNames(try compileChild(place.child(names, "propertyNames"), path: path + "/propertyNames"))
            )
        }

        // Unevaluated: applied last, to what nothing else in this schema (or its successful in-place
        // sub-schemas) evaluated.
        if let unevaluated = value("unevaluatedItems", .unevaluated) {
            node.unevaluatedItems = try compileChild(
                place.child(unevaluated, "unevaluatedItems"),
                path: path + "/unevaluatedItems"
            )
        }
        if let unevaluated = value("unevaluatedProperties", .unevaluated) {
            node.unevaluatedProperties = try compileChild(
                place.child(unevaluated, "unevaluatedProperties"),
                path: path + "/unevaluatedProperties"
            )
        }

        node.general = keywordRange(general)
        node.numberKeywords = keywordRange(numberKeywords)
        node.stringKeywords = keywordRange(stringKeywords)
        node.arrayKeywords = keywordRange(arrayKeywords)
        node.objectKeywords = keywordRange(objectKeywords)
        return node
    }

    private mutating func internAnchor(_ name: String) -> Int32 {
        if let index = anchorIndexes[name] { return index }
        let index = Int32(tables.anchorNames.count)
        tables.anchorNames.append(name)
        anchorIndexes[name] = index
        return index
    }

    /// Compiles, for every resource that has compiled nodes, the schemas carrying a `$dynamicAnchor`
    /// that some dynamic `$dynamicRef` names, and fills `tables.dynamicAnchors`.
    ///
    /// Compiling those schemas can reach new resources and new dynamic references, so this repeats
    /// until nothing new appears.
    mutating func resolveDynamicAnchors() throws(SchemaCompilationError) {
        var done: Set<String> = []
        var found: [(resource: Int32, anchor: Int32, node: Int32)] = []
        var changed = true
        while changed {
            changed = false
            for (uri, resource) in resourceIDs.sorted(by: { $0.value < $1.value }) {
                for (name, anchor) in anchorIndexes.sorted(by: { $0.value < $1.value }) {
                    let key = uri + "#" + name
                    guard !done.contains(key) else { continue }
                    done.insert(key)
                    guard let place = registry.dynamicAnchors[uri]?[name] else { continue }
                    found.append((resource, anchor, try compileEntry(place)))
                    changed = true
                }
            }
        }
        tables.dynamicAnchors = Array(
            repeating: Array(repeating: -1, count: tables.anchorNames.count),
            count: resourceIDs.count
        )
        for (resource, anchor, node) in found { tables.dynamicAnchors[Int(resource)][Int(anchor)] = node }
    }

    // MARK: Termination

    /// Refuses reference loops that never move into the instance (e.g. `{"$ref": "#"}`), which would
    /// make validation recurse forever on any instance.
    func checkInPlaceCycles() throws(SchemaCompilationError) {
        // Iterative depth-first search over in-place edges; 0 = unvisited, 1 = on stack, 2 = done.
        let count = tables.nodes.count
        var state = [UInt8](repeating: 0, count: count)
        for start in 0..<count where state[start] == 0 {
            var stack: [(node: Int, edges: [Int32], next: Int)] = [(start, inPlaceEdges(start), 0)]
            state[start] = 1
            while !stack.isEmpty {
                let top = stack.count - 1
                if stack[top].next == stack[top].edges.count {
                    state[stack[top].node] = 2
                    stack.removeLast()
                    continue
                }
                let target = Int(stack[top].edges[stack[top].next])
                stack[top].next += 1
                if state[target] == 1 {
                    throw SchemaCompilationError(
                        .infiniteRecursion,
                        at: tables.absolutes[target],
                        keyword: "$ref",
                        "references loop back to this schema without consuming any of the instance, so validation would never end"
                    )
                }
                if state[target] == 0 {
                    state[target] = 1
                    stack.append((target, inPlaceEdges(target), 0))
                }
            }
        }
    }

    private func inPlaceEdges(_ index: Int) -> [Int32] {
        var edges: [Int32] = []
        let node = tables.nodes[index]
        for range in [node.general, node.objectKeywords] {
            for keyword in tables.keywords[Int(range.start)..<Int(range.end)] {
                switch keyword {
                case .ref(let target): edges.append(target)
                case .dynamicRef(let initial, let anchor):
                    edges.append(initial)
                    if anchor >= 0 {
                        for resource in tables.dynamicAnchors where resource[Int(anchor)] >= 0 {
                            edges.append(resource[Int(anchor)])
                        }
                    }
                case .allOf(let range), .anyOf(let range), .oneOf(let range):
                    edges.append(contentsOf: tables.children[Int(range.start)..<Int(range.end)])
                case .not(let child): edges.append(child)
                case .conditional(let condition, let then, let otherwise):
                    edges.append(condition)
                    if then >= 0 { edges.append(then) }
                    if otherwise >= 0 { edges.append(otherwise) }
                case .dependentSchemas(let table):
                    edges.append(contentsOf: tables.dependentSchemas[Int(table)].map(\.node))
                default: break
                }
            }
        }
        return edges
    }
}
