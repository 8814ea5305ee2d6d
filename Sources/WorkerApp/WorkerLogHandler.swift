// SPDX-License-Identifier: Apache-2.0
public import Logging
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The worker's `LogHandler`: each record becomes one line in the configured ``LogFormat``, written whole to
/// standard error.
///
/// The record's metadata win over the metadata provider's, which win over the handler's own (as in
/// `StreamLogHandler`); an attached error becomes `error.message` and `error.type`. The line is made by the pure
/// ``LogFormat/line(for:)`` and handed to a ``LogOutput``, once per line.
public struct WorkerLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    /// The logger's label (the `logger` field).
    public let label: String
    public let format: LogFormat
    private let output: LogOutput

    /// - Parameters:
    ///   - output: where the lines go. Default ``LogOutput/standardError``.
    public init(
        label: String,
        level: Logger.Level,
        format: LogFormat,
        output: LogOutput = .standardError,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            merged["error.message"] = .string("\(error)")
            merged["error.type"] = .string(String(reflecting: type(of: error)))
        }
        let record = LogRecord(
            timestamp: Date(),
            level: event.level,
            message: event.message.description,
            label: label,
            source: event.source,
            metadata: merged
        )
        output.write(format.line(for: record))
    }
}

/// Where the log lines go: each line in one call, from any thread.
public struct LogOutput: Sendable {
    private let sink: @Sendable (String) -> Void

    /// Lines go to `sink` (tests keep them).
    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    func write(_ line: String) { sink(line) }

    /// Standard error; see ``fileDescriptor(_:)``.
    public static let standardError = fileDescriptor(2)

    /// An open file descriptor, unbuffered: each line is one `write(2)` (more only if the kernel takes part of
    /// it), under a lock, so that lines from different threads never interleave and nothing is lost when the
    /// process exits. The descriptor stays open.
    public static func fileDescriptor(_ descriptor: Int32) -> LogOutput {
        let writer = FileDescriptorWriter(descriptor: descriptor)
        return LogOutput { line in writer.writeLine(line) }
    }
}

/// Writes whole lines to a file descriptor, one at a time.
final class FileDescriptorWriter: Sendable {
    private let descriptor: Int32
    private let lock = Mutex(())

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    func writeLine(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            lock.withLock { _ in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, base + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        // Standard error is gone or full for good: a log line is not worth stopping the worker.
                        return
                    }
                }
            }
        }
    }
}
