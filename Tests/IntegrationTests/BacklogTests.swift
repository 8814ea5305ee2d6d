// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// More commands than the dispatcher holds in memory: the rest wait in the journal and are read back, while call
/// tasks finish others concurrently. Nothing may be taken in twice (a read that saw a command just before its
/// reply was stored) or left behind.
@Suite("Backlog beyond --max-pending-commands")
struct BacklogTests {
    @Test("1,500 commands, 50 served at a time: every one answered once, every device sent once")
    func backlog() async throws {
        let total = 1_500
        try await withWorkerStack(
            simulator: SimulatorConfiguration(generateDevices: total, qps: 0),
            arguments: TestArguments(platformQps: 0, maxInFlight: 8, maxPendingCommands: 50),
            // mosquitto drops what it queues for a client beyond 1,000 messages by default; the flood is larger.
            brokerConfig: ["max_queued_messages 0"]
        ) { stack in
            let collector = try await Collector.subscribed(to: ["ota/cancel/reply/backlog"], port: stack.broker.port)
            try await publishCommands(
                1...total,
                through: collector.client,
                replyTopic: "ota/cancel/reply/backlog",
                prefix: "b-"
            )
            let replies = try await collector.waitFor(total, within: 120)
            // A doubled reply would arrive now.
            try await Task.sleep(for: .milliseconds(300))
            #expect(collector.messages.count == total, "one reply per command")
            #expect(collector.correlations == Set((1...total).map { "b-\($0)" }))
            #expect(replies.allSatisfy { (try? JSONParser.parse($0.payload))?["status"]?.stringValue == "succeeded" })
            let stats = stack.simulator.state.stats()
            #expect(stats.deviceNamesRequested == total, "each device sent once: \(stats.deviceNamesRequested)")
            #expect(stats.cancelCalls < total, "coalesced: \(stats.cancelCalls) calls")
            print("backlog test: \(total) commands, 50 pending at a time, \(stats.cancelCalls) platform calls")
            await collector.client.disconnect()
        }
    }
}
