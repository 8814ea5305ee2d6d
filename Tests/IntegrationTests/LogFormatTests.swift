// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Synchronization
import Testing
import Worker
import WorkerApp

/// Issue 10: the two log formats, as pure functions, and the handler that writes them.
@Suite("log formats")
struct LogFormatTests {
    static let instant = RFC3339.date(from: "2026-11-26T17:16:19.123Z")!

    static func record(_ metadata: Logger.Metadata, message: String = "command done") -> LogRecord {
        LogRecord(
            timestamp: instant,
            level: .warning,
            message: message,
            label: "ota-cancel-worker",
            source: "Worker",
            metadata: metadata
        )
    }

    /// A line parsed as one JSON object.
    static func object(_ line: String) throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(parsed as? [String: Any], "\(line)")
    }

    @Test("text is logfmt: fixed fields first, values quoted only when needed, lists joined, dictionaries flattened")
    func text() {
        let line = LogFormat.text.line(
            for: Self.record([
                "ota.correlation_id": "c-1",
                "ota.devices": .stringConvertible(3),
                "ota.empty": "",
                "ota.equals": "a=b",
                "ota.list": ["a", "b c"],
                "ota.nested": ["inner": "x", "deeper": ["z": .stringConvertible(true)]],
                "ota.quote": #"say "hi""#,
                "ota.spaced": "a b",
            ])
        )
        #expect(
            line
                == #"timestamp=2026-11-26T17:16:19.123Z level=warning message="command done" logger=ota-cancel-worker "#
                + #"source=Worker ota.correlation_id=c-1 ota.devices=3 ota.empty="" ota.equals="a=b" "#
                + #"ota.list="a,b c" ota.nested.deeper.z=true ota.nested.inner=x ota.quote="say \"hi\"" "#
                + #"ota.spaced="a b""# + "\n"
        )
    }

    @Test("text: what could break a line is escaped (and quoted), keys are made safe, fixed names are not shadowed")
    func textEscaping() {
        let forged = "x\n2026-01-01T00:00:00.000Z level=critical message=forged\u{1B}[31m"
        let line = LogFormat.text.line(
            for: Self.record(
                ["ota.correlation_id": .string(forged), "bad key=\"\n": "v", "message": "shadow", "ota.path": #"a\b"#],
                message: "one\u{2028}two"
            )
        )
        #expect(line.hasSuffix("\n") && line.dropLast().allSatisfy { !$0.isNewline }, "\(line)")
        #expect(!line.unicodeScalars.contains("\u{1B}") && !line.unicodeScalars.contains("\u{2028}"))
        #expect(line.contains(#"message="one\u{2028}two""#), "\(line)")
        #expect(
            line.contains(
                #"ota.correlation_id="x\n2026-01-01T00:00:00.000Z level=critical message=forged\u{1B}[31m""#
            ),
            "\(line)"
        )
        #expect(line.contains(" bad_key___n=v "), "\(line)")
        #expect(line.contains(#"metadata.message=shadow"#), "\(line)")
        // A backslash is escaped, so the value is quoted: a reader tells `\\n` from an escaped newline.
        #expect(line.contains(#"ota.path="a\\b""#), "\(line)")
    }

    @Test("json: one object per line with the fixed fields, numbers, Booleans, arrays and objects typed")
    func json() throws {
        struct Opaque: CustomStringConvertible, Sendable { var description: String { "opaque" } }
        let line = LogFormat.json.line(
            for: Self.record([
                "ota.correlation_id": "c-1",
                "ota.devices": .stringConvertible(3),
                "ota.ratio": .stringConvertible(0.5),
                "ota.flag": .stringConvertible(false),
                "ota.opaque": .stringConvertible(Opaque()),
                "ota.correlation_ids": ["a", "b"],
                "ota.counters": ["received": .stringConvertible(7)],
                "level": "shadow",
                "error.message": "boom",
            ])
        )
        #expect(line.hasSuffix("}\n") && line.dropLast().allSatisfy { !$0.isNewline })
        #expect(line.hasPrefix(#"{"timestamp":"2026-11-26T17:16:19.123Z","level":"warning","message":"command done","#))
        #expect(line.hasSuffix(#""error.message":"boom"}"# + "\n"), "the error goes last: \(line)")
        let object = try Self.object(line)
        #expect(object["logger"] as? String == "ota-cancel-worker")
        #expect(object["source"] as? String == "Worker")
        #expect(object["level"] as? String == "warning")
        #expect(object["metadata.level"] as? String == "shadow")
        #expect(object["ota.correlation_id"] as? String == "c-1")
        #expect(object["ota.devices"] as? Int == 3)
        #expect(object["ota.ratio"] as? Double == 0.5)
        #expect(object["ota.flag"] as? Bool == false)
        #expect(object["ota.opaque"] as? String == "opaque")
        #expect(object["ota.correlation_ids"] as? [String] == ["a", "b"])
        #expect((object["ota.counters"] as? [String: Any])?["received"] as? Int == 7)
    }

    @Test("json: every character LogEscaping names is a \\u escape, and the parsed value is the exact text")
    func jsonEscaping() throws {
        let all = String(
            String.UnicodeScalarView((0...0x3000 as ClosedRange<UInt32>).compactMap { Unicode.Scalar($0) })
        )
        let line = LogFormat.json.line(for: Self.record(["ota.reason": .string(all), "k\ney": "v"], message: all))
        #expect(line.dropLast().unicodeScalars.allSatisfy { !LogEscaping.needsEscape($0) || $0 == "\\" })
        #expect(line.contains(#"\u2028"#) && line.contains(#"\u202e"#) && line.contains(#"\u001b"#))
        let object = try Self.object(line)
        #expect(object["ota.reason"] as? String == all)
        #expect(object["message"] as? String == all)
        #expect(object["k\ney"] as? String == "v")
    }

    /// Lines kept by a test.
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        var output: LogOutput { LogOutput { line in self.lines.withLock { $0.append(line) } } }
    }

    @Test("the handler: metadata merged (record, then provider, then handler), error as fields, one write per record")
    func handler() throws {
        let lines = Lines()
        var handler = WorkerLogHandler(label: "test-label", level: .info, format: .json, output: lines.output)
        handler.metadata = ["from-handler": "h", "shared": "handler"]
        handler.metadataProvider = Logger.MetadataProvider { ["provided": "p", "shared": "provider"] }
        let configured = handler
        var logger = Logger(label: "test") { _ in configured }
        logger[metadataKey: "attached"] = "a"
        logger.debug("below the level")
        logger.error("first", metadata: ["record": "r", "shared": "record"], source: "Source")
        struct Failure: Error, CustomStringConvertible { var description: String { "bad\nthing" } }
        configured.log(
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
        #expect(lines.all.count == 2, "\(lines.all)")
        let first = try Self.object(lines.all.first ?? "")
        #expect(first["message"] as? String == "first")
        #expect(first["logger"] as? String == "test-label")
        #expect(first["source"] as? String == "Source")
        #expect(first["shared"] as? String == "record")
        for (key, value) in ["from-handler": "h", "provided": "p", "attached": "a", "record": "r"] {
            #expect(first[key] as? String == value, "\(key)")
        }
        let second = try Self.object(lines.all.last ?? "")
        #expect(second["error.message"] as? String == "bad\nthing")
        #expect((second["error.type"] as? String)?.hasSuffix("Failure") == true)
        #expect(RFC3339.date(from: second["timestamp"] as? String ?? "") != nil)
    }

    @Test("standard error's writer: lines from many threads at once never interleave, however long")
    func concurrentWrites() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)").path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(descriptor >= 0)
        defer {
            close(descriptor)
            try? FileManager.default.removeItem(atPath: path)
        }
        let output = LogOutput.fileDescriptor(descriptor)
        // 64 KiB lines: far above PIPE_BUF, so only the writer's lock keeps them whole.
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let handler = WorkerLogHandler(label: "w\(writer)", level: .info, format: .text, output: output)
                    let logger = Logger(label: "w\(writer)") { _ in handler }
                    for index in 0..<25 {
                        logger.info(
                            "line",
                            metadata: ["n": "\(index)", "fill": .string(String(repeating: "x", count: 65_536))]
                        )
                    }
                }
            }
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 200)
        let fill = " fill=" + String(repeating: "x", count: 65_536) + " n="
        #expect(
            lines.allSatisfy {
                $0.hasPrefix("timestamp=") && $0.contains(fill) && $0.components(separatedBy: "timestamp=").count == 2
            }
        )
    }

    @Test("one key style in every module: a namespace, a dot, snake_case (Worker and WorkerApp use LogKey only)")
    func keyStyle() throws {
        let style = #"^(ota|mqtt|platform|error)\.[a-z0-9]+(_[a-z0-9]+)*(\.[a-z0-9]+(_[a-z0-9]+)*)*$"#
        // Dictionary-literal keys, subscript assignments, `metadataKey:` and LogKey's constants.
        let patterns = [
            #""([a-z_]+\.[A-Za-z0-9_.-]+)"\s*:"#, #"\["([a-z_]+\.[A-Za-z0-9_.-]+)"\]\s*="#,
            #"metadataKey: "([^"]+)""#, #"static let [A-Za-z]+ = "([^"]+)""#,
        ].map { try! NSRegularExpression(pattern: $0) }
        var keys = [String: Set<String>]()
        for module in ["Worker", "WorkerApp", "PlatformAPI", "Mosquitto"] {
            let root = WorkerStack.repositoryRoot + "/Sources/" + module
            let files = try FileManager.default.subpathsOfDirectory(atPath: root).filter { $0.hasSuffix(".swift") }
            for file in files {
                let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
                let range = NSRange(text.startIndex..., in: text)
                // LogKey's constants are its only `static let` strings that are keys.
                for pattern in file.hasSuffix("LogKey.swift") ? patterns : Array(patterns.dropLast()) {
                    for match in pattern.matches(in: text, range: range) {
                        guard let found = Range(match.range(at: 1), in: text) else { continue }
                        keys[module + "/" + file, default: []].insert(String(text[found]))
                    }
                }
            }
        }
        let all = keys.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        #expect(all.count > 60 && all.contains("ota.correlation_id") && all.contains("mqtt.session_present"))
        for (file, found) in keys.sorted(by: { $0.key < $1.key }) {
            for key in found.sorted() {
                #expect(key.range(of: style, options: .regularExpression) != nil, "\(file): \(key)")
                if file.hasPrefix("Worker") && !file.hasSuffix("LogKey.swift")
                    && !file.hasSuffix("WorkerLogHandler.swift")
                {
                    #expect(!key.hasPrefix("ota."), "\(file) spells \(key) itself: use LogKey")
                }
            }
        }
    }
}
