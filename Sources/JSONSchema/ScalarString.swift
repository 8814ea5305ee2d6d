// SPDX-License-Identifier: Apache-2.0

/// String comparison and hashing by Unicode scalars (UTF-8 bytes), not by canonical equivalence.
///
/// Swift's `String ==` treats `"\u{E4}"` and `"a\u{308}"` as equal; JSON Schema (and RFC 8259
/// object member names) compare code point by code point. UTF-8 is a bijection with scalar
/// sequences, so comparing the bytes is exact and fast.
enum ScalarString {
    @inline(__always)
    static func equal(_ a: String, _ b: String) -> Bool {
        // The UTF-8 count of a native string is stored, so different lengths answer without a scan.
        if a.utf8.count != b.utf8.count { return false }
        // `withUTF8` is free for native strings and copies small (inline) ones to the stack.
        var a = a
        var b = b
        return a.withUTF8 { pa in
            b.withUTF8 { pb in
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return true }
                if x == y { return true }
                var index = 0
                while index < pa.count {
                    if x[index] != y[index] { return false }
                    index += 1
                }
                return true
            }
        }
    }

    @inline(__always)
    static func hash(_ s: String, into hasher: inout Hasher) {
        var s = s
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(0xFF as UInt8)  // terminator: never a UTF-8 byte, so prefixes hash apart
    }

    /// Number of Unicode scalars (what JSON Schema's `minLength`/`maxLength` count).
    @inline(__always)
    static func scalarCount(_ s: String) -> Int {
        var s = s
        return s.withUTF8 { p -> Int in
            var count = 0
            for byte in p where byte & 0xC0 != 0x80 { count += 1 }
            return count
        }
    }

    /// Lexicographic order by scalars (equivalently by UTF-8 bytes), used for deterministic output.
    static func less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

/// A `String` that is `Hashable` by Unicode scalars; the key type of every internal lookup table.
struct ScalarKey: Hashable, Sendable {
    let string: String
    init(_ string: String) { self.string = string }
    static func == (lhs: ScalarKey, rhs: ScalarKey) -> Bool { ScalarString.equal(lhs.string, rhs.string) }
    func hash(into hasher: inout Hasher) { ScalarString.hash(string, into: &hasher) }
}
