// SPDX-License-Identifier: Apache-2.0

import Foundation
import JSONSchema
import Testing

/// 100 MB of random and mutated JSON through parse + validate against the command schema, in the
/// normal (debug) test run.
///
/// Documents are generated one at a time from a seeded generator and dropped after their check, so
/// memory stays at the size of the largest document (a few MB) whatever the total. Each kind of
/// hostility (see ``Kind``) has its own byte budget and runs as its own test case, in parallel.
///
/// What is checked for every document:
/// - no crash, and parse + validate finish within a generous hang guard;
/// - where the generator knows the answer (well-formed rendering, an injected bad byte, a lone
///   surrogate, a duplicate key, a truncation, nesting past the limit), the parser gives it, with the
///   exact error code and byte offset where one is defined;
/// - every parsed document re-serialises to bytes that parse to the same value and serialise the same
///   (numbers keep their literal);
/// - the flag output and the basic output agree, and the verdict and the exact set of error locations
///   (`instanceLocation` + `keywordLocation`) equal those of ``CommandRules``, an independent
///   hand-written statement of DESIGN.md's rules, whenever it can decide (it cannot for a `deadline`
///   it has not seen before);
/// - every message names its location and stays short, however large the instance.
///
/// `OTA_HOSTILE_SEED` replaces the fixed seed, to explore; a failure prints the seed and document.
///
/// The cases run one after the other (`.serialized`) and yield after every document: the work is CPU-bound
/// and synchronous, and on a 2-core machine two of these cases at once would take both of Swift concurrency's
/// threads from the ~370 other tests running in parallel (several seconds of stall for their hang guards).
@Suite("hostile corpus (100 MB)", .serialized)
struct HostileCorpusTests {
    /// One kind of generated input, with its share of the 100 MB.
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Rendered commands (1 to 12,000 devices), valid or with realistic mistakes, in random formatting.
        case commands
        /// Small commands with one to three random byte edits (flips, deletions, insertions, splices).
        case mutations
        /// Commands cut short at a random byte.
        case truncations
        /// Arrays and objects nested around the limit and far beyond it, closed or not.
        case deepNesting
        /// Numbers with thousands of digits and extreme exponents, and malformed numbers.
        case hugeNumbers
        /// Strings up to 2 MB of mixed Unicode and escapes in every string field.
        case longStrings
        /// Invalid UTF-8, lone surrogates, raw control characters and bad escapes at known offsets.
        case badBytes
        /// Duplicate keys (also spelled with escapes, also late in large objects) and look-alike keys.
        case duplicateKeys
        /// Random bytes, random JSON-alphabet bytes and random JSON trees.
        case randomBytes

        var budget: Int {
            switch self {
            case .commands: 16_000_000
            case .mutations: 14_000_000
            case .truncations: 8_000_000
            case .deepNesting: 12_000_000
            case .hugeNumbers: 12_000_000
            case .longStrings: 14_000_000
            case .badBytes: 10_000_000
            case .duplicateKeys: 8_000_000
            case .randomBytes: 6_000_000
            }
        }

        var testDescription: String { rawValue }
    }

    static let seed: UInt64 =
        ProcessInfo.processInfo.environment["OTA_HOSTILE_SEED"].flatMap { UInt64($0) } ?? 0x0DA_5EED

    @Test func theBudgetsAddUpTo100MB() {
        #expect(Kind.allCases.reduce(0) { $0 + $1.budget } == 100_000_000)
    }

    @Test(arguments: Kind.allCases)
    func corpus(_ kind: Kind) async throws {
        var checker = try CorpusChecker(kind: kind)
        var generator = CorpusGenerator(
            seed: Self.seed &+ UInt64(Kind.allCases.firstIndex(of: kind)!) &* 0x9E37_79B9_7F4A_7C15
        )
        var bytes = 0
        var documents = 0
        let clock = ContinuousClock()
        var generating: Duration = .zero
        var checking: Duration = .zero
        while bytes < kind.budget {
            let started = clock.now
            let (document, expectation) = generator.next(kind)
            let generated = clock.now
            checker.check(document, expectation, number: documents)
            generating += generated - started
            checking += clock.now - generated
            bytes += document.count
            documents += 1
            if checker.failures > 20 { break }
            await Task.yield()
        }
        print(
            "hostile corpus \(kind.rawValue): \(documents) documents, \(bytes) bytes; \(checker.summary); "
                + "generating \(generating), checking \(checking) (seed \(Self.seed))"
        )
        #expect(bytes >= kind.budget)
        // The kinds that render well-formed commands must mostly reach the validator, or the budget was
        // spent on nothing but parse errors.
        if [.commands, .longStrings].contains(kind) {
            #expect(checker.parsed == documents)
            #expect(checker.decided > 0 && checker.valid > 0 && checker.invalid > 0)
        }
        if [.mutations, .hugeNumbers, .duplicateKeys, .deepNesting, .randomBytes].contains(kind) {
            #expect(checker.parsed > 0 && checker.rejectedByParser > 0 && checker.decided > 0)
        }
    }
}

// MARK: - Expectations and checks

/// What the generator knows about a document's parse.
enum ParseExpectation {
    /// Well-formed: it must parse.
    case succeeds
    /// It must fail, with this code and offset where given.
    case fails(JSONParseError.Code?, offset: Int?)
    /// Anything may happen (random edits): only the general checks apply.
    case either
}

/// Parses, validates and checks one document at a time, counting what happened.
struct CorpusChecker {
    let kind: HostileCorpusTests.Kind
    let validator: JSONSchemaValidator
    private(set) var parsed = 0
    private(set) var rejectedByParser = 0
    private(set) var valid = 0
    private(set) var invalid = 0
    /// Documents whose verdict and error locations ``CommandRules`` decided (and that matched).
    private(set) var decided = 0
    private(set) var failures = 0
    private var slowest: Duration = .zero
    /// Time spent parsing, round-tripping, validating and applying the reference rules.
    private var phases: [Duration] = [.zero, .zero, .zero, .zero]

    /// Per-document hang guard: generous, since several-second stalls happen on the loaded machine.
    static let hangGuard: Duration = .seconds(30)

    init(kind: HostileCorpusTests.Kind) throws {
        self.kind = kind
        let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot() + "/schemas/cancel-command.schema.json"))
        validator = try JSONSchemaValidator(schema: JSONParser.parse(data), options: .init(formatAssertion: true))
    }

    var summary: String {
        "\(parsed) parsed (\(valid) valid, \(invalid) invalid, \(decided) checked against the reference rules), "
            + "\(rejectedByParser) rejected by the parser; slowest \(slowest); parse/round trip/validate/rules "
            + phases.map { "\($0)" }.joined(separator: "/")
    }

    private mutating func fail(_ message: String, _ document: [UInt8], number: Int) {
        failures += 1
        let excerpt = String(decoding: document.prefix(300), as: UTF8.self)
        Issue.record(
            Comment(
                rawValue:
                    "\(kind.rawValue) document #\(number) (\(document.count) bytes, seed \(HostileCorpusTests.seed)): \(message)\n  \(excerpt)"
            )
        )
    }

    mutating func check(_ document: [UInt8], _ expectation: ParseExpectation, number: Int) {
        let clock = ContinuousClock()
        let start = clock.now
        defer {
            let elapsed = clock.now - start
            slowest = max(slowest, elapsed)
            if elapsed > Self.hangGuard {
                fail("took \(elapsed) (hang guard \(Self.hangGuard))", document, number: number)
            }
        }
        var mark = clock.now
        func phase(_ index: Int) {
            let now = clock.now
            phases[index] += now - mark
            mark = now
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(document)
            phase(0)
        } catch {
            rejectedByParser += 1
            if !(0...document.count).contains(error.offset) || error.line < 1 || error.column < 1 {
                fail("parse error position out of range: offset \(error.offset), \(error)", document, number: number)
            }
            switch expectation {
            case .succeeds:
                fail(
                    "well-formed document rejected: \(error) (code \(error.code), offset \(error.offset))",
                    document,
                    number: number
                )
            case .fails(let code, let offset):
                if let code, code != error.code {
                    fail("expected \(code), got \(error.code) at \(error.offset): \(error)", document, number: number)
                } else if let offset, offset != error.offset {
                    fail(
                        "expected \(error.code) at offset \(offset), got offset \(error.offset): \(error)",
                        document,
                        number: number
                    )
                }
            case .either:
                break
            }
            return
        }
        parsed += 1
        if case .fails(let code, let offset) = expectation {
            fail(
                "accepted, but expected \(code.map { "\($0)" } ?? "a failure") at \(offset.map { "\($0)" } ?? "?")",
                document,
                number: number
            )
        }

        // Round trip: the serialisation parses back to the same value and serialises the same. Debug builds
        // serialise slowly, so large documents only get it where it matters most (numbers' literals).
        if document.count <= 65_536 || (kind == .hugeNumbers && document.count <= 131_072) {
            let serialized = value.serializedBytes()
            do {
                let again = try JSONParser.parse(serialized)
                if again != value || again.serializedBytes() != serialized {
                    fail("the serialisation does not round-trip", document, number: number)
                }
            } catch {
                fail("the serialisation does not parse: \(error)", document, number: number)
            }
        }
        phase(1)

        // Validation: both outputs agree, and agree with the independent rules where they decide.
        let errors = validator.validate(value)
        let flag = validator.isValid(value)
        if flag != errors.isEmpty {
            fail("isValid \(flag) but validate returned \(errors.count) errors", document, number: number)
        }
        if flag { valid += 1 } else { invalid += 1 }
        for error in errors {
            let message = error.message
            if message.isEmpty || message.utf8.count > 600 {
                fail("message of \(message.utf8.count) bytes: \(message.prefix(200))", document, number: number)
            }
            if !error.instanceLocation.isEmpty && !message.contains(": ") {
                fail("message does not name its location: \(message.prefix(200))", document, number: number)
            }
        }
        phase(2)
        let reference = CommandRules.check(value)
        phase(3)
        if let expected = reference.valid, expected != flag {
            fail(
                "validator says \(flag ? "valid" : "invalid"), the rules say \(expected ? "valid" : "invalid"): "
                    + "\(errors.prefix(3).map(\.message)) vs \(reference.errors?.prefix(3).map { $0 } ?? [])",
                document,
                number: number
            )
            return
        }
        if let expected = reference.errors {
            let actual = errors.map { $0.instanceLocation + " " + $0.keywordLocation }
            if expected.count <= 100 {
                if actual.sorted() != expected.sorted() {
                    func short(_ locations: [String]) -> [String] {
                        locations.prefix(5).map {
                            $0.unicodeScalars.count > 120 ? String($0.prefix(60)) + "…" + String($0.suffix(60)) : $0
                        }
                    }
                    let unexpected = actual.filter { !expected.contains($0) }
                    let missing = expected.filter { !actual.contains($0) }
                    fail(
                        "\(actual.count) error locations, the rules expect \(expected.count); not expected: \(short(unexpected)), "
                            + "missing: \(short(missing))",
                        document,
                        number: number
                    )
                    return
                }
            } else {
                // Capped at maxErrors (100): each reported error must be one the rules expect.
                var remaining: [String: Int] = [:]
                for location in expected { remaining[location, default: 0] += 1 }
                for location in actual {
                    remaining[location, default: 0] -= 1
                    if remaining[location]! < 0 {
                        fail("unexpected error location \(location)", document, number: number)
                        return
                    }
                }
                if actual.count != 100 {
                    fail("\(actual.count) errors, expected the cap of 100", document, number: number)
                }
            }
            if reference.valid != nil { decided += 1 }
        }
    }
}

// MARK: - The command rules, written out by hand

/// DESIGN.md §2's command rules as plain code, independent of the schema file and of the validator:
/// the reference the corpus is judged against.
///
/// Strings are compared and measured by Unicode scalars, as JSON Schema requires (never by Swift's
/// canonical equivalence: `"product\u{212A}ey"` with a KELVIN SIGN is not `productKey`). The result
/// lists each expected error as `instanceLocation keywordLocation`.
enum CommandRules {
    struct Outcome {
        /// `nil` when the rules cannot decide (a `deadline` outside the known samples).
        var valid: Bool?
        /// `nil` when the exact list of errors is not known.
        var errors: [String]?
    }

    /// Samples whose RFC 3339 validity is known (the rules do not parse dates themselves).
    static let validDeadlines: Set<String> = [
        "2026-11-26T18:00:00Z", "2026-11-26t18:00:00.123z", "2026-11-26T23:30:00-05:30", "1998-12-31T23:59:60Z",
        "2024-02-29T00:00:00+00:00", "2026-01-01T00:00:00.000000001+14:00",
    ]
    static let invalidDeadlines: Set<String> = [
        "tomorrow", "2026-11-26", "2026-02-30T10:00:00Z", "2026-11-26T18:00:00", "2026-11-26T24:00:00Z",
        "2023-02-29T00:00:00Z", "2026-11-26 18:00:00Z", "\u{0662}026-11-26T18:00:00Z", "", "2026-11-26T18:00:00ZZ",
        "2026-13-01T00:00:00Z",
    ]

    /// Which characters a string field allows. The allowed sets are ASCII, so the checks read UTF-8
    /// bytes: a byte of 0x80 or more belongs to a non-ASCII character, which no identifier allows.
    enum Characters {
        case any
        /// ASCII letters, digits and the bytes of `extra`.
        case identifier(extra: [UInt8])
        /// Anything but `+`, `#` and the characters MQTT forbids in a UTF-8 string that the pattern names: the C0
        /// and C1 controls (NUL included), DEL, U+FDD0–U+FDEF, U+FFFE and U+FFFF.
        case topic

        func allows(_ text: String) -> Bool {
            switch self {
            case .any:
                return true
            case .identifier(let extra):
                for byte in text.utf8 {
                    switch byte {
                    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"):
                        continue
                    default:
                        if !extra.contains(byte) { return false }
                    }
                }
                return true
            case .topic:
                return !text.unicodeScalars.contains { scalar in
                    switch scalar.value {
                    case 0x2B, 0x23, 0x00...0x1F, 0x7F...0x9F, 0xFDD0...0xFDEF, 0xFFFE, 0xFFFF: true
                    default: false
                    }
                }
            }
        }
    }

    /// `~` → `~0`, `/` → `~1` (RFC 6901).
    static func pointerToken(_ key: String) -> String {
        var token = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "~": token += "~0"
            case "/": token += "~1"
            default: token.unicodeScalars.append(scalar)
            }
        }
        return token
    }

    static func check(_ value: JSONValue) -> Outcome {
        var errors: [String] = []
        var undecided = false
        var errorsKnown = true
        func add(_ instance: String, _ keyword: String) { errors.append(instance + " " + keyword) }

        func string(
            _ value: JSONValue,
            at instance: @autoclosure () -> String,
            property: String,
            min: Int,
            max: Int,
            _ characters: Characters
        ) {
            guard case .string(let text) = value else { return add(instance(), "/properties/" + property + "/type") }
            let allowed = characters.allows(text)
            // An allowed identifier is ASCII: one byte per character.
            let length: Int
            if case .identifier = characters, allowed {
                length = text.utf8.count
            } else {
                length = text.unicodeScalars.count
            }
            if length < min { add(instance(), "/properties/" + property + "/minLength") }
            if length > max { add(instance(), "/properties/" + property + "/maxLength") }
            if !allowed { add(instance(), "/properties/" + property + "/pattern") }
        }

        guard case .object(let object) = value else { return Outcome(valid: false, errors: [" /type"]) }
        let fields = [
            "productKey", "firmwareId", "deviceNames", "jobId", "iotInstanceId", "correlationId", "replyTo", "deadline",
            "dryRun", "reason", "requestedBy",
        ]
        var present: Set<String> = []
        for (key, member) in object {
            let instance = "/" + pointerToken(key)
            guard let field = fields.first(where: { $0.unicodeScalars.elementsEqual(key.unicodeScalars) }) else {
                add(instance, "/additionalProperties")
                continue
            }
            present.insert(field)
            switch field {
            case "productKey":
                string(member, at: instance, property: field, min: 1, max: 64, .identifier(extra: Array("_-".utf8)))
            case "firmwareId", "jobId", "iotInstanceId":
                string(member, at: instance, property: field, min: 1, max: 64, .identifier(extra: Array("_.:-".utf8)))
            case "correlationId":
                string(member, at: instance, property: field, min: 1, max: 128, .any)
            case "replyTo":
                string(member, at: instance, property: field, min: 1, max: 65_535, .topic)
            case "reason":
                string(member, at: instance, property: field, min: 0, max: 1024, .any)
            case "requestedBy":
                string(member, at: instance, property: field, min: 0, max: 256, .any)
            case "dryRun":
                if case .bool = member {} else { add(instance, "/properties/dryRun/type") }
            case "deadline":
                guard case .string(let text) = member else {
                    add(instance, "/properties/deadline/type")
                    continue
                }
                if invalidDeadlines.contains(where: { $0.unicodeScalars.elementsEqual(text.unicodeScalars) }) {
                    add(instance, "/properties/deadline/format")
                } else if !validDeadlines.contains(where: { $0.unicodeScalars.elementsEqual(text.unicodeScalars) }) {
                    undecided = true
                }
            default:  // deviceNames
                guard case .array(let items) = member else {
                    add(instance, "/properties/deviceNames/type")
                    continue
                }
                if items.isEmpty { add(instance, "/properties/deviceNames/minItems") }
                if items.count > 10_000 { add(instance, "/properties/deviceNames/maxItems") }
                // UTF-8 bytes are equal exactly when the scalars are.
                var seen: Set<[UInt8]> = []
                var duplicate = false
                var others = 0
                let characters = Characters.identifier(extra: Array("_.@:-".utf8))
                for (position, item) in items.enumerated() {
                    if case .string(let text) = item {
                        if !seen.insert(Array(text.utf8)).inserted { duplicate = true }
                    } else {
                        others += 1
                    }
                    string(
                        item,
                        at: instance + "/\(position)",
                        property: "deviceNames/items",
                        min: 4,
                        max: 32,
                        characters
                    )
                }
                // Equality of non-strings (1 and 1.0 are equal) is the validator's business, not the rules':
                // with two or more of them only the verdict (already "invalid") is certain.
                if others >= 2 { errorsKnown = false }
                if duplicate { add(instance, "/properties/deviceNames/uniqueItems") }
            }
        }
        for name in ["productKey", "firmwareId", "deviceNames"] where !present.contains(name) { add("", "/required") }
        if !errors.isEmpty { return Outcome(valid: false, errors: undecided || !errorsKnown ? nil : errors) }
        return undecided ? Outcome(valid: nil, errors: nil) : Outcome(valid: true, errors: [])
    }
}

// MARK: - Generation

/// SplitMix64: small, fast, and the same sequence on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A JSON document as the generator builds it, before rendering (its own tiny model, so rendering
/// does not depend on the module under test).
indirect enum Tree {
    case object([(String, Tree)])
    case array([Tree])
    case string(String)
    /// The literal, written as is.
    case number(String)
    case bool(Bool)
    case null
}

/// Writes ``Tree``s as JSON with random (but always valid) formatting: whitespace, `\uXXXX` and
/// surrogate-pair escapes for ordinary characters, `\/`.
struct Renderer {
    var bytes: [UInt8] = []
    /// Chance (out of 1000) of escaping an ordinary character, and of whitespace between tokens.
    var escapeRate = 0
    var spaceRate = 0

    private static let hexDigits = Array("0123456789abcdef".utf8)

    mutating func space(_ rng: inout SplitMix64) {
        guard spaceRate > 0, Int(rng.next() % 1000) < spaceRate else { return }
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            bytes.append(
                [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r")].randomElement(
                    using: &rng
                )!
            )
        }
    }

    mutating func escapeUnit(_ unit: UInt16, upper: Bool) {
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "u"))
        for shift in [12, 8, 4, 0] {
            var digit = Self.hexDigits[Int((unit >> UInt16(shift)) & 0xF)]
            if upper && digit >= UInt8(ascii: "a") { digit -= 32 }
            bytes.append(digit)
        }
    }

    /// Appends the escape of a byte that must be escaped (quote, backslash, control), if it is one.
    private mutating func escapeIfNeeded(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x22: bytes.append(contentsOf: #"\""#.utf8)
        case 0x5C: bytes.append(contentsOf: #"\\"#.utf8)
        case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
        case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
        case 0..<0x20: escapeUnit(UInt16(byte), upper: byte & 1 == 0)
        default: return false
        }
        return true
    }

    mutating func string(_ text: String, _ rng: inout SplitMix64) {
        bytes.append(UInt8(ascii: "\""))
        if escapeRate == 0 {
            for byte in text.utf8 where !escapeIfNeeded(byte) { bytes.append(byte) }
        } else {
            for scalar in text.unicodeScalars {
                let value = scalar.value
                if value < 0x80 && escapeIfNeeded(UInt8(value)) { continue }
                if Int(rng.next() % 1000) >= escapeRate {
                    bytes.append(contentsOf: UTF8.encode(scalar)!)
                } else if value == 0x2F && rng.next() & 1 == 0 {
                    bytes.append(contentsOf: #"\/"#.utf8)
                } else if value >= 0x10000 {
                    let offset = value - 0x10000
                    escapeUnit(UInt16(0xD800 + (offset >> 10)), upper: rng.next() & 1 == 0)
                    escapeUnit(UInt16(0xDC00 + (offset & 0x3FF)), upper: rng.next() & 1 == 0)
                } else {
                    escapeUnit(UInt16(value), upper: rng.next() & 1 == 0)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func write(_ tree: Tree, _ rng: inout SplitMix64) {
        switch tree {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let literal): bytes.append(contentsOf: literal.utf8)
        case .string(let text): string(text, &rng)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (position, item) in items.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                space(&rng)
                write(item, &rng)
                space(&rng)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                space(&rng)
                string(member.0, &rng)
                space(&rng)
                bytes.append(UInt8(ascii: ":"))
                space(&rng)
                write(member.1, &rng)
                space(&rng)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}

/// Produces the documents of every ``HostileCorpusTests/Kind``.
struct CorpusGenerator {
    var rng: SplitMix64
    /// A rendered command that several truncations or mutations start from (rendering costs more than cutting).
    private var base: [UInt8] = []
    private var baseUses = 0

    /// The current base document, renewed every `uses` calls.
    private mutating func reusedBase(devices: ClosedRange<Int>, uses: Int) -> [UInt8] {
        if base.isEmpty || baseUses >= uses {
            base = render(command(devices: int(devices)))
            baseUses = 0
        }
        baseUses += 1
        return base
    }

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// Uniform enough for test data (the modulo bias is below 2^-40 for these ranges), and cheap in debug builds.
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(rng.next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
    /// Keys are the same when their scalars are (not when Swift's canonical equivalence says so).
    func sameKey(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }
    /// True with probability `percent`/100.
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...items.count - 1)] }

    // MARK: Text

    static let identifierCharacters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
    /// Characters that break one rule or another, and look-alikes.
    static let troublemakers: [Unicode.Scalar] = [
        " ", "/", "+", "#", "\u{0}", "\n", "é", "ß", "\u{212A}", "\u{301}", "🐲", "\u{FEFF}", "\u{2028}", "~", "\"",
        "\\",
        "\u{0663}", "\u{FF10}", "\u{10FFFF}", "\u{7F}",
    ]
    static let wideRanges: [ClosedRange<UInt32>] = [
        0x20...0x7E, 0x20...0x7E, 0x20...0x7E, 0x00...0x1F, 0xA0...0x24F, 0x300...0x36F, 0x4E00...0x9FFF,
        0xAC00...0xD7A3,
        0xE000...0xFFFF, 0x1F300...0x1FAFF, 0x10000...0x10FFFF,
    ]

    /// `length` ASCII letters, digits and characters of `extra` (ASCII).
    mutating func identifier(_ extra: String, length: Int) -> String {
        let extra = Array(extra.utf8)
        let count = UInt64(Self.identifierCharacters.count + extra.count)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        for _ in 0..<length {
            let index = Int(rng.next() % count)
            bytes.append(
                index < Self.identifierCharacters.count
                    ? Self.identifierCharacters[index] : extra[index - Self.identifierCharacters.count]
            )
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Any Unicode scalar (never a surrogate), weighted towards ASCII.
    mutating func anyScalar() -> Unicode.Scalar {
        while true {
            let range = Self.wideRanges[Int(rng.next() % UInt64(Self.wideRanges.count))]
            let value = range.lowerBound + UInt32(rng.next() % UInt64(range.upperBound - range.lowerBound + 1))
            if let scalar = Unicode.Scalar(value) { return scalar }
        }
    }

    mutating func text(length: Int) -> String {
        var text = String.UnicodeScalarView()
        for _ in 0..<length { text.append(anyScalar()) }
        return String(text)
    }

    /// `text` with one character replaced by a troublemaker.
    mutating func spoil(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)
        let bad = pick(Self.troublemakers)
        if scalars.isEmpty { scalars.append(bad) } else { scalars[int(0...scalars.count - 1)] = bad }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    // MARK: Commands

    /// An identifier field: usually valid, sometimes empty, too long, spoiled or of the wrong type.
    mutating func identifierValue(_ extra: String) -> Tree {
        switch int(0...99) {
        case 0..<80: return .string(identifier(extra, length: int(1...64)))
        case 80..<84: return .string("")
        case 84..<88: return .string(identifier(extra, length: int(65...80)))
        case 88..<96: return .string(spoil(identifier(extra, length: int(1...64))))
        default: return pick([.number("12"), .null, .bool(true), .array([.string("x")]), .object([])])
        }
    }

    mutating func deviceName() -> Tree {
        switch int(0...999) {
        case 0..<985: return .string(identifier("_.@:-", length: int(4...32)))
        case 985..<988: return .string(identifier("_.@:-", length: int(0...3)))
        case 988..<991: return .string(identifier("_.@:-", length: int(33...40)))
        case 991..<997: return .string(spoil(identifier("_.@:-", length: int(4...32))))
        default: return pick([.number("1234"), .number("1234.0"), .null, .array([])])
        }
    }

    mutating func deviceNames(count: Int) -> Tree {
        var names: [Tree] = []
        names.reserveCapacity(count)
        var seen: Set<String> = []
        for _ in 0..<count {
            var name = deviceName()
            // Unique unless a duplicate is wanted (compared as Swift strings: never a scalar duplicate by accident).
            if case .string(let text) = name, !seen.insert(text).inserted {
                name = .string("dev-\(seen.count)-\(names.count)")
            }
            names.append(name)
        }
        if count > 1 && chance(8) { names[int(1...count - 1)] = names[int(0...count - 2)] }
        return .array(names)
    }

    /// A command tree: the required fields (each sometimes missing), some optional fields, now and
    /// then an unknown one, in random order.
    mutating func command(devices: Int) -> Tree {
        var members: [(String, Tree)] = []
        if !chance(3) { members.append(("productKey", identifierValue("_-"))) }
        if !chance(3) { members.append(("firmwareId", identifierValue("_.:-"))) }
        if !chance(3) {
            members.append(
                (
                    "deviceNames",
                    chance(2) ? pick([.string("dev-0001"), .array([]), .null]) : deviceNames(count: devices)
                )
            )
        }
        if chance(30) { members.append(("jobId", identifierValue("_.:-"))) }
        if chance(20) { members.append(("iotInstanceId", identifierValue("_.:-"))) }
        if chance(50) {
            let length = chance(90) ? int(1...128) : pick([0, 129, 200])
            members.append(("correlationId", chance(97) ? .string(text(length: length)) : .number("42")))
        }
        if chance(30) {
            var topic = "ota/cancel/reply/" + identifier("/_-", length: int(0...40))
            if chance(15) { topic = spoil(topic) }
            if chance(2) { topic = "" }
            members.append(("replyTo", .string(topic)))
        }
        if chance(30) {
            let samples = Array(CommandRules.validDeadlines) + Array(CommandRules.invalidDeadlines)
            members.append(("deadline", chance(95) ? .string(pick(samples)) : .number("1764180000")))
        }
        if chance(20) {
            members.append(("dryRun", chance(90) ? .bool(chance(50)) : pick([.string("true"), .number("1")])))
        }
        if chance(40) {
            let length = chance(90) ? int(0...1024) : int(1025...1100)
            members.append(("reason", .string(text(length: length))))
        }
        if chance(20) { members.append(("requestedBy", .string(text(length: chance(90) ? int(0...256) : 257)))) }
        if chance(6) {
            let name = pick([
                "foo", "productkey", "product\u{212A}ey", "deviceNames ", "a/b~c", "", "\u{0}", "é", "e\u{301}",
            ])
            if !members.contains(where: { sameKey($0.0, name) }) { members.append((name, .number("1"))) }
        }
        members.shuffle(using: &rng)
        return .object(members)
    }

    mutating func render(_ tree: Tree, escapes: Bool = true) -> [UInt8] {
        var renderer = Renderer()
        if escapes && chance(30) { renderer.escapeRate = int(1...200) }
        if chance(30) { renderer.spaceRate = int(1...500) }
        renderer.write(tree, &rng)
        return renderer.bytes
    }

    /// 1 to 12,000 devices, mostly small.
    mutating func deviceCount() -> Int {
        switch int(0...99) {
        case 0..<60: int(1...10)
        case 60..<90: int(11...300)
        case 90..<98: int(301...10_000)
        default: int(10_001...12_000)
        }
    }

    // MARK: Kinds

    mutating func next(_ kind: HostileCorpusTests.Kind) -> ([UInt8], ParseExpectation) {
        switch kind {
        case .commands: return (render(command(devices: deviceCount())), .succeeds)
        case .mutations: return mutation()
        case .truncations:
            let document = reusedBase(devices: 1...400, uses: 4)
            return (Array(document.prefix(int(0...document.count - 1))), .fails(nil, offset: nil))
        case .deepNesting: return nesting()
        case .hugeNumbers: return numbers()
        case .longStrings: return longStrings()
        case .badBytes: return badBytes()
        case .duplicateKeys: return duplicateKeys()
        case .randomBytes: return randomBytes()
        }
    }

    mutating func mutation() -> ([UInt8], ParseExpectation) {
        var document = reusedBase(devices: 1...60, uses: 3)
        let tokens = [
            #","x":1"#, "\"", "\\u0000", "[", "]", "{", "}", ",", ":", "1e999999999", "-0", #""dev-0001""#, "null", " ",
            "\\", "\u{FEFF}", "\\ud800", "é", "#", "+",
        ].map { Array($0.utf8) }
        for _ in 0..<int(1...3) where !document.isEmpty {
            let at = int(0...document.count - 1)
            switch int(0...5) {
            case 0: document[at] ^= UInt8(1) << UInt8(int(0...7))
            case 1: document[at] = pick(Array(#"{}[],:"\0123456789-+.eEtrufalsn aZ/#"#.utf8))
            case 2: document.removeSubrange(at..<min(document.count, at + int(1...8)))
            case 3: document.insert(contentsOf: pick(tokens), at: at)
            case 4:
                let end = min(document.count, at + int(1...40))
                document.insert(contentsOf: Array(document[at..<end]), at: int(0...document.count))
            default:
                // An edit that keeps the document well-formed: a character inside a string changes.
                if let quote = document[at...].firstIndex(of: UInt8(ascii: "\"")), quote + 2 < document.count,
                    document[quote + 1] != UInt8(ascii: "\\"), document[quote + 1] != UInt8(ascii: "\"")
                {
                    document[quote + 1] = pick(Array("aZ9_-.:@+#/ ~".utf8))
                }
            }
        }
        return (document, .either)
    }

    mutating func nesting() -> ([UInt8], ParseExpectation) {
        let limit = 128
        let depth = chance(70) ? int(100...160) : int(1_000...1_000_000)
        switch int(0...3) {
        case 0, 1:
            // Closed nesting of arrays, objects or both at the root.
            var document: [UInt8] = []
            var closers: [UInt8] = []
            var tooDeepAt: Int?
            document.reserveCapacity(depth * 6)
            for level in 1...depth {
                if level == limit + 1 { tooDeepAt = document.count }
                if chance(50) {
                    document.append(UInt8(ascii: "["))
                    closers.append(UInt8(ascii: "]"))
                } else {
                    document.append(contentsOf: #"{"a":"#.utf8)
                    closers.append(UInt8(ascii: "}"))
                }
            }
            document.append(contentsOf: "0".utf8)
            document.append(contentsOf: closers.reversed())
            return (document, tooDeepAt.map { .fails(.tooDeep, offset: $0) } ?? .succeeds)
        case 2:
            // Openers only: too deep if past the limit, else cut short.
            let opener = pick(["[", "{\"k\":"])
            var document: [UInt8] = []
            var tooDeepAt: Int?
            for level in 1...depth {
                if level == limit + 1 { tooDeepAt = document.count }
                document.append(contentsOf: opener.utf8)
            }
            return (document, tooDeepAt.map { .fails(.tooDeep, offset: $0) } ?? .fails(.unexpectedEnd, offset: nil))
        default:
            // Nesting inside a command field, within the limit: parses, and the field has the wrong type.
            let inner = int(1...limit - 1)
            var tree = Tree.number("1")
            for _ in 0..<inner { tree = chance(50) ? .array([tree, .string("x")]) : .object([("k", tree)]) }
            guard case .object(var members) = command(devices: int(1...5)) else { return ([], .succeeds) }
            let field = pick(["reason", "deviceNames", "dryRun", "nested"])
            members.removeAll { sameKey($0.0, field) }
            members.append((field, tree))
            return (render(.object(members), escapes: false), .succeeds)
        }
    }

    /// A number literal: huge digits, extreme exponents, negative zero.
    mutating func numberLiteral() -> String {
        var literal = chance(30) ? "-" : ""
        let digits = chance(92) ? int(1...30) : int(1_000...20_000)
        if chance(15) {
            literal += "0"
        } else {
            literal += String(int(1...9))
            literal += String(repeating: pick(["0", "9", "7"]), count: digits - 1)
        }
        if chance(40) {
            literal +=
                "." + String(repeating: pick(["0", "5", "3"]), count: chance(92) ? int(1...20) : int(1_000...20_000))
                + "1"
        }
        if chance(40) {
            literal +=
                pick(["e", "E"]) + pick(["", "+", "-"])
                + String(pick([1, 9, 308, 309, 400, 999_999, 999_999_999, int(1...999_999_999)]))
        }
        return literal
    }

    mutating func numbers() -> ([UInt8], ParseExpectation) {
        switch int(0...9) {
        case 0..<5:
            // Numbers where the command has strings, booleans and arrays, and an array of them.
            var members: [(String, Tree)] = [("productKey", .string("pk")), ("firmwareId", .string("fw"))]
            members.append(
                (
                    "deviceNames",
                    chance(50)
                        ? .array((0..<int(1...40)).map { _ in .number(numberLiteral()) })
                        : .array([.string("dev-0001")])
                )
            )
            for field in ["dryRun", "reason", "correlationId", "jobId", "deadline"] where chance(40) {
                members.append((field, .number(numberLiteral())))
            }
            if chance(30) { members.append(("extra", .array((0..<int(1...20)).map { _ in .number(numberLiteral()) }))) }
            members.shuffle(using: &rng)
            return (render(.object(members)), .succeeds)
        case 5..<8:
            return (render(.array((0..<int(1...200)).map { _ in .number(numberLiteral()) })), .succeeds)
        default:
            let bad = pick([
                "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1.e5", "Infinity", "-Infinity", "NaN", "--1",
                "1e1000000000",
                "00", "-01", "1E-", "2.5e", "0.", "1.5.2", "1e5e5", "−1",
            ])
            let document = render(
                .object([
                    ("productKey", .string("pk")), ("firmwareId", .string("fw")),
                    ("deviceNames", .array([.string("dev-0001")])),
                ])
            )
            // Replace the closing brace with the bad number as one more member.
            var bytes = Array(document.dropLast())
            bytes.append(contentsOf: #","dryRun":"#.utf8)
            bytes.append(contentsOf: bad.utf8)
            bytes.append(UInt8(ascii: "}"))
            return (bytes, .fails(nil, offset: nil))
        }
    }

    mutating func longStrings() -> ([UInt8], ParseExpectation) {
        if chance(35) { return boundaryStrings() }
        let length = chance(70) ? int(1_000...100_000) : int(100_000...700_000)
        // One random block repeated: long inputs without paying for a random draw per character.
        let block = text(length: int(50...500))
        let long = String(repeating: block, count: max(1, length / block.unicodeScalars.count))
        guard case .object(var members) = command(devices: int(1...20)) else { return ([], .succeeds) }
        let field = pick(["reason", "requestedBy", "correlationId", "replyTo", "deviceNames", "productKey", "key"])
        members.removeAll { sameKey($0.0, field) }
        switch field {
        case "deviceNames": members.append((field, .array([.string("dev-0001"), .string(long)])))
        case "key": members.append((long, .bool(true)))
        default: members.append((field, .string(long)))
        }
        // Boundary lengths, exactly: 1,024 and 1,025 characters of multi-byte text.
        if chance(20) {
            let boundary = String(
                String.UnicodeScalarView(repeatElement(pick(["é", "🐲", "中", "a"]), count: pick([1024, 1025])))
            )
            members.removeAll { sameKey($0.0, "reason") }
            members.append(("reason", .string(boundary)))
        }
        return (render(.object(members)), .succeeds)
    }

    /// A valid command but for one string field of exactly its maximum length, or one more, in
    /// characters of every width (up to 65,535 of them in `replyTo`).
    mutating func boundaryStrings() -> ([UInt8], ParseExpectation) {
        let (field, limit) = pick([("replyTo", 65_535), ("reason", 1024), ("correlationId", 128), ("requestedBy", 256)])
        let length = limit + (chance(50) ? 0 : 1)
        var block = Array(text(length: int(20...300)).unicodeScalars.filter { $0 != "+" && $0 != "#" && $0 != "\u{0}" })
        if block.isEmpty { block = ["a"] }
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(length + block.count)
        while scalars.count < length { scalars.append(contentsOf: block) }
        let value = String(String.UnicodeScalarView(scalars.prefix(length)))
        var members: [(String, Tree)] = [
            ("productKey", .string("pk")), ("firmwareId", .string("fw")),
            ("deviceNames", .array([.string("dev-0001")])),
            (field, .string(value)),
        ]
        members.shuffle(using: &rng)
        return (render(.object(members)), .succeeds)
    }

    mutating func badBytes() -> ([UInt8], ParseExpectation) {
        // A command whose first member is a string with `before` + fault + `after` as its content.
        let padding = chance(70) ? int(0...2_000) : int(100_000...1_000_000)
        let before = String(repeating: pick(["a", "é", "中", "🐲", "\\n"]), count: padding / 4)
        var document = Array(#"{"reason":""#.utf8) + Array(before.utf8)
        let at = document.count
        let expectation: ParseExpectation
        switch int(0...3) {
        case 0:
            let faults: [[UInt8]] = [
                [0xFF], [0xFE], [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80],
                [0xED, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],
                [0xE2, 0x82], [0xC2], [0xF0, 0x9F, 0x98], [0xF0, 0x80, 0x80, 0x80],
            ]
            document.append(contentsOf: pick(faults))
            expectation = .fails(.invalidUTF8, offset: at)
        case 1:
            let surrogates = [
                #"\ud800"#, #"\udc00"#, #"\ud800\u0041"#, #"\udbff\ud800"#, #"\uDFFF"#, #"\ud83d\ud83d"#, #"\ud800\n"#,
            ]
            document.append(contentsOf: pick(surrogates).utf8)
            expectation = .fails(.loneSurrogate, offset: at)
        case 2:
            document.append(UInt8(int(0...0x1F)))
            expectation = .fails(.controlCharacterInString, offset: at)
        default:
            document.append(contentsOf: pick([#"\x"#, #"\U0041"#, #"\'"#, #"\a"#, #"\0"#, #"\u12G4"#, #"\u00"#]).utf8)
            expectation = .fails(nil, offset: at)
        }
        document.append(contentsOf: #"tail","productKey":"pk","firmwareId":"fw","deviceNames":["dev-0001"]}"#.utf8)
        return (document, expectation)
    }

    mutating func duplicateKeys() -> ([UInt8], ParseExpectation) {
        let keyCount = chance(80) ? int(1...50) : int(1_000...100_000)
        var document = Array(#"{"productKey":"pk","firmwareId":"fw","deviceNames":["dev-0001"]"#.utf8)
        if chance(30) {
            // Keys that look alike but differ in their scalars are not duplicates.
            let pairs = [("é", "e\u{301}"), ("jobKey", "job\u{212A}ey"), ("a", "A"), ("Å", "\u{212B}"), ("k", "k ")]
            let (first, second) = pick(pairs)
            var renderer = Renderer()
            renderer.escapeRate = chance(50) ? 500 : 0
            for key in [first, second] {
                renderer.bytes = [UInt8(ascii: ",")]
                renderer.string(key, &rng)
                document.append(contentsOf: renderer.bytes)
                document.append(contentsOf: ":1".utf8)
            }
            document.append(UInt8(ascii: "}"))
            return (document, .succeeds)
        }
        let nested = chance(30)
        if nested { document.append(contentsOf: #","extra":{"#.utf8) } else { document.append(UInt8(ascii: ",")) }
        for index in 0..<keyCount { document.append(contentsOf: "\"k\(index)\":\(index),".utf8) }
        let duplicate = pick(
            ["k0", "k\(keyCount - 1)", "k\(int(0...keyCount - 1))"] + (nested ? [] : ["productKey", "deviceNames"])
        )
        let at = document.count
        // The same key, sometimes spelled with escapes.
        var renderer = Renderer()
        renderer.escapeRate = chance(50) ? 700 : 0
        renderer.string(duplicate, &rng)
        document.append(contentsOf: renderer.bytes)
        document.append(contentsOf: ":true}".utf8)
        if nested { document.append(UInt8(ascii: "}")) }
        return (document, .fails(.duplicateKey, offset: at))
    }

    /// A random JSON tree of bounded size and depth.
    mutating func randomTree(depth: Int, budget: inout Int) -> Tree {
        budget -= 1
        if depth == 0 || budget <= 0 || chance(40) {
            switch int(0...4) {
            case 0: return .string(text(length: int(0...20)))
            case 1: return .number(numberLiteral())
            case 2: return .bool(chance(50))
            case 3: return .null
            default: return .string(identifier("-", length: int(4...12)))
            }
        }
        if chance(50) {
            return .array((0..<int(0...8)).map { _ in randomTree(depth: depth - 1, budget: &budget) })
        }
        var seen: Set<String> = []
        var members: [(String, Tree)] = []
        for _ in 0..<int(0...8) {
            let key =
                chance(50)
                ? pick(["productKey", "firmwareId", "deviceNames", "reason", "dryRun", "x"]) : text(length: int(0...6))
            if seen.insert(key).inserted { members.append((key, randomTree(depth: depth - 1, budget: &budget))) }
        }
        return .object(members)
    }

    mutating func randomBytes() -> ([UInt8], ParseExpectation) {
        let size = int(1...20_000)
        switch int(0...2) {
        case 0:
            return ((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }, .either)
        case 1:
            let alphabet = Array(#"{}[],:"\0123456789-+.eEtrufalsn u"#.utf8) + [0x0A, 0xC3, 0xA9, 0xFF]
            return ((0..<size).map { _ in pick(alphabet) }, .either)
        default:
            var budget = int(1...3_000)
            return (render(randomTree(depth: int(1...40), budget: &budget)), .succeeds)
        }
    }
}
