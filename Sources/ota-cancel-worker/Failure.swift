// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation

/// Says `message` once on standard error, as `Error: <message>`, and returns the exit to throw.
///
/// For every failure that is not a mistake on the command line: a `ValidationError` would make ArgumentParser
/// print the usage text after it (and exit 64), which buries the message and suggests the flags were wrong.
func failure(_ message: String, status: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(status)
}
