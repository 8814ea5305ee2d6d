// SPDX-License-Identifier: Apache-2.0

import JSONSchema
import Testing

/// ECMA-262 semantics of `pattern`, exercised through the public validator.
@Suite("pattern (ECMA-262)")
struct PatternTests {
    /// Whether `pattern` finds a match in `text`.
    private func matches(_ pattern: String, _ text: String) throws -> Bool {
        let schema: JSONValue = ["pattern": .string(pattern)]
        return try JSONSchemaValidator(schema: schema).isValid(.string(text))
    }

    @Test(arguments: [
        // (pattern, text, expected)
        (#"^\d+$"#, "0123456789", true),
        (#"^\d+$"#, "৪২", false),  // Bengali digits are not \d
        (#"^\p{Nd}+$"#, "৪২", true),
        (#"^\p{digit}+$"#, "৪২", true),
        (#"^\w+$"#, "abc_XYZ09", true),
        (#"^\w+$"#, "école", false),
        (#"^\p{L}+$"#, "école", true),
        (#"^\P{L}+$"#, "123", true),
        (#"^\s+$"#, "\t\n\u{0B}\u{0C}\r \u{A0}\u{FEFF}\u{2028}\u{3000}", true),
        (#"^\S$"#, "\u{2013}", true),
        ("^abc$", "abc\n", false),
        ("^abc$", "abc", true),
        ("^.$", "\n", false),
        ("^.$", "🐲", true),
        ("^🐲*$", "🐲🐲", true),
        ("^🐲*$", "🐉", false),
        (#"^\u{1F432}$"#, "🐲", true),
        (#"^\ud83d\udc32$"#, "🐲", true),
        (#"^\cC$"#, "\u{3}", true),
        (#"^\x41\u0042\t$"#, "AB\t", true),
        ("^[^]$", "x", true),
        ("^[]$", "", false),
        ("a|bc", "xbcx", true),
        ("^(?:ab)+$", "ababab", true),
        ("^(?:ab)+$", "ababa", false),
        ("^a{2,3}$", "aaaa", false),
        ("^a{2,}$", "aaaa", true),
        ("^a{2}$", "aa", true),
        ("^(a|ab)(c|bcd)(d*)$", "abcd", true),
        ("^a*?b$", "aaab", true),
        (#"^(\w+) \1$"#, "hey hey", true),
        (#"^(\w+) \1$"#, "hey you", false),
        (#"^(?<word>\w+)-\k<word>$"#, "ab-ab", true),
        ("^(?=.*[0-9])(?=.*[a-z]).{6,}$", "abc123", true),
        ("^(?=.*[0-9])(?=.*[a-z]).{6,}$", "abcdef", false),
        ("^(?!foo).*$", "foobar", false),
        ("(?<=\\$)\\d+", "cost: $42", true),
        ("(?<!\\$)\\b\\d+", "$42", false),
        ("(?<=a+)b", "aaab", true),
        (#"\bfoo\b"#, "a foo b", true),
        (#"\bfoo\b"#, "afoob", false),
        (#"\Bfoo"#, "afoo", true),
        ("^(a*)*$", "aaaa", true),
        ("^(a*)+b$", "aaab", true),
        ("^(?:a|)+$", "aaa", true),
        (#"^[\d-]+$"#, "1-2", true),
        (#"^[\w.@:-]+$"#, "dev-1@x.y:z", true),
        ("^[a-c-e]+$", "a-e", true),
        (#"^[\]]$"#, "]", true),
    ])
    func ecmaSemantics(_ pattern: String, _ text: String, _ expected: Bool) throws {
        #expect(try matches(pattern, text) == expected, "/\(pattern)/ on \(text.debugDescription)")
    }

    @Test func catastrophicBacktrackingIsBoundedAndFailsClosed() throws {
        // Classic exponential patterns on inputs that almost match. A naive backtracker needs 2^40
        // steps here; the step budget stops it in well under a second, and the instance is rejected
        // (also under `not`, so an attacker cannot turn the budget into an acceptance).
        let hostile = String(repeating: "a", count: 40) + "!"
        let clock = ContinuousClock()
        for pattern in ["^(a+)+$", "^(a|a)+$", "^(a|aa)+$", "^(.*a){12}$"] {
            let start = clock.now
            #expect(try !matches(pattern, hostile), "\(pattern)")
            let negated = try JSONSchemaValidator(schema: ["not": ["pattern": .string(pattern)]])
            #expect(!negated.isValid(.string(hostile)))
            let errors = negated.validate(.string(hostile))
            #expect(errors.first?.message.contains("too many steps") == true)
            #expect(clock.now - start < .seconds(20), "hang guard for \(pattern)")
        }
    }

    @Test func longInputsDoNotExhaustTheStack() throws {
        let long = String(repeating: "ab", count: 500_000)
        #expect(try matches("^(?:ab)*$", long))
        #expect(try matches("^[ab]*$", long))
        #expect(try matches("b$", long))
        #expect(try !matches("^(?:ab)*c$", long))
    }
}
