// SPDX-License-Identifier: Apache-2.0

/// A strict RFC 8259 parser that produces ``JSONValue``.
///
/// Written for payloads from untrusted senders: it validates UTF-8 (RFC 3629), rejects lone surrogate
/// escapes, duplicate keys (compared by Unicode scalars), raw control characters, leading zeros and
/// any trailing data, keeps every number exact (see ``JSONNumber``), and bounds nesting. It works on raw
/// bytes with an explicit stack instead of recursion, so hostile nesting cannot overflow the thread's
/// stack, and the work is linear in the input size (large objects get a hash index for the duplicate
/// check). A byte order mark is not accepted: RFC 8259 forbids senders to add one.
public struct JSONParser {
    /// Limits applied while parsing.
    public struct Options: Sendable {
        /// Maximum nesting of arrays and objects; a scalar at top level has depth 0, `[]` has depth 1.
        /// Default 128.
        public var maxDepth: Int
        /// Maximum input size in bytes, or `nil` for no limit. Default `nil`.
        public var maxBytes: Int?

        /// Creates options; every parameter defaults to the documented default.
        public init(maxDepth: Int = 128, maxBytes: Int? = nil) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
        }
    }

    /// Parses one JSON value from UTF-8 bytes.
    ///
    /// - Parameters:
    ///   - bytes: The complete document, UTF-8 encoded.
    ///   - options: Limits; see ``Options``.
    /// - Returns: The value.
    /// - Throws: ``JSONParseError`` with the position of the first problem.
    public static func parse(
        _ bytes: some Collection<UInt8>,
        options: Options = .init()
    ) throws(JSONParseError)
        -> JSONValue
    {
        let result =
            bytes.withContiguousStorageIfAvailable { parse(buffer: $0, options: options) }
            ?? Array(bytes).withUnsafeBufferPointer { parse(buffer: $0, options: options) }
        return try result.get()
    }

    /// Parses one JSON value from a string (its UTF-8 encoding).
    ///
    /// - Parameters:
    ///   - text: The complete document.
    ///   - options: Limits; see ``Options``.
    /// - Returns: The value.
    /// - Throws: ``JSONParseError`` with the position of the first problem.
    public static func parse(_ text: String, options: Options = .init()) throws(JSONParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { parse(buffer: $0, options: options) }.get()
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>, options: Options) -> Result<JSONValue, JSONParseError> {
        var state = ParserState(p: buffer, maxDepth: max(0, options.maxDepth))
        if let maxBytes = options.maxBytes, buffer.count > maxBytes {
            return .failure(
                state.error(
                    .tooLarge,
                    at: max(0, maxBytes),
                    "input is \(buffer.count) bytes, more than the limit of \(maxBytes)"
                )
            )
        }
        do {
            let value = try state.parseDocument()
            return .success(value)
        } catch {
            return .failure(error)
        }
    }
}

/// The parser's cursor and scratch space for one document.
private struct ParserState {
    let p: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var i = 0
    /// Reused buffer for strings that contain escapes.
    var scratch: [UInt8] = []
    /// Recently created short strings, keyed by their packed bytes (see ``ShortString``).
    var shortStrings = ShortStringCache()
    /// Packed bytes of the last string parsed, if it was short and escape-free (for duplicate checks).
    var lastShort: ShortString? = nil

    init(p: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.p = p
        self.maxDepth = maxDepth
    }

    /// An open array or object. Its elements or members live on the shared scratch stacks from
    /// `start` on until it closes; then they are copied once into an exactly sized array.
    struct Frame {
        var isObject: Bool
        var start: Int
        var pendingKey: String
        /// Packed bytes of `pendingKey` when it is short and escape-free.
        var pendingShort: ShortString?
        /// Key → position relative to `start`, built once an object has more than a few members.
        var index: KeyIndex?
    }

    // MARK: Errors

    func error(_ code: JSONParseError.Code, at offset: Int, _ message: String) -> JSONParseError {
        let end = min(max(offset, 0), p.count)
        var line = 1
        var column = 1
        var position = 0
        while position < end {
            let byte = p[position]
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
            position += 1
        }
        return JSONParseError(code: code, offset: end, line: line, column: column, message: message)
    }

    /// A short human rendering of the byte at `offset`, e.g. `'x'`, `U+00E9`, `byte 0xFF`.
    func describeByte(at offset: Int) -> String {
        guard offset < p.count else { return "end of input" }
        let byte = p[offset]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        if byte < 0x80 { return "U+" + hex(UInt32(byte), width: 4) }
        if let length = utf8SequenceLength(at: offset) {
            let scalar = String(decoding: UnsafeBufferPointer(rebasing: p[offset..<offset + length]), as: UTF8.self)
            if let value = scalar.unicodeScalars.first { return "U+" + hex(value.value, width: 4) }
        }
        return "byte 0x" + hex(UInt32(byte), width: 2)
    }

    // MARK: Structure

    @inline(__always)
    mutating func skipWhitespace() {
        while i < p.count {
            let byte = p[i]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            i += 1
        }
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        if i == p.count { throw error(.unexpectedEnd, at: i, "expected a JSON value, found end of input") }
        let value = try parseValue()
        skipWhitespace()
        if i != p.count {
            throw error(.trailingData, at: i, "unexpected \(describeByte(at: i)) after the JSON value")
        }
        return value
    }

    /// Parses a value (iteratively for nested containers) starting at the cursor.
    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        var frames: [Frame] = []
        let elements = ScratchStack<JSONValue>()
        let members = ScratchStack<JSONObject.Member>()
        /// Packed key bytes for each entry of `members` (nil for long or escaped keys).
        var memberKeys: [ShortString?] = []
        var value: JSONValue

        parsing: while true {
            skipWhitespace()
            guard i < p.count else { throw error(.unexpectedEnd, at: i, "expected a JSON value, found end of input") }
            switch p[i] {
            case UInt8(ascii: "{"):
                if frames.count >= maxDepth {
                    throw error(.tooDeep, at: i, "nesting is deeper than the limit of \(maxDepth) levels")
                }
                i += 1
                skipWhitespace()
                if i < p.count && p[i] == UInt8(ascii: "}") {
                    i += 1
                    value = .object(JSONObject())
                } else {
                    let key = try parseKey()
                    frames.append(
                        Frame(
                            isObject: true,
                            start: members.count,
                            pendingKey: key,
                            pendingShort: lastShort,
                            index: nil
                        )
                    )
                    continue parsing
                }
            case UInt8(ascii: "["):
                if frames.count >= maxDepth {
                    throw error(.tooDeep, at: i, "nesting is deeper than the limit of \(maxDepth) levels")
                }
                i += 1
                skipWhitespace()
                if i < p.count && p[i] == UInt8(ascii: "]") {
                    i += 1
                    value = .array([])
                } else {
                    frames.append(
                        Frame(isObject: false, start: elements.count, pendingKey: "", pendingShort: nil, index: nil)
                    )
                    continue parsing
                }
            case UInt8(ascii: "\""):
                value = .string(try parseString())
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = .number(try parseNumber())
            default:
                if p[i] >= 0x80 && utf8SequenceLength(at: i) == nil {
                    throw error(.invalidUTF8, at: i, "invalid UTF-8 \(describeByte(at: i))")
                }
                throw error(.unexpectedCharacter, at: i, "expected a JSON value, found \(describeByte(at: i))")
            }

            // A value is complete: attach it to the enclosing container(s).
            while !frames.isEmpty {
                let top = frames.count - 1
                if frames[top].isObject {
                    members.push(JSONObject.Member(key: frames[top].pendingKey, value: value))
                    memberKeys.append(frames[top].pendingShort)
                    let count = members.count - frames[top].start
                    if frames[top].index == nil && count > JSONObject.indexThreshold {
                        var index = KeyIndex(minimumCapacity: count * 2)
                        for position in frames[top].start..<members.count {
                            index.insert(
                                hash: KeyIndex.hash(members[position].key),
                                position: position - frames[top].start
                            )
                        }
                        frames[top].index = index
                    }
                    skipWhitespace()
                    guard i < p.count else {
                        throw error(.unexpectedEnd, at: i, "expected ',' or '}' in object, found end of input")
                    }
                    if p[i] == UInt8(ascii: ",") {
                        i += 1
                        skipWhitespace()
                        let keyOffset = i
                        let key = try parseKey()
                        let short = lastShort
                        let duplicate: Bool
                        if frames[top].index != nil {
                            // One hash: look the key up, then record the position its member will get.
                            let hash = KeyIndex.hash(key)
                            let start = frames[top].start
                            duplicate =
                                frames[top].index!.find(hash: hash) { ScalarString.equal(members[start + $0].key, key) }
                                != nil
                            if !duplicate { frames[top].index!.insert(hash: hash, position: members.count - start) }
                        } else if let short {
                            // Short escape-free keys compare by their packed bytes; others by scalars.
                            var found = false
                            for position in frames[top].start..<members.count {
                                if let other = memberKeys[position] {
                                    if other == short {
                                        found = true
                                        break
                                    }
                                } else if ScalarString.equal(members[position].key, key) {
                                    found = true
                                    break
                                }
                            }
                            duplicate = found
                        } else {
                            duplicate = (frames[top].start..<members.count).contains {
                                ScalarString.equal(members[$0].key, key)
                            }
                        }
                        if duplicate {
                            throw error(
                                .duplicateKey,
                                at: keyOffset,
                                "duplicate key \(Excerpt.quoted(key, quote: "\""))"
                            )
                        }
                        frames[top].pendingKey = key
                        frames[top].pendingShort = short
                        continue parsing
                    }
                    if p[i] == UInt8(ascii: "}") {
                        i += 1
                        let frame = frames.removeLast()
                        let object = members.moveOut(from: frame.start)
                        memberKeys.removeSubrange(frame.start...)
                        value = .object(JSONObject(uniqueMembers: object, index: frame.index))
                        continue
                    }
                    throw error(
                        .unexpectedCharacter,
                        at: i,
                        "expected ',' or '}' in object, found \(describeByte(at: i))"
                    )
                } else {
                    elements.push(value)
                    skipWhitespace()
                    guard i < p.count else {
                        throw error(.unexpectedEnd, at: i, "expected ',' or ']' in array, found end of input")
                    }
                    if p[i] == UInt8(ascii: ",") {
                        i += 1
                        continue parsing
                    }
                    if p[i] == UInt8(ascii: "]") {
                        i += 1
                        let frame = frames.removeLast()
                        value = .array(elements.moveOut(from: frame.start))
                        continue
                    }
                    throw error(
                        .unexpectedCharacter,
                        at: i,
                        "expected ',' or ']' in array, found \(describeByte(at: i))"
                    )
                }
            }
            return value
        }
    }

    /// Parses `"key" :` and leaves the cursor after the colon.
    mutating func parseKey() throws(JSONParseError) -> String {
        guard i < p.count else { throw error(.unexpectedEnd, at: i, "expected a string key, found end of input") }
        guard p[i] == UInt8(ascii: "\"") else {
            throw error(.unexpectedCharacter, at: i, "expected a string key, found \(describeByte(at: i))")
        }
        let key = try parseString()
        skipWhitespace()
        guard i < p.count else { throw error(.unexpectedEnd, at: i, "expected ':' after key, found end of input") }
        guard p[i] == UInt8(ascii: ":") else {
            throw error(.unexpectedCharacter, at: i, "expected ':' after key, found \(describeByte(at: i))")
        }
        i += 1
        return key
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let start = i
        let count = literal.utf8CodeUnitCount
        let bytes = literal.utf8Start
        for offset in 0..<count {
            guard i < p.count else {
                throw error(.unexpectedEnd, at: i, "unexpected end of input in literal '\(literal)'")
            }
            guard p[i] == bytes[offset] else {
                throw error(.unexpectedCharacter, at: start, "invalid literal, expected '\(literal)'")
            }
            i += 1
        }
    }

    // MARK: Numbers

    mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = i
        switch NumberScanner.scan(p, from: i) {
        case .success(let scanned):
            i = scanned.end
            let literal = String(decoding: UnsafeBufferPointer(rebasing: p[start..<scanned.end]), as: UTF8.self)
            return JSONNumber(literal: literal, scanned: scanned)
        case .failure(.invalid(let offset, let reason)):
            throw error(.invalidNumber, at: offset, "invalid number: \(reason)")
        }
    }

    // MARK: Strings

    /// Length of the well-formed UTF-8 sequence starting at `offset` (a byte >= 0x80), or `nil`.
    @inline(__always)
    func utf8SequenceLength(at offset: Int) -> Int? {
        let lead = p[offset]
        @inline(__always) func continuation(_ k: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
            offset + k < p.count && p[offset + k] >= low && p[offset + k] <= high
        }
        switch lead {
        case 0xC2...0xDF:
            return continuation(1) ? 2 : nil
        case 0xE0:
            return continuation(1, 0xA0) && continuation(2) ? 3 : nil
        case 0xED:
            return continuation(1, 0x80, 0x9F) && continuation(2) ? 3 : nil
        case 0xE1...0xEF:
            return continuation(1) && continuation(2) ? 3 : nil
        case 0xF0:
            return continuation(1, 0x90) && continuation(2) && continuation(3) ? 4 : nil
        case 0xF1...0xF3:
            return continuation(1) && continuation(2) && continuation(3) ? 4 : nil
        case 0xF4:
            return continuation(1, 0x80, 0x8F) && continuation(2) && continuation(3) ? 4 : nil
        default:
            return nil
        }
    }

    /// Parses a string starting at its opening quote.
    mutating func parseString() throws(JSONParseError) -> String {
        let quote = i
        i += 1
        let start = i
        // Skip plain ASCII content eight bytes at a time: stop at the first word that holds a quote,
        // a backslash, a control character or a non-ASCII byte, and finish it byte by byte below.
        if let base = p.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= p.count {
                let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let highs: UInt64 = 0x8080_8080_8080_8080
                let quotes = word ^ (ones &* 0x22)
                let backslashes = word ^ (ones &* 0x5C)
                let special =
                    ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes) | (word &- ones &* 0x20)
                    | word
                if special & highs != 0 { break }
                i += 8
            }
        }
        while i < p.count {
            let byte = p[i]
            if byte == UInt8(ascii: "\"") {
                let length = i - start
                if length <= 15 && start + 16 <= p.count, let base = p.baseAddress {
                    let short = ShortString(UnsafeRawPointer(base + start), length: length)
                    lastShort = short
                    i += 1
                    return shortStrings.string(for: short) {
                        String(decoding: UnsafeBufferPointer(rebasing: p[start..<start + length]), as: UTF8.self)
                    }
                }
                lastShort = nil
                let string = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
                i += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { return try parseEscapedString(from: start, quote: quote) }
            if byte < 0x20 {
                throw error(
                    .controlCharacterInString,
                    at: i,
                    "unescaped control character \(describeByte(at: i)) in string"
                )
            }
            if byte < 0x80 {
                i += 1
            } else {
                guard let length = utf8SequenceLength(at: i) else {
                    throw error(.invalidUTF8, at: i, "invalid UTF-8 \(describeByte(at: i)) in string")
                }
                i += length
            }
        }
        throw error(.unexpectedEnd, at: quote, "unterminated string")
    }

    /// Slow path for strings with escapes; `start` is the first content byte, the cursor is at a backslash.
    mutating func parseEscapedString(from start: Int, quote: Int) throws(JSONParseError) -> String {
        lastShort = nil
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i]))
        while i < p.count {
            let byte = p[i]
            if byte == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                try parseEscape()
            } else if byte < 0x20 {
                throw error(
                    .controlCharacterInString,
                    at: i,
                    "unescaped control character \(describeByte(at: i)) in string"
                )
            } else {
                // A run of plain content up to the next quote, backslash or control character is
                // validated in place and appended in one go.
                let run = i
                while i < p.count {
                    let next = p[i]
                    if next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\") || next < 0x20 { break }
                    if next < 0x80 {
                        i += 1
                    } else {
                        guard let length = utf8SequenceLength(at: i) else {
                            throw error(.invalidUTF8, at: i, "invalid UTF-8 \(describeByte(at: i)) in string")
                        }
                        i += length
                    }
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: p[run..<i]))
            }
        }
        throw error(.unexpectedEnd, at: quote, "unterminated string")
    }

    /// Decodes one escape at the cursor (a backslash) into `scratch`.
    mutating func parseEscape() throws(JSONParseError) {
        let backslash = i
        i += 1
        guard i < p.count else { throw error(.unexpectedEnd, at: backslash, "unterminated string") }
        let escaped = p[i]
        i += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(escaped)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hex4(escapeAt: backslash)
            var scalar = unit
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard i + 1 < p.count, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else {
                    throw error(.loneSurrogate, at: backslash, "lone surrogate \\u\(hex(unit, width: 4)) in string")
                }
                let lowBackslash = i
                i += 2
                let low = try hex4(escapeAt: lowBackslash)
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw error(.loneSurrogate, at: backslash, "lone surrogate \\u\(hex(unit, width: 4)) in string")
                }
                scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw error(.loneSurrogate, at: backslash, "lone surrogate \\u\(hex(unit, width: 4)) in string")
            }
            appendUTF8(scalar)
        default:
            throw error(.invalidEscape, at: backslash, "invalid escape sequence '\\\(describeByte(at: i - 1))'")
        }
    }

    /// Reads four hex digits at the cursor (just after `\u`).
    mutating func hex4(escapeAt backslash: Int) throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard i < p.count else { throw error(.unexpectedEnd, at: backslash, "unterminated \\u escape") }
            let byte = p[i]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error(.invalidEscape, at: backslash, "invalid \\u escape: expected 4 hex digits")
            }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}

/// Upper-case hexadecimal with at least `width` digits.
func hex(_ value: UInt32, width: Int) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// Bounded renderings of untrusted text for messages.
enum Excerpt {
    /// `text` in `quote`s, cut to `limit` scalars with an ellipsis, control characters escaped.
    static func quoted(_ text: String, quote: Character = "'", limit: Int = 64) -> String {
        String(quote) + escaped(text, quote: quote, limit: limit) + String(quote)
    }

    /// A JSON Pointer as messages name it: without its leading `/`, control characters escaped, cut to
    /// `limit` scalars with an ellipsis. Messages stay short and single-line however long or strange the
    /// keys of a hostile instance are (the error's `instanceLocation` keeps the exact pointer).
    static func location(_ pointer: String, limit: Int = 100) -> String {
        escaped(String(pointer.unicodeScalars.dropFirst()), quote: nil, limit: limit)
    }

    /// `text` cut to `limit` scalars with an ellipsis, control characters (and `quote`) escaped.
    private static func escaped(_ text: String, quote: Character?, limit: Int) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                result += "…"
                break
            }
            switch scalar.value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0..<0x20, 0x7F: result += "\\u" + hex(scalar.value, width: 4).lowercased()
            default:
                if let quote, Character(scalar) == quote { result += "\\" }
                result.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return result
    }

    /// A JSON value rendered compactly and cut to about `limit` characters.
    static func value(_ value: JSONValue, limit: Int = 64) -> String {
        switch value {
        case .string(let text): return quoted(text, limit: limit)
        case .number(let number):
            let literal = number.literal
            return literal.utf8.count <= limit ? literal : String(literal.prefix(limit)) + "…"
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .array, .object:
            var writer = JSONWriter(pretty: false, limit: limit * 4, depthLimit: 8)
            writer.write(value, indent: 0)
            let text = String(decoding: writer.bytes, as: UTF8.self)
            return text.unicodeScalars.count <= limit
                ? text : String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit))) + "…"
        }
    }
}

/// Up to 15 bytes of an escape-free string, packed into two words (plus the length) so that equal
/// strings can be recognised with two integer comparisons.
struct ShortString: Equatable {
    var low: UInt64
    var high: UInt64
    var length: Int

    /// Packs `length` (at most 15) bytes at `pointer`; 16 bytes must be readable there.
    @inline(__always)
    init(_ pointer: UnsafeRawPointer, length: Int) {
        var low = pointer.loadUnaligned(as: UInt64.self)
        var high = pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        if length < 8 {
            low &= (1 << UInt64(length * 8)) &- 1
            high = 0
        } else {
            high &= (1 << UInt64((length - 8) * 8)) &- 1
        }
        self.low = low
        self.high = high
        self.length = length
    }
}

/// A small direct-mapped cache of short strings for one parse.
///
/// JSON repeats its keys (and many short values) over and over; handing out the `String` made the
/// first time skips the standard library's validation and construction for every repetition. Short
/// strings are stored inline in the `String` value, so a hit costs no allocation or reference count.
struct ShortStringCache {
    private static let size = 64
    private var keys = [ShortString](repeating: ShortString(low: 0, high: 0, length: -1), count: ShortStringCache.size)
    private var strings = [String](repeating: "", count: ShortStringCache.size)

    @inline(__always)
    mutating func string(for key: ShortString, make: () -> String) -> String {
        let mixed = (key.low ^ (key.high &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(key.length)) &* 0xFF51_AFD7_ED55_8CCD
        let slot = Int(truncatingIfNeeded: mixed >> 58)
        if keys[slot] == key { return strings[slot] }
        let string = make()
        keys[slot] = key
        strings[slot] = string
        return string
    }
}

extension ShortString {
    init(low: UInt64, high: UInt64, length: Int) {
        self.low = low
        self.high = high
        self.length = length
    }
}

/// A growable stack whose ranges can be moved out into an array without copying each element.
///
/// The parser collects the elements of every open container here; closing a container moves its
/// elements into an exactly sized array (no retain/release per element, no repeated regrowth of
/// small arrays). Whatever is left on an error path is destroyed in `deinit`.
final class ScratchStack<Element> {
    private var base: UnsafeMutablePointer<Element>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 64) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inline(__always)
    func push(_ element: consuming Element) {
        if count == capacity { grow() }
        (base + count).initialize(to: element)
        count += 1
    }

    private func grow() {
        let larger = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
        larger.moveInitialize(from: base, count: count)
        base.deallocate()
        base = larger
        capacity *= 2
    }

    @inline(__always)
    subscript(position: Int) -> Element { base[position] }

    /// Moves `start..<count` out into a new array and shrinks the stack to `start`.
    func moveOut(from start: Int) -> [Element] {
        let moved = count - start
        if moved == 0 { return [] }
        let result = [Element](unsafeUninitializedCapacity: moved) { buffer, initialized in
            buffer.baseAddress!.moveInitialize(from: base + start, count: moved)
            initialized = moved
        }
        count = start
        return result
    }
}
