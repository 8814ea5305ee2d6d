// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import PlatformSimulator
import TestSupport
import Testing
import WorkerApp

#if canImport(Glibc)
import Glibc
#endif

/// Issue 8's flood against the release shape: the real worker process, its file limit lowered to 4,096, a real
/// broker, the in-process simulator, curl for the probes and mosquitto_rr for a command.
@Suite("Operations port under an idle-connection flood", .timeLimit(.minutes(3)))
struct OpsFloodTests {
    /// An unfinished request: a request line and one header field, never the blank line that ends the head.
    static let unfinishedRequest = Array("GET /health/ready HTTP/1.1\r\nHost: x\r\n".utf8)

    static var quietLogger: Logger {
        var logger = Logger(label: "ops-flood-test")
        logger.logLevel = .error
        return logger
    }

    @Test("5,000 idle connections (file limit 4,096): /health/ready answers within 1 s, a command is answered")
    func idleConnectionFlood() async throws {
        let floodSize = 5_000
        let fileLimit = 4_096
        let probes = 5
        try raiseOpenFileLimit(to: Int(IdleConnections.descriptorFloor) + floodSize + 1_000)
        let prlimit = try #require(
            findExecutable("prlimit"),
            "prlimit (util-linux) is needed to lower the worker's file limit: apt-get install -y util-linux"
        )
        let binary = try workerBinary()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("ota-ops-flood-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }

        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                let arguments = [
                    "--nofile=\(fileLimit):\(fileLimit)", binary,
                    "run", "--broker-port", "\(broker.port)", "--client-id", "ops-flood-worker",
                    "--platform-endpoint", simulator.endpoint, "--access-key-id", "testid", "--platform-qps", "0",
                    "--state-dir", state, "--schema-dir", WorkerStack.repositoryRoot + "/schemas",
                    "--ops-port", "0", "--log-level", "notice",
                ]
                let process = try await launchWorkerProcess(prlimit, arguments, logPath: state + "/worker.log")
                let flood = IdleConnections()
                do {
                    try await Self.flood(
                        flood,
                        worker: process,
                        broker: broker.port,
                        floodSize: floodSize,
                        fileLimit: fileLimit,
                        probes: probes
                    )
                } catch {
                    flood.closeAll()
                    await Self.stop(process)
                    throw error
                }
                flood.closeAll()
                let exitCode = await Self.stop(process)
                #expect(exitCode == 0, "a graceful stop exits 0, not \(exitCode):\n\(process.log.suffix(3000))")
            }
        }
    }

    private static func flood(
        _ flood: IdleConnections,
        worker process: BackgroundProcess,
        broker: Int,
        floodSize: Int,
        fileLimit: Int,
        probes: Int
    ) async throws {
        let pid = process.pid
        // prlimit executed the worker in its own process, with the lowered limit.
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
        #expect(executable.hasSuffix("/ota-cancel-worker"), "pid \(pid) runs \(executable)")
        let limits = try #require(openFileLimits(pid: pid))
        #expect(limits.soft == fileLimit && limits.hard == fileLimit, "the worker's file limit: \(limits)")
        let port = try await opsPort(process)
        let url = "http://127.0.0.1:\(port)/health/ready"
        let before = try await probe(url)
        #expect(before.status == "200", "ready before the flood: \(before)")
        let baseline = try #require(openDescriptorCount(pid: pid))

        // The flood: every connection sends an unfinished head and then nothing, and stays open.
        let clock = ContinuousClock()
        let started = clock.now
        let sampledPeak = LockedValue(baseline)
        await flood.open(floodSize, port: port, partialRequest: Self.unfinishedRequest) {
            let count = openDescriptorCount(pid: pid) ?? 0
            sampledPeak.withLock { $0 = max($0, count) }
        }
        var peak = sampledPeak.value
        let floodTime = clock.now - started
        #expect(
            flood.descriptors.count == floodSize,
            "every connection of the flood was accepted: \(flood.descriptors.count), failures \(flood.failures)"
        )

        // The kernel may still queue connections the worker has not accepted yet; once it has taken them all in,
        // it has closed all but those it holds. (Before the limits it never gets there: it stops at its file
        // limit.)
        let maxConnections = OpsServerConfiguration.Limits().maxConnections
        let drainStarted = clock.now
        while flood.closedByPeer().count < floodSize - maxConnections && clock.now - drainStarted < .seconds(15) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let drainTime = clock.now - drainStarted

        // Probes while the flood's connections are held open.
        var latencies: [Double] = []
        for _ in 0..<probes {
            let result = try await probe(url)
            #expect(result.status == "200", "/health/ready during the flood: \(result)")
            #expect(result.seconds < 1.0, "answered within 1 s: \(result)")
            latencies.append(result.seconds)
            peak = max(peak, openDescriptorCount(pid: pid) ?? 0)
        }

        // A command goes through the broker, the platform and back as usual.
        let commandStarted = clock.now
        let rr = try await runProcess(
            "mosquitto_rr",
            [
                "-h", "127.0.0.1", "-p", "\(broker)", "-V", "5", "-q", "1", "-t", "ota/cancel/request",
                "-e", "ota/cancel/reply/ops-flood", "-D", "publish", "correlation-data", "ops-flood-1",
                "-W", "20", "-F", "%p", "-m", EndToEndTests.command(["dev-000001"]),
            ],
            timeout: .seconds(30)
        )
        let commandTime = clock.now - commandStarted
        #expect(rr.exitCode == 0, "the command was answered: \(rr)")
        if rr.exitCode == 0 {
            let reply = try JSONParser.parse(rr.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(reply["status"]?.stringValue == "succeeded", "\(rr.stdout)")
            #expect(reply["attempts"]?.numberValue?.int64Value == 1, "no platform attempt failed: \(rr.stdout)")
        }

        peak = max(peak, openDescriptorCount(pid: pid) ?? 0)
        let closedByServer = flood.closedByPeer().count
        let scrape = try await runProcess(
            "curl",
            ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"],
            timeout: .seconds(10)
        )
        func sample(_ series: String) -> Double? {
            scrape.stdout.split(separator: "\n").first { $0.hasPrefix(series + " ") }
                .flatMap { Double($0.dropFirst(series.count + 1)) }
        }
        let held = sample("ota_cancel_ops_connections")
        let evicted = sample(#"ota_cancel_ops_connections_closed_total{reason="evicted"}"#)
        #expect(process.exitCode == nil, "the worker is still running:\n\(process.log.suffix(3000))")
        // Held connections never exceed the limit; descriptors briefly add the connections being accepted and
        // being closed, and stay far from the file limit.
        #expect(held.map { $0 <= Double(maxConnections) } == true, "held connections: \(String(describing: held))")
        #expect(
            evicted.map { $0 >= Double(floodSize - maxConnections) } == true,
            "evicted: \(String(describing: evicted))"
        )
        #expect(peak < fileLimit / 4, "the worker's descriptors stay well below its limit: peak \(peak)")
        #expect(closedByServer >= floodSize - maxConnections, "the server closed the connections it does not hold")
        let warnings = process.log.components(separatedBy: "operations connection limit reached").count - 1
        print(
            "ops flood: \(flood.descriptors.count)/\(floodSize) idle connections opened in \(floodTime), taken in "
                + "\(drainTime) later; \(closedByServer) closed by the worker (\(evicted.map { "\(Int($0))" } ?? "?") "
                + "evicted, \(held.map { "\(Int($0))" } ?? "?") held); /health/ready latencies "
                + latencies.map { String(format: "%.3f s", $0) }.joined(separator: ", ")
                + "; command answered in \(commandTime); worker descriptors: baseline \(baseline), peak \(peak) "
                + "(file limit \(fileLimit)); limit warnings logged: \(warnings)"
        )
    }

    /// The operations port the worker logged (`--ops-port 0`).
    private static func opsPort(_ process: BackgroundProcess) async throws -> Int {
        let giveUp = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < giveUp {
            if let range = process.log.range(
                of: #"ota\.ops_url=http://127\.0\.0\.1:[0-9]+"#,
                options: .regularExpression
            ),
                let port = Int(process.log[range].split(separator: ":").last ?? "")
            {
                return port
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the worker did not log its operations port:\n\(process.log.suffix(3000))")
        throw CancellationError()
    }

    /// One `/health/ready` probe with curl, given at most 1 s.
    private static func probe(_ url: String) async throws -> (status: String, seconds: Double, output: String) {
        let result = try await runProcess(
            "curl",
            ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "1", url],
            timeout: .seconds(10)
        )
        let fields = result.stdout.split(separator: " ")
        let status = fields.first.map(String.init) ?? ""
        let seconds = fields.count > 1 ? Double(fields[1]) ?? .infinity : .infinity
        return (result.exitCode == 0 ? status : "curl exit \(result.exitCode)", seconds, result.description)
    }

    /// SIGTERM, then SIGKILL if it has not ended 15 s later (a hang guard); returns the exit code.
    @discardableResult
    private static func stop(_ process: BackgroundProcess) async -> Int32 {
        process.signal(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: .seconds(15))
            process.signal(SIGKILL)
        }
        let code = await process.waitForExit()
        killer.cancel()
        return code
    }
}
