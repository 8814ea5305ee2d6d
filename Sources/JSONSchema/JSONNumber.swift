// SPDX-License-Identifier: Apache-2.0

/// An exact JSON number: the literal as written, plus its normalised decimal value.
///
/// JSON Schema compares numbers by their mathematical value (`1 == 1.0`, `1e2` is an integer) and
/// requires `multipleOf` and the numeric bounds to be exact. Converting to `Double` breaks both
/// (`19.99 / 0.01` is not `1999`, a 52-digit integer loses its tail, `1e400` overflows), and
/// Foundation's `Decimal` silently truncates. So the number keeps its literal (for faithful
/// re-serialisation) and a normalised form `±significand × 10^exponent` where the significand has
/// no trailing zeros. Up to 19 significant digits the significand is held in a `UInt64` (the fast
/// path every ordinary number takes); longer significands are read back from the literal when needed.
///
/// Equality and hashing use the mathematical value: `JSONNumber(literal: "1.0") == JSONNumber(1)`
/// and `-0 == 0`. ``literal`` keeps the text, so the two serialise differently.
public struct JSONNumber: Sendable {
    /// The number as written, e.g. `"1.0"`, `"-0"`, `"1e400"`. Always valid RFC 8259 number syntax.
    public let literal: String

    /// Number of significant digits (0 for zero). At most 19 means ``significand`` holds the value.
    let digitCount: UInt32
    /// Power of ten applied to the significand (0 for zero).
    let exponent: Int32
    /// The significant digits as an integer when `digitCount <= 19`, else 0.
    let significand: UInt64
    /// Sign; always `false` for zero, so `-0 == 0`.
    let negative: Bool

    /// Largest number of significant digits held in a `UInt64`.
    static let maxSmallDigits: UInt32 = 19

    /// Creates a number from a JSON number literal such as `"-12.50e3"`.
    ///
    /// Returns `nil` unless `literal` is exactly one RFC 8259 number (no whitespace, no leading `+`,
    /// no leading zeros, no `NaN`/`Infinity`), or if its exponent's magnitude exceeds 999,999,999.
    public init?(literal: String) {
        var copy = literal
        let scanned = copy.withUTF8 { buffer -> NumberScanner.Result? in
            guard case .success(let result) = NumberScanner.scan(buffer, from: 0), result.end == buffer.count else {
                return nil
            }
            return result
        }
        guard let scanned else { return nil }
        self.init(literal: literal, scanned: scanned)
    }

    /// Creates the number `value`, written in decimal.
    public init(_ value: Int) {
        self.init(literal: String(value))!
    }

    /// Creates the number `value`, written in Swift's shortest round-tripping form (e.g. `0.1`, `1e-05`).
    ///
    /// - Precondition: `value` is finite; JSON has no NaN or infinity.
    public init(_ value: Double) {
        precondition(value.isFinite, "JSON numbers must be finite")
        self.init(literal: value.description)!
    }

    init(literal: String, scanned: NumberScanner.Result) {
        self.literal = literal
        self.digitCount = scanned.digitCount
        self.exponent = scanned.exponent
        self.significand = scanned.significand
        self.negative = scanned.negative
    }

    /// Whether the value has no fractional part (`1`, `1.0`, `1e2`, `-0` are integers; `1.5` is not).
    public var isInteger: Bool { digitCount == 0 || exponent >= 0 }

    /// Whether the value is zero (`0`, `-0`, `0.0e5`).
    public var isZero: Bool { digitCount == 0 }

    /// The value as an `Int64`, or `nil` if it has a fractional part or does not fit.
    public var int64Value: Int64? {
        guard isInteger else { return nil }
        if digitCount == 0 { return 0 }
        guard digitCount <= Self.maxSmallDigits, Int(digitCount) + Int(exponent) <= 19 else { return nil }
        var magnitude = significand
        for _ in 0..<Int(exponent) {
            let (product, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            magnitude = product
        }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// The nearest `Double` (correctly rounded from the literal; `±infinity` beyond the `Double` range).
    public var doubleValue: Double {
        // The literal is always valid JSON number syntax, which `Double(_:)` accepts.
        Double(literal) ?? (negative ? -.infinity : .infinity)
    }

    /// The significant digits as ASCII bytes, without leading or trailing zeros (empty for zero).
    ///
    /// Only the slow path for numbers with more than 19 significant digits needs this.
    func significantDigits() -> [UInt8] {
        var digits: [UInt8] = []
        digits.reserveCapacity(Int(digitCount))
        var started = false
        for byte in literal.utf8 {
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { continue }
            if !started && byte == UInt8(ascii: "0") { continue }
            started = true
            digits.append(byte)
        }
        digits.removeLast(digits.count - Int(digitCount))
        return digits
    }

    /// Whether `self` is an exact multiple of `divisor`, computed on the decimal values.
    ///
    /// With `self = a·10^p` and `divisor = b·10^q` (significands without trailing zeros): if `p < q`
    /// the quotient needs `10^(q-p)` to divide `a`, impossible for a non-zero `a` without trailing
    /// zeros; otherwise `self` is a multiple exactly when `a·10^(p-q) ≡ 0 (mod b)`, which modular
    /// exponentiation answers in `O(log(p-q))` steps even for `1e308` or `1e999999`.
    ///
    /// - Precondition: `divisor` is positive with at most 19 significant digits (checked when the
    ///   schema is compiled).
    func isMultiple(of divisor: JSONNumber) -> Bool {
        if digitCount == 0 { return true }
        if exponent < divisor.exponent { return false }
        let modulus = divisor.significand
        if modulus == 1 { return true }
        let remainder: UInt64
        if digitCount <= Self.maxSmallDigits {
            remainder = significand % modulus
        } else {
            var r: UInt64 = 0
            for digit in significantDigits() {
                r = Self.mulMod(r, 10, modulus)
                r = (r + UInt64(digit - UInt8(ascii: "0"))) % modulus
            }
            remainder = r
        }
        if remainder == 0 { return true }
        let shift = Int(exponent) - Int(divisor.exponent)
        return Self.mulMod(remainder, Self.powMod(10, shift, modulus), modulus) == 0
    }

    static func mulMod(_ a: UInt64, _ b: UInt64, _ m: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return m.dividingFullWidth((high: product.high, low: product.low)).remainder
    }

    static func powMod(_ base: UInt64, _ exponent: Int, _ m: UInt64) -> UInt64 {
        var result: UInt64 = 1 % m
        var b = base % m
        var e = exponent
        while e > 0 {
            if e & 1 == 1 { result = mulMod(result, b, m) }
            b = mulMod(b, b, m)
            e >>= 1
        }
        return result
    }

    /// Compares magnitudes (ignoring sign): -1, 0 or 1.
    func compareMagnitude(_ other: JSONNumber) -> Int {
        if digitCount == 0 || other.digitCount == 0 {
            return digitCount == 0 ? (other.digitCount == 0 ? 0 : -1) : 1
        }
        // Position of the most significant digit decides first.
        let leading = Int(digitCount) + Int(exponent)
        let otherLeading = Int(other.digitCount) + Int(other.exponent)
        if leading != otherLeading { return leading < otherLeading ? -1 : 1 }
        if digitCount <= Self.maxSmallDigits && other.digitCount <= Self.maxSmallDigits {
            // Align both significands to the same digit count; both stay below 10^19.
            var a = significand
            var b = other.significand
            if digitCount < other.digitCount {
                for _ in 0..<Int(other.digitCount - digitCount) { a *= 10 }
            } else {
                for _ in 0..<Int(digitCount - other.digitCount) { b *= 10 }
            }
            return a == b ? 0 : (a < b ? -1 : 1)
        }
        let a = significantDigits()
        let b = other.significantDigits()
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : UInt8(ascii: "0")
            let y = index < b.count ? b[index] : UInt8(ascii: "0")
            if x != y { return x < y ? -1 : 1 }
        }
        return 0
    }

    /// Compares values: -1, 0 or 1.
    func compare(_ other: JSONNumber) -> Int {
        if negative != other.negative { return negative ? -1 : 1 }
        let magnitude = compareMagnitude(other)
        return negative ? -magnitude : magnitude
    }
}

extension JSONNumber: Hashable, Comparable {
    /// Equal when the mathematical values are equal (`1 == 1.0 == 1e0`, `-0 == 0`).
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        guard lhs.negative == rhs.negative, lhs.digitCount == rhs.digitCount, lhs.exponent == rhs.exponent else {
            return false
        }
        if lhs.digitCount <= maxSmallDigits { return lhs.significand == rhs.significand }
        return lhs.significantDigits() == rhs.significantDigits()
    }

    /// Orders by mathematical value, exactly.
    public static func < (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        lhs.compare(rhs) < 0
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(negative)
        hasher.combine(digitCount)
        hasher.combine(exponent)
        if digitCount <= Self.maxSmallDigits {
            hasher.combine(significand)
        } else {
            hasher.combine(significantDigits())
        }
    }
}

extension JSONNumber: CustomStringConvertible {
    /// The literal, as written.
    public var description: String { literal }
}

extension JSONNumber: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public init(integerLiteral value: Int) { self.init(value) }
    public init(floatLiteral value: Double) { self.init(value) }
}

/// Scans one RFC 8259 number and normalises it on the fly.
///
/// Shared by ``JSONParser`` (which stops at the first byte that cannot continue the number) and
/// ``JSONNumber/init(literal:)`` (which requires the whole string to be consumed).
enum NumberScanner {
    struct Result {
        var end: Int
        var negative: Bool
        var significand: UInt64
        var digitCount: UInt32
        var exponent: Int32
    }

    enum Failure: Error {
        /// Offset of the offending byte and what was wrong there.
        case invalid(offset: Int, reason: String)
    }

    /// Literal exponents beyond this magnitude are refused (the value would be meaningless anyway).
    static let maxLiteralExponent = 999_999_999

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    static func scan(_ p: UnsafeBufferPointer<UInt8>, from start: Int) -> Swift.Result<Result, Failure> {
        let end = p.count
        var i = start
        var negative = false
        if i < end && p[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < end, isDigit(p[i]) else {
            return .failure(.invalid(offset: i, reason: "expected a digit"))
        }
        var significand: UInt64 = 0
        var digitCount = 0  // significant digits consumed so far (excluding pending zeros)
        var pendingZeros = 0  // zeros after the last non-zero digit, not yet known to be significant
        var fractionDigits = 0

        @inline(__always) func take(_ byte: UInt8) {
            let digit = UInt64(byte &- UInt8(ascii: "0"))
            if digit == 0 {
                if digitCount > 0 { pendingZeros += 1 }
                return
            }
            if digitCount + pendingZeros + 1 <= 19 {
                for _ in 0..<pendingZeros { significand = significand &* 10 }
                significand = significand &* 10 &+ digit
            } else {
                significand = 0
            }
            digitCount += pendingZeros + 1
            pendingZeros = 0
        }

        if p[i] == UInt8(ascii: "0") {
            i += 1
            if i < end && isDigit(p[i]) {
                return .failure(.invalid(offset: i, reason: "leading zeros are not allowed"))
            }
        } else {
            while i < end && isDigit(p[i]) {
                take(p[i])
                i += 1
            }
        }
        if i < end && p[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, isDigit(p[i]) else {
                return .failure(.invalid(offset: i, reason: "expected a digit after the decimal point"))
            }
            while i < end && isDigit(p[i]) {
                take(p[i])
                fractionDigits += 1
                i += 1
            }
        }
        var literalExponent = 0
        if i < end && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            var exponentNegative = false
            if i < end && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) {
                exponentNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < end, isDigit(p[i]) else {
                return .failure(.invalid(offset: i, reason: "expected a digit in the exponent"))
            }
            let exponentStart = i
            while i < end && isDigit(p[i]) {
                literalExponent = literalExponent * 10 + Int(p[i] &- UInt8(ascii: "0"))
                if literalExponent > maxLiteralExponent {
                    return .failure(.invalid(offset: exponentStart, reason: "exponent out of range"))
                }
                i += 1
            }
            if exponentNegative { literalExponent = -literalExponent }
        }
        if digitCount == 0 {
            return .success(Result(end: i, negative: false, significand: 0, digitCount: 0, exponent: 0))
        }
        let exponent = literalExponent - fractionDigits + pendingZeros
        guard let exponent32 = Int32(exactly: exponent), let count32 = UInt32(exactly: digitCount) else {
            return .failure(.invalid(offset: start, reason: "number out of range"))
        }
        if digitCount > 19 { significand = 0 }
        return .success(
            Result(end: i, negative: negative, significand: significand, digitCount: count32, exponent: exponent32)
        )
    }
}
