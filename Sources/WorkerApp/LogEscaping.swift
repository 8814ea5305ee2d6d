// SPDX-License-Identifier: Apache-2.0

/// Escapes text so that a log record stays exactly one line, whatever the values in it hold.
///
/// The worker logs values that come from the network (a command's `correlationId`, `reason`, `requestedBy`,
/// `replyTo`, error texts): written raw, one payload with a newline and a fake timestamp forges whole `critical`
/// lines, and an escape character re-colours or rewrites the operator's terminal. Every control character (C0,
/// DEL, C1), the other line breaks (U+2028, U+2029; U+0085 is C1) and the bidirectional overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069, which reorder what a person reads) become escapes: `\n`, `\r`, `\t`, else
/// `\u{1B}` (hexadecimal, upper case). A backslash becomes `\\`, so an escaped newline cannot be confused with a
/// value that held a backslash and an `n`: the escaping is reversible.
///
/// A separate, pure function that both log formats use (``LogFormat``): `text` writes these escapes, `json` writes
/// the same characters as JSON's `\uXXXX` escapes.
public enum LogEscaping {
    /// `text` with every character that could break or disguise a log line escaped; see ``LogEscaping``.
    public static func escape(_ text: String) -> String {
        // Fast path: most log text has nothing to escape.
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                result.append(scalar)
                continue
            }
            switch scalar {
            case "\n": result.append(contentsOf: #"\n"#.unicodeScalars)
            case "\r": result.append(contentsOf: #"\r"#.unicodeScalars)
            case "\t": result.append(contentsOf: #"\t"#.unicodeScalars)
            case "\\": result.append(contentsOf: #"\\"#.unicodeScalars)
            default:
                result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            }
        }
        return String(result)
    }

    /// Whether `scalar` is escaped by ``escape(_:)``.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1 (U+0085 NEXT LINE among them)
        case 0x2028, 0x2029: true  // LINE SEPARATOR, PARAGRAPH SEPARATOR
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides, isolates
        case 0x5C: true  // the backslash, so that the escaping is reversible
        default: false
        }
    }
}
