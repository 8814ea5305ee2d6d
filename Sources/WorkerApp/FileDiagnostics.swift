// SPDX-License-Identifier: Apache-2.0
import JSONSchema
import Worker

/// How the tools talk about the content of a file a person named: by position and kind of problem, never by
/// quoting it.
///
/// A secret file passed by mistake as `--config`, as `sign --command` or to `validate` must not end up, even one
/// character of it, in a terminal, a CI log or a ticket. The parser's own message quotes the offending character
/// (right for a payload answered to its sender); for files these tools say `line 1, column 1 (byte 0)` and what
/// kind of problem it is. A document that is one bare string or number (what a secret file holds when it happens
/// to be JSON, e.g. a numeric token) has its value withheld from validation messages too; objects and arrays are
/// payloads, and their messages stay as the worker's rejected reply words them.
enum FileDiagnostics {
    /// `line L, column C (byte O): <kind of problem> (<code>)`, with no byte of the input.
    static func notJSON(_ error: JSONParseError) -> String { error.contentFreeDescription }

    /// A key of a configuration file as an error names it: escaped like a log value (no control character reaches
    /// the terminal) and at most 64 characters, in single quotes.
    static func key(_ key: String) -> String {
        "'" + LogEscaping.escape(key.clipped(toScalars: 64)) + "'"
    }

    /// `errors` as they may be printed for `instance`: unchanged, except that a bare string or number document's
    /// value is replaced by its kind and length.
    static func printable(_ errors: [ValidationError], instance: JSONValue) -> [ValidationError] {
        let kind: String
        let length: Int
        switch instance {
        case .string(let text):
            kind = "string"
            length = text.count
        case .number(let number):
            kind = "number"
            length = number.literal.count
        case .bool, .null, .array, .object:
            return errors
        }
        return errors.map { error in
            var withheld = error
            withheld.message =
                "the document is one bare JSON \(kind) (\(length) character\(length == 1 ? "" : "s"), not shown: "
                + "a file holding a single value may be a secret), which the schema does not allow "
                + "(\(error.keywordLocation.isEmpty ? "/" : error.keywordLocation))"
            return withheld
        }
    }
}
