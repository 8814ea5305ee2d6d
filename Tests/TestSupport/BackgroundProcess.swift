// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A long-running program started for a test (a worker process that a test will kill), with its standard
/// output and error appended to a log file.
public final class BackgroundProcess: Sendable {
    private let process: SpawnedProcess
    /// The file receiving the program's output.
    public let logPath: String

    /// Starts `executable` (a path, or a name found like ``findExecutable(_:)``).
    ///
    /// - Parameters:
    ///   - environment: variables added to (or replacing in) the current environment.
    ///   - logPath: where stdout and stderr go (appended, so restarts of the same program share one log).
    public init(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        logPath: String
    ) throws {
        guard let path = findExecutable(executable) else {
            throw TestSupportError("\(executable) was not found")
        }
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestSupportError("cannot open \(logPath): errno \(errno)") }
        defer { close(fd) }
        process = try SpawnedProcess(path: path, arguments: arguments, environment: environment, stdout: fd, stderr: fd)
        self.logPath = logPath
    }

    public var pid: Int32 { process.pid }

    /// The exit code (128 + signal when killed), once it has ended.
    public var exitCode: Int32? { process.exitCode }

    /// Sends a signal (SIGTERM, SIGKILL, ...) unless the process has ended.
    public func signal(_ signal: Int32) { process.signal(signal) }

    /// Waits until the process has ended; returns its exit code.
    @discardableResult
    public func waitForExit() async -> Int32 { await process.waitForExit() }

    /// What the program has written so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}
