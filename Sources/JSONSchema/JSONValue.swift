// SPDX-License-Identifier: Apache-2.0

/// A JSON document or fragment, with JSON Schema's notion of equality.
///
/// Built by ``JSONParser`` or with Swift literals. It exists instead of `Any`/`JSONSerialization`
/// because those mix up booleans and numbers, round numbers, and merge keys that are canonically
/// equivalent. Here `true != 1`, `1 == 1.0` (numbers compare by mathematical value, see
/// ``JSONNumber``), strings and keys compare by Unicode scalars, and objects compare regardless of
/// member order. `Hashable` agrees with that equality, which is what `uniqueItems` relies on.
public enum JSONValue: Sendable {
    /// `null`.
    case null
    /// `true` or `false` (never equal to a number).
    case bool(Bool)
    /// A number, exact (see ``JSONNumber``).
    case number(JSONNumber)
    /// A string; compared by Unicode scalars.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object with ordered, unique keys (see ``JSONObject``).
    case object(JSONObject)
}

extension JSONValue: Hashable {
    /// JSON Schema instance equality: same type and equal value; numbers by mathematical value,
    /// strings by Unicode scalars, arrays element-wise, objects regardless of member order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return ScalarString.equal(a, b)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }

    /// Consistent with ``==(_:_:)``: `1` and `1.0` hash alike, `"\u{E4}"` and `"a\u{308}"` do not.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null:
            hasher.combine(0 as UInt8)
        case .bool(let value):
            hasher.combine(1 as UInt8)
            hasher.combine(value)
        case .number(let value):
            hasher.combine(2 as UInt8)
            hasher.combine(value)
        case .string(let value):
            hasher.combine(3 as UInt8)
            ScalarString.hash(value, into: &hasher)
        case .array(let values):
            hasher.combine(4 as UInt8)
            hasher.combine(values.count)
            for value in values { hasher.combine(value) }
        case .object(let object):
            hasher.combine(5 as UInt8)
            hasher.combine(object)
        }
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The string, if this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The boolean, if this is a boolean (never for numbers).
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The number, if this is a number (never for booleans).
    public var numberValue: JSONNumber? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object, if this is an object.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member `key` (compared by Unicode scalars), or `nil` if this is not an object or has no such key.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The JSON type name: `null`, `boolean`, `number`, `string`, `array` or `object`.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self = .number(JSONNumber(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Keeps the literal's member order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: CustomStringConvertible {
    /// Compact serialisation.
    public var description: String { serialized() }
}

// MARK: - Serialisation

extension JSONValue {
    /// Deterministic serialisation: key order preserved, minimal escaping, numbers from their literal.
    ///
    /// Escapes only `"`, `\` and control characters (`\b \f \n \r \t`, others as `\u00XX`); every other
    /// character, including non-ASCII, is written as UTF-8. Compact by default; `pretty` indents by two
    /// spaces and writes `": "` between key and value. Two equal documents built the same way always
    /// serialise to the same bytes, which makes the output usable in signatures and journals.
    public func serialized(pretty: Bool = false) -> String {
        String(decoding: serializedBytes(pretty: pretty), as: UTF8.self)
    }

    /// ``serialized(pretty:)`` as UTF-8 bytes (compact unless `pretty`).
    public func serializedBytes(pretty: Bool = false) -> [UInt8] {
        var writer = JSONWriter(pretty: pretty)
        writer.write(self, indent: 0)
        return writer.bytes
    }
}

/// Appends JSON text to a byte buffer.
struct JSONWriter {
    var bytes: [UInt8] = []
    let pretty: Bool
    /// Stop writing once this many bytes are out (used for bounded excerpts in messages).
    let limit: Int
    /// Containers nested deeper than this are written as `…` (bounded excerpts; recursion stays shallow).
    let depthLimit: Int

    init(pretty: Bool, limit: Int = .max, depthLimit: Int = .max) {
        self.pretty = pretty
        self.limit = limit
        self.depthLimit = depthLimit
        bytes.reserveCapacity(min(limit, 256))
    }

    mutating func write(_ value: JSONValue, indent: Int) {
        if bytes.count >= limit { return }
        if indent >= depthLimit {
            switch value {
            case .array, .object:
                bytes.append(contentsOf: "…".utf8)
                return
            default:
                break
            }
        }
        switch value {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): bytes.append(contentsOf: number.literal.utf8)
        case .string(let string): writeString(string)
        case .array(let elements):
            if elements.isEmpty {
                bytes.append(contentsOf: "[]".utf8)
                return
            }
            bytes.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if bytes.count >= limit { return }
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                write(element, indent: indent + 1)
            }
            newline(indent)
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            if object.isEmpty {
                bytes.append(contentsOf: "{}".utf8)
                return
            }
            bytes.append(UInt8(ascii: "{"))
            for (position, member) in object.members.enumerated() {
                if bytes.count >= limit { return }
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                writeString(member.key)
                bytes.append(UInt8(ascii: ":"))
                if pretty { bytes.append(UInt8(ascii: " ")) }
                write(member.value, indent: indent + 1)
            }
            newline(indent)
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func newline(_ indent: Int) {
        guard pretty else { return }
        bytes.append(UInt8(ascii: "\n"))
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            if bytes.count >= limit { return }
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case 0x08: bytes.append(contentsOf: #"\b"#.utf8)
            case 0x0C: bytes.append(contentsOf: #"\f"#.utf8)
            case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
            case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
            case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: #"\u00"#.utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
