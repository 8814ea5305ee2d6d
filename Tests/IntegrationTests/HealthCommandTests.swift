// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// `ota-cancel-worker health`, the built binary, against a real worker (a real broker, down and then up), the
/// simulator, a port nobody listens on and a server that never answers.
@Suite("health subcommand", .timeLimit(.minutes(5)))
struct HealthCommandTests {
    /// Runs `ota-cancel-worker health` with `arguments` and the variables `environment`.
    static func health(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
        try await runProcess(
            try workerBinary(),
            ["health"] + arguments,
            timeout: .seconds(30),
            environment: environment
        )
    }

    @Test("a worker without its broker: 1 (503, with the reason); once connected and subscribed: 0")
    func readiness() async throws {
        let state = try makeTemporaryDirectory("ota-health")
        defer { try? FileManager.default.removeItem(atPath: state) }
        // A broker started and stopped: its port is known, and nothing answers there until it restarts.
        let broker = try await MosquittoBroker.start()
        await broker.stop()
        do {
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: quietTestLogger("health-test")
            ) { simulator in
                let worker = try RestartableWorker(
                    arguments: TestArguments(
                        brokerPort: broker.port,
                        clientId: "health-worker",
                        platformEndpoint: simulator.endpoint,
                        platformQps: 0,
                        stateDir: state,
                        schemaDir: WorkerStack.repositoryRoot + "/schemas"
                    )
                )
                try await worker.start(waitUntilReady: false)
                let clock = ContinuousClock()
                var giveUp = clock.now + .seconds(30)
                while worker.opsPort == nil && clock.now < giveUp { try await clock.sleep(for: .milliseconds(20)) }
                let port = try #require(worker.opsPort)
                let url = "http://127.0.0.1:\(port)/health/ready"
                // As the image runs it: the worker's own variables, its wildcard host probed on loopback.
                let imageEnvironment = ["OTA_CANCEL_OPS_HOST": "0.0.0.0", "OTA_CANCEL_OPS_PORT": "\(port)"]

                let unready = try await Self.health(["--ops-port", "\(port)"])
                #expect(unready.exitCode == 1, "\(unready)")
                #expect(
                    unready.stdout
                        == "unhealthy: \(url) answered 503 Service Unavailable: "
                        + "not ready: connecting, subscribing or shutting down\n"
                )
                let unreadyInImage = try await Self.health([], environment: imageEnvironment)
                #expect(unreadyInImage.exitCode == 1, "\(unreadyInImage)")
                #expect(unreadyInImage.stdout.contains("answered 503"))

                try await broker.restart()
                giveUp = clock.now + .seconds(60)
                while worker.worker?.isReady != true && clock.now < giveUp {
                    try await clock.sleep(for: .milliseconds(50))
                }
                try #require(worker.worker?.isReady == true, "the worker did not connect to the restarted broker")
                let ready = try await Self.health(["--ops-port", "\(port)"])
                #expect(ready.exitCode == 0, "\(ready)")
                #expect(ready.stdout == "healthy: \(url) answered 200 OK\n")
                let readyInImage = try await Self.health([], environment: imageEnvironment)
                #expect(readyInImage.exitCode == 0, "\(readyInImage)")
                // The flag beats the variable, as in `run`.
                let refusingPort = try RefusingLoopbackPort()
                let flagFirst = try await Self.health(
                    ["--ops-port", "\(refusingPort.port)"],
                    environment: imageEnvironment
                )
                #expect(flagFirst.exitCode == 1, "\(flagFirst)")
                await worker.stop()
            }
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    @Test("nothing listening: 1, connection refused")
    func refused() async throws {
        let nobody = try RefusingLoopbackPort()
        let result = try await Self.health(["--ops-port", "\(nobody.port)"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout == "unhealthy: http://127.0.0.1:\(nobody.port)/health/ready: Connection refused\n")
    }

    @Test("a server that never answers: 1 after --timeout, not later")
    func timeout() async throws {
        let silent = try SilentLoopbackListener()
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await Self.health(["--ops-port", "\(silent.port)", "--timeout", "1"])
        let elapsed = clock.now - start
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout == "unhealthy: http://127.0.0.1:\(silent.port)/health/ready: no answer within 1 s\n")
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(10), "took \(elapsed)")
    }

    @Test("--url probes the simulator as docker-compose.yml does: 0 on its admin API, 1 on a path it does not have")
    func simulator() async throws {
        try await withPlatformSimulator(
            configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
            logger: quietTestLogger("health-test")
        ) { simulator in
            let stats = "http://127.0.0.1:\(simulator.port)/_sim/stats"
            let healthy = try await Self.health(["--url", stats])
            #expect(healthy.exitCode == 0, "\(healthy)")
            #expect(healthy.stdout == "healthy: \(stats) answered 200 OK\n")
            let missing = try await Self.health(["--url", "http://127.0.0.1:\(simulator.port)/_sim/nothing-here"])
            #expect(missing.exitCode == 1, "\(missing)")
            #expect(missing.stdout.contains("answered 404"), "\(missing)")
        }
    }

    @Test("unusable options exit 64 (usage), as for the other subcommands, and print no verdict")
    func usage() async throws {
        for arguments in [["--url", "https://127.0.0.1/"], ["--ops-port", "0"], ["--timeout", "0"]] {
            let result = try await Self.health(arguments)
            #expect(result.exitCode == 64, "\(arguments): \(result)")
            #expect(result.stdout.isEmpty)
        }
    }
}
