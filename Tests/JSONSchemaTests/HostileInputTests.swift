// SPDX-License-Identifier: Apache-2.0

import Foundation
import JSONSchema
import Testing

/// Large, adversarial payloads against the parser and the command schema: each must be answered
/// (accepted or rejected with a precise reason) in bounded time and memory, never crash or hang.
///
/// Each case targets one weakness with a single document of a few megabytes and exact expectations;
/// ``HostileCorpusTests`` sends 100 MB of generated and mutated documents through the same path.
@Suite("hostile input")
struct HostileInputTests {
    let validator: JSONSchemaValidator

    init() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot() + "/schemas/cancel-command.schema.json"))
        validator = try JSONSchemaValidator(schema: JSONParser.parse(data), options: .init(formatAssertion: true))
    }

    private static let head = #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-0001"],"#

    private func repeated(_ prefix: String, _ unit: String, _ suffix: String, size: Int) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        let unitBytes = Array(unit.utf8)
        bytes.reserveCapacity(size + suffix.utf8.count)
        while bytes.count < size { bytes.append(contentsOf: unitBytes) }
        bytes.append(contentsOf: suffix.utf8)
        return bytes
    }

    /// Parses and validates `bytes` under a hang guard; returns the parse error or the errors.
    private func answer(
        _ bytes: [UInt8],
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> (parseError: JSONParseError?, errors: [ValidationError]) {
        let clock = ContinuousClock()
        let start = clock.now
        defer { #expect(clock.now - start < .seconds(60), "hang guard", sourceLocation: sourceLocation) }
        do {
            let value = try JSONParser.parse(bytes)
            let errors = validator.validate(value)
            #expect(validator.isValid(value) == errors.isEmpty, sourceLocation: sourceLocation)
            return (nil, errors)
        } catch {
            return (error, [])
        }
    }

    @Test func deepNestingStopsAtTheLimit() {
        let (error, _) = answer(repeated("", "[", "", size: 4_000_000))
        #expect(error?.code == .tooDeep)
        #expect(error?.offset == 128)
        let (objects, _) = answer(repeated("", #"{"a":"#, "", size: 4_000_000))
        #expect(objects?.code == .tooDeep)
    }

    @Test func hugeStringsAreMeasuredNotScanned() {
        let (_, errors) = answer(repeated(Self.head + #""reason":""#, "é中🐲", #""}"#, size: 4_000_000))
        #expect(errors.map(\.keywordLocation) == ["/properties/reason/maxLength"])
        #expect(errors.first?.message.count ?? .max < 200)
        let (_, topic) = answer(repeated(Self.head + #""replyTo":""#, "a/", #"#"}"#, size: 200_000))
        #expect(topic.map(\.keywordLocation) == ["/properties/replyTo/maxLength", "/properties/replyTo/pattern"])
    }

    @Test func hugeDeviceListsAreBoundedInErrors() {
        var bytes = Array(#"{"productKey":"p","firmwareId":"f","deviceNames":["d0""#.utf8)
        var index = 0
        while bytes.count < 4_000_000 {
            index += 1
            bytes.append(contentsOf: ",\"d\(index)\"".utf8)
        }
        bytes.append(contentsOf: "]}".utf8)
        let (error, errors) = answer(bytes)
        #expect(error == nil)
        #expect(errors.count == 100)
        #expect(errors.first?.keywordLocation == "/properties/deviceNames/maxItems")
        let (_, duplicates) = answer(
            repeated(#"{"productKey":"p","firmwareId":"f","deviceNames":["dev-0""#, #","dev-0""#, "]}", size: 2_000_000)
        )
        #expect(
            duplicates.map(\.keywordLocation) == [
                "/properties/deviceNames/maxItems", "/properties/deviceNames/uniqueItems",
            ]
        )
    }

    @Test func manyKeysAndALateDuplicate() throws {
        var bytes = Array("{".utf8)
        var index = 0
        while bytes.count < 4_000_000 {
            index += 1
            bytes.append(contentsOf: "\"k\(index)\":0,".utf8)
        }
        let distinct = bytes + Array(#""z":0}"#.utf8)
        let (error, errors) = answer(distinct)
        #expect(error == nil)
        #expect(errors.count == 100)
        let duplicated = bytes + Array(#""k1":0}"#.utf8)
        let (duplicate, _) = answer(duplicated)
        #expect(duplicate?.code == .duplicateKey)
        #expect(duplicate?.offset == bytes.count)
    }

    @Test func hugeNumbersStayExactAndCheap() {
        let (_, errors) = answer(repeated(Self.head + #""dryRun":1"#, "7", "}", size: 2_000_000))
        #expect(errors.map(\.keywordLocation) == ["/properties/dryRun/type"])
        let (exponents, _) = answer(repeated("[", "1e999999999,", "0]", size: 2_000_000))
        #expect(exponents == nil)
    }

    @Test func badBytesAtTheEndAreFound() {
        let (surrogate, _) = answer(repeated("[", #""ok","#, #""\ud800"]"#, size: 2_000_000))
        #expect(surrogate?.code == .loneSurrogate)
        var invalid = repeated("[", #""ok","#, #""x"]"#, size: 2_000_000)
        invalid[invalid.count - 3] = 0xFF
        let (utf8, _) = answer(invalid)
        #expect(utf8?.code == .invalidUTF8)
        #expect(utf8?.offset == invalid.count - 3)
    }
}
