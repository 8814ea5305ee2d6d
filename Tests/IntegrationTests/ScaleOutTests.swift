// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// Several workers sharing the commands through an MQTT shared subscription (DESIGN §5), on a real mosquitto.
@Suite("Scale-out")
struct ScaleOutTests {
    static let sharedTopic = "$share/cancel-workers/ota/cancel/request"

    @Test(
        "two workers on a shared subscription split the commands; one restarting loses nothing and doubles nothing"
    )
    func sharedSubscription() async throws {
        let states = (0..<2).map { _ in
            FileManager.default.temporaryDirectory.appendingPathComponent("ota-share-\(UUID().uuidString)").path
        }
        defer { for state in states { try? FileManager.default.removeItem(atPath: state) } }
        var logger = Logger(label: "scale-out-test")
        logger.logLevel = .warning
        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 400, qps: 0),
                logger: logger
            ) { simulator in
                let workers = try states.enumerated().map { index, state in
                    try RestartableWorker(
                        arguments: TestArguments(
                            brokerPort: broker.port,
                            clientId: "share-worker-\(index)",
                            commandTopic: Self.sharedTopic,
                            platformEndpoint: simulator.endpoint,
                            platformQps: 0,
                            stateDir: state,
                            schemaDir: WorkerStack.repositoryRoot + "/schemas"
                        )
                    )
                }
                for worker in workers { try await worker.start() }
                let requester = try await Collector.subscribed(to: ["ota/cancel/reply/share"], port: broker.port)

                // 1. Both members online: the broker hands each command to one of them.
                try await publishCommands(
                    1...200,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/share",
                    prefix: "s-"
                )
                _ = try await requester.waitFor(200, within: 90)
                // A worker counts a command once its reply is out, so the count may trail the last replies a little.
                var executed = [Int]()
                let countGiveUp = ContinuousClock.now + .seconds(20)
                repeat {
                    executed = workers.map { $0.worker?.counters.executed ?? 0 }
                    if executed.reduce(0, +) >= 200 { break }
                    try await Task.sleep(for: .milliseconds(20))
                } while ContinuousClock.now < countGiveUp
                #expect(executed.reduce(0, +) == 200, "every command executed once, by one worker: \(executed)")
                #expect(executed.allSatisfy { $0 > 0 }, "both workers took a share: \(executed)")

                // 2. A rolling restart: the first worker stops gracefully (its persistent session stays), commands
                //    keep coming, and it comes back. mosquitto keeps handing the absent member its turn
                //    (reference §4), so its share waits in its session; nothing may be lost or doubled.
                await workers[0].stop()
                try await publishCommands(
                    201...300,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/share",
                    prefix: "s-"
                )
                // Let the remaining worker answer what it was given (until the count stops moving).
                var seen = -1
                let giveUp = ContinuousClock.now + .seconds(30)
                while requester.messages.count != seen && ContinuousClock.now < giveUp {
                    seen = requester.messages.count
                    try await Task.sleep(for: .seconds(1))
                }
                let answeredWhileAway = seen - 200
                try await workers[0].start()
                let replies = try await requester.waitFor(300, within: 90)
                print(
                    "shared subscription: first round split \(executed); while one worker was away the other "
                        + "answered \(answeredWhileAway) of 100, the rest waited in the absent worker's session"
                )

                // A short extra wait: a doubled reply would arrive now.
                try await Task.sleep(for: .milliseconds(500))
                #expect(requester.messages.count == 300, "one reply per command")
                #expect(requester.correlations == Set((1...300).map { "s-\($0)" }))
                #expect(simulator.state.stats().cancelCalls <= 300, "coalesced: at most one platform call per command")
                #expect(simulator.state.stats().deviceNamesRequested == 300, "each command's device sent once")
                #expect(
                    replies.allSatisfy {
                        (try? JSONParser.parse($0.payload))?["status"]?.stringValue == "succeeded"
                    }
                )
                for worker in workers { await worker.stop() }
                await requester.client.disconnect()
            }
        }
    }
}
