// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing

/// No leak (issue 8): a worker that has warmed up keeps its memory flat however many commands it answers. The
/// probe measured about 14 KB per command, a task group that kept every finished command's task.
@Suite("Memory", .timeLimit(.minutes(10)))
struct MemoryTests {
    /// Replies by Correlation Data, counted on the MQTT loop thread (the payloads are not kept: tens of
    /// thousands of them would only blur what the test process measures of itself).
    final class ReplyCounter: Sendable {
        private let state = LockedValue<(seen: Set<String>, duplicates: Int, statuses: [String: Int])>(([], 0, [:]))

        func record(_ message: MQTTMessage) {
            let key = String(decoding: message.properties.correlationData ?? [], as: UTF8.self)
            let text = String(decoding: message.payload.prefix(120), as: UTF8.self)
            let status = text.range(of: #""status":""#).map { String(text[$0.upperBound...].prefix { $0 != "\"" }) }
            state.withLock { state in
                if !state.seen.insert(key).inserted { state.duplicates += 1 }
                state.statuses[status ?? "?", default: 0] += 1
            }
        }

        func count(prefix: String) -> Int { state.withLock { $0.seen.count { $0.hasPrefix(prefix) } } }
        var duplicates: Int { state.withLock { $0.duplicates } }
        var statuses: [String: Int] { state.withLock { $0.statuses } }
    }

    /// The resident set of a process, from /proc (Linux), in bytes.
    static func residentBytes(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw TestSupportError("no VmRSS in /proc/\(pid)/status") }
        return kilobytes * 1024
    }

    @Test(
        "after 5,000 commands to warm up, 30,000 more one-device commands and then 10,000 dry runs each grow the worker's RSS by at most 20 MB"
    )
    func flatMemory() async throws {
        let binary = try workerBinary()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("ota-memory-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        var logger = Logger(label: "memory-test")
        logger.logLevel = .warning
        let warmUp = 5_000
        let measured = 30_000
        let dryRuns = 10_000
        try await withMosquittoBroker(extraConfig: ["log_type error", "max_queued_messages 0"]) { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: warmUp + measured, qps: 0),
                logger: logger
            ) { simulator in
                let counter = ReplyCounter()
                var configuration = MosquittoConfiguration(clientID: "memory-requester-\(UUID().uuidString.prefix(6))")
                configuration.port = broker.port
                configuration.cleanStart = true
                configuration.sessionExpiryInterval = 0
                configuration.receiveMaximum = 65_535
                configuration.sendMaximum = 1_000
                let requester = try MosquittoClient(configuration: configuration, logger: logger) { counter.record($0) }
                try await requester.connect()
                try await requester.subscribe(to: [MQTTSubscribeInfo(topicFilter: "ota/cancel/reply/memory")])
                let process = try await launchWorkerProcess(
                    binary,
                    [
                        "run", "--broker-port", "\(broker.port)", "--client-id", "memory-worker", "--platform-endpoint",
                        simulator.endpoint, "--access-key-id", "testid", "--platform-qps", "0", "--state-dir", state,
                        "--schema-dir", WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0", "--log-level",
                        "notice",
                    ],
                    logPath: state + "/worker.log"
                )

                /// Sends `range` (device `dev-<n>`, or a dry run) in rounds of 1,000 and waits for every reply.
                func run(_ range: ClosedRange<Int>, prefix: String, dryRun: Bool = false) async throws {
                    for start in stride(from: range.lowerBound, through: range.upperBound, by: 1_000) {
                        let chunk = start...min(start + 999, range.upperBound)
                        try await publishCommands(
                            chunk,
                            through: requester,
                            replyTopic: "ota/cancel/reply/memory",
                            prefix: prefix,
                            extra: dryRun ? #","dryRun":true"# : ""
                        )
                    }
                    let clock = ContinuousClock()
                    let giveUp = clock.now + .seconds(300)
                    while counter.count(prefix: prefix) < range.count && clock.now < giveUp && process.exitCode == nil {
                        try await clock.sleep(for: .milliseconds(50))
                    }
                    #expect(counter.count(prefix: prefix) == range.count, "\(prefix): \(process.log.suffix(2000))")
                    // Let the last acknowledgements be marked and freed before measuring.
                    try await clock.sleep(for: .seconds(2))
                }

                let started = ContinuousClock.now
                try await run(1...warmUp, prefix: "w-")
                let afterWarmUp = try Self.residentBytes(process.pid)
                try await run((warmUp + 1)...(warmUp + measured), prefix: "m-")
                let afterCommands = try Self.residentBytes(process.pid)
                try await run(1...dryRuns, prefix: "d-", dryRun: true)
                let afterDryRuns = try Self.residentBytes(process.pid)
                let commandGrowth = afterCommands - afterWarmUp
                let dryRunGrowth = afterDryRuns - afterCommands
                print(
                    "memory: RSS \(afterWarmUp / 1024) KiB after \(warmUp) commands, \(afterCommands / 1024) KiB after "
                        + "\(measured) more (\(commandGrowth / measured) bytes per command), \(afterDryRuns / 1024) KiB "
                        + "after \(dryRuns) dry runs (\(dryRunGrowth / dryRuns) bytes per dry run); "
                        + "\(ContinuousClock.now - started) in all; statuses \(counter.statuses)"
                )
                #expect(counter.duplicates == 0, "each command answered once")
                #expect(counter.statuses["succeeded"] == warmUp + measured + dryRuns, "\(counter.statuses)")
                #expect(commandGrowth <= 20 << 20, "30,000 commands grew RSS by \(commandGrowth / 1024) KiB")
                #expect(dryRunGrowth <= 20 << 20, "10,000 dry runs grew RSS by \(dryRunGrowth / 1024) KiB")
                process.signal(SIGTERM)
                #expect(await process.waitForExit() == 0)
                await requester.disconnect()
            }
        }
    }
}
