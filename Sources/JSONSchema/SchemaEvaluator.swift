// SPDX-License-Identifier: Apache-2.0

/// Which members or items of the instance under evaluation have been evaluated (for `unevaluated*`).
///
/// Positions are member positions of the object (or array indices), so the set is a plain bit set.
struct EvaluatedSet {
    var all = false
    var bits: [UInt64] = []

    mutating func mark(_ position: Int) {
        let word = position >> 6
        if word >= bits.count { bits.append(contentsOf: repeatElement(0, count: word - bits.count + 1)) }
        bits[word] |= 1 << UInt64(position & 63)
    }

    func contains(_ position: Int) -> Bool {
        if all { return true }
        let word = position >> 6
        return word < bits.count && bits[word] & (1 << UInt64(position & 63)) != 0
    }

    mutating func formUnion(_ other: EvaluatedSet) {
        if other.all { all = true }
        if other.bits.count > bits.count {
            bits.append(contentsOf: repeatElement(0, count: other.bits.count - bits.count))
        }
        for (word, value) in other.bits.enumerated() { bits[word] |= value }
    }
}

/// One validation run over one instance.
///
/// In flag mode (`collecting == false`) every keyword returns as soon as the answer is known and
/// nothing is allocated for locations or messages. In collecting mode the instance location is kept
/// as a stack of path components and the keyword location as the schema path plus a prefix that
/// grows each time a `$ref` is crossed; strings are only built when an error is reported.
struct SchemaEvaluation {
    enum PathComponent {
        case key(String)
        case index(Int)
    }

    /// Nested schema evaluations allowed before the instance is rejected as too deep.
    ///
    /// Bounds stack use for schemas that recurse through `$ref` on deeply nested instances: release
    /// builds use well under 1 MB at this depth (debug builds, with their larger frames, about 5 MB).
    /// The parser's default depth of 128 leaves room for about four nested schema evaluations per
    /// level of the instance, which ordinary recursive schemas do not exceed.
    static let maxDepth = 500

    let compiled: CompiledSchema
    var collecting: Bool
    var errors: [ValidationError] = []
    private var path: [PathComponent] = []
    private var refPrefix = ""
    private var crossedRef = false
    private var depth = 0
    /// Set when the answer cannot be trusted to be "valid" (regex budget, depth); forces invalid.
    private(set) var aborted = false
    /// Why the evaluation was aborted, as an error (built even while probing, so it is never lost).
    private(set) var abortError: ValidationError?
    /// Set when `maxErrors` errors were collected; evaluation stops (the verdict is already known to be
    /// "invalid": collecting only runs after the flag pass failed).
    private var stopped = false
    private var annotations: [EvaluatedSet] = []
    private var scope: [Int32] = []

    init(compiled: CompiledSchema, collecting: Bool) {
        self.compiled = compiled
        self.collecting = collecting
    }

    // MARK: Reporting

    private func instancePointer() -> String {
        var pointer = ""
        for component in path {
            switch component {
            case .key(let key): pointer += "/" + JSONPointer.escape(key)
            case .index(let index): pointer += "/\(index)"
            }
        }
        return pointer
    }

    /// Records an error (collecting mode only). The message is an autoclosure: flag mode never builds
    /// it, and its string temporaries stay out of the recursive evaluation frames.
    private mutating func report(_ index: Int32, _ keyword: String?, _ message: @autoclosure () -> String) {
        guard collecting else { return }
        if errors.count >= compiled.maxErrors {
            stopped = true
            return
        }
        let suffix = keyword.map { "/" + $0 } ?? ""
        let pointer = instancePointer()
        let prefix = pointer.isEmpty ? "" : Excerpt.location(pointer) + ": "
        errors.append(
            ValidationError(
                instanceLocation: pointer,
                keywordLocation: refPrefix + compiled.paths[Int(index)] + suffix,
                absoluteKeywordLocation: crossedRef ? compiled.absolutes[Int(index)] + suffix : nil,
                message: prefix + message()
            )
        )
    }

    private static func describe(_ value: JSONValue) -> String { Excerpt.value(value) }

    /// Stops the evaluation with a verdict of "invalid" that nothing (not even `not`) can turn around.
    private mutating func abort(_ index: Int32, _ keyword: String?, _ message: @autoclosure () -> String) {
        aborted = true
        if abortError == nil {
            let suffix = keyword.map { "/" + $0 } ?? ""
            let pointer = instancePointer()
            abortError = ValidationError(
                instanceLocation: pointer,
                keywordLocation: refPrefix + compiled.paths[Int(index)] + suffix,
                absoluteKeywordLocation: crossedRef ? compiled.absolutes[Int(index)] + suffix : nil,
                message: (pointer.isEmpty ? "" : Excerpt.location(pointer) + ": ") + message()
            )
        }
        report(index, keyword, message())
    }

    // MARK: Nodes

    /// Evaluates node `index` against `instance`; `slot` is the annotation slot to record into, or -1.
    mutating func evaluate(_ index: Int32, _ instance: JSONValue, _ slot: Int) -> Bool {
        let node = compiled.nodes[Int(index)]
        if node.boolean >= 0 {
            if node.boolean == 0 { reportFalse(index, instance) }
            return node.boolean == 1
        }
        if stopped || aborted { return false }
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxDepth {
            abort(index, nil, "the schema recurses more than \(Self.maxDepth) levels deep on this instance")
            return false
        }
        var pushedScope = false
        if compiled.usesDynamicScope && scope.last != node.resource {
            scope.append(node.resource)
            pushedScope = true
        }
        defer { if pushedScope { scope.removeLast() } }

        var own = slot
        if node.tracksAnnotations {
            annotations.append(EvaluatedSet())
            own = annotations.count - 1
        }
        defer { if node.tracksAnnotations { annotations.removeLast() } }

        var valid = true
        if node.types != .any && node.types.isDisjoint(with: TypeSet.of(instance)) {
            if !collecting { return false }
            valid = false
            report(
                index,
                "type",
                "\(Self.describe(instance)) is not of type \(node.types.names.joined(separator: " or "))"
            )
        }
        var position = node.general.start
        while position < node.general.end {
            if !evaluateGeneral(compiled.keywords[Int(position)], index, instance, own) {
                if !collecting { return false }
                valid = false
            }
            position += 1
        }
        switch instance {
        case .number(let number):
            position = node.numberKeywords.start
            while position < node.numberKeywords.end {
                if !evaluateNumber(compiled.keywords[Int(position)], index, number) {
                    if !collecting { return false }
                    valid = false
                }
                position += 1
            }
        case .string(let string):
            var length = -1
            position = node.stringKeywords.start
            while position < node.stringKeywords.end {
                if !evaluateString(compiled.keywords[Int(position)], index, string, &length) {
                    if !collecting { return false }
                    valid = false
                }
                position += 1
            }
        case .array(let items):
            position = node.arrayKeywords.start
            while position < node.arrayKeywords.end {
                if !evaluateArray(compiled.keywords[Int(position)], index, items, own) {
                    if !collecting { return false }
                    valid = false
                }
                position += 1
            }
            if node.unevaluatedItems >= 0 {
                for (offset, item) in items.enumerated() where !stopped && !annotations[own].contains(offset) {
                    if collecting { path.append(.index(offset)) }
                    let ok = evaluate(node.unevaluatedItems, item, -1)
                    if collecting { path.removeLast() }
                    if !ok {
                        if !collecting { return false }
                        valid = false
                    }
                }
                annotations[own].all = true
            }
        case .object(let object):
            position = node.objectKeywords.start
            while position < node.objectKeywords.end {
                if !evaluateObject(compiled.keywords[Int(position)], index, object, own) {
                    if !collecting { return false }
                    valid = false
                }
                position += 1
            }
            if node.unevaluatedProperties >= 0 {
                for (offset, member) in object.members.enumerated() where !stopped && !annotations[own].contains(offset)
                {
                    if collecting { path.append(.key(member.key)) }
                    let ok = evaluate(node.unevaluatedProperties, member.value, -1)
                    if collecting { path.removeLast() }
                    if !ok {
                        if !collecting { return false }
                        valid = false
                    }
                }
                annotations[own].all = true
            }
        default:
            break
        }
        if valid && node.tracksAnnotations && slot >= 0 {
            annotations[slot].formUnion(annotations[own])
        }
        return valid && !aborted
    }

    private mutating func reportFalse(_ index: Int32, _ instance: JSONValue) {
        guard collecting else { return }
        let nodePath = compiled.paths[Int(index)]
        if nodePath.hasSuffix("/additionalProperties") || nodePath.hasSuffix("/unevaluatedProperties"),
            case .key(let key) = path.last
        {
            report(index, nil, "property \(Excerpt.quoted(key)) is not allowed")
        } else if nodePath.hasSuffix("/items") || nodePath.hasSuffix("/unevaluatedItems"),
            case .index(let position) = path.last
        {
            report(index, nil, "item \(position) is not allowed (the array has too many items)")
        } else {
            report(index, nil, "\(Self.describe(instance)) is not allowed here (the schema is false)")
        }
    }

    /// Evaluates without reporting (for `not`, `if`, `contains`, branch probing).
    private mutating func probe(_ index: Int32, _ instance: JSONValue, _ slot: Int) -> Bool {
        let saved = collecting
        collecting = false
        defer { collecting = saved }
        return evaluate(index, instance, slot)
    }

    /// Evaluates `child` in a fresh annotation slot (when annotations are wanted) and merges on success.
    private mutating func evaluateBranch(_ child: Int32, _ instance: JSONValue, _ own: Int, quiet: Bool) -> Bool {
        var slot = -1
        if own >= 0 {
            annotations.append(EvaluatedSet())
            slot = annotations.count - 1
        }
        let ok = quiet ? probe(child, instance, slot) : evaluate(child, instance, slot)
        if slot >= 0 {
            if ok { annotations[own].formUnion(annotations[slot]) }
            annotations.removeLast()
        }
        return ok
    }

    private func children(_ range: TableRange) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(rebasing: compiled.children[Int(range.start)..<Int(range.end)])
    }

    // MARK: Keywords

    private mutating func evaluateGeneral(_ keyword: Keyword, _ index: Int32, _ instance: JSONValue, _ own: Int) -> Bool
    {
        switch keyword {
        case .constant(let value):
            let expected = compiled.values[Int(value)]
            if instance == expected { return true }
            report(index, "const", "\(Self.describe(instance)) is not the required value \(Self.describe(expected))")
            return false
        case .enumeration(let table):
            let entry = compiled.enums[Int(table)]
            if let set = entry.set {
                if set.contains(instance) { return true }
            } else if entry.values.contains(instance) {
                return true
            }
            let listed =
                entry.values.prefix(8).map(Self.describe).joined(separator: ", ")
                + (entry.values.count > 8 ? ", …" : "")
            report(index, "enum", "\(Self.describe(instance)) is not one of \(listed)")
            return false
        case .ref(let target):
            return evaluateReference(target, index, "$ref", instance, own)
        case .dynamicRef(let initial, let anchor):
            var target = initial
            for resource in scope where anchor >= 0 {
                let candidate = compiled.dynamicAnchors[Int(resource)][Int(anchor)]
                if candidate >= 0 {
                    target = candidate
                    break
                }
            }
            return evaluateReference(target, index, "$dynamicRef", instance, own)
        case .allOf(let range):
            var valid = true
            for child in children(range) where !evaluate(child, instance, own) {
                if !collecting { return false }
                valid = false
            }
            return valid
        case .anyOf(let range):
            let branches = children(range)
            if !collecting {
                var matched = false
                for child in branches where evaluateBranch(child, instance, own, quiet: true) {
                    matched = true
                    if own < 0 { break }  // annotations need every successful branch
                }
                return matched
            }
            var matched = false
            var failures: [String] = []
            for child in branches {
                let mark = errors.count
                if evaluateBranch(child, instance, own, quiet: false) {
                    matched = true
                } else {
                    failures.append(errors.count > mark ? errors[mark].message : "invalid")
                }
                errors.removeSubrange(mark...)
            }
            if !matched {
                report(
                    index,
                    "anyOf",
                    "\(Self.describe(instance)) matches none of the \(branches.count) alternatives (\(Self.summary(failures)))"
                )
            }
            return matched
        case .oneOf(let range):
            let branches = children(range)
            var matches: [Int] = []
            var failures: [String] = []
            for (position, child) in branches.enumerated() {
                let mark = errors.count
                if evaluateBranch(child, instance, own, quiet: !collecting) {
                    matches.append(position)
                    if !collecting && matches.count > 1 { return false }
                } else if collecting {
                    failures.append(errors.count > mark ? errors[mark].message : "invalid")
                }
                if collecting { errors.removeSubrange(mark...) }
            }
            if matches.count == 1 { return true }
            if matches.isEmpty {
                report(
                    index,
                    "oneOf",
                    "\(Self.describe(instance)) matches none of the \(branches.count) alternatives (\(Self.summary(failures)))"
                )
            } else {
                report(
                    index,
                    "oneOf",
                    "\(Self.describe(instance)) matches alternatives \(matches.map { "#\($0)" }.joined(separator: ", ")), but must match exactly one"
                )
            }
            return false
        case .not(let child):
            if !probe(child, instance, -1) { return !aborted }
            report(index, "not", "\(Self.describe(instance)) must not match the schema in 'not'")
            return false
        case .conditional(let condition, let then, let otherwise):
            if evaluateBranch(condition, instance, own, quiet: true) {
                if then >= 0 { return evaluate(then, instance, own) }
            } else if otherwise >= 0 {
                return evaluate(otherwise, instance, own)
            }
            return true
        default:
            return true
        }
    }

    private static func summary(_ failures: [String]) -> String {
        failures.enumerated().map { "#\($0.offset): \($0.element)" }.joined(separator: "; ")
    }

    private mutating func evaluateReference(
        _ target: Int32,
        _ index: Int32,
        _ keyword: String,
        _ instance: JSONValue,
        _ own: Int
    ) -> Bool {
        guard collecting else { return evaluate(target, instance, own) }
        let savedPrefix = refPrefix
        let savedCrossed = crossedRef
        refPrefix = refPrefix + compiled.paths[Int(index)] + "/" + keyword
        crossedRef = true
        defer {
            refPrefix = savedPrefix
            crossedRef = savedCrossed
        }
        return evaluate(target, instance, own)
    }

    private mutating func evaluateNumber(_ keyword: Keyword, _ index: Int32, _ number: JSONNumber) -> Bool {
        switch keyword {
        case .multipleOf(let table):
            let divisor = compiled.numbers[Int(table)]
            if number.isMultiple(of: divisor) { return true }
            report(index, "multipleOf", "\(number.literal) is not a multiple of \(divisor.literal)")
        case .minimum(let table):
            let bound = compiled.numbers[Int(table)]
            if number.compare(bound) >= 0 { return true }
            report(index, "minimum", "\(number.literal) is less than the minimum of \(bound.literal)")
        case .exclusiveMinimum(let table):
            let bound = compiled.numbers[Int(table)]
            if number.compare(bound) > 0 { return true }
            report(index, "exclusiveMinimum", "\(number.literal) is not greater than \(bound.literal)")
        case .maximum(let table):
            let bound = compiled.numbers[Int(table)]
            if number.compare(bound) <= 0 { return true }
            report(index, "maximum", "\(number.literal) is greater than the maximum of \(bound.literal)")
        case .exclusiveMaximum(let table):
            let bound = compiled.numbers[Int(table)]
            if number.compare(bound) < 0 { return true }
            report(index, "exclusiveMaximum", "\(number.literal) is not less than \(bound.literal)")
        default:
            return true
        }
        return false
    }

    private mutating func evaluateString(
        _ keyword: Keyword,
        _ index: Int32,
        _ string: String,
        _ length: inout Int
    ) -> Bool {
        switch keyword {
        case .minLength(let minimum):
            let bytes = string.utf8.count
            // A scalar takes 1 to 4 UTF-8 bytes, so the byte count often decides without counting.
            if bytes / 4 >= minimum { return true }
            if bytes >= minimum {
                if length < 0 { length = ScalarString.scalarCount(string) }
                if length >= minimum { return true }
            }
            report(
                index,
                "minLength",
                "\(Self.describe(.string(string))) is shorter than \(minimum) character\(minimum == 1 ? "" : "s")"
            )
        case .maxLength(let maximum):
            if string.utf8.count <= maximum { return true }
            if length < 0 { length = ScalarString.scalarCount(string) }
            if length <= maximum { return true }
            report(
                index,
                "maxLength",
                "\(Self.describe(.string(string))) is longer than \(maximum) character\(maximum == 1 ? "" : "s")"
            )
        case .pattern(let table):
            let outcome = compiled.regexes[Int(table)].search(string)
            if outcome == .match { return true }
            let source = compiled.regexes[Int(table)].source
            if outcome == .noMatch {
                report(index, "pattern", "\(Self.describe(.string(string))) does not match the pattern \(source)")
            } else {
                abort(index, "pattern", "the pattern \(source) needs too many steps on this string; it is rejected")
            }
        case .format(let table):
            if compiled.formats[Int(table)].check(string) { return true }
            let name = compiled.formats[Int(table)].name
            report(index, "format", "\(Self.describe(.string(string))) is not a valid \(name)")
        default:
            return true
        }
        return false
    }

    private mutating func evaluateArray(_ keyword: Keyword, _ index: Int32, _ items: [JSONValue], _ own: Int) -> Bool {
        switch keyword {
        case .minItems(let minimum):
            if items.count >= minimum { return true }
            report(
                index,
                "minItems",
                "the array has \(items.count) item\(items.count == 1 ? "" : "s"), fewer than the minimum of \(minimum)"
            )
            return false
        case .maxItems(let maximum):
            if items.count <= maximum { return true }
            report(index, "maxItems", "the array has \(items.count) items, more than the maximum of \(maximum)")
            return false
        case .uniqueItems:
            guard items.count > 1 else { return true }
            // Hash each item once and index positions (no copies of the items); equal hashes are
            // confirmed with instance equality.
            var seen = KeyIndex(minimumCapacity: items.count)
            var firstDuplicate: (Int, Int)? = nil
            var duplicates = 0
            for position in items.indices {
                var hasher = Hasher()
                hasher.combine(items[position])
                let hash = hasher.finalize()
                if let earlier = seen.find(hash: hash, matches: { items[$0] == items[position] }) {
                    if !collecting { return false }
                    if firstDuplicate == nil { firstDuplicate = (earlier, position) }
                    duplicates += 1
                } else {
                    seen.insert(hash: hash, position: position)
                }
            }
            guard let (earlier, later) = firstDuplicate else { return true }
            let more = duplicates > 1 ? " (and \(duplicates - 1) more duplicate\(duplicates == 2 ? "" : "s"))" : ""
            report(
                index,
                "uniqueItems",
                "items \(earlier) and \(later) are equal (\(Self.describe(items[later])))\(more); items must be unique"
            )
            return false
        case .prefixItems(let range):
            var valid = true
            for (position, child) in children(range).enumerated() where position < items.count {
                if collecting { path.append(.index(position)) }
                let ok = evaluate(child, items[position], -1)
                if collecting { path.removeLast() }
                if !ok {
                    if !collecting { return false }
                    valid = false
                }
                if own >= 0 { annotations[own].mark(position) }
            }
            return valid
        case .items(let child, let from):
            var valid = true
            var position = Int(from)
            while position < items.count && !stopped {
                if collecting { path.append(.index(position)) }
                let ok = evaluate(child, items[position], -1)
                if collecting { path.removeLast() }
                if !ok {
                    if !collecting { return false }
                    valid = false
                }
                position += 1
            }
            if own >= 0 { annotations[own].all = true }
            return valid
        case .contains(let child, let minimum, let maximum):
            var matches = 0
            for (position, item) in items.enumerated() where probe(child, item, -1) {
                matches += 1
                if own >= 0 {
                    annotations[own].mark(position)
                } else if !collecting && maximum < 0 && matches >= minimum {
                    break
                }
            }
            if aborted { return false }
            if matches < minimum {
                if minimum == 1 {
                    report(index, "contains", "the array has no item that matches the schema in 'contains'")
                } else {
                    report(
                        index,
                        "minContains",
                        "the array has \(matches) item\(matches == 1 ? "" : "s") matching 'contains', fewer than minContains \(minimum)"
                    )
                }
                return false
            }
            if maximum >= 0 && matches > maximum {
                report(
                    index,
                    "maxContains",
                    "the array has \(matches) items matching 'contains', more than maxContains \(maximum)"
                )
                return false
            }
            return true
        default:
            return true
        }
    }

    private mutating func evaluateObject(_ keyword: Keyword, _ index: Int32, _ object: JSONObject, _ own: Int) -> Bool {
        switch keyword {
        case .minProperties(let minimum):
            if object.count >= minimum { return true }
            report(
                index,
                "minProperties",
                "the object has \(object.count) propert\(object.count == 1 ? "y" : "ies"), fewer than the minimum of \(minimum)"
            )
            return false
        case .maxProperties(let maximum):
            if object.count <= maximum { return true }
            report(
                index,
                "maxProperties",
                "the object has \(object.count) properties, more than the maximum of \(maximum)"
            )
            return false
        case .required(let table):
            var valid = true
            for name in compiled.stringLists[Int(table)] where object.position(of: name) == nil {
                if !collecting { return false }
                valid = false
                report(index, "required", "missing required property \(Excerpt.quoted(name))")
            }
            return valid
        case .dependentRequired(let table), .dependencies(let table):
            let keywordName: String
            if case .dependencies = keyword { keywordName = "dependencies" } else { keywordName = "dependentRequired" }
            var valid = true
            for (key, names) in compiled.dependentRequired[Int(table)] where object.position(of: key) != nil {
                for name in names where object.position(of: name) == nil {
                    if !collecting { return false }
                    valid = false
                    report(
                        index,
                        keywordName,
                        "property \(Excerpt.quoted(name)) is required when \(Excerpt.quoted(key)) is present"
                    )
                }
            }
            return valid
        case .dependentSchemas(let table):
            var valid = true
            for (key, child) in compiled.dependentSchemas[Int(table)]
            where object.position(of: key) != nil && !evaluate(child, .object(object), own) {
                if !collecting { return false }
                valid = false
            }
            return valid
        case .properties(let table):
            return evaluateProperties(compiled.applicators[Int(table)], index, object, own)
        case .propertyNames(let child):
            var valid = true
            for member in object.members where !evaluate(child, .string(member.key), -1) {
                if !collecting { return false }
                valid = false
            }
            return valid
        default:
            return true
        }
    }

    private mutating func evaluateProperties(
        _ applicator: PropertyApplicator,
        _ index: Int32,
        _ object: JSONObject,
        _ own: Int
    ) -> Bool {
        var valid = true
        for (position, member) in object.members.enumerated() {
            if stopped { return false }
            var matched = false
            let child = applicator.propertyNode(member.key)
            if child >= 0 {
                matched = true
                if !evaluateMember(child, member) {
                    if !collecting { return false }
                    valid = false
                }
            }
            for (regex, child) in applicator.patterns {
                switch compiled.regexes[Int(regex)].search(member.key) {
                case .noMatch:
                    continue
                case .budgetExceeded:
                    let source = compiled.regexes[Int(regex)].source
                    abort(index, "patternProperties", "the pattern \(source) needs too many steps on a property name")
                    return false
                case .match:
                    matched = true
                    if !evaluateMember(child, member) {
                        if !collecting { return false }
                        valid = false
                    }
                }
            }
            if !matched && applicator.additional >= 0 {
                matched = true
                if !evaluateMember(applicator.additional, member) {
                    if !collecting { return false }
                    valid = false
                }
            }
            if matched && own >= 0 { annotations[own].mark(position) }
        }
        return valid
    }

    @inline(__always)
    private mutating func evaluateMember(_ child: Int32, _ member: JSONObject.Member) -> Bool {
        if collecting { path.append(.key(member.key)) }
        let ok = evaluate(child, member.value, -1)
        if collecting { path.removeLast() }
        return ok
    }
}
