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
    public static func parse(_ bytes: some Collection<UInt8>, options: Options = .init()) throws(JSONParseError)
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
                state.error(.tooLarge, at: max(0, maxBytes), "input is \(buffer.count) bytes, more than the limit of \(maxBytes)")
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

    init(p: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.p = p
        self.maxDepth = maxDepth
    }

    /// An object under construction.
    struct ObjectFrame {
        var members: [(key: String, value: JSONValue)]
        var index: [ScalarKey: Int]?
        var pendingKey: String
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
        var arrays: [[JSONValue]] = []
        var objects: [ObjectFrame] = []
        var isObjectStack: [Bool] = []
        var value: JSONValue

        parsing: while true {
            skipWhitespace()
            guard i < p.count else { throw error(.unexpectedEnd, at: i, "expected a JSON value, found end of input") }
            switch p[i] {
            case UInt8(ascii: "{"):
                if isObjectStack.count >= maxDepth {
                    throw error(.tooDeep, at: i, "nesting is deeper than the limit of \(maxDepth) levels")
                }
                i += 1
                skipWhitespace()
                if i < p.count && p[i] == UInt8(ascii: "}") {
                    i += 1
                    value = .object(JSONObject())
                } else {
                    let key = try parseKey()
                    objects.append(ObjectFrame(members: [], index: nil, pendingKey: key))
                    isObjectStack.append(true)
                    continue parsing
                }
            case UInt8(ascii: "["):
                if isObjectStack.count >= maxDepth {
                    throw error(.tooDeep, at: i, "nesting is deeper than the limit of \(maxDepth) levels")
                }
                i += 1
                skipWhitespace()
                if i < p.count && p[i] == UInt8(ascii: "]") {
                    i += 1
                    value = .array([])
                } else {
                    arrays.append([])
                    isObjectStack.append(false)
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
            while let isObject = isObjectStack.last {
                if isObject {
                    let top = objects.count - 1
                    objects[top].members.append((objects[top].pendingKey, value))
                    if objects[top].index != nil {
                        objects[top].index![ScalarKey(objects[top].pendingKey)] = objects[top].members.count - 1
                    } else if objects[top].members.count > JSONObject.indexThreshold {
                        var index = [ScalarKey: Int](minimumCapacity: objects[top].members.count * 2)
                        for (position, member) in objects[top].members.enumerated() {
                            index[ScalarKey(member.key)] = position
                        }
                        objects[top].index = index
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
                        let duplicate: Bool
                        if let index = objects[top].index {
                            duplicate = index[ScalarKey(key)] != nil
                        } else {
                            duplicate = objects[top].members.contains { ScalarString.equal($0.key, key) }
                        }
                        if duplicate {
                            throw error(.duplicateKey, at: keyOffset, "duplicate key \(Excerpt.quoted(key, quote: "\""))")
                        }
                        objects[top].pendingKey = key
                        continue parsing
                    }
                    if p[i] == UInt8(ascii: "}") {
                        i += 1
                        let frame = objects.removeLast()
                        isObjectStack.removeLast()
                        value = .object(JSONObject(uniqueMembers: frame.members, index: frame.index))
                        continue
                    }
                    throw error(.unexpectedCharacter, at: i, "expected ',' or '}' in object, found \(describeByte(at: i))")
                } else {
                    let top = arrays.count - 1
                    arrays[top].append(value)
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
                        isObjectStack.removeLast()
                        value = .array(arrays.removeLast())
                        continue
                    }
                    throw error(.unexpectedCharacter, at: i, "expected ',' or ']' in array, found \(describeByte(at: i))")
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
        while i < p.count {
            let byte = p[i]
            if byte == UInt8(ascii: "\"") {
                let string = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
                i += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { return try parseEscapedString(from: start, quote: quote) }
            if byte < 0x20 {
                throw error(
                    .controlCharacterInString, at: i,
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
                    .controlCharacterInString, at: i,
                    "unescaped control character \(describeByte(at: i)) in string"
                )
            } else if byte < 0x80 {
                scratch.append(byte)
                i += 1
            } else {
                guard let length = utf8SequenceLength(at: i) else {
                    throw error(.invalidUTF8, at: i, "invalid UTF-8 \(describeByte(at: i)) in string")
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<i + length]))
                i += length
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
        var result = String(quote)
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
                if Character(scalar) == quote { result += "\\" }
                result.unicodeScalars.append(scalar)
            }
            count += 1
        }
        result.append(quote)
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
            return text.unicodeScalars.count <= limit ? text : String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit))) + "…"
        }
    }
}
