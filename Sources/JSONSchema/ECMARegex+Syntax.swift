// SPDX-License-Identifier: Apache-2.0

/// A syntax error in an ECMA-262 pattern.
struct RegexSyntaxError: Error, Sendable {
    /// Offset in Unicode scalars where the problem was found.
    var offset: Int
    var message: String
}

/// Parsed pattern tree (ECMA-262 `Disjunction` with the `u` flag).
indirect enum RegexNode: Sendable {
    case empty
    case char(UInt32)
    case set(CharSet)
    /// `.`: any scalar except line terminators.
    case dot
    case sequence([RegexNode])
    case alternation([RegexNode])
    /// Capturing (index >= 1) or non-capturing (`nil`) group.
    case group(RegexNode, capture: Int?)
    /// `firstGroup..<endGroup` are the capture groups inside, reset on each iteration.
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool, firstGroup: Int, endGroup: Int)
    case lineStart
    case lineEnd
    case wordBoundary(negated: Bool)
    case look(RegexNode, behind: Bool, negated: Bool)
    case backreference(Int)
}

/// A set of scalars: sorted disjoint ranges plus Unicode property tests, optionally negated.
struct CharSet: Sendable {
    var ranges: [ClosedRange<UInt32>] = []
    var properties: [(property: UnicodeProperty, negated: Bool)] = []
    var negated = false
    /// Membership of U+0000–U+007F after negation, for the common ASCII case.
    private(set) var asciiLow: UInt64 = 0
    private(set) var asciiHigh: UInt64 = 0

    static let digits = CharSet(ranges: [0x30...0x39])
    static let word = CharSet(ranges: [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    static let space = CharSet(ranges: [
        0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x2028...0x2029, 0x202F...0x202F,
        0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
    ])

    init(
        ranges: [ClosedRange<UInt32>] = [],
        properties: [(property: UnicodeProperty, negated: Bool)] = [],
        negated: Bool = false
    ) {
        self.ranges = ranges
        self.properties = properties
        self.negated = negated
    }

    /// The complement of a property-free set, as ranges.
    func complementRanges() -> [ClosedRange<UInt32>] {
        var result: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for range in CharSet.normalized(ranges) {
            if range.lowerBound > next { result.append(next...(range.lowerBound - 1)) }
            if range.upperBound == 0x10FFFF { return result }
            next = range.upperBound + 1
        }
        if next <= 0x10FFFF { result.append(next...0x10FFFF) }
        return result
    }

    static func normalized(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var result: [ClosedRange<UInt32>] = []
        for range in sorted {
            if let last = result.last, range.lowerBound <= last.upperBound &+ 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// Sorts and merges the ranges and precomputes the ASCII bitmap; call once after building.
    mutating func finish() {
        ranges = CharSet.normalized(ranges)
        asciiLow = 0
        asciiHigh = 0
        for scalar in UInt32(0)..<128 where slowContains(scalar) {
            if scalar < 64 { asciiLow |= 1 << UInt64(scalar) } else { asciiHigh |= 1 << UInt64(scalar - 64) }
        }
    }

    @inline(__always)
    func contains(_ scalar: UInt32) -> Bool {
        if scalar < 64 { return asciiLow & (1 << UInt64(scalar)) != 0 }
        if scalar < 128 { return asciiHigh & (1 << UInt64(scalar - 64)) != 0 }
        return slowContains(scalar)
    }

    private func slowContains(_ scalar: UInt32) -> Bool {
        var member = false
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let range = ranges[middle]
            if scalar < range.lowerBound {
                high = middle - 1
            } else if scalar > range.upperBound {
                low = middle + 1
            } else {
                member = true
                break
            }
        }
        if !member {
            for (property, negated) in properties where property.matches(scalar) != negated {
                member = true
                break
            }
        }
        return member != negated
    }
}

/// Parses an ECMA-262 pattern with `u`-flag (Unicode) syntax rules.
///
/// Unicode mode is what JSON Schema asks for, and it is the strict grammar: unknown escapes such as
/// `\a`, lone `{`/`}`/`]`, quantified lookaheads and `\1` without a group are errors, and the pattern
/// is read as code points (so `🐲*` repeats the whole astral character).
struct RegexParser {
    private let s: [UInt32]
    private var i = 0
    private(set) var groupCount = 0
    private var groupNames: [String: Int] = [:]
    private var namedReferences: [(name: String, offset: Int)] = []
    private var numberedReferences: [(number: Int, offset: Int)] = []
    /// Nesting limit so a hostile pattern cannot exhaust the stack of this recursive-descent parser.
    private static let maxNesting = 256
    private var nesting = 0

    init(_ pattern: String) {
        s = pattern.unicodeScalars.map(\.value)
    }

    mutating func parse() throws(RegexSyntaxError) -> RegexNode {
        var tree = try parseDisjunction()
        if i < s.count {
            throw RegexSyntaxError(offset: i, message: s[i] == 0x29 ? "unmatched ')'" : "unexpected character")
        }
        for (name, offset) in namedReferences where groupNames[name] == nil {
            throw RegexSyntaxError(offset: offset, message: "reference to undefined group name '\(name)'")
        }
        for (number, offset) in numberedReferences where number > groupCount {
            throw RegexSyntaxError(offset: offset, message: "back reference \\\(number) exceeds the number of groups")
        }
        if !namedReferences.isEmpty { tree = resolveNames(tree) }
        return tree
    }

    private func resolveNames(_ node: RegexNode) -> RegexNode {
        // Named references were encoded as negative numbers indexing `namedReferences`.
        switch node {
        case .backreference(let number) where number < 0:
            return .backreference(groupNames[namedReferences[-number - 1].name] ?? 0)
        case .sequence(let nodes): return .sequence(nodes.map(resolveNames))
        case .alternation(let nodes): return .alternation(nodes.map(resolveNames))
        case .group(let inner, let capture): return .group(resolveNames(inner), capture: capture)
        case .repetition(let inner, let min, let max, let greedy, let first, let end):
            return .repetition(
                resolveNames(inner),
                min: min,
                max: max,
                greedy: greedy,
                firstGroup: first,
                endGroup: end
            )
        case .look(let inner, let behind, let negated):
            return .look(resolveNames(inner), behind: behind, negated: negated)
        default: return node
        }
    }

    private func peek(_ offset: Int = 0) -> UInt32? {
        i + offset < s.count ? s[i + offset] : nil
    }

    private func error(_ message: String) -> RegexSyntaxError { RegexSyntaxError(offset: i, message: message) }

    private mutating func parseDisjunction() throws(RegexSyntaxError) -> RegexNode {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw error("pattern nests too deeply") }
        var alternatives = [try parseAlternative()]
        while peek() == 0x7C {  // |
            i += 1
            alternatives.append(try parseAlternative())
        }
        return alternatives.count == 1 ? alternatives[0] : .alternation(alternatives)
    }

    private mutating func parseAlternative() throws(RegexSyntaxError) -> RegexNode {
        var terms: [RegexNode] = []
        while let c = peek(), c != 0x7C, c != 0x29 {  // | )
            terms.append(try parseTerm())
        }
        if terms.isEmpty { return .empty }
        return terms.count == 1 ? terms[0] : .sequence(terms)
    }

    private mutating func parseTerm() throws(RegexSyntaxError) -> RegexNode {
        let c = s[i]
        let groupsBefore = groupCount
        var atom: RegexNode
        var quantifiable = true
        switch c {
        case 0x5E:  // ^
            i += 1
            atom = .lineStart
            quantifiable = false
        case 0x24:  // $
            i += 1
            atom = .lineEnd
            quantifiable = false
        case 0x5C where peek(1) == 0x62 || peek(1) == 0x42:  // \b \B
            atom = .wordBoundary(negated: s[i + 1] == 0x42)
            i += 2
            quantifiable = false
        case 0x28:  // (
            if peek(1) == 0x3F {  // ?
                switch peek(2) {
                case 0x3D, 0x21:  // = !
                    let negated = s[i + 2] == 0x21
                    i += 3
                    let inner = try parseDisjunction()
                    try expectClose()
                    atom = .look(inner, behind: false, negated: negated)
                    quantifiable = false
                case 0x3C where peek(3) == 0x3D || peek(3) == 0x21:  // <= <!
                    let negated = s[i + 3] == 0x21
                    i += 4
                    let inner = try parseDisjunction()
                    try expectClose()
                    atom = .look(inner, behind: true, negated: negated)
                    quantifiable = false
                case 0x3A:  // :
                    i += 3
                    let inner = try parseDisjunction()
                    try expectClose()
                    atom = .group(inner, capture: nil)
                case 0x3C:  // <name>
                    i += 3
                    let name = try parseGroupName()
                    if groupNames[name] != nil { throw error("duplicate group name '\(name)'") }
                    groupCount += 1
                    let index = groupCount
                    groupNames[name] = index
                    let inner = try parseDisjunction()
                    try expectClose()
                    atom = .group(inner, capture: index)
                default:
                    throw error("invalid group")
                }
            } else {
                i += 1
                groupCount += 1
                let index = groupCount
                let inner = try parseDisjunction()
                try expectClose()
                atom = .group(inner, capture: index)
            }
        case 0x2E:  // .
            i += 1
            atom = .dot
        case 0x5B:  // [
            atom = .set(try parseClass())
        case 0x5C:  // \
            atom = try parseAtomEscape()
        case 0x2A, 0x2B, 0x3F:  // * + ?
            throw error("nothing to repeat")
        case 0x7B:  // {
            throw error(isQuantifierBrace() ? "nothing to repeat" : "lone '{' is not allowed in a Unicode pattern")
        case 0x7D, 0x5D:  // } ]
            throw error("lone '\(Character(Unicode.Scalar(c)!))' is not allowed in a Unicode pattern")
        default:
            i += 1
            atom = .char(c)
        }
        guard let q = peek(), q == 0x2A || q == 0x2B || q == 0x3F || q == 0x7B else { return atom }
        if q == 0x7B && !isQuantifierBrace() { throw error("lone '{' is not allowed in a Unicode pattern") }
        guard quantifiable else { throw error("this assertion cannot be repeated") }
        var minimum = 0
        var maximum: Int? = nil
        switch q {
        case 0x2A: i += 1
        case 0x2B:
            i += 1
            minimum = 1
        case 0x3F:
            i += 1
            maximum = 1
        default:
            i += 1
            minimum = parseDecimal()
            if peek() == 0x2C {
                i += 1
                maximum = peek() == 0x7D ? nil : parseDecimal()
            } else {
                maximum = minimum
            }
            i += 1  // }
            if let maximum, maximum < minimum { throw error("numbers out of order in {} quantifier") }
        }
        var greedy = true
        if peek() == 0x3F {
            i += 1
            greedy = false
        }
        return .repetition(
            atom,
            min: minimum,
            max: maximum,
            greedy: greedy,
            firstGroup: groupsBefore + 1,
            endGroup: groupCount + 1
        )
    }

    /// Whether the cursor (at `{`) starts `{n}`, `{n,}` or `{n,m}`.
    private func isQuantifierBrace() -> Bool {
        var j = i + 1
        var digits = 0
        while j < s.count, s[j] >= 0x30, s[j] <= 0x39 {
            j += 1
            digits += 1
        }
        guard digits > 0, j < s.count else { return false }
        if s[j] == 0x7D { return true }
        guard s[j] == 0x2C else { return false }
        j += 1
        while j < s.count, s[j] >= 0x30, s[j] <= 0x39 { j += 1 }
        return j < s.count && s[j] == 0x7D
    }

    /// Reads decimal digits, saturating at `Int32.max` (a bound that large means "unbounded" in practice).
    private mutating func parseDecimal() -> Int {
        var value = 0
        while let c = peek(), c >= 0x30, c <= 0x39 {
            value = min(value * 10 + Int(c - 0x30), Int(Int32.max))
            i += 1
        }
        return value
    }

    private mutating func expectClose() throws(RegexSyntaxError) {
        guard peek() == 0x29 else { throw error("missing ')'") }
        i += 1
    }

    private mutating func parseGroupName() throws(RegexSyntaxError) -> String {
        var name = String.UnicodeScalarView()
        while let c = peek(), c != 0x3E {
            guard let scalar = Unicode.Scalar(c),
                scalar.properties.isIDContinue || c == 0x24 || c == 0x5F || c == 0x200C || c == 0x200D,
                !name.isEmpty || scalar.properties.isIDStart || c == 0x24 || c == 0x5F
            else { throw error("invalid group name") }
            name.append(scalar)
            i += 1
        }
        guard peek() == 0x3E, !name.isEmpty else { throw error("invalid group name") }
        i += 1
        return String(name)
    }

    private mutating func parseAtomEscape() throws(RegexSyntaxError) -> RegexNode {
        let start = i
        i += 1  // backslash
        guard let c = peek() else { throw error("\\ at end of pattern") }
        switch c {
        case 0x31...0x39:  // \1..\9
            let number = parseDecimal()
            numberedReferences.append((number, start))
            return .backreference(number)
        case 0x6B:  // k
            i += 1
            guard peek() == 0x3C else { throw error("invalid named reference") }
            i += 1
            let name = try parseGroupName()
            namedReferences.append((name, start))
            return .backreference(-namedReferences.count)
        default:
            if let set = try parseClassEscape() { return .set(set) }
            return .char(try parseCharacterEscape(inClass: false))
        }
    }

    /// `\d \D \s \S \w \W \p{…} \P{…}` at the cursor (just after the backslash), or `nil`.
    private mutating func parseClassEscape() throws(RegexSyntaxError) -> CharSet? {
        guard let c = peek() else { return nil }
        var set: CharSet
        switch c {
        case 0x64: set = .digits
        case 0x44: set = CharSet(ranges: CharSet.digits.complementRanges())
        case 0x73: set = .space
        case 0x53: set = CharSet(ranges: CharSet.space.complementRanges())
        case 0x77: set = .word
        case 0x57: set = CharSet(ranges: CharSet.word.complementRanges())
        case 0x70, 0x50:  // p P
            i += 1
            guard peek() == 0x7B else { throw error("expected '{' after \\p") }
            i += 1
            var name = ""
            while let d = peek(), d != 0x7D {
                guard let scalar = Unicode.Scalar(d), scalar.isASCII else { throw error("invalid property name") }
                name.unicodeScalars.append(scalar)
                i += 1
            }
            guard peek() == 0x7D else { throw error("missing '}' after property name") }
            i += 1
            guard let property = UnicodeProperty(name: name) else {
                throw RegexSyntaxError(offset: i, message: "unknown or unsupported Unicode property '\(name)'")
            }
            set = CharSet(properties: [(property, c == 0x50)])
            set.finish()
            return set
        default:
            return nil
        }
        i += 1
        set.finish()
        return set
    }

    /// A single-scalar escape at the cursor (just after the backslash).
    private mutating func parseCharacterEscape(inClass: Bool) throws(RegexSyntaxError) -> UInt32 {
        let c = s[i]
        i += 1
        switch c {
        case 0x66: return 0x0C  // f
        case 0x6E: return 0x0A  // n
        case 0x72: return 0x0D  // r
        case 0x74: return 0x09  // t
        case 0x76: return 0x0B  // v
        case 0x63:  // c
            guard let letter = peek(), (0x41...0x5A).contains(letter) || (0x61...0x7A).contains(letter) else {
                throw error("\\c must be followed by an ASCII letter")
            }
            i += 1
            return letter % 32
        case 0x30:  // 0
            if let next = peek(), next >= 0x30, next <= 0x39 { throw error("octal escapes are not allowed") }
            return 0
        case 0x78:  // x
            guard let high = peek().flatMap(hexDigit), let low = peek(1).flatMap(hexDigit) else {
                throw error("\\x must be followed by two hex digits")
            }
            i += 2
            return high << 4 | low
        case 0x75:  // u
            return try parseUnicodeEscape()
        case 0x2D where inClass:  // \- inside a class
            return c
        case 0x62 where inClass:  // \b inside a class is backspace
            return 0x08
        default:
            // Identity escapes: only syntax characters and '/'.
            if "^$\\.*+?()[]{}|/".unicodeScalars.contains(where: { $0.value == c }) { return c }
            i -= 1
            throw error("invalid escape '\\\(Unicode.Scalar(c).map { String(Character($0)) } ?? "?")'")
        }
    }

    private mutating func parseUnicodeEscape() throws(RegexSyntaxError) -> UInt32 {
        if peek() == 0x7B {  // \u{…}
            i += 1
            var value: UInt32 = 0
            var digits = 0
            while let c = peek(), let digit = hexDigit(c) {
                value = value << 4 | digit
                digits += 1
                if value > 0x10FFFF { throw error("\\u{…} is beyond U+10FFFF") }
                i += 1
            }
            guard digits > 0, peek() == 0x7D else { throw error("invalid \\u{…} escape") }
            i += 1
            return value
        }
        guard let unit = hex4(at: i) else { throw error("\\u must be followed by four hex digits") }
        i += 4
        if (0xD800...0xDBFF).contains(unit), peek() == 0x5C, peek(1) == 0x75, let low = hex4(at: i + 2),
            (0xDC00...0xDFFF).contains(low)
        {
            i += 6
            return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        }
        return unit
    }

    private func hex4(at offset: Int) -> UInt32? {
        guard offset + 4 <= s.count else { return nil }
        var value: UInt32 = 0
        for k in 0..<4 {
            guard let digit = hexDigit(s[offset + k]) else { return nil }
            value = value << 4 | digit
        }
        return value
    }

    private func hexDigit(_ c: UInt32) -> UInt32? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// A class `[…]` at the cursor.
    private mutating func parseClass() throws(RegexSyntaxError) -> CharSet {
        i += 1
        var set = CharSet()
        if peek() == 0x5E {
            set.negated = true
            i += 1
        }
        while true {
            guard let c = peek() else { throw error("missing ']'") }
            if c == 0x5D {
                i += 1
                break
            }
            let first = try parseClassAtom()
            if peek() == 0x2D, let next = peek(1), next != 0x5D {
                i += 1
                let second = try parseClassAtom()
                guard case .single(let low) = first, case .single(let high) = second else {
                    throw error("a class escape cannot be a range bound")
                }
                guard low <= high else { throw error("range out of order in character class") }
                set.ranges.append(low...high)
            } else {
                switch first {
                case .single(let scalar): set.ranges.append(scalar...scalar)
                case .set(let inner):
                    set.ranges.append(contentsOf: inner.ranges)
                    set.properties.append(contentsOf: inner.properties)
                }
            }
        }
        set.finish()
        return set
    }

    private enum ClassAtom {
        case single(UInt32)
        case set(CharSet)
    }

    private mutating func parseClassAtom() throws(RegexSyntaxError) -> ClassAtom {
        let c = s[i]
        guard c == 0x5C else {
            i += 1
            return .single(c)
        }
        i += 1
        guard peek() != nil else { throw error("\\ at end of pattern") }
        if let set = try parseClassEscape() { return .set(set) }
        if let next = peek(), next >= 0x31, next <= 0x39 { throw error("back references are not allowed in a class") }
        return .single(try parseCharacterEscape(inClass: true))
    }
}

/// The `\p{…}` properties this engine knows (loose name matching, as UTS #18 recommends).
enum UnicodeProperty: Sendable {
    case any
    case ascii
    case assigned
    case generalCategory([Unicode.GeneralCategory])
    case binary(BinaryProperty)

    enum BinaryProperty: Sendable {
        case alphabetic, asciiHexDigit, bidiControl, bidiMirrored, caseIgnorable, cased, dash
        case defaultIgnorable, deprecated, diacritic, emoji, emojiModifier, emojiModifierBase, emojiPresentation
        case extender, graphemeBase, graphemeExtend, hexDigit, idContinue, idStart, ideographic, joinControl
        case lowercase, math, noncharacter, patternSyntax, patternWhiteSpace, quotationMark, radical
        case regionalIndicator, sentenceTerminal, softDotted, terminalPunctuation, unifiedIdeograph, uppercase
        case variationSelector, whiteSpace, xidContinue, xidStart
    }

    /// Loose key: lower-cased, without `_`, `-` and spaces.
    private static func loose(_ name: Substring) -> String {
        String(name.lowercased().unicodeScalars.filter { $0 != "_" && $0 != "-" && $0 != " " })
    }

    init?(name: String) {
        if let equals = name.firstIndex(of: "=") {
            let key = Self.loose(name[..<equals])
            let value = name[name.index(after: equals)...]
            guard key == "gc" || key == "generalcategory", let categories = Self.categories(Self.loose(value)) else {
                return nil  // Script= and Script_Extensions= need data the standard library does not expose.
            }
            self = .generalCategory(categories)
            return
        }
        let key = Self.loose(name[...])
        switch key {
        case "any": self = .any
        case "ascii": self = .ascii
        case "assigned": self = .assigned
        default:
            if let categories = Self.categories(key) {
                self = .generalCategory(categories)
            } else if let binary = Self.binaryProperties[key] {
                self = .binary(binary)
            } else {
                return nil
            }
        }
    }

    private static let binaryProperties: [String: BinaryProperty] = [
        "alphabetic": .alphabetic, "alpha": .alphabetic, "asciihexdigit": .asciiHexDigit, "ahex": .asciiHexDigit,
        "bidicontrol": .bidiControl, "bidic": .bidiControl, "bidimirrored": .bidiMirrored, "bidim": .bidiMirrored,
        "caseignorable": .caseIgnorable, "ci": .caseIgnorable, "cased": .cased, "dash": .dash,
        "defaultignorablecodepoint": .defaultIgnorable, "di": .defaultIgnorable, "deprecated": .deprecated,
        "dep": .deprecated, "diacritic": .diacritic, "dia": .diacritic, "emoji": .emoji,
        "emojimodifier": .emojiModifier, "emod": .emojiModifier, "emojimodifierbase": .emojiModifierBase,
        "ebase": .emojiModifierBase, "emojipresentation": .emojiPresentation, "epres": .emojiPresentation,
        "extender": .extender, "ext": .extender, "graphemebase": .graphemeBase, "grbase": .graphemeBase,
        "graphemeextend": .graphemeExtend, "grext": .graphemeExtend, "hexdigit": .hexDigit, "hex": .hexDigit,
        "idcontinue": .idContinue, "idc": .idContinue, "idstart": .idStart, "ids": .idStart,
        "ideographic": .ideographic, "ideo": .ideographic, "joincontrol": .joinControl, "joinc": .joinControl,
        "lowercase": .lowercase, "lower": .lowercase, "math": .math, "noncharactercodepoint": .noncharacter,
        "nchar": .noncharacter, "patternsyntax": .patternSyntax, "patsyn": .patternSyntax,
        "patternwhitespace": .patternWhiteSpace, "patws": .patternWhiteSpace, "quotationmark": .quotationMark,
        "qmark": .quotationMark, "radical": .radical, "regionalindicator": .regionalIndicator, "ri": .regionalIndicator,
        "sentenceterminal": .sentenceTerminal, "sterm": .sentenceTerminal, "softdotted": .softDotted, "sd": .softDotted,
        "terminalpunctuation": .terminalPunctuation, "term": .terminalPunctuation,
        "unifiedideograph": .unifiedIdeograph, "uideo": .unifiedIdeograph, "uppercase": .uppercase,
        "upper": .uppercase, "variationselector": .variationSelector, "vs": .variationSelector,
        "whitespace": .whiteSpace, "space": .whiteSpace, "wspace": .whiteSpace, "xidcontinue": .xidContinue,
        "xidc": .xidContinue, "xidstart": .xidStart, "xids": .xidStart,
    ]

    private static func categories(_ key: String) -> [Unicode.GeneralCategory]? {
        typealias G = Unicode.GeneralCategory
        let letters: [G] = [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter]
        let marks: [G] = [.nonspacingMark, .spacingMark, .enclosingMark]
        let numbers: [G] = [.decimalNumber, .letterNumber, .otherNumber]
        let punctuation: [G] = [
            .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation,
        ]
        let symbols: [G] = [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol]
        let separators: [G] = [.spaceSeparator, .lineSeparator, .paragraphSeparator]
        let others: [G] = [.control, .format, .surrogate, .privateUse, .unassigned]
        switch key {
        case "l", "letter": return letters
        case "lc", "casedletter": return [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter]
        case "lu", "uppercaseletter": return [.uppercaseLetter]
        case "ll", "lowercaseletter": return [.lowercaseLetter]
        case "lt", "titlecaseletter": return [.titlecaseLetter]
        case "lm", "modifierletter": return [.modifierLetter]
        case "lo", "otherletter": return [.otherLetter]
        case "m", "mark", "combiningmark": return marks
        case "mn", "nonspacingmark": return [.nonspacingMark]
        case "mc", "spacingmark": return [.spacingMark]
        case "me", "enclosingmark": return [.enclosingMark]
        case "n", "number": return numbers
        case "nd", "decimalnumber", "digit": return [.decimalNumber]
        case "nl", "letternumber": return [.letterNumber]
        case "no", "othernumber": return [.otherNumber]
        case "p", "punctuation", "punct": return punctuation
        case "pc", "connectorpunctuation": return [.connectorPunctuation]
        case "pd", "dashpunctuation": return [.dashPunctuation]
        case "ps", "openpunctuation": return [.openPunctuation]
        case "pe", "closepunctuation": return [.closePunctuation]
        case "pi", "initialpunctuation": return [.initialPunctuation]
        case "pf", "finalpunctuation": return [.finalPunctuation]
        case "po", "otherpunctuation": return [.otherPunctuation]
        case "s", "symbol": return symbols
        case "sm", "mathsymbol": return [.mathSymbol]
        case "sc", "currencysymbol": return [.currencySymbol]
        case "sk", "modifiersymbol": return [.modifierSymbol]
        case "so", "othersymbol": return [.otherSymbol]
        case "z", "separator": return separators
        case "zs", "spaceseparator": return [.spaceSeparator]
        case "zl", "lineseparator": return [.lineSeparator]
        case "zp", "paragraphseparator": return [.paragraphSeparator]
        case "c", "other": return others
        case "cc", "control", "cntrl": return [.control]
        case "cf", "format": return [.format]
        case "cs", "surrogate": return [.surrogate]
        case "co", "privateuse": return [.privateUse]
        case "cn", "unassigned": return [.unassigned]
        default: return nil
        }
    }

    func matches(_ value: UInt32) -> Bool {
        guard let scalar = Unicode.Scalar(value) else {
            // Surrogate code points never occur in Swift strings.
            if case .generalCategory(let categories) = self { return categories.contains(.surrogate) }
            return self.isAny
        }
        let p = scalar.properties
        switch self {
        case .any: return true
        case .ascii: return value < 0x80
        case .assigned: return p.generalCategory != .unassigned
        case .generalCategory(let categories): return categories.contains(p.generalCategory)
        case .binary(let binary):
            switch binary {
            case .alphabetic: return p.isAlphabetic
            case .asciiHexDigit: return p.isASCIIHexDigit
            case .bidiControl: return p.isBidiControl
            case .bidiMirrored: return p.isBidiMirrored
            case .caseIgnorable: return p.isCaseIgnorable
            case .cased: return p.isCased
            case .dash: return p.isDash
            case .defaultIgnorable: return p.isDefaultIgnorableCodePoint
            case .deprecated: return p.isDeprecated
            case .diacritic: return p.isDiacritic
            case .emoji: return p.isEmoji
            case .emojiModifier: return p.isEmojiModifier
            case .emojiModifierBase: return p.isEmojiModifierBase
            case .emojiPresentation: return p.isEmojiPresentation
            case .extender: return p.isExtender
            case .graphemeBase: return p.isGraphemeBase
            case .graphemeExtend: return p.isGraphemeExtend
            case .hexDigit: return p.isHexDigit
            case .idContinue: return p.isIDContinue
            case .idStart: return p.isIDStart
            case .ideographic: return p.isIdeographic
            case .joinControl: return p.isJoinControl
            case .lowercase: return p.isLowercase
            case .math: return p.isMath
            case .noncharacter: return p.isNoncharacterCodePoint
            case .patternSyntax: return p.isPatternSyntax
            case .patternWhiteSpace: return p.isPatternWhitespace
            case .quotationMark: return p.isQuotationMark
            case .radical: return p.isRadical
            case .regionalIndicator: return (0x1F1E6...0x1F1FF).contains(value)
            case .sentenceTerminal: return p.isSentenceTerminal
            case .softDotted: return p.isSoftDotted
            case .terminalPunctuation: return p.isTerminalPunctuation
            case .unifiedIdeograph: return p.isUnifiedIdeograph
            case .uppercase: return p.isUppercase
            case .variationSelector: return p.isVariationSelector
            case .whiteSpace: return p.isWhitespace
            case .xidContinue: return p.isXIDContinue
            case .xidStart: return p.isXIDStart
            }
        }
    }

    private var isAny: Bool {
        if case .any = self { return true }
        return false
    }
}
