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
                    !$0.hasPrefix("timestamp=") || ($0.contains("forged") && !$0.contains("command done"))
                }
                #expect(forgedLines.isEmpty, "forged lines in the log: \(forgedLines)\n\(log.suffix(3000))")
                let done = lines.filter { $0.contains("command done") }
                #expect(done.count == 1, "\(log.suffix(3000))")
                let line = done.first ?? ""
                // logfmt: escaped, and quoted (the values hold spaces and escapes).
                #expect(line.contains(#"ota.correlation_id="x\n\#(forged)\u{1B}[31m""#), "\(line)")
                #expect(line.contains(#"ota.reason="r\n\#(forged) reason""#), "\(line)")
                #expect(line.contains(#"ota.requested_by="ops\u{1B}]0;title\u{7}""#), "\(line)")
                #expect(!log.unicodeScalars.contains("\u{1B}"), "no raw escape character reaches the log")
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0)
            }
        }
    }
}
