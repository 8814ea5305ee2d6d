// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import PlatformSimulator
import TestSupport
import Testing
import WorkerApp

/// Issue 8: values from commands are escaped in the log, so that one record is always one line.
@Suite("log escaping", .timeLimit(.minutes(3)))
struct LogEscapingTests {
    @Test("the escaping function: control characters, other line breaks, bidi controls and the backslash")
    func escape() {
        #expect(LogEscaping.escape("plain text, ünïcödé, emoji 🚀") == "plain text, ünïcödé, emoji 🚀")
        #expect(LogEscaping.escape("a\nb\rc\td") == #"a\nb\rc\td"#)
        #expect(LogEscaping.escape("\u{1B}[31mred") == #"\u{1B}[31mred"#)
        #expect(LogEscaping.escape("\u{0}\u{7F}\u{85}\u{9F}") == #"\u{0}\u{7F}\u{85}\u{9F}"#)
        #expect(LogEscaping.escape("x\u{2028}y\u{2029}z") == #"x\u{2028}y\u{2029}z"#)
        #expect(LogEscaping.escape("\u{202E}txt.exe\u{2066}") == #"\u{202E}txt.exe\u{2066}"#)
        // Reversible: a backslash and an n in a value do not pass for an escaped newline.
        #expect(LogEscaping.escape(#"a\nb"#) == #"a\\nb"#)
        #expect(LogEscaping.escape("a\nb") != LogEscaping.escape(#"a\nb"#))
        // What comes out holds no character that needs escaping, but the escapes' own backslashes.
        let all = String(
            String.UnicodeScalarView((0...0x3000 as ClosedRange<UInt32>).compactMap { Unicode.Scalar($0) })
        )
        let escaped = LogEscaping.escape(all)
        #expect(!escaped.unicodeScalars.contains { $0 != "\\" && LogEscaping.needsEscape($0) })
        #expect(!escaped.contains("\n") && escaped.contains(#"\n"#))
    }

    @Test("metadata: values through lists and dictionaries, and the keys, are escaped")
    func metadata() {
        struct Convertible: CustomStringConvertible, Sendable { var description: String { "c\nd" } }
        let escaped = LogEscaping.escape(
            [
                "k\ney": "v\n1",
                "list": ["a\u{1B}", .dictionary(["in\tner": "b\u{2028}"])],
                "convertible": .stringConvertible(Convertible()),
            ] as Logger.Metadata
        )
        #expect(escaped[#"k\ney"#]?.description == #"v\n1"#)
        #expect(escaped["k\ney"] == nil)
        guard case .array(let list)? = escaped["list"], case .dictionary(let inner) = list[1] else {
            Issue.record("structure lost: \(escaped)")
            return
        }
        #expect(list[0].description == #"a\u{1B}"#)
        #expect(inner[#"in\tner"#]?.description == #"b\u{2028}"#)
        #expect(escaped["convertible"]?.description == #"c\nd"#)
    }

    /// A `TextOutputStream` that keeps what is written.
    final class Capture: TextOutputStream, @unchecked Sendable {
        // Only written by the one logging call of each test, then read after it.
        var text = ""
        func write(_ string: String) { text += string }
    }

    @Test("the handler: message, metadata (handler, provider, record), source and error, one line per record")
    func handler() {
        let capture = Capture()
        var stream = StreamLogHandler(label: "test-label", stream: capture, metadataProvider: nil)
        stream.metadata = ["from-stream": "s\n1"]
        var handler = EscapingLogHandler(wrapping: stream)
        handler.metadataProvider = Logger.MetadataProvider { ["provided": "p\n2"] }
        let configured = handler
        var logger = Logger(label: "test") { _ in configured }
        logger[metadataKey: "attached"] = "a\n3"
        struct Failure: Error, CustomStringConvertible { var description: String { "bad\nthing" } }
        logger.error(
            "message\n1999-12-31T23:59:59+0000 critical forged",
            metadata: ["record": "r\u{1B}4"],
            source: "so\nurce"
        )
        handler.log(
            event: LogEvent(
                level: .error,
                message: "with error",
                error: Failure(),
                metadata: nil,
                source: "src",
                file: #fileID,
                function: #function,
                line: #line
            )
        )
        let lines = capture.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty, "two records, two lines: \(capture.text)")
        let first = String(lines.first ?? "")
        for piece in [
            #"message\n1999-12-31T23:59:59+0000 critical forged"#, #"record=r\u{1B}4"#, #"attached=a\n3"#,
            #"provided=p\n2"#, #"from-stream=s\n1"#, #"[so\nurce]"#,
        ] {
            #expect(first.contains(piece), "\(piece) in \(first)")
        }
        #expect(String(lines.dropFirst().first ?? "").contains(#"error.message=bad\nthing"#), "\(capture.text)")
        #expect(handler.logLevel == .info)
        handler.logLevel = .debug
        #expect(handler.logLevel == .debug)
    }

    @Test("a real worker at --log-level info: a correlationId with a newline and an escape is one escaped line")
    func realWorker() async throws {
        let binary = try workerBinary()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("ota-log-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        var quiet = Logger(label: "log-escaping-test")
        quiet.logLevel = .warning
        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: quiet
            ) { simulator in
                let logPath = state + ".log"
                defer { try? FileManager.default.removeItem(atPath: logPath) }
                let process = try await launchWorkerProcess(
                    binary,
                    [
                        "run", "--broker-port", "\(broker.port)", "--client-id", "log-worker", "--platform-endpoint",
                        simulator.endpoint, "--access-key-id", "testid", "--platform-qps", "0", "--state-dir", state,
                        "--schema-dir", hygieneSchemas, "--ops-port", "0", "--log-level", "info",
                    ],
                    logPath: logPath
                )
                defer { process.signal(SIGKILL) }
                let forged = "1999-12-31T23:59:59+0000 critical ota-cancel-worker : forged"
                let correlationId = "x\n\(forged)\u{1B}[31m"
                let reply = try await requestOverMQTT(
                    port: broker.port,
                    correlationId: correlationId,
                    extra: #","reason":"r\n\#(forged) reason","requestedBy":"ops\u001b]0;title\u0007""#
                )
                #expect(reply["status"] == "succeeded")
                #expect(reply["correlationId"] == .string(correlationId), "the reply keeps the exact id")
                // The record is written right after the reply is published: wait for it (hang guard only).
                let clock = ContinuousClock()
                let giveUp = clock.now + .seconds(20)
                while !process.log.contains("command done") && clock.now < giveUp {
                    try await clock.sleep(for: .milliseconds(50))
                }
                let log = process.log
                let lines = log.split(separator: "\n").map(String.init)
                // Before the fix each forged text began a line of its own; now it stays inside the one record.
                let forgedLines = lines.filter {
                    $0.hasPrefix("1999-12-31T23:59:59+0000") || ($0.contains("forged") && !$0.contains("command done"))
                }
                #expect(forgedLines.isEmpty, "forged lines in the log: \(forgedLines)\n\(log.suffix(3000))")
                let done = lines.filter { $0.contains("command done") }
                #expect(done.count == 1, "\(log.suffix(3000))")
                let line = done.first ?? ""
                #expect(line.contains(#"ota.correlation-id=x\n\#(forged)\u{1B}[31m"#), "\(line)")
                #expect(line.contains(#"ota.reason=r\n\#(forged) reason"#), "\(line)")
                #expect(line.contains(#"ota.requested-by=ops\u{1B}]0;title\u{7}"#), "\(line)")
                #expect(!log.unicodeScalars.contains("\u{1B}"), "no raw escape character reaches the log")
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0)
            }
        }
    }
}
