// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Logging
import WorkerApp

/// Says `message` once on standard error and returns the exit to throw.
///
/// For every failure that is not a mistake on the command line: a `ValidationError` would make ArgumentParser
/// print the usage text after it (and exit 64), which buries the message and suggests the flags were wrong.
/// In `text` the line is `Error: <message>`, for a person at a terminal; in `json` it is one `critical` log line
/// with the exit status, so that a log pipeline reading JSON lines gets the reason the worker stopped too.
func failure(_ message: String, status: Int32, format: LogFormat = .text) -> ExitCode {
    let line: String
    switch format {
    case .text:
        line = "Error: \(message)\n"
    case .json:
        let record = LogRecord(
            timestamp: Date(),
            level: .critical,
            message: message,
            label: "ota-cancel-worker",
            source: "ota_cancel_worker",
            metadata: ["ota.exit_status": .stringConvertible(status)]
        )
        line = format.line(for: record)
    }
    FileHandle.standardError.write(Data(line.utf8))
    return ExitCode(status)
}
