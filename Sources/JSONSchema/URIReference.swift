// SPDX-License-Identifier: Apache-2.0

/// RFC 3986 URI references: just enough to resolve `$id` and `$ref` (§5.2) without Foundation.
///
/// `Foundation.URL` percent-encodes and normalises in platform-specific ways and rejects some valid
/// references (`urn:uuid:…#/$defs/x`); JSON Schema identifies resources by the exact resolved string.
struct URIReference: Equatable {
    var scheme: String?
    var authority: String?
    var path: String
    var query: String?
    var fragment: String?

    /// Splits `text` into its five components (RFC 3986 appendix B), never failing.
    ///
    /// Works on Unicode scalars, not Characters: a delimiter followed by a combining mark is still a
    /// delimiter (as a Character, `"#\u{301}"` is not `"#"`).
    init(parsing text: String) {
        var rest = text.unicodeScalars[...]
        scheme = nil
        if let colon = rest.firstIndex(of: ":") {
            let candidate = rest[..<colon]
            if let first = candidate.first, FormatChecker.isAlpha(first),
                candidate.allSatisfy({
                    FormatChecker.isAlpha($0) || FormatChecker.isDigit($0) || $0 == "+" || $0 == "-" || $0 == "."
                })
            {
                scheme = String(Substring(candidate))
                rest = rest[rest.index(after: colon)...]
            }
        }
        if let hash = rest.firstIndex(of: "#") {
            fragment = String(Substring(rest[rest.index(after: hash)...]))
            rest = rest[..<hash]
        } else {
            fragment = nil
        }
        if let question = rest.firstIndex(of: "?") {
            query = String(Substring(rest[rest.index(after: question)...]))
            rest = rest[..<question]
        } else {
            query = nil
        }
        if rest.starts(with: "//".unicodeScalars) {
            let afterSlashes = rest.index(rest.startIndex, offsetBy: 2)
            let end = rest[afterSlashes...].firstIndex(of: "/") ?? rest.endIndex
            authority = String(Substring(rest[afterSlashes..<end]))
            rest = rest[end...]
        } else {
            authority = nil
        }
        path = String(Substring(rest))
    }

    init(scheme: String?, authority: String?, path: String, query: String?, fragment: String?) {
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.query = query
        self.fragment = fragment
    }

    /// Recomposes the reference (RFC 3986 §5.3).
    var text: String {
        var result = ""
        if let scheme { result += scheme + ":" }
        if let authority { result += "//" + authority }
        result += path
        if let query { result += "?" + query }
        if let fragment { result += "#" + fragment }
        return result
    }

    /// Resolves `reference` against `base` (RFC 3986 §5.2.2, strict).
    static func resolve(_ reference: String, against base: String) -> String {
        let r = URIReference(parsing: reference)
        let b = URIReference(parsing: base)
        var t: URIReference
        if r.scheme != nil {
            t = URIReference(
                scheme: r.scheme,
                authority: r.authority,
                path: removeDotSegments(r.path),
                query: r.query,
                fragment: r.fragment
            )
        } else if r.authority != nil {
            t = URIReference(
                scheme: b.scheme,
                authority: r.authority,
                path: removeDotSegments(r.path),
                query: r.query,
                fragment: r.fragment
            )
        } else if r.path.isEmpty {
            t = URIReference(
                scheme: b.scheme,
                authority: b.authority,
                path: b.path,
                query: r.query ?? b.query,
                fragment: r.fragment
            )
        } else if r.path.unicodeScalars.first == "/" {
            t = URIReference(
                scheme: b.scheme,
                authority: b.authority,
                path: removeDotSegments(r.path),
                query: r.query,
                fragment: r.fragment
            )
        } else {
            let merged: String
            if b.authority != nil && b.path.isEmpty {
                merged = "/" + r.path
            } else if let slash = b.path.unicodeScalars.lastIndex(of: "/") {
                merged = String(Substring(b.path.unicodeScalars[...slash])) + r.path
            } else {
                merged = r.path
            }
            t = URIReference(
                scheme: b.scheme,
                authority: b.authority,
                path: removeDotSegments(merged),
                query: r.query,
                fragment: r.fragment
            )
        }
        return t.text
    }

    /// RFC 3986 §5.2.4.
    static func removeDotSegments(_ path: String) -> String {
        guard path.utf8.contains(UInt8(ascii: ".")) else { return path }
        let absolute = path.unicodeScalars.first == "/"
        let segments = path.unicodeScalars.split(separator: "/", omittingEmptySubsequences: false)
        var output: [Substring] = []
        var trailingSlash = false
        for (position, segment) in segments.enumerated() {
            if position == 0 && absolute { continue }
            let last = position == segments.count - 1
            if segment.elementsEqual(".".unicodeScalars) {
                if last { trailingSlash = true }
            } else if segment.elementsEqual("..".unicodeScalars) {
                if !output.isEmpty { output.removeLast() }
                if last { trailingSlash = true }
            } else {
                output.append(Substring(segment))
            }
        }
        var result = (absolute ? "/" : "") + output.joined(separator: "/")
        if trailingSlash && result.unicodeScalars.last != "/" { result += "/" }
        return result
    }

    /// Splits `uri` at its fragment: (everything before `#`, the fragment or `nil`).
    static func splitFragment(_ uri: String) -> (base: String, fragment: String?) {
        let scalars = uri.unicodeScalars
        guard let hash = scalars.firstIndex(of: "#") else { return (uri, nil) }
        return (String(Substring(scalars[..<hash])), String(Substring(scalars[scalars.index(after: hash)...])))
    }
}

/// JSON Pointer (RFC 6901) helpers.
enum JSONPointer {
    /// Escapes one reference token: `~` → `~0`, `/` → `~1`.
    ///
    /// By Unicode scalars (as everything here): an instance key `"a/\u{301}"` must become `a~1\u{301}`,
    /// although as a Character `"/\u{301}"` is not `"/"`.
    static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        return token.replacingAll("~", with: "~0").replacingAll("/", with: "~1")
    }

    /// Splits a pointer into unescaped tokens; `nil` if it does not start with `/` (and is not empty).
    static func tokens(_ pointer: String) -> [String]? {
        if pointer.isEmpty { return [] }
        guard pointer.unicodeScalars.first == "/" else { return nil }
        return pointer.unicodeScalars.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            String(Substring($0)).replacingAll("~1", with: "/").replacingAll("~0", with: "~")
        }
    }

    /// Decodes `%XX` sequences (URI fragments carry pointers percent-encoded); `nil` if malformed.
    static func percentDecode(_ text: String) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.popFirst(), let low = iterator.popFirst(),
                    let h = hexValue(high), let l = hexValue(low)
                else { return nil }
                bytes.append(h << 4 | l)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Percent-encodes what may not appear literally in a URI fragment.
    static func percentEncodeFragment(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let allowed: Bool
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                allowed = true
            default:
                allowed = "-._~!$&'()*+,;=:@/?".utf8.contains(byte)
            }
            if allowed {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "%" + hex(UInt32(byte), width: 2)
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension String {
    /// Replaces every occurrence of `target` (compared by Unicode scalars) without Foundation.
    func replacingAll(_ target: String, with replacement: String) -> String {
        let source = Array(unicodeScalars)
        let pattern = Array(target.unicodeScalars)
        guard !pattern.isEmpty, source.count >= pattern.count else { return self }
        var result = String.UnicodeScalarView()
        var index = 0
        while index < source.count {
            if index + pattern.count <= source.count && source[index..<index + pattern.count].elementsEqual(pattern) {
                result.append(contentsOf: replacement.unicodeScalars)
                index += pattern.count
            } else {
                result.append(source[index])
                index += 1
            }
        }
        return String(result)
    }
}
