// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
import Worker
import WorkerApp

/// The `health` subcommand's settings as a test gives them.
struct TestHealthArguments: HealthArguments {
    var config: String?
    var opsHost: String?
    var opsPort: Int?
    var url: String?
    var timeout: Double?
}

/// The `health` subcommand's pure parts: what it probes, and what it makes of what it sees (no network).
@Suite("Health probe: settings and verdict")
struct HealthProbeTests {
    static let worker = HealthProbe.Target(host: "127.0.0.1", port: 9464, path: "/health/ready")

    static func answer(_ text: String) -> HealthProbe.Observation { .answered(Array(text.utf8)) }

    @Test("200 is healthy (exit 0); the line names the URL and the status")
    func ready() {
        let verdict = HealthProbe.verdict(
            Self.answer("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\nready\n"),
            target: Self.worker
        )
        #expect(verdict == .init(healthy: true, line: "healthy: http://127.0.0.1:9464/health/ready answered 200 OK"))
        #expect(verdict.exitStatus == 0)
        // HTTP/1.0 and a missing reason phrase are still an answer.
        #expect(HealthProbe.verdict(Self.answer("HTTP/1.0 200\r\n\r\n"), target: Self.worker).healthy)
    }

    @Test("503 is unhealthy (exit 1), with the endpoint's reason from the body")
    func notReady() {
        let verdict = HealthProbe.verdict(
            Self.answer(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 53\r\n\r\n"
                    + "not ready: connecting, subscribing or shutting down\n"
            ),
            target: Self.worker
        )
        #expect(
            verdict.line
                == "unhealthy: http://127.0.0.1:9464/health/ready answered 503 Service Unavailable: "
                + "not ready: connecting, subscribing or shutting down"
        )
        #expect(!verdict.healthy && verdict.exitStatus == 1)
        // A chunked body: the chunk size is not the reason.
        let chunked = HealthProbe.verdict(
            Self.answer("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbroke\r\n0\r\n\r\n"),
            target: Self.worker
        )
        #expect(chunked.line.hasSuffix("answered 500 Oops: broke"))
    }

    @Test("only 200 counts: other 2xx, redirects and client errors are unhealthy")
    func otherStatuses() {
        for status in ["204 No Content", "301 Moved Permanently", "404 Not Found", "429 Too Many Requests"] {
            let verdict = HealthProbe.verdict(Self.answer("HTTP/1.1 \(status)\r\n\r\n"), target: Self.worker)
            #expect(!verdict.healthy, "\(status)")
            #expect(verdict.line.hasSuffix("answered \(status)"), "\(verdict.line)")
        }
    }

    @Test("refused, timed out, closed, not HTTP, cut short: unhealthy, each said as it is")
    func failures() {
        let url = "http://127.0.0.1:9464/health/ready"
        let cases: [(HealthProbe.Observation, String)] = [
            (.unreachable("Connection refused"), "unhealthy: \(url): Connection refused"),
            (.timedOut(3), "unhealthy: \(url): no answer within 3 s"),
            (.timedOut(0.5), "unhealthy: \(url): no answer within 0.5 s"),
            (.answered([]), "unhealthy: \(url): the connection was closed without an answer"),
            (Self.answer("SSH-2.0-OpenSSH_9.2\r\n"), "unhealthy: \(url): the answer is not HTTP"),
            (Self.answer("HTTP/1.1 20"), "unhealthy: \(url): the answer is not HTTP"),
            (Self.answer("HTTP/1.1 2000 OK\r\n"), "unhealthy: \(url): the answer is not HTTP"),
            (Self.answer("HTTP/1.1 abc OK\r\n"), "unhealthy: \(url): the answer is not HTTP"),
        ]
        for (observation, line) in cases {
            let verdict = HealthProbe.verdict(observation, target: Self.worker)
            #expect(verdict == .init(healthy: false, line: line))
            #expect(verdict.exitStatus == 1)
        }
    }

    @Test("whatever a server sends, the line stays one printable line, its quote of the body bounded")
    func hostileAnswer() {
        let body = "line\u{1B}[31mred\u{07}" + String(repeating: "x", count: 10_000) + "\nsecond line"
        let verdict = HealthProbe.verdict(
            Self.answer("HTTP/1.1 503 Bad\u{0B}Reason\r\n\r\n" + body),
            target: Self.worker
        )
        #expect(!verdict.line.contains("\n") && !verdict.line.contains("\u{1B}") && !verdict.line.contains("\u{07}"))
        #expect(!verdict.line.contains("second line"))
        #expect(verdict.line.hasPrefix("unhealthy: http://127.0.0.1:9464/health/ready answered 503 Bad?Reason: line?"))
        #expect(verdict.line.count < 300, "\(verdict.line.count) characters")
    }

    @Test("ops host and port: flag, then OTA_CANCEL_* variable, then the config file, then 127.0.0.1:9464")
    func resolution() throws {
        func target(_ arguments: TestHealthArguments, _ environment: [String: String] = [:]) throws -> String {
            try HealthProbe.resolve(arguments, environment: environment).target.url
        }
        #expect(try target(.init()) == "http://127.0.0.1:9464/health/ready")
        let variables = ["OTA_CANCEL_OPS_HOST": "10.1.2.3", "OTA_CANCEL_OPS_PORT": "9500"]
        #expect(try target(.init(), variables) == "http://10.1.2.3:9500/health/ready")
        #expect(
            try target(.init(opsHost: "192.0.2.1", opsPort: 9600), variables) == "http://192.0.2.1:9600/health/ready"
        )

        let folder = try makeTemporaryDirectory("ota-health-config")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/config.json"
        // A worker's whole file: the probe reads its two keys and leaves the others to `run`.
        try #"{"ops-host": "::", "ops-port": 9700, "broker-host": "mqtt.internal", "platform-qps": 5}"#.write(
            toFile: file,
            atomically: true,
            encoding: .utf8
        )
        #expect(try target(.init(config: file)) == "http://[::1]:9700/health/ready")
        #expect(try target(.init(), ["OTA_CANCEL_CONFIG": file]) == "http://[::1]:9700/health/ready")
        #expect(try target(.init(config: file), ["OTA_CANCEL_OPS_PORT": "9800"]) == "http://[::1]:9800/health/ready")
        #expect(try HealthProbe.resolve(TestHealthArguments()).timeout == 3)
        #expect(try HealthProbe.resolve(TestHealthArguments(timeout: 0.25)).timeout == 0.25)
    }

    @Test("a wildcard listening address is probed on loopback; other hosts are kept")
    func wildcard() {
        #expect(HealthProbe.loopback(forListening: "0.0.0.0") == "127.0.0.1")
        #expect(HealthProbe.loopback(forListening: "::") == "::1")
        #expect(HealthProbe.loopback(forListening: "[::]") == "::1")
        #expect(HealthProbe.loopback(forListening: "[::1]") == "::1")
        #expect(HealthProbe.loopback(forListening: "worker.internal") == "worker.internal")
        #expect(HealthProbe.loopback(forListening: "10.0.0.7") == "10.0.0.7")
    }

    @Test("--url: any http:// URL, port 80 by default, path and query kept, IPv6 in brackets")
    func url() throws {
        let simulator = try HealthProbe.target(url: "http://127.0.0.1:8080/_sim/stats")
        #expect(simulator == .init(host: "127.0.0.1", port: 8080, path: "/_sim/stats"))
        #expect(
            try HealthProbe.target(url: "http://example.internal")
                == .init(host: "example.internal", port: 80, path: "/")
        )
        let query = try HealthProbe.target(url: "http://[::1]:9464/health/ready?verbose=1")
        #expect(query == .init(host: "::1", port: 9464, path: "/health/ready?verbose=1"))
        #expect(query.url == "http://[::1]:9464/health/ready?verbose=1")
        #expect(try HealthProbe.target(url: "http://0.0.0.0:8080/").host == "127.0.0.1")
    }

    @Test("unusable settings are refused, naming what is wrong")
    func refused() {
        func message(_ arguments: TestHealthArguments, _ environment: [String: String] = [:]) -> String? {
            do {
                _ = try HealthProbe.resolve(arguments, environment: environment)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(message(.init(url: "https://example.internal/")).map { $0.contains("http:// URL") } == true)
        #expect(message(.init(url: "not a url")) != nil)
        #expect(message(.init(url: "http:///path")).map { $0.contains("names no host") } == true)
        #expect(message(.init(opsPort: 9464, url: "http://127.0.0.1/")).map { $0.contains("not both") } == true)
        #expect(message(.init(opsPort: 0)).map { $0.contains("ops-port is 0") } == true)
        #expect(message(.init(opsPort: 70_000)).map { $0.contains("ops-port") } == true)
        #expect(message(.init(), ["OTA_CANCEL_OPS_PORT": "ninety"]).map { $0.contains("OTA_CANCEL_OPS_PORT") } == true)
        #expect(message(.init(timeout: 0)).map { $0.contains("timeout") } == true)
        #expect(message(.init(timeout: -1)) != nil)
        #expect(
            message(.init(config: "/nonexistent/config.json")).map { $0.contains("/nonexistent/config.json") } == true
        )
    }
}
