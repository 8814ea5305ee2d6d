// SPDX-License-Identifier: Apache-2.0

/// Hand-written checkers for the `format` values of draft 2020-12, used when format assertion is on.
///
/// Why hand-written: `ISO8601DateFormatter` gets 14 of the 33 suite date-time cases wrong (it accepts
/// Feb 31, hour 24, `+10:60`, a trailing newline and non-ASCII digits, and rejects leap seconds and
/// lower-case `t`/`z`), and platform URL/UUID parsers differ between Darwin and Linux. Every checker
/// here works on Unicode scalars, accepts ASCII digits only, and must consume the whole string.
enum FormatChecker {
    /// The checker for `name`, or `nil` for formats this module does not know (those stay annotations).
    static func checker(for name: String) -> (@Sendable (String) -> Bool)? {
        switch name {
        case "date-time": return { isDateTime(Array($0.unicodeScalars)) }
        case "date": return { isDate(Array($0.unicodeScalars)) }
        case "time": return { isTime(Array($0.unicodeScalars)) }
        case "duration": return { isDuration(Array($0.unicodeScalars)) }
        case "uuid": return { isUUID(Array($0.unicodeScalars)) }
        case "ipv4": return { isIPv4(Array($0.unicodeScalars)[...]) }
        case "ipv6": return { isIPv6(Array($0.unicodeScalars)[...]) }
        case "email": return { isEmail(Array($0.unicodeScalars), international: false) }
        case "idn-email": return { isEmail(Array($0.unicodeScalars), international: true) }
        case "hostname": return { isHostname(Array($0.unicodeScalars)[...], international: false) }
        case "idn-hostname": return { isHostname(Array($0.unicodeScalars)[...], international: true) }
        case "json-pointer": return { isJSONPointer(Array($0.unicodeScalars)[...]) }
        case "relative-json-pointer": return { isRelativeJSONPointer(Array($0.unicodeScalars)) }
        case "regex": return { (try? ECMARegex($0)) != nil }
        case "uri": return { URIGrammar.isValid(Array($0.unicodeScalars), iri: false, requireScheme: true) }
        case "uri-reference": return { URIGrammar.isValid(Array($0.unicodeScalars), iri: false, requireScheme: false) }
        case "iri": return { URIGrammar.isValid(Array($0.unicodeScalars), iri: true, requireScheme: true) }
        case "iri-reference": return { URIGrammar.isValid(Array($0.unicodeScalars), iri: true, requireScheme: false) }
        case "uri-template": return { isURITemplate(Array($0.unicodeScalars)) }
        default: return nil
        }
    }

    // MARK: Helpers

    @inline(__always)
    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }

    @inline(__always)
    static func isHexDigit(_ c: Unicode.Scalar) -> Bool {
        isDigit(c) || (c.value >= 0x41 && c.value <= 0x46) || (c.value >= 0x61 && c.value <= 0x66)
    }

    @inline(__always)
    static func isAlpha(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
    }

    /// Reads exactly `count` ASCII digits at `offset`.
    static func number(_ s: [Unicode.Scalar], _ offset: Int, _ count: Int) -> Int? {
        guard offset + count <= s.count else { return nil }
        var value = 0
        for k in offset..<offset + count {
            guard isDigit(s[k]) else { return nil }
            value = value * 10 + Int(s[k].value - 0x30)
        }
        return value
    }

    // MARK: Dates and times (RFC 3339 §5.6)

    static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `full-date` at `offset`; returns the offset after it.
    static func fullDate(_ s: [Unicode.Scalar], _ offset: Int) -> Int? {
        guard let year = number(s, offset, 4), offset + 10 <= s.count, s[offset + 4] == "-",
            let month = number(s, offset + 5, 2), s[offset + 7] == "-", let day = number(s, offset + 8, 2),
            (1...12).contains(month), day >= 1, day <= daysInMonth(month, year: year)
        else { return nil }
        return offset + 10
    }

    /// `full-time` at `offset` through the end of the string.
    static func fullTime(_ s: [Unicode.Scalar], _ offset: Int) -> Bool {
        guard let hour = number(s, offset, 2), offset + 8 <= s.count, s[offset + 2] == ":",
            let minute = number(s, offset + 3, 2), s[offset + 5] == ":", let second = number(s, offset + 6, 2),
            hour <= 23, minute <= 59, second <= 60
        else { return false }
        var i = offset + 8
        if i < s.count && s[i] == "." {
            i += 1
            let start = i
            while i < s.count && isDigit(s[i]) { i += 1 }
            guard i > start else { return false }
        }
        guard i < s.count else { return false }
        var offsetMinutes = 0
        switch s[i] {
        case "Z", "z":
            i += 1
        case "+", "-":
            let sign = s[i] == "-" ? -1 : 1
            guard let offsetHour = number(s, i + 1, 2), i + 6 <= s.count, s[i + 3] == ":",
                let offsetMinute = number(s, i + 4, 2), offsetHour <= 23, offsetMinute <= 59
            else { return false }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
            i += 6
        default:
            return false
        }
        guard i == s.count else { return false }
        if second == 60 {
            // A leap second is only ever inserted at 23:59:60 UTC.
            let utc = ((hour * 60 + minute - offsetMinutes) % 1440 + 1440) % 1440
            return utc == 23 * 60 + 59
        }
        return true
    }

    static func isDateTime(_ s: [Unicode.Scalar]) -> Bool {
        guard let end = fullDate(s, 0), end < s.count, s[end] == "T" || s[end] == "t" else { return false }
        return fullTime(s, end + 1)
    }

    static func isDate(_ s: [Unicode.Scalar]) -> Bool { fullDate(s, 0) == s.count }

    static func isTime(_ s: [Unicode.Scalar]) -> Bool { fullTime(s, 0) }

    /// RFC 3339 appendix A (ISO 8601 durations, integer components only).
    static func isDuration(_ s: [Unicode.Scalar]) -> Bool {
        guard s.first == "P", s.count > 1 else { return false }
        var i = 1
        func component() -> Unicode.Scalar? {
            let start = i
            while i < s.count && isDigit(s[i]) { i += 1 }
            guard i > start, i < s.count else { return nil }
            let unit = s[i]
            i += 1
            return unit
        }
        if s[i] != "T" {
            var units: [Unicode.Scalar] = []
            while i < s.count && s[i] != "T" {
                guard let unit = component() else { return false }
                units.append(unit)
            }
            let allowed: [[Unicode.Scalar]] = [["W"], ["Y"], ["Y", "M"], ["Y", "M", "D"], ["M"], ["M", "D"], ["D"]]
            guard allowed.contains(units) else { return false }
            if units == ["W"] { return i == s.count }
        }
        guard i < s.count else { return true }
        guard s[i] == "T" else { return false }
        i += 1
        var units: [Unicode.Scalar] = []
        while i < s.count {
            guard let unit = component() else { return false }
            units.append(unit)
        }
        let allowed: [[Unicode.Scalar]] = [["H"], ["H", "M"], ["H", "M", "S"], ["M"], ["M", "S"], ["S"]]
        return allowed.contains(units)
    }

    // MARK: Identifiers

    /// RFC 4122 string form: 8-4-4-4-12 hex digits.
    static func isUUID(_ s: [Unicode.Scalar]) -> Bool {
        guard s.count == 36 else { return false }
        for (k, c) in s.enumerated() {
            if k == 8 || k == 13 || k == 18 || k == 23 {
                guard c == "-" else { return false }
            } else {
                guard isHexDigit(c) else { return false }
            }
        }
        return true
    }

    /// Dotted-quad IPv4 (RFC 2673 §3.2): four decimal octets, no leading zeros.
    static func isIPv4(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(isDigit) else { return false }
            if part.count > 1 && part.first == "0" { return false }
            let value = part.reduce(0) { $0 * 10 + Int($1.value - 0x30) }
            guard value <= 255 else { return false }
        }
        return true
    }

    /// RFC 4291 §2.2 text forms, including `::` compression and a trailing dotted quad.
    static func isIPv6(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        guard !s.isEmpty else { return false }
        var doubleColons: [Int] = []
        var k = s.startIndex
        while k + 1 < s.endIndex {
            if s[k] == ":" && s[k + 1] == ":" { doubleColons.append(k) }
            k += 1
        }
        guard doubleColons.count <= 1 else { return false }
        if let split = doubleColons.first {
            let tail = s[(split + 2)...]
            guard let head = groups(s[..<split], ipv4Allowed: false), let rest = groups(tail, ipv4Allowed: true) else {
                return false
            }
            return head + rest <= 7
        }
        return groups(s, ipv4Allowed: true) == 8
    }

    /// Number of 16-bit groups in `h16 *(":" h16)` (optionally ending in a dotted quad), or `nil`.
    private static func groups(_ part: ArraySlice<Unicode.Scalar>, ipv4Allowed: Bool) -> Int? {
        if part.isEmpty { return 0 }
        let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
        var count = 0
        for (position, piece) in pieces.enumerated() {
            if ipv4Allowed && position == pieces.count - 1 && piece.contains(".") {
                guard isIPv4(piece) else { return nil }
                count += 2
            } else {
                guard !piece.isEmpty, piece.count <= 4, piece.allSatisfy(isHexDigit) else { return nil }
                count += 1
            }
        }
        return count
    }

    // MARK: Hosts and e-mail

    /// RFC 1123 host names; with `international`, labels may hold non-ASCII characters (RFC 5890 U-labels).
    static func isHostname(_ s: ArraySlice<Unicode.Scalar>, international: Bool) -> Bool {
        guard !s.isEmpty else { return false }
        let labels = s.split(
            omittingEmptySubsequences: false,
            whereSeparator: {
                $0 == "." || (international && ($0 == "\u{3002}" || $0 == "\u{FF0E}" || $0 == "\u{FF61}"))
            }
        )
        var length = 0
        var decoded: [[Unicode.Scalar]] = []
        for label in labels {
            guard isHostLabel(label, international: international) else { return false }
            length += label.count + 1
            decoded.append(unicodeForm(label))
        }
        return length - 1 <= 253 && BidiRule.isSatisfied(by: decoded)
    }

    /// The Unicode form of a label: A-labels decoded, others as they are.
    static func unicodeForm(_ label: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        let lower = label.map { $0.isASCII && isAlpha($0) ? Unicode.Scalar(UInt8($0.value) | 0x20) : $0 }
        if lower.count > 4 && lower.starts(with: ["x", "n", "-", "-"]),
            let decoded = Punycode.decode(Array(lower[4...]))
        {
            return decoded
        }
        return Array(label)
    }

    static func isHostLabel(_ label: ArraySlice<Unicode.Scalar>, international: Bool) -> Bool {
        guard !label.isEmpty, label.first != "-", label.last != "-" else { return false }
        let ascii = label.allSatisfy { $0.isASCII }
        if ascii {
            guard label.count <= 63, label.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == "-" }) else { return false }
            let lower = label.map { Unicode.Scalar(UInt8($0.value) | (isAlpha($0) ? 0x20 : 0)) }
            if lower.count >= 4 && lower[2] == "-" && lower[3] == "-" {
                // Reserved for A-labels; only `xn--` with valid Punycode is allowed.
                guard lower[0] == "x", lower[1] == "n", let decoded = Punycode.decode(Array(lower[4...])) else {
                    return false
                }
                return IDNA.isValidULabel(decoded)
            }
            return true
        }
        guard international else { return false }
        return IDNA.isValidULabel(Array(label))
    }

    /// RFC 5321 `Mailbox` (RFC 6531 when `international`): local part, `@`, domain or address literal.
    static func isEmail(_ s: [Unicode.Scalar], international: Bool) -> Bool {
        guard !s.isEmpty else { return false }
        var i = 0
        func isAtext(_ c: Unicode.Scalar) -> Bool {
            if isAlpha(c) || isDigit(c) || "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(c) { return true }
            return international && c.value >= 0x80
        }
        if s[0] == "\"" {
            i = 1
            var closed = false
            while i < s.count {
                let c = s[i]
                if c == "\"" {
                    closed = true
                    i += 1
                    break
                }
                if c == "\\" {
                    guard i + 1 < s.count, (0x20...0x7E).contains(s[i + 1].value) else { return false }
                    i += 2
                    continue
                }
                guard (0x20...0x7E).contains(c.value) || (international && c.value >= 0x80) else { return false }
                i += 1
            }
            guard closed else { return false }
        } else {
            var previousDot = true
            while i < s.count && s[i] != "@" {
                if s[i] == "." {
                    if previousDot { return false }
                    previousDot = true
                } else {
                    guard isAtext(s[i]) else { return false }
                    previousDot = false
                }
                i += 1
            }
            if previousDot { return false }
        }
        guard i < s.count, s[i] == "@" else { return false }
        let domain = s[(i + 1)...]
        guard !domain.isEmpty else { return false }
        if domain.first == "[" {
            guard domain.last == "]" else { return false }
            let literal = domain.dropFirst().dropLast()
            if literal.starts(with: ["I", "P", "v", "6", ":"]) { return isIPv6(literal.dropFirst(5)) }
            return isIPv4(literal)
        }
        return isHostname(domain, international: international)
    }

    // MARK: JSON pointers

    static func isJSONPointer(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        guard !s.isEmpty else { return true }
        guard s.first == "/" else { return false }
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "~" {
                guard i + 1 < s.endIndex, s[i + 1] == "0" || s[i + 1] == "1" else { return false }
                i += 2
            } else {
                i += 1
            }
        }
        return true
    }

    /// draft-handrews-relative-json-pointer: a non-negative integer, then `#` or a JSON pointer.
    static func isRelativeJSONPointer(_ s: [Unicode.Scalar]) -> Bool {
        var i = 0
        while i < s.count && isDigit(s[i]) { i += 1 }
        guard i > 0, i == 1 || s[0] != "0" else { return false }
        if i < s.count && s[i] == "#" { return i + 1 == s.count }
        return isJSONPointer(s[i...])
    }

    // MARK: URI templates (RFC 6570 level 4)

    static func isURITemplate(_ s: [Unicode.Scalar]) -> Bool {
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "{" {
                guard let close = s[i...].firstIndex(of: "}") else { return false }
                guard isTemplateExpression(s[(i + 1)..<close]) else { return false }
                i = close + 1
                continue
            }
            if c == "%" {
                guard i + 2 < s.count, isHexDigit(s[i + 1]), isHexDigit(s[i + 2]) else { return false }
                i += 3
                continue
            }
            if c.value <= 0x20 || c.value == 0x7F || "\"<>\\^`|}".unicodeScalars.contains(c) { return false }
            i += 1
        }
        return true
    }

    private static func isTemplateExpression(_ body: ArraySlice<Unicode.Scalar>) -> Bool {
        var text = body
        if let first = text.first, "+#./;?&".unicodeScalars.contains(first) { text = text.dropFirst() }
        guard !text.isEmpty else { return false }
        for spec in text.split(separator: ",", omittingEmptySubsequences: false) {
            var name = spec
            if let colon = spec.firstIndex(of: ":") {
                name = spec[..<colon]
                let length = spec[(colon + 1)...]
                guard (1...4).contains(length.count), length.allSatisfy(isDigit), length.first != "0" else {
                    return false
                }
            } else if spec.last == "*" {
                name = spec.dropLast()
            }
            guard !name.isEmpty, name.first != ".", name.last != "." else { return false }
            var j = name.startIndex
            var previousDot = false
            while j < name.endIndex {
                let c = name[j]
                if c == "%" {
                    guard j + 2 < name.endIndex, isHexDigit(name[j + 1]), isHexDigit(name[j + 2]) else { return false }
                    j += 3
                    previousDot = false
                    continue
                }
                if c == "." {
                    if previousDot { return false }
                    previousDot = true
                } else {
                    guard isAlpha(c) || isDigit(c) || c == "_" else { return false }
                    previousDot = false
                }
                j += 1
            }
        }
        return true
    }
}

/// RFC 3986 (URI) and RFC 3987 (IRI) syntax checks.
enum URIGrammar {
    static func isUnreserved(_ c: Unicode.Scalar) -> Bool {
        FormatChecker.isAlpha(c) || FormatChecker.isDigit(c) || c == "-" || c == "." || c == "_" || c == "~"
    }

    static func isSubDelim(_ c: Unicode.Scalar) -> Bool { "!$&'()*+,;=".unicodeScalars.contains(c) }

    /// RFC 3987 `ucschar`.
    static func isUCSChar(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        switch v {
        case 0xA0...0xD7FF, 0xF900...0xFDCF, 0xFDF0...0xFFEF: return true
        case 0x10000...0xEFFFD: return v & 0xFFFF < 0xFFFE
        default: return false
        }
    }

    static func isPrivate(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        return (0xE000...0xF8FF).contains(v) || (0xF0000...0xFFFFD).contains(v) || (0x100000...0x10FFFD).contains(v)
    }

    /// Checks that every scalar of `part` is allowed by `extra` or is unreserved / sub-delim / pct-encoded
    /// (or an IRI character).
    static func check(
        _ part: ArraySlice<Unicode.Scalar>,
        iri: Bool,
        privateUse: Bool = false,
        extra: String
    ) -> Bool {
        var i = part.startIndex
        while i < part.endIndex {
            let c = part[i]
            if c == "%" {
                guard i + 2 < part.endIndex, FormatChecker.isHexDigit(part[i + 1]),
                    FormatChecker.isHexDigit(part[i + 2])
                else { return false }
                i += 3
                continue
            }
            let ok =
                isUnreserved(c) || isSubDelim(c) || extra.unicodeScalars.contains(c)
                || (iri && (isUCSChar(c) || (privateUse && isPrivate(c))))
            guard ok else { return false }
            i += 1
        }
        return true
    }

    static func isValid(_ s: [Unicode.Scalar], iri: Bool, requireScheme: Bool) -> Bool {
        var rest = s[...]
        // Scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" before any of "/?#".
        var hasScheme = false
        if let colon = rest.firstIndex(of: ":"),
            !rest[..<colon].contains(where: { $0 == "/" || $0 == "?" || $0 == "#" })
        {
            let scheme = rest[..<colon]
            guard let first = scheme.first, FormatChecker.isAlpha(first),
                scheme.allSatisfy({
                    FormatChecker.isAlpha($0) || FormatChecker.isDigit($0) || $0 == "+" || $0 == "-" || $0 == "."
                })
            else { return false }
            hasScheme = true
            rest = rest[(colon + 1)...]
        }
        if requireScheme && !hasScheme { return false }
        if let hash = rest.firstIndex(of: "#") {
            guard check(rest[(hash + 1)...], iri: iri, extra: ":@/?") else { return false }
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: "?") {
            guard check(rest[(question + 1)...], iri: iri, privateUse: true, extra: ":@/?") else { return false }
            rest = rest[..<question]
        }
        var path = rest
        if rest.starts(with: ["/", "/"]) {
            let afterSlashes = rest.index(rest.startIndex, offsetBy: 2)
            let end = rest[afterSlashes...].firstIndex(of: "/") ?? rest.endIndex
            guard isAuthority(rest[afterSlashes..<end], iri: iri) else { return false }
            path = rest[end...]
        } else if !hasScheme, let firstSegmentEnd = Optional(path.firstIndex(of: "/") ?? path.endIndex),
            path[..<firstSegmentEnd].contains(":")
        {
            return false  // path-noscheme: no colon in the first segment of a relative reference
        }
        return check(path, iri: iri, extra: ":@/")
    }

    static func isAuthority(_ authority: ArraySlice<Unicode.Scalar>, iri: Bool) -> Bool {
        var host = authority
        if let at = authority.firstIndex(of: "@") {
            guard check(authority[..<at], iri: iri, extra: ":") else { return false }
            host = authority[(at + 1)...]
        }
        if host.first == "[" {
            guard let close = host.firstIndex(of: "]") else { return false }
            let literal = host[(host.startIndex + 1)..<close]
            let after = host[(close + 1)...]
            if !after.isEmpty {
                guard after.first == ":", after.dropFirst().allSatisfy(FormatChecker.isDigit) else { return false }
            }
            if let first = literal.first, first == "v" || first == "V" {
                guard let dot = literal.firstIndex(of: "."), dot > literal.startIndex + 1,
                    literal[(literal.startIndex + 1)..<dot].allSatisfy(FormatChecker.isHexDigit),
                    dot + 1 < literal.endIndex,
                    literal[(dot + 1)...].allSatisfy({ isUnreserved($0) || isSubDelim($0) || $0 == ":" })
                else { return false }
                return true
            }
            return FormatChecker.isIPv6(literal)
        }
        if let colon = host.lastIndex(of: ":") {
            guard host[(colon + 1)...].allSatisfy(FormatChecker.isDigit) else { return false }
            host = host[..<colon]
        }
        return check(host, iri: iri, extra: "")
    }
}
