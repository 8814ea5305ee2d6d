// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformAPI
import PlatformSimulator
import TestSupport
import Testing
import Worker
import WorkerApp

/// A slow platform costs latency, not throughput (issue 8): the worker's platform connections are sized to the
/// commands it runs at once, so calls overlap instead of queueing for one of a few connections.
@Suite("Platform connections", .timeLimit(.minutes(3)))
struct PlatformConnectionTests {
    private struct Arguments: WorkerArguments {
        var maxInFlight: Int?
        var platformMaxConnections: Int?
    }

    private let environment = [
        "OTA_CANCEL_PLATFORM_ENDPOINT": "http://127.0.0.1:9",
        "OTA_CANCEL_ACCESS_KEY_ID": "id",
        "OTA_CANCEL_ACCESS_KEY_SECRET": "s3cr3t",
        "OTA_CANCEL_SCHEMA_DIR": WorkerStack.repositoryRoot + "/schemas",
    ]

    @Test("platform-max-connections defaults to the resolved max-in-flight; a flag or variable of its own wins")
    func maxConnectionsSetting() throws {
        let defaults = try WorkerConfiguration.resolve(Arguments(), environment: environment)
        #expect(defaults.worker.maxInFlight == 64 && defaults.platform.connectionPool.maxConnections == 64)
        #expect(defaults.summary.contains("platform-max-connections"))
        let wide = try WorkerConfiguration.resolve(Arguments(maxInFlight: 300), environment: environment)
        #expect(wide.platform.connectionPool.maxConnections == 300)
        var fromVariable = environment
        fromVariable["OTA_CANCEL_MAX_IN_FLIGHT"] = "200"
        let inherited = try WorkerConfiguration.resolve(Arguments(), environment: fromVariable)
        #expect(inherited.platform.connectionPool.maxConnections == 200)
        fromVariable["OTA_CANCEL_PLATFORM_MAX_CONNECTIONS"] = "16"
        let own = try WorkerConfiguration.resolve(Arguments(), environment: fromVariable)
        #expect(own.platform.connectionPool.maxConnections == 16 && own.worker.maxInFlight == 200)
        let flag = try WorkerConfiguration.resolve(Arguments(platformMaxConnections: 8), environment: fromVariable)
        #expect(flag.platform.connectionPool.maxConnections == 8)
    }

    @Test(
        "platform-max-connections outside 1...100000 is refused with the setting's name",
        arguments: [0, -1, 100_001]
    )
    func maxConnectionsRange(value: Int) {
        #expect {
            _ = try WorkerConfiguration.resolve(Arguments(platformMaxConnections: value), environment: environment)
        } throws: { error in
            (error as? WorkerError)?.message.contains("platform-max-connections") == true
        }
    }

    @Test("with 2 s platform latency, 64 commands in flight finish in under 5 s (real worker process)")
    func slowPlatformKeepsThroughput() async throws {
        let binary = try workerBinary()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("ota-latency-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let total = 64
        var logger = Logger(label: "latency-test")
        logger.logLevel = .warning
        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: total, qps: 0),
                logger: logger
            ) { simulator in
                simulator.state.injectFault(FaultRule(latencyMilliseconds: 2_000))
                let requester = try await Collector.subscribed(to: ["ota/cancel/reply/latency"], port: broker.port)
                let process = try await launchWorkerProcess(
                    binary,
                    [
                        "run", "--broker-port", "\(broker.port)", "--client-id", "latency-worker",
                        "--platform-endpoint", simulator.endpoint, "--access-key-id", "testid",
                        "--platform-qps", "0", "--max-in-flight", "\(total)", "--state-dir", state,
                        "--schema-dir", WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0",
                        "--log-level", "notice",
                    ],
                    logPath: state + "/worker.log"
                )

                let started = ContinuousClock.now
                try await publishCommands(
                    1...total,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/latency",
                    prefix: "l-"
                )
                // Hang guard only; the bound that matters is checked below.
                let replies = try await requester.waitUntil(within: 60) { $0.count >= total }
                let elapsed = started.duration(to: .now)
                print(
                    "platform latency test: \(total) commands, 2 s platform latency, --max-in-flight \(total): "
                        + "64th reply after \(elapsed)"
                )

                #expect(replies.count == total)
                #expect(requester.correlations == Set((1...total).map { "l-\($0)" }))
                let statuses = replies.map { (try? JSONParser.parse($0.payload))?["status"]?.stringValue ?? "?" }
                #expect(statuses.allSatisfy { $0 == "succeeded" }, "statuses: \(statuses)")
                // Coalesced into a few calls, each device sent once.
                #expect(simulator.state.stats().cancelCalls <= total)
                #expect(simulator.state.stats().deviceNamesRequested == total)
                // Eight connections would take eight rounds of 2 s (16 s); sized to the work it is about one.
                #expect(elapsed < .seconds(5), "64 commands took \(elapsed)")

                process.signal(SIGTERM)
                let exitCode = await process.waitForExit()
                #expect(exitCode == 0, "a graceful stop exits 0, not \(exitCode):\n\(process.log.suffix(4000))")
                await requester.client.disconnect()
            }
        }
    }
}
