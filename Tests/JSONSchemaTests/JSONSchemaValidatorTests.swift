// SPDX-License-Identifier: Apache-2.0

import JSONSchema
import Testing

/// Compiles a schema written as JSON text.
func makeValidator(
    _ schema: String,
    formatAssertion: Bool = false,
    remotes: [String: String] = [:]
) throws
    -> JSONSchemaValidator
{
    var remoteSchemas: [String: JSONValue] = [:]
    for (uri, text) in remotes { remoteSchemas[uri] = try JSONParser.parse(text) }
    return try JSONSchemaValidator(
        schema: try JSONParser.parse(schema),
        options: .init(formatAssertion: formatAssertion, remoteSchemas: remoteSchemas)
    )
}

/// The compilation error for a schema written as JSON text, or `nil` if it compiles.
func compilationError(_ schema: String, remotes: [String: String] = [:]) throws -> SchemaCompilationError? {
    do {
        _ = try makeValidator(schema, remotes: remotes)
        return nil
    } catch let error as SchemaCompilationError {
        return error
    }
}

extension JSONSchemaValidator {
    /// Validates JSON text with both outputs and checks they agree.
    func check(_ instance: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [ValidationError] {
        let value = try JSONParser.parse(instance)
        let errors = validate(value)
        #expect(
            isValid(value) == errors.isEmpty,
            "flag and basic output disagree for \(instance)",
            sourceLocation: sourceLocation
        )
        return errors
    }

    func accepts(_ instance: String) throws -> Bool { try check(instance).isEmpty }
}

@Suite("JSONSchemaValidator")
struct JSONSchemaValidatorTests {
    // MARK: Type, const, enum

    @Test func typeDistinguishesBooleansIntegersAndNumbers() throws {
        let integer = try makeValidator(#"{"type":"integer"}"#)
        #expect(try integer.accepts("1"))
        #expect(try integer.accepts("1.0"))
        #expect(try integer.accepts("1e2"))
        #expect(try integer.accepts("-0"))
        #expect(try !integer.accepts("1.5"))
        #expect(try !integer.accepts("true"))
        #expect(try !integer.accepts(#""1""#))
        let number = try makeValidator(#"{"type":"number"}"#)
        #expect(try number.accepts("1"))
        #expect(try number.accepts("1e400"))
        #expect(try !number.accepts("false"))
        let several = try makeValidator(#"{"type":["string","null"]}"#)
        #expect(try several.accepts("null"))
        #expect(try several.accepts(#""x""#))
        let errors = try several.check("3")
        #expect(errors.map(\.keywordLocation) == ["/type"])
        #expect(errors.first?.message == "3 is not of type null or string")
    }

    @Test func constAndEnumUseInstanceEquality() throws {
        let constant = try makeValidator(#"{"const":{"a":[1,true]}}"#)
        #expect(try constant.accepts(#"{"a":[1.0,true]}"#))
        #expect(try !constant.accepts(#"{"a":[true,true]}"#))
        #expect(try !constant.accepts(#"{"a":[1,1]}"#))
        let enumeration = try makeValidator(#"{"enum":["\u00e4",0,false,null]}"#)
        #expect(try enumeration.accepts(#""\u00e4""#))
        #expect(try !enumeration.accepts(#""a\u0308""#))
        #expect(try enumeration.accepts("0.0"))
        #expect(try !enumeration.accepts("true"))
        #expect(try enumeration.accepts("false"))
        let errors = try enumeration.check("1")
        #expect(errors.first?.keywordLocation == "/enum")
        #expect(errors.first?.message == "1 is not one of 'ä', 0, false, null")
        // Large enums use a hash set; same semantics.
        let large = try makeValidator("{\"enum\":[" + (0..<50).map { "\($0)" }.joined(separator: ",") + "]}")
        #expect(try large.accepts("49.0"))
        #expect(try !large.accepts("50"))
    }

    // MARK: Numbers

    @Test func numericBoundsAreExact() throws {
        let bounds = try makeValidator(#"{"minimum":1.1,"exclusiveMaximum":1e400}"#)
        #expect(try bounds.accepts("1.1"))
        #expect(try !bounds.accepts("1.0999999999999999999999"))
        #expect(try bounds.accepts("9.99e399"))
        #expect(try !bounds.accepts("1e400"))
        let exclusive = try makeValidator(#"{"exclusiveMinimum":0,"maximum":18446744073709551616}"#)
        #expect(try !exclusive.accepts("0"))
        #expect(try !exclusive.accepts("-0.0"))
        #expect(try exclusive.accepts("1e-400"))
        #expect(try exclusive.accepts("18446744073709551616"))
        #expect(try !exclusive.accepts("18446744073709551617"))
        let errors = try bounds.check("1")
        #expect(errors.map(\.keywordLocation) == ["/minimum"])
        #expect(errors.first?.message == "1 is less than the minimum of 1.1")
        #expect(try bounds.accepts(#""not a number""#))
    }

    @Test func multipleOfIsExactDecimalArithmetic() throws {
        let cents = try makeValidator(#"{"multipleOf":0.01}"#)
        for amount in ["19.99", "0.07", "4.35", "1e308", "123456789012345678901234567890.12"] {
            #expect(try cents.accepts(amount), "\(amount) is a multiple of 0.01")
        }
        #expect(try !cents.accepts("0.001"))
        #expect(try !cents.accepts("19.991"))
        #expect(try makeValidator(#"{"multipleOf":0.0001}"#).accepts("0.0075"))
        #expect(try !makeValidator(#"{"multipleOf":0.123456789}"#).accepts("1e308"))
        #expect(try makeValidator(#"{"multipleOf":1e-8}"#).accepts("12391239123"))
        #expect(try makeValidator(#"{"multipleOf":0.5}"#).accepts("1e308"))
        #expect(try !makeValidator(#"{"multipleOf":3}"#).accepts("1e999999"))
        #expect(try makeValidator(#"{"multipleOf":7}"#).accepts("-700000000000000000000000000000000000000000000000007"))
        let errors = try makeValidator(#"{"multipleOf":2}"#).check("7")
        #expect(errors.first?.message == "7 is not a multiple of 2")
    }

    // MARK: Strings

    @Test func lengthsCountUnicodeScalars() throws {
        let validator = try makeValidator(#"{"minLength":2,"maxLength":5}"#)
        #expect(try !validator.accepts(#""🐲""#))  // one scalar, four bytes
        #expect(try validator.accepts(#""🐲🐲""#))
        #expect(try validator.accepts(#""a\u0308""#))  // two scalars, one grapheme
        #expect(try validator.accepts(#""👨‍👩‍👧""#))  // five scalars, one grapheme
        #expect(try !validator.accepts(#""👨‍👩‍👧‍👦""#))  // seven scalars
        let errors = try validator.check(#""x""#)
        #expect(errors.map(\.keywordLocation) == ["/minLength"])
        #expect(errors.first?.message == "'x' is shorter than 2 characters")
    }

    @Test func patternIsAnUnanchoredECMASearch() throws {
        let validator = try makeValidator(#"{"pattern":"b+c"}"#)
        #expect(try validator.accepts(#""aabbcc""#))
        #expect(try !validator.accepts(#""ac""#))
        let anchored = try makeValidator(#"{"pattern":"^[a-z]+$"}"#)
        #expect(try anchored.accepts(#""abc""#))
        #expect(try !anchored.accepts(#""abc\n""#))
        let errors = try anchored.check(#""ab1""#)
        #expect(errors.first?.keywordLocation == "/pattern")
        #expect(errors.first?.message == "'ab1' does not match the pattern ^[a-z]+$")
    }

    @Test func invalidPatternsFailCompilation() throws {
        for pattern in ["(", "[a-", "a{2,1}", #"\\a"#, "(?P<n>x)", "(?i)x", "a**", "{", #"\\1"#] {
            let error = try compilationError(#"{"pattern":"\#(pattern)"}"#)
            #expect(error?.code == .invalidPattern, "pattern \(pattern)")
            #expect(error?.keyword == "pattern")
        }
        #expect(try compilationError(#"{"patternProperties":{"(":{}}}"#)?.code == .invalidPattern)
    }

    // MARK: Arrays

    @Test func itemsPrefixItemsAndContains() throws {
        let tuple = try makeValidator(#"{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}"#)
        #expect(try tuple.accepts(#"["a",1]"#))
        #expect(try tuple.accepts(#"["a"]"#))
        let extra = try tuple.check(#"["a",1,2]"#)
        #expect(extra.map(\.instanceLocation) == ["/2"])
        #expect(extra.map(\.keywordLocation) == ["/items"])
        let wrong = try tuple.check(#"[1,"b"]"#)
        #expect(wrong.map(\.keywordLocation) == ["/prefixItems/0/type", "/prefixItems/1/type"])
        #expect(wrong.map(\.instanceLocation) == ["/0", "/1"])

        let contains = try makeValidator(#"{"contains":{"type":"integer"},"minContains":2,"maxContains":3}"#)
        #expect(try contains.accepts(#"[1,"a",2]"#))
        #expect(try !contains.accepts(#"[1,"a"]"#))
        #expect(try !contains.accepts("[1,2,3,4]"))
        #expect(try contains.check("[1]").first?.keywordLocation == "/minContains")
        #expect(try contains.check("[1,2,3,4]").first?.keywordLocation == "/maxContains")
        let any = try makeValidator(#"{"contains":{"const":5}}"#)
        #expect(try any.check("[1,2]").first?.keywordLocation == "/contains")
        #expect(try makeValidator(#"{"contains":false,"minContains":0}"#).accepts("[1]"))
    }

    @Test func uniqueItemsUsesInstanceEquality() throws {
        let validator = try makeValidator(#"{"uniqueItems":true}"#)
        #expect(try validator.accepts("[1,true,\"1\",null,[1],{\"a\":1}]"))
        #expect(try !validator.accepts("[1,1.0]"))
        #expect(try !validator.accepts(#"[{"a":1,"b":2},{"b":2,"a":1}]"#))
        #expect(try validator.accepts(#"["\u00e4","a\u0308"]"#))
        let errors = try validator.check(#"["x","y","x","y"]"#)
        #expect(errors.count == 1)
        #expect(errors.first?.instanceLocation == "")
        #expect(errors.first?.message == "items 0 and 2 are equal ('x') (and 1 more duplicate); items must be unique")
        // Hash-based: 100,000 distinct items are checked quickly.
        let many = "[" + (0..<100_000).map { "\"d\($0)\"" }.joined(separator: ",") + "]"
        #expect(try validator.accepts(many))
    }

    @Test func itemCountBounds() throws {
        let validator = try makeValidator(#"{"minItems":1,"maxItems":2.0}"#)
        #expect(try validator.accepts("[1,2]"))
        #expect(try validator.check("[]").first?.message == "the array has 0 items, fewer than the minimum of 1")
        #expect(try validator.check("[1,2,3]").first?.keywordLocation == "/maxItems")
    }

    // MARK: Objects

    @Test func propertyApplicatorsShareOnePass() throws {
        let validator = try makeValidator(
            #"""
            {"properties":{"a":{"type":"integer"}},"patternProperties":{"^x-":{"type":"string"}},
             "additionalProperties":{"type":"boolean"}}
            """#
        )
        #expect(try validator.accepts(#"{"a":1,"x-y":"s","other":true}"#))
        let errors = try validator.check(#"{"a":"1","x-y":2,"other":null}"#)
        #expect(errors.map(\.instanceLocation) == ["/a", "/x-y", "/other"])
        #expect(
            errors.map(\.keywordLocation) == [
                "/properties/a/type", "/patternProperties/^x-/type", "/additionalProperties/type",
            ]
        )
        let closed = try makeValidator(#"{"properties":{"a":{}},"additionalProperties":false}"#)
        let unknown = try closed.check(#"{"a":1,"foo":2}"#)
        #expect(unknown.map(\.instanceLocation) == ["/foo"])
        #expect(unknown.map(\.keywordLocation) == ["/additionalProperties"])
        #expect(unknown.first?.message == "foo: property 'foo' is not allowed")
    }

    @Test func manyPropertiesUseAnIndexWithTheSameResults() throws {
        let properties = (0..<30).map { #""p\#($0)":{"const":\#($0)}"# }.joined(separator: ",")
        let validator = try makeValidator(#"{"properties":{\#(properties)},"additionalProperties":false}"#)
        #expect(try validator.accepts(#"{"p0":0,"p29":29}"#))
        #expect(try validator.check(#"{"p7":8}"#).first?.keywordLocation == "/properties/p7/const")
        #expect(try validator.check(#"{"p30":30}"#).first?.keywordLocation == "/additionalProperties")
    }

    @Test func requiredAndDependencies() throws {
        let validator = try makeValidator(
            #"""
            {"required":["a","b"],"dependentRequired":{"a":["c"]},
             "dependentSchemas":{"b":{"properties":{"d":{"type":"string"}}}},
             "minProperties":2,"maxProperties":4}
            """#
        )
        #expect(try validator.accepts(#"{"a":1,"b":2,"c":3}"#))
        let errors = try validator.check(#"{"a":1,"d":4}"#)
        #expect(errors.map(\.keywordLocation) == ["/required", "/dependentRequired"])
        #expect(
            errors.map(\.message) == ["missing required property 'b'", "property 'c' is required when 'a' is present"]
        )
        #expect(
            try validator.check(#"{"a":1,"b":2,"c":3,"d":4}"#).map(\.keywordLocation) == [
                "/dependentSchemas/b/properties/d/type"
            ]
        )
        #expect(try validator.check(#"{"a":1,"b":2,"c":3,"e":4,"f":5}"#).map(\.keywordLocation) == ["/maxProperties"])
    }

    @Test func draft7DependenciesKeepTheirMeaning() throws {
        let validator = try makeValidator(
            ##"""
            {"dependencies":{"a":["b","c"],"d":{"required":["e"]},"f":false,"g":{"$ref":"#/$defs/s"}},
             "$defs":{"s":{"properties":{"g":{"type":"string"}}}}}
            """##
        )
        #expect(try validator.accepts(#"{"a":1,"b":2,"c":3}"#))
        #expect(try validator.accepts(#"{"b":1,"d":2,"e":3}"#))
        #expect(try validator.accepts(#"{"g":"text"}"#))
        #expect(try validator.accepts("[1]"))
        let errors = try validator.check(#"{"a":1,"b":2}"#)
        #expect(errors.map(\.keywordLocation) == ["/dependencies"])
        #expect(errors.map(\.message) == ["property 'c' is required when 'a' is present"])
        #expect(try validator.check(#"{"d":1,"e":2,"b":3}"#).isEmpty)
        #expect(try validator.check(#"{"d":1}"#).map(\.keywordLocation) == ["/dependencies/d/required"])
        #expect(try validator.check(#"{"f":1}"#).map(\.keywordLocation) == ["/dependencies/f"])
        let throughRef = try validator.check(#"{"g":1}"#)
        #expect(throughRef.map(\.keywordLocation) == ["/dependencies/g/$ref/properties/g/type"])
        #expect(throughRef.first?.absoluteKeywordLocation == "#/$defs/s/properties/g/type")
        // A schema member's properties count as evaluated, like dependentSchemas'.
        let evaluated = try makeValidator(
            #"{"dependencies":{"g":{"properties":{"g":true}}},"unevaluatedProperties":false}"#
        )
        #expect(try evaluated.accepts(#"{"g":1}"#))
        #expect(try evaluated.check(#"{"g":1,"h":1}"#).map(\.keywordLocation) == ["/unevaluatedProperties"])
        for schema in [#"{"dependencies":[]}"#, #"{"dependencies":{"a":1}}"#, #"{"dependencies":{"a":[1]}}"#] {
            #expect(try compilationError(schema)?.code == .invalidKeywordValue, "\(schema)")
        }
    }

    @Test func propertyNamesApplyToKeys() throws {
        let validator = try makeValidator(#"{"propertyNames":{"pattern":"^[a-z]+$","maxLength":3}}"#)
        #expect(try validator.accepts(#"{"abc":1}"#))
        let errors = try validator.check(#"{"ok":1,"Bad":2,"long":3}"#)
        #expect(errors.map(\.keywordLocation) == ["/propertyNames/pattern", "/propertyNames/maxLength"])
    }

    @Test func instanceLocationsEscapeByScalarsAndMessagesStayShort() throws {
        let validator = try makeValidator(#"{"additionalProperties":false}"#)
        // `/` and `~` followed by a combining mark are still `/` and `~` (as Characters they are not).
        let errors = try validator.check(#"{"a/\u0301":1,"~\u0301":2,"x\ny":3}"#)
        #expect(errors.map(\.instanceLocation) == ["/a~1\u{301}", "/~0\u{301}", "/x\ny"])
        #expect(
            errors.map(\.message) == [
                "a~1\u{301}: property 'a/\u{301}' is not allowed", "~0\u{301}: property '~\u{301}' is not allowed",
                "x\\ny: property 'x\\ny' is not allowed",
            ]
        )
        // A huge key: the location is exact, the message names an excerpt of it.
        let key = String(repeating: "k", count: 100_000)
        let long = try #require(validator.validate(.object([key: 1])).first)
        #expect(long.instanceLocation == "/" + key)
        #expect(
            long.message == String(repeating: "k", count: 100) + "…: property '" + String(repeating: "k", count: 64)
                + "…' is not allowed"
        )
    }

    // MARK: Applicators

    @Test func combinatorsAndConditionals() throws {
        let validator = try makeValidator(
            #"""
            {"allOf":[{"type":"object"}],
             "anyOf":[{"required":["a"]},{"required":["b"]}],
             "oneOf":[{"required":["x"]},{"required":["y"]}],
             "not":{"required":["z"]},
             "if":{"required":["a"]},"then":{"properties":{"a":{"type":"integer"}}},"else":{"properties":{"b":{"type":"string"}}}}
            """#
        )
        #expect(try validator.accepts(#"{"a":1,"x":0}"#))
        #expect(try validator.accepts(#"{"b":"s","y":0}"#))
        #expect(try validator.check(#"{"a":"1","x":0}"#).map(\.keywordLocation) == ["/then/properties/a/type"])
        #expect(try validator.check(#"{"b":1,"y":0}"#).map(\.keywordLocation) == ["/else/properties/b/type"])
        #expect(try validator.check(#"{"a":1,"x":0,"z":0}"#).map(\.keywordLocation) == ["/not"])
        let both = try validator.check(#"{"a":1,"x":0,"y":0}"#)
        #expect(both.map(\.keywordLocation) == ["/oneOf"])
        #expect(both.first?.message.contains("matches alternatives #0, #1, but must match exactly one") == true)
        let neither = try validator.check(#"{"x":0}"#)
        #expect(neither.map(\.keywordLocation) == ["/anyOf"])
        #expect(
            neither.first?.message
                == #"{"x":0} matches none of the 2 alternatives (#0: missing required property 'a'; #1: missing required property 'b')"#
        )
    }

    @Test func booleanSchemas() throws {
        #expect(try makeValidator("true").accepts(#"{"anything":[1]}"#))
        let never = try makeValidator("false")
        let errors = try never.check("1")
        #expect(errors.map(\.keywordLocation) == [""])
        #expect(errors.map(\.instanceLocation) == [""])
    }

    // MARK: References

    @Test func localReferencesAndAnchors() throws {
        let validator = try makeValidator(
            #"""
            {"$id":"https://example.com/root.json",
             "properties":{"a":{"$ref":"#/$defs/positive"},"b":{"$ref":"#named"},"c":{"$ref":"item.json"}},
             "$defs":{"positive":{"exclusiveMinimum":0},
                      "named":{"$anchor":"named","type":"string"},
                      "item":{"$id":"item.json","type":"boolean"}}}
            """#
        )
        #expect(try validator.accepts(#"{"a":1,"b":"s","c":true}"#))
        let errors = try validator.check(#"{"a":0,"b":1,"c":"x"}"#)
        #expect(
            errors.map(\.keywordLocation) == [
                "/properties/a/$ref/exclusiveMinimum", "/properties/b/$ref/type", "/properties/c/$ref/type",
            ]
        )
        #expect(
            errors.map(\.absoluteKeywordLocation) == [
                "https://example.com/root.json#/$defs/positive/exclusiveMinimum",
                "https://example.com/root.json#/$defs/named/type",
                "https://example.com/item.json#/type",
            ]
        )
    }

    @Test func recursiveReferencesValidateTrees() throws {
        let validator = try makeValidator(
            #"""
            {"$defs":{"node":{"type":"object","required":["value"],
               "properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},
             "$ref":"#/$defs/node"}
            """#
        )
        #expect(try validator.accepts(#"{"value":1,"children":[{"value":2,"children":[{"value":3}]}]}"#))
        let errors = try validator.check(#"{"value":1,"children":[{"value":2,"children":[{"value":"3"}]}]}"#)
        #expect(errors.map(\.instanceLocation) == ["/children/0/children/0/value"])
        #expect(
            errors.map(\.keywordLocation) == [
                "/$ref/properties/children/items/$ref/properties/children/items/$ref/properties/value/type"
            ]
        )
        #expect(errors.first?.absoluteKeywordLocation == "#/$defs/node/properties/value/type")
    }

    @Test func remoteReferencesComeFromPreloadedSchemasOnly() throws {
        let remotes = ["https://example.com/int.json": #"{"type":"integer"}"#]
        let validator = try makeValidator(#"{"items":{"$ref":"https://example.com/int.json"}}"#, remotes: remotes)
        #expect(try validator.accepts("[1,2]"))
        #expect(try validator.check(#"[1,"2"]"#).first?.absoluteKeywordLocation == "https://example.com/int.json#/type")
        let missing = try compilationError(#"{"$ref":"https://example.com/other.json"}"#, remotes: remotes)
        #expect(missing?.code == .unresolvableReference)
        #expect(missing?.schemaLocation == "#/$ref")
    }

    @Test func schemasValidateAgainstTheBundledMetaSchema() throws {
        // Offline: the draft 2020-12 meta-schemas are built in (they use $dynamicRef throughout).
        let metaschema = try makeValidator(#"{"$ref":"https://json-schema.org/draft/2020-12/schema"}"#)
        #expect(try metaschema.accepts(#"{"type":"object","properties":{"a":{"minLength":1}},"$defs":{"x":true}}"#))
        let errors = try metaschema.check(#"{"properties":{"a":{"minLength":-1}}}"#)
        #expect(!errors.isEmpty)
        #expect(errors.contains { $0.instanceLocation == "/properties/a/minLength" })
        #expect(errors.allSatisfy { $0.keywordLocation.hasPrefix("/$ref/") })
        #expect(
            errors.allSatisfy {
                $0.absoluteKeywordLocation?.hasPrefix("https://json-schema.org/draft/2020-12/") == true
            }
        )
        #expect(try !metaschema.accepts(#"{"type":1}"#))
        #expect(try !metaschema.accepts(#"{"$defs":{"x":{"type":"text"}}}"#))
    }

    @Test func referenceLoopsWithoutProgressAreRefused() throws {
        #expect(try compilationError(##"{"$ref":"#"}"##)?.code == .infiniteRecursion)
        #expect(
            try compilationError(
                ##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}"##
            )?
            .code == .infiniteRecursion
        )
        // Recursion through a child instance is fine.
        #expect(try compilationError(##"{"items":{"$ref":"#"}}"##) == nil)
    }

    // MARK: Compilation rules

    // MARK: Unevaluated and dynamic references

    @Test func unevaluatedPropertiesSeesThroughInPlaceApplicators() throws {
        let validator = try makeValidator(
            ##"""
            {"properties":{"id":{"type":"string"},"d":true},
             "allOf":[{"properties":{"a":true}}],
             "anyOf":[{"properties":{"b":{"const":1}},"required":["b"]},{"properties":{"c":{"const":1}},"required":["c"]}],
             "if":{"properties":{"kind":{"const":"x"}},"required":["kind"]},"then":{"properties":{"x":true}},
             "dependentSchemas":{"d":{"properties":{"e":true}}},
             "$ref":"#/$defs/more",
             "$defs":{"more":{"patternProperties":{"^m-":true}}},
             "unevaluatedProperties":false}
            """##
        )
        #expect(try validator.accepts(#"{"id":"1","a":1,"b":1,"kind":"x","x":3,"d":4,"e":5,"m-1":6}"#))
        // "c" is declared only in the anyOf branch that failed, so it was not evaluated.
        let failedBranch = try validator.check(#"{"b":1,"c":2}"#)
        #expect(failedBranch.map(\.instanceLocation) == ["/c"])
        #expect(failedBranch.map(\.keywordLocation) == ["/unevaluatedProperties"])
        #expect(failedBranch.first?.message == "c: property 'c' is not allowed")
        // A failed "if" contributes nothing (not even "kind"); "e" only counts when "d" is present.
        #expect(try validator.check(#"{"b":1,"kind":"y","x":3}"#).map(\.instanceLocation) == ["/kind", "/x"])
        #expect(try validator.check(#"{"b":1,"e":5}"#).map(\.instanceLocation) == ["/e"])
        // A nested schema cannot see the parent's properties.
        let nested = try makeValidator(#"{"properties":{"a":true},"allOf":[{"unevaluatedProperties":false}]}"#)
        #expect(try nested.check(#"{"a":1}"#).map(\.keywordLocation) == ["/allOf/0/unevaluatedProperties"])
    }

    @Test func unevaluatedItemsCountsPrefixItemsAndContains() throws {
        let validator = try makeValidator(
            #"{"prefixItems":[{"type":"string"}],"contains":{"type":"integer"},"unevaluatedItems":{"type":"boolean"}}"#
        )
        #expect(try validator.accepts(#"["a",1,true,2,false]"#))
        let errors = try validator.check(#"["a",1,null]"#)
        #expect(errors.map(\.instanceLocation) == ["/2"])
        #expect(errors.map(\.keywordLocation) == ["/unevaluatedItems/type"])
        let closed = try makeValidator(#"{"allOf":[{"prefixItems":[true,true]}],"unevaluatedItems":false}"#)
        #expect(try closed.accepts("[1,2]"))
        #expect(try closed.check("[1,2,3]").map(\.instanceLocation) == ["/2"])
    }

    @Test func dynamicReferencesExtendRecursiveSchemas() throws {
        // The classic extensible tree: the base schema recurses through "#node"; the strict extension
        // re-declares the anchor, so the recursion picks up its unevaluatedProperties at every level.
        let remotes = [
            "https://example.com/tree": ##"""
            {"$id":"https://example.com/tree","$dynamicAnchor":"node","type":"object",
             "properties":{"data":true,"children":{"type":"array","items":{"$dynamicRef":"#node"}}}}
            """##
        ]
        let strict = try makeValidator(
            ##"{"$id":"https://example.com/strict-tree","$dynamicAnchor":"node","$ref":"tree","unevaluatedProperties":false}"##,
            remotes: remotes
        )
        #expect(try strict.accepts(#"{"children":[{"data":1,"children":[{"data":2}]}]}"#))
        let errors = try strict.check(#"{"children":[{"daat":1}]}"#)
        #expect(errors.map(\.instanceLocation) == ["/children/0/daat"])
        #expect(errors.map(\.keywordLocation) == ["/$ref/properties/children/items/$dynamicRef/unevaluatedProperties"])
        #expect(errors.first?.absoluteKeywordLocation == "https://example.com/strict-tree#/unevaluatedProperties")
        // The base schema alone accepts the misspelling: its own anchor is the outermost one.
        let base = try makeValidator(##"{"$ref":"https://example.com/tree"}"##, remotes: remotes)
        #expect(try base.accepts(#"{"children":[{"daat":1}]}"#))
    }

    @Test func dynamicReferenceWithoutABookendIsStatic() throws {
        // The initial target has no $dynamicAnchor "items", so the outer anchor must not be used.
        let validator = try makeValidator(
            ##"""
            {"$dynamicAnchor":"items","type":"string",
             "$defs":{"list":{"$id":"list","type":"array","items":{"$dynamicRef":"#items"},
                              "$defs":{"anchored":{"$anchor":"items","type":"integer"}}}},
             "not":{"$ref":"list"}}
            """##
        )
        #expect(try validator.accepts(#""text""#))
        let list = try makeValidator(
            ##"""
            {"$id":"https://example.com/outer","$dynamicAnchor":"items","type":"array",
             "$ref":"list","$defs":{"list":{"$id":"list","items":{"$dynamicRef":"#items"},
                                            "$defs":{"anchored":{"$anchor":"items","type":"integer"}}}}}
            """##
        )
        #expect(try list.accepts("[1,2]"))
        #expect(try !list.accepts(#"[[1]]"#))
    }

    @Test func unknownKeywordsAreAnnotations() throws {
        let validator = try makeValidator(#"{"x-anything":{"type":"string"},"minimumLength":5,"type":"object"}"#)
        #expect(try validator.accepts(#"{"a":1}"#))
    }

    @Test func malformedKeywordValuesAreRejected() throws {
        let cases = [
            #"{"type":"text"}"#, #"{"type":[]}"#, #"{"minLength":-1}"#, #"{"maxItems":1.5}"#, #"{"required":[1]}"#,
            #"{"required":["a","a"]}"#, #"{"multipleOf":0}"#, #"{"allOf":[]}"#, #"{"properties":[]}"#,
            #"{"pattern":1}"#,
            #"{"$ref":1}"#, #"{"uniqueItems":"yes"}"#, #"{"enum":1}"#, #"{"items":1}"#,
        ]
        for schema in cases {
            let error = try compilationError(schema)
            #expect(error?.code == .invalidKeywordValue || error?.code == .invalidSchema, "\(schema)")
        }
        #expect(try compilationError("1")?.code == .invalidSchema)
    }

    @Test func whatCannotBeHonouredIsRefused() throws {
        let error = try compilationError(#"{"multipleOf":0.12345678901234567890123}"#)
        #expect(error?.code == .unsupportedKeyword)
        #expect(error?.keyword == "multipleOf")
        #expect(try compilationError(#"{"multipleOf":0.1234567890123456789}"#) == nil)
    }

    @Test func olderDialectsAndUnknownVocabulariesAreRefused() throws {
        #expect(
            try compilationError(#"{"$schema":"http://json-schema.org/draft-07/schema#"}"#)?.code == .unsupportedDialect
        )
        #expect(try compilationError(#"{"$schema":"https://example.com/unknown"}"#)?.code == .unsupportedDialect)
        let metaschema = #"""
            {"$id":"https://example.com/meta","$vocabulary":{"https://json-schema.org/draft/2020-12/vocab/core":true,
              "https://example.com/vocab/custom":true}}
            """#
        let error = try compilationError(
            #"{"$schema":"https://example.com/meta"}"#,
            remotes: ["https://example.com/meta": metaschema]
        )
        #expect(error?.code == .unsupportedVocabulary)
    }

    // MARK: Formats

    @Test func formatIsAnAnnotationUnlessAsserted() throws {
        let annotation = try makeValidator(#"{"format":"date-time"}"#)
        #expect(try annotation.accepts(#""yesterday""#))
        let assertion = try makeValidator(#"{"format":"date-time"}"#, formatAssertion: true)
        #expect(try assertion.accepts(#""1998-12-31T23:59:60Z""#))
        let errors = try assertion.check(#""yesterday""#)
        #expect(errors.map(\.keywordLocation) == ["/format"])
        #expect(errors.first?.message == "'yesterday' is not a valid date-time")
        #expect(try makeValidator(#"{"format":"no-such-format"}"#, formatAssertion: true).accepts(#""x""#))
        #expect(try assertion.accepts("12"))
    }

    @Test func deepInstancesAreBoundedNotFatal() async throws {
        let validator = try makeValidator(##"{"anyOf":[{"type":"integer"},{"type":"array","items":{"$ref":"#"}}]}"##)
        // The deepest document the parser accepts by default validates fine on a task's thread.
        let deepest = try JSONParser.parse(
            String(repeating: "[", count: 128) + "1" + String(repeating: "]", count: 128)
        )
        let verdict = await Task.detached { validator.isValid(deepest) && validator.validate(deepest).isEmpty }.value
        #expect(verdict)
        // Built in code, far deeper than any parser would allow: rejected by the depth guard, not a crash.
        var tower: JSONValue = 1
        for _ in 0..<5_000 { tower = [tower] }
        let built = tower
        let errors = await Task.detached { validator.validate(built) }.value
        #expect(!validator.isValid(tower))
        #expect(errors.contains { $0.message.contains("levels deep") })
        // Take the tower apart from the top so that releasing it does not recurse 5,000 levels.
        while case .array(let inner) = tower, let first = inner.first { tower = first }
    }

    // MARK: Output and concurrency

    @Test func errorOutputIsBounded() throws {
        let validator = try makeValidator(#"{"items":{"type":"string"}}"#)
        let instance = try JSONParser.parse("[" + Array(repeating: "1", count: 5_000).joined(separator: ",") + "]")
        #expect(validator.validate(instance).count == 100)
        let all = try JSONSchemaValidator(
            schema: JSONParser.parse(#"{"items":{"type":"string"}}"#),
            options: .init(maxErrors: 10_000)
        )
        #expect(all.validate(instance).count == 5_000)
    }

    @Test func oneValidatorServesManyTasksConcurrently() async throws {
        let validator = try makeValidator(#"{"type":"array","items":{"type":"integer","minimum":0}}"#)
        let instances = try (0..<64).map { try JSONParser.parse("[\($0), \($0 % 3 == 0 ? -1 : 1)]") }
        let results = await withTaskGroup(of: (Int, Int).self) { group in
            for (index, instance) in instances.enumerated() {
                group.addTask {
                    var errorCount = 0
                    for _ in 0..<200 { errorCount = validator.validate(instance).count }
                    return (index, errorCount)
                }
            }
            var collected: [Int: Int] = [:]
            for await (index, count) in group { collected[index] = count }
            return collected
        }
        for index in 0..<64 { #expect(results[index] == (index % 3 == 0 ? 1 : 0)) }
    }
}
