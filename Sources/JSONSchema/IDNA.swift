// SPDX-License-Identifier: Apache-2.0

/// Punycode (RFC 3492) decoding, for checking `xn--` A-labels in host names.
enum Punycode {
    private static let base = 36
    private static let tMin = 1
    private static let tMax = 26
    private static let skew = 38
    private static let damp = 700

    private static func adapt(_ delta: Int, _ count: Int, _ first: Bool) -> Int {
        var delta = first ? delta / damp : delta / 2
        delta += delta / count
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    private static func digit(_ value: Int) -> Unicode.Scalar {
        Unicode.Scalar(UInt8(value < 26 ? 0x61 + value : 0x30 + value - 26))
    }

    /// Encodes a label (RFC 3492 §6.3) without the `xn--` prefix; `nil` on overflow.
    static func encode(_ input: [Unicode.Scalar]) -> [Unicode.Scalar]? {
        var output = input.filter(\.isASCII)
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append("-") }
        var n = 0x80
        var delta = 0
        var bias = 72
        while handled < input.count {
            guard let next = input.map({ Int($0.value) }).filter({ $0 >= n }).min() else { return nil }
            let (step, overflow) = (next - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow, delta <= Int.max - step else { return nil }
            delta += step
            n = next
            for scalar in input {
                let value = Int(scalar.value)
                if value < n { delta += 1 }
                if value == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return output
    }

    /// Decodes the part after `xn--` (ASCII, lower-cased); `nil` if malformed, if it encodes nothing
    /// non-ASCII (such a label is not a valid A-label), or if it is not the canonical encoding of what
    /// it decodes to (RFC 5891 §5.4: the A-label must round-trip).
    static func decode(_ input: [Unicode.Scalar]) -> [Unicode.Scalar]? {
        guard let decoded = decodeRaw(input), encode(decoded) == input else { return nil }
        return decoded
    }

    private static func decodeRaw(_ input: [Unicode.Scalar]) -> [Unicode.Scalar]? {
        var output: [UInt32] = []
        var position = 0
        if let delimiter = input.lastIndex(of: "-") {
            for c in input[..<delimiter] {
                guard c.isASCII else { return nil }
                output.append(c.value)
            }
            position = delimiter + 1
        }
        var n = 0x80
        var i = 0
        var bias = 72
        while position < input.count {
            let oldI = i
            var w = 1
            var k = base
            while true {
                guard position < input.count else { return nil }
                let c = input[position].value
                position += 1
                let digit: Int
                switch c {
                case 0x61...0x7A: digit = Int(c - 0x61)
                case 0x30...0x39: digit = Int(c - 0x30) + 26
                default: return nil
                }
                let (added, overflow1) = (digit * w).addingReportingOverflow(i)
                guard !overflow1, added < 0x10FFFF * 64 else { return nil }
                i = added
                let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                if digit < t { break }
                w *= base - t
                guard w < 0x10FFFF * 64 else { return nil }
                k += base
            }
            bias = adapt(i - oldI, output.count + 1, oldI == 0)
            n += i / (output.count + 1)
            i %= output.count + 1
            guard n <= 0x10FFFF, !(0xD800...0xDFFF).contains(n), n >= 0x80 else { return nil }
            output.insert(UInt32(n), at: i)
            i += 1
        }
        guard output.contains(where: { $0 >= 0x80 }) else { return nil }
        return output.compactMap(Unicode.Scalar.init)
    }
}

/// IDNA2008 label checks (RFC 5891 §5.4, RFC 5892 derived properties and contextual rules).
///
/// The derived property is computed from the Unicode data the standard library exposes. Two parts of
/// IDNA2008 need data it does not expose and are approximated: the Bidi classes used by the Bidi rule
/// (see ``BidiRule``), and the ZERO WIDTH NON-JOINER joining-type rule, which treats Arabic-block
/// letters as dual-joining.
enum IDNA {
    static func isValidULabel(_ label: [Unicode.Scalar]) -> Bool {
        guard !label.isEmpty, label.count <= 63 else { return false }
        if !label.allSatisfy(\.isASCII) {
            // The A-label ("xn--" + Punycode) must fit the 63-octet DNS label limit.
            guard let encoded = Punycode.encode(label), encoded.count + 4 <= 63 else { return false }
        }
        if label.first == "-" || label.last == "-" { return false }
        if label.count >= 4 && label[2] == "-" && label[3] == "-" { return false }
        if let first = label.first,
            [.nonspacingMark, .spacingMark, .enclosingMark].contains(first.properties.generalCategory)
        {
            return false
        }
        for (position, c) in label.enumerated() {
            switch derivedProperty(c) {
            case .pvalid: continue
            case .disallowed: return false
            case .contextJ:
                guard position > 0 else { return false }
                if label[position - 1].properties.canonicalCombiningClass.rawValue == 9 { continue }  // Virama
                guard c == "\u{200C}", zwnjJoiningContext(label, position) else { return false }
            case .contextO:
                guard contextO(label, position) else { return false }
            }
        }
        return true
    }

    enum Derived { case pvalid, contextJ, contextO, disallowed }

    static func derivedProperty(_ c: Unicode.Scalar) -> Derived {
        let v = c.value
        switch v {
        case 0x00DF, 0x03C2, 0x06FD, 0x06FE, 0x0F0B, 0x3007: return .pvalid
        case 0x00B7, 0x0375, 0x05F3, 0x05F4, 0x30FB, 0x0660...0x0669, 0x06F0...0x06F9: return .contextO
        case 0x0640, 0x07FA, 0x302E, 0x302F, 0x3031...0x3035, 0x303B: return .disallowed
        case 0x200C, 0x200D: return .contextJ
        case 0x61...0x7A, 0x30...0x39, 0x2D: return .pvalid
        default: break
        }
        let p = c.properties
        if p.generalCategory == .unassigned { return .disallowed }
        if p.changesWhenNFKCCaseFolded { return .disallowed }
        if p.isDefaultIgnorableCodePoint || p.isWhitespace || p.isNoncharacterCodePoint { return .disallowed }
        if (0x20D0...0x20FF).contains(v) || (0x1D100...0x1D24F).contains(v) { return .disallowed }
        if (0x1100...0x11FF).contains(v) || (0xA960...0xA97F).contains(v) || (0xD7B0...0xD7FF).contains(v) {
            return .disallowed  // old Hangul jamo
        }
        switch p.generalCategory {
        case .lowercaseLetter, .uppercaseLetter, .otherLetter, .decimalNumber, .modifierLetter, .nonspacingMark,
            .spacingMark:
            return .pvalid
        default:
            return .disallowed
        }
    }

    private static func isGreek(_ c: Unicode.Scalar) -> Bool {
        (0x0370...0x03FF).contains(c.value) && c.value != 0x037E && c.value != 0x0387
            || (0x1F00...0x1FFF).contains(c.value)
    }

    private static func isHebrew(_ c: Unicode.Scalar) -> Bool {
        (0x0591...0x05F4).contains(c.value) || (0xFB1D...0xFB4F).contains(c.value)
    }

    private static func isHiraganaKatakanaHan(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v == 0x30FB { return false }
        return (0x3040...0x309F).contains(v) || (0x30A0...0x30FF).contains(v) || (0x31F0...0x31FF).contains(v)
            || (0xFF66...0xFF9F).contains(v) || (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v)
            || (0x20000...0x3134F).contains(v) || (0xF900...0xFAFF).contains(v) || (0x2E80...0x2FDF).contains(v)
            || v == 0x3005 || v == 0x3007 || (0x3021...0x3029).contains(v) || (0x3038...0x303B).contains(v)
    }

    private static func contextO(_ label: [Unicode.Scalar], _ position: Int) -> Bool {
        let c = label[position]
        switch c.value {
        case 0x00B7:
            return position > 0 && position < label.count - 1 && label[position - 1] == "l"
                && label[position + 1] == "l"
        case 0x0375:
            return position < label.count - 1 && isGreek(label[position + 1])
        case 0x05F3, 0x05F4:
            return position > 0 && isHebrew(label[position - 1])
        case 0x30FB:
            return label.contains(where: isHiraganaKatakanaHan)
        case 0x0660...0x0669:
            return !label.contains { (0x06F0...0x06F9).contains($0.value) }
        case 0x06F0...0x06F9:
            return !label.contains { (0x0660...0x0669).contains($0.value) }
        default:
            return false
        }
    }

    /// RFC 5892 A.1 regular expression, with Arabic-block letters as dual-joining and marks as transparent.
    private static func zwnjJoiningContext(_ label: [Unicode.Scalar], _ position: Int) -> Bool {
        func isJoining(_ c: Unicode.Scalar) -> Bool {
            let v = c.value
            let arabic =
                (0x0620...0x064A).contains(v) || (0x066E...0x06D3).contains(v) || (0x0750...0x077F).contains(v)
                || (0x08A0...0x08C9).contains(v)
            return arabic && c.properties.generalCategory == .otherLetter
        }
        func isTransparent(_ c: Unicode.Scalar) -> Bool {
            [.nonspacingMark, .enclosingMark, .format].contains(c.properties.generalCategory)
        }
        var before = position - 1
        while before >= 0 && isTransparent(label[before]) { before -= 1 }
        var after = position + 1
        while after < label.count && isTransparent(label[after]) { after += 1 }
        return before >= 0 && after < label.count && isJoining(label[before]) && isJoining(label[after])
    }
}

/// The Bidi rule of RFC 5893 §2 for domain names that contain right-to-left labels.
///
/// The standard library does not expose the Unicode Bidi_Class property, so ``bidiClass(_:)``
/// derives it from code point ranges (Hebrew and other right-to-left scripts are R; Arabic-script
/// letters are AL; Arabic-Indic digits are AN) and the general category (marks are NSM, format
/// characters BN). This is exact for the characters IDNA allows in the common scripts and an
/// approximation elsewhere.
enum BidiRule {
    enum BidiClass { case l, r, al, an, en, es, cs, et, on, bn, nsm }

    static func bidiClass(_ c: Unicode.Scalar) -> BidiClass {
        let v = c.value
        switch v {
        case 0x30...0x39, 0xB2, 0xB3, 0xB9, 0x06F0...0x06F9, 0x2070, 0x2074...0x2079, 0x2080...0x2089, 0xFF10...0xFF19,
            0x1D7CE...0x1D7FF:
            return .en
        case 0x0600...0x0605, 0x0660...0x0669, 0x066B, 0x066C, 0x06DD, 0x0890, 0x0891, 0x08E2, 0x10D30...0x10D39,
            0x10E60...0x10E7E:
            return .an
        case 0x2B, 0x2D, 0x207A, 0x207B, 0x208A, 0x208B, 0xFB29, 0xFE62, 0xFE63, 0xFF0B, 0xFF0D:
            return .es
        case 0x2C, 0x2E, 0x2F, 0x3A, 0xA0, 0x060C, 0x202F, 0x2044, 0xFE50, 0xFE52, 0xFE55, 0xFF0C, 0xFF0E, 0xFF0F,
            0xFF1A:
            return .cs
        case 0x23...0x25, 0xA2...0xA5, 0xB0, 0xB1, 0x066A, 0x20A0...0x20CF, 0x2030...0x2034:
            return .et
        default:
            break
        }
        switch c.properties.generalCategory {
        case .nonspacingMark, .enclosingMark: return .nsm
        case .format, .control: return .bn
        default: break
        }
        switch v {
        case 0x0590...0x05FF, 0x07C0...0x085F, 0xFB1D...0xFB4F, 0x10800...0x10CFF, 0x10E80...0x10EBF,
            0x10F00...0x10F2F, 0x10F70...0x10FFF, 0x1E800...0x1EC6F, 0x1ECC0...0x1ECFF, 0x1ED50...0x1EDFF,
            0x1EF00...0x1EFFF:
            return .r
        case 0x0600...0x07BF, 0x0860...0x08FF, 0xFB50...0xFDCF, 0xFDF0...0xFDFF, 0xFE70...0xFEFF, 0x10D00...0x10D2F,
            0x10EC0...0x10EFF, 0x10F30...0x10F6F, 0x1EC70...0x1ECBF, 0x1ED00...0x1ED4F, 0x1EE00...0x1EEFF:
            return .al
        default:
            break
        }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .spacingMark,
            .decimalNumber, .letterNumber, .otherNumber, .privateUse, .unassigned:
            return .l
        default:
            return .on
        }
    }

    /// Whether the labels (already decoded to Unicode) satisfy the Bidi rule.
    static func isSatisfied(by labels: [[Unicode.Scalar]]) -> Bool {
        let classes = labels.map { $0.map(bidiClass) }
        // The rule only applies to a "Bidi domain name": one with an R, AL or AN character somewhere.
        guard classes.contains(where: { $0.contains { $0 == .r || $0 == .al || $0 == .an } }) else { return true }
        for label in classes where !label.isEmpty {
            guard let first = label.first, first == .l || first == .r || first == .al else { return false }
            var end = label.count - 1
            while end > 0 && label[end] == .nsm { end -= 1 }
            let last = label[end]
            if first == .l {
                let allowed: Set<BidiClass> = [.l, .en, .es, .cs, .et, .on, .bn, .nsm]
                guard label.allSatisfy(allowed.contains), last == .l || last == .en else { return false }
            } else {
                let allowed: Set<BidiClass> = [.r, .al, .an, .en, .es, .cs, .et, .on, .bn, .nsm]
                guard label.allSatisfy(allowed.contains), [.r, .al, .en, .an].contains(last) else { return false }
                if label.contains(.en) && label.contains(.an) { return false }
            }
        }
        return true
    }
}
