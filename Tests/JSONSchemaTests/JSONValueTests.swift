// SPDX-License-Identifier: Apache-2.0

import JSONSchema
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    @Test func equalityFollowsJSONSchema() throws {
        #expect(JSONValue.bool(true) != .number(JSONNumber(1)))
        #expect(JSONValue.bool(false) != .number(JSONNumber(0)))
        #expect(try JSONParser.parse("1") == JSONParser.parse("1.0"))
        #expect(try JSONParser.parse("[1]") == JSONParser.parse("[1e0]"))
        #expect(JSONValue.string("\u{E4}") != .string("a\u{308}"))
        #expect(try JSONParser.parse(#"{"a":1,"b":[2]}"#) == JSONParser.parse(#"{"b":[2.0],"a":1}"#))
        #expect(try JSONParser.parse(#"{"a":1}"#) != JSONParser.parse(#"{"a":1,"b":2}"#))
        #expect(JSONValue.null != .bool(false))
        #expect(JSONValue.array([]) != .object(JSONObject()))
    }

    @Test func hashingAgreesWithEquality() throws {
        let set: Set<JSONValue> = [
            try JSONParser.parse("1.0"), try JSONParser.parse(#"{"a":1,"b":2}"#), .string("\u{E4}"),
        ]
        #expect(set.contains(1))
        #expect(set.contains(try JSONParser.parse(#"{"b":2,"a":1.0}"#)))
        #expect(!set.contains(.bool(true)))
        #expect(!set.contains(.string("a\u{308}")))
        #expect(set.count == 3)
    }

    @Test func literalsBuildOrderedValues() {
        let value: JSONValue = ["z": 1, "a": [true, nil, 2.5, "s"]]
        #expect(value.objectValue?.keys == ["z", "a"])
        #expect(value["a"]?.arrayValue?[0].boolValue == true)
        #expect(value["a"]?.arrayValue?[1].isNull == true)
        #expect(value["a"]?.arrayValue?[2].numberValue?.literal == "2.5")
        #expect(value["a"]?.arrayValue?[3].stringValue == "s")
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["a"] == nil)
    }

    @Test func objectsAreEditableByScalarKeys() {
        var object = JSONObject([("a", 1), ("b", 2)])
        object["c"] = 3
        object["a"] = 10
        object["b"] = nil
        #expect(object.keys == ["a", "c"])
        #expect(object["a"] == 10)
        #expect(object.count == 2)
        #expect(object["\u{E4}"] == nil)
        // Large objects switch to a hash index; behaviour stays the same.
        for index in 0..<40 { object["k\(index)"] = .number(JSONNumber(index)) }
        #expect(object.count == 42)
        #expect(object["k39"] == 39)
        object["k0"] = nil
        #expect(object["k0"] == nil)
        #expect(object["k1"] == 1)
        #expect(object.keys.first == "a")
    }

    @Test func serialisesCompactlyAndDeterministically() throws {
        let text = #"{"z":[1.0,-0,1e400,"é🐲"],"a":{"q\"\\":"\n\t\u0001"},"e":[],"o":{},"n":null,"b":false}"#
        let value = try JSONParser.parse(text)
        #expect(value.serialized() == text)
        #expect(value.serializedBytes() == Array(text.utf8))
        #expect(try JSONParser.parse(value.serialized()) == value)
    }

    @Test func escapesOnlyWhatJSONRequires() {
        let value = JSONValue.string("\u{0}\u{8}\u{C}\u{1F}\u{7F}/<>\u{2028}")
        #expect(value.serialized() == "\"\\u0000\\b\\f\\u001f\u{7F}/<>\u{2028}\"")
    }

    @Test func serialisesPretty() throws {
        let value = try JSONParser.parse(#"{"a":[1,{"b":null}],"c":{},"d":[]}"#)
        let expected = """
            {
              "a": [
                1,
                {
                  "b": null
                }
              ],
              "c": {},
              "d": []
            }
            """
        #expect(value.serialized(pretty: true) == expected)
        #expect(try JSONParser.parse(expected) == value)
    }

    @Test func roundTripsEveryParsedDocument() throws {
        let documents = [
            "0", "-0.0", "123456789012345678901234567890", "\"\"", "[[[]]]", #"{"":{"":""}}"#,
            #"["\u00e4","a\u0308","\ud83d\udc32"]"#, "[1E+2,1e-2,0.5]",
        ]
        for document in documents {
            let value = try JSONParser.parse(document)
            let again = try JSONParser.parse(value.serialized())
            #expect(again == value)
            #expect(again.serialized() == value.serialized())
        }
    }
}
