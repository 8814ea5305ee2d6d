// SPDX-License-Identifier: Apache-2.0

import JSONSchema
import Testing

@Suite("JSONParser")
struct JSONParserTests {
    private func parseError(_ text: String, options: JSONParser.Options = .init()) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(text, options: options)
            return nil
        } catch {
            return error
        }
    }

    private func parseError(bytes: [UInt8]) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#" { "a" : [ null , true , false , -1.5e+3 , "x" , { } , [ ] ] } "#)
        let expected: JSONValue = ["a": [nil, true, false, .number(JSONNumber(literal: "-1.5e+3")!), "x", [:], []]]
        #expect(value == expected)
        #expect(value["a"]?.arrayValue?.count == 7)
        #expect(value["a"]?.arrayValue?[3].numberValue?.literal == "-1.5e+3")
    }

    @Test func acceptsBytesSlicesAndStringsAlike() throws {
        let text = #"{"k":["v",1]}"#
        let bytes = Array(text.utf8)
        let fromString = try JSONParser.parse(text)
        let fromBytes = try JSONParser.parse(bytes)
        let fromSlice = try JSONParser.parse(([0x20] + bytes + [0x20])[1...])
        #expect(fromString == fromBytes)
        #expect(fromString == fromSlice)
    }

    // MARK: Numbers

    @Test func keepsBigIntegersExact() throws {
        let literal = "1234567890123456789012345678901234567890123456789012"
        let value = try JSONParser.parse(literal)
        let number = try #require(value.numberValue)
        #expect(number.literal == literal)
        #expect(number.isInteger)
        #expect(number.int64Value == nil)
        // Same value, other spelling: equal. One more in the last digit: different and larger.
        #expect(number == JSONNumber(literal: "1.234567890123456789012345678901234567890123456789012e51"))
        let larger = try #require(JSONNumber(literal: "1234567890123456789012345678901234567890123456789013"))
        #expect(number != larger)
        #expect(number < larger)
        #expect(value.serialized() == literal)
    }

    @Test func keepsOutOfRangeExponentsExact() throws {
        let huge = try #require(try JSONParser.parse("1e400").numberValue)
        #expect(huge.literal == "1e400")
        #expect(huge.isInteger)
        #expect(huge.doubleValue == .infinity)
        #expect(huge > JSONNumber(literal: "9.99e399")!)
        #expect(huge == JSONNumber(literal: "10e399")!)
        let tiny = try #require(try JSONParser.parse("1e-400").numberValue)
        #expect(!tiny.isZero)
        #expect(!tiny.isInteger)
        #expect(tiny > JSONNumber(0))
    }

    @Test func numbersCompareByValueButKeepTheirLiteral() throws {
        let one = try #require(try JSONParser.parse("1").numberValue)
        let onePointZero = try #require(try JSONParser.parse("1.0").numberValue)
        let minusZero = try #require(try JSONParser.parse("-0").numberValue)
        #expect(one == onePointZero)
        #expect(one.hashValue == onePointZero.hashValue)
        #expect(onePointZero.isInteger)
        #expect(onePointZero.literal == "1.0")
        #expect(JSONValue.number(onePointZero).serialized() == "1.0")
        #expect(minusZero == JSONNumber(0))
        #expect(minusZero.literal == "-0")
        #expect(JSONNumber(literal: "1.5")?.isInteger == false)
        #expect(JSONNumber(literal: "100e-2")?.isInteger == true)
        #expect(JSONNumber(literal: "0.1")! < JSONNumber(literal: "0.10000000000000000000001")!)
        #expect(JSONNumber(literal: "-2")! < JSONNumber(literal: "-1.99")!)
    }

    @Test func convertsToInt64AndDouble() {
        #expect(JSONNumber(literal: "9223372036854775807")?.int64Value == Int64.max)
        #expect(JSONNumber(literal: "-9223372036854775808")?.int64Value == Int64.min)
        #expect(JSONNumber(literal: "9223372036854775808")?.int64Value == nil)
        #expect(JSONNumber(literal: "12e3")?.int64Value == 12_000)
        #expect(JSONNumber(literal: "1.5")?.int64Value == nil)
        #expect(JSONNumber(literal: "0.1")?.doubleValue == 0.1)
        #expect(JSONNumber(0.1).literal == "0.1")
        #expect(JSONNumber(-7).literal == "-7")
    }

    @Test(arguments: ["01", "1.", ".5", "-", "1e", "1e+", "-01", "1.e3", "0x10"])
    func rejectsMalformedNumbers(_ text: String) {
        #expect(JSONNumber(literal: text) == nil)
        #expect(parseError(text) != nil)
    }

    @Test func namesNumberErrorsPrecisely() {
        #expect(parseError("01")?.code == .invalidNumber)
        #expect(parseError("01")?.message == "invalid number: leading zeros are not allowed")
        #expect(parseError("1.")?.code == .invalidNumber)
        #expect(parseError("[-]")?.code == .invalidNumber)
        #expect(parseError("1e+")?.code == .invalidNumber)
        #expect(parseError(".5")?.code == .unexpectedCharacter)
        #expect(parseError("0x10")?.code == .trailingData)
    }

    @Test(arguments: ["+1", "NaN", "Infinity", "-Infinity"])
    func rejectsNonJSONNumberWords(_ text: String) {
        #expect(JSONNumber(literal: text) == nil)
        #expect(parseError(text) != nil)
    }

    @Test func refusesAbsurdExponents() {
        #expect(parseError("1e1000000000")?.code == .invalidNumber)
        #expect(parseError("1e999999999") == nil)
    }

    // MARK: Strings and UTF-8

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONParser.parse(#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\udc32\u0000z""#)
        #expect(value == .string("a\"\\/\u{8}\u{C}\n\r\té🐲\u{0}z"))
    }

    @Test func acceptsRawMultiByteUTF8() throws {
        let value = try JSONParser.parse(Array("\"é 中 🐲\"".utf8))
        #expect(value == .string("é 中 🐲"))
    }

    @Test(
        arguments: [
            [0x22, 0xFF, 0x22],  // never valid in UTF-8
            [0x22, 0xC0, 0x80, 0x22],  // overlong NUL
            [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8-encoded surrogate U+D800
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // beyond U+10FFFF
            [0x22, 0xE4, 0xB8, 0x22],  // truncated sequence
            [0x22, 0x80, 0x22],  // lone continuation byte
        ] as [[UInt8]]
    )
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        let error = parseError(bytes: bytes)
        #expect(error?.code == .invalidUTF8)
        #expect(error?.offset == 1)
    }

    @Test(arguments: [#""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\ud800x""#, #""\udbff\ud800""#])
    func rejectsLoneSurrogateEscapes(_ text: String) {
        let error = parseError(text)
        #expect(error?.code == .loneSurrogate)
        #expect(error?.offset == 1)
    }

    @Test func rejectsBadEscapesAndRawControlCharacters() {
        #expect(parseError(#""\q""#)?.code == .invalidEscape)
        #expect(parseError(#""\u12G4""#)?.code == .invalidEscape)
        #expect(parseError("\"a\nb\"")?.code == .controlCharacterInString)
        #expect(parseError("\"a\u{1F}\"")?.code == .controlCharacterInString)
        #expect(parseError("\"abc")?.code == .unexpectedEnd)
    }

    // MARK: Objects

    @Test func rejectsDuplicateKeysWithPosition() {
        let error = parseError(#"{"a":1,"a":2}"#)
        #expect(error?.code == .duplicateKey)
        #expect(error?.offset == 7)
        #expect(error?.line == 1)
        #expect(error?.column == 8)
        #expect(error?.description == #"line 1, column 8: duplicate key "a""#)
        // An escape spelling the same scalars is the same key.
        #expect(parseError(#"{"é":1,"\u00e9":2}"#)?.code == .duplicateKey)
    }

    @Test(arguments: [
        #"{"a":1,"b":2,"b":3}"#,
        #"{"x":{"a":1},"a":2,"a":3}"#,
        #"{"a":{"b":{"c":1}},"d":[{"e":1,"e":2}]}"#,
        #"{"long key over fifteen bytes":1,"k":2,"long key over fifteen bytes":3}"#,
        #"{"k":1,"\u006b":2}"#,
        #"{"\u006b":1,"k":2}"#,
    ])
    func findsEveryDuplicate(_ text: String) {
        #expect(parseError(text)?.code == .duplicateKey, "\(text)")
    }

    @Test(arguments: [
        #"{"a":{"x":1},"b":{"x":2}}"#,
        #"{"a":{"b":1},"b":2}"#,
        #"{"ab":1,"a":2,"b":3,"ba":4}"#,
        #"{"abcdefgh":1,"abcdefghi":2,"abcdefg":3}"#,
        #"{"long key over fifteen bytes":1,"long key over fifteen bytez":2}"#,
    ])
    func acceptsDistinctKeys(_ text: String) throws {
        let value = try JSONParser.parse(text)
        #expect(value.serialized() == text)
    }

    @Test func comparesKeysByScalarsNotCanonicalEquivalence() throws {
        let value = try JSONParser.parse(#"{"\u00e4":1,"a\u0308":2}"#)
        let object = try #require(value.objectValue)
        #expect(object.count == 2)
        #expect(object["\u{E4}"] == 1)
        #expect(object["a\u{308}"] == 2)
    }

    @Test func detectsDuplicatesInLargeObjects() {
        let members = (0..<50).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(parseError("{" + members + "}") == nil)
        let error = parseError("{" + members + #","k17":0}"#)
        #expect(error?.code == .duplicateKey)
        #expect(error?.message == #"duplicate key "k17""#)
    }

    @Test func keepsMemberOrder() throws {
        let object = try #require(try JSONParser.parse(#"{"z":1,"a":2,"m":3}"#).objectValue)
        #expect(object.keys == ["z", "a", "m"])
        #expect(object.map(\.key) == ["z", "a", "m"])
    }

    // MARK: Structure and limits

    @Test func enforcesTheDepthLimit() {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        let tooDeep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(parseError(ok) == nil)
        let error = parseError(tooDeep)
        #expect(error?.code == .tooDeep)
        #expect(error?.offset == 128)
        #expect(parseError(#"{"a":{"b":1}}"#, options: .init(maxDepth: 1))?.code == .tooDeep)
        #expect(parseError(#"{"a":1}"#, options: .init(maxDepth: 1)) == nil)
    }

    @Test func deepNestingDoesNotUseTheStack() throws {
        // 200,000 levels would overflow any recursive parser's stack.
        let depth = 200_000
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try JSONParser.parse(text, options: .init(maxDepth: depth))
        var levels = 0
        while case .array(let inner) = value, let first = inner.first {
            value = first
            levels += 1
        }
        #expect(levels == depth - 1)
    }

    @Test func enforcesTheSizeLimit() {
        let error = parseError("[1,2,3]", options: .init(maxBytes: 4))
        #expect(error?.code == .tooLarge)
        #expect(parseError("[1,2,3]", options: .init(maxBytes: 7)) == nil)
    }

    @Test func reportsStructuralErrors() {
        #expect(parseError("")?.code == .unexpectedEnd)
        #expect(parseError("   ")?.code == .unexpectedEnd)
        #expect(parseError("1 2")?.code == .trailingData)
        #expect(parseError("[1,]")?.code == .unexpectedCharacter)
        #expect(parseError("[1 2]")?.code == .unexpectedCharacter)
        #expect(parseError("{1:2}")?.code == .unexpectedCharacter)
        #expect(parseError(#"{"a" 1}"#)?.code == .unexpectedCharacter)
        #expect(parseError("[")?.code == .unexpectedEnd)
        #expect(parseError("tru")?.code == .unexpectedEnd)
        #expect(parseError("trUe")?.code == .unexpectedCharacter)
        #expect(parseError("\u{FEFF}{}")?.code == .unexpectedCharacter)
        #expect(parseError("{}\u{0}")?.code == .trailingData)
    }

    @Test func reportsLinesAndColumnsInScalars() {
        let error = parseError("[\n  \"é🐲\", x]")
        #expect(error?.code == .unexpectedCharacter)
        #expect(error?.line == 2)
        #expect(error?.column == 9)
        #expect(error?.offset == 14)
        #expect(error?.description == "line 2, column 9: expected a JSON value, found 'x'")
    }

    @Test func errorsCompareByCodeAndNameItForMetrics() {
        let first = parseError("[1,]")
        let second = parseError("{1:2}")
        #expect(first == second)
        #expect(first?.shortDescription == "unexpectedCharacter")
        #expect(parseError("[1,]") != parseError("1 2"))
    }

    @Test func messagesQuoteOnlyAnExcerptOfLongKeys() throws {
        let key = String(repeating: "k", count: 10_000)
        let error = try #require(parseError("{\"\(key)\":1,\"\(key)\":2}"))
        #expect(error.code == .duplicateKey)
        #expect(error.message.count < 100)
    }
}
