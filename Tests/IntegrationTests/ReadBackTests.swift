// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing

/// The read-back on real parts: mosquitto, the worker, the simulator's `ListOTATaskByJob` and
/// `ListOTAUnfinishedTaskByDevice` over HTTP. The simulator's tasks are put into the states of a rollout that
/// went partly wrong; the reply's `devices` groups must name exactly those devices.
@Suite("Read-back after the cancel", .timeLimit(.minutes(5)))
struct ReadBackTests {
    static let product = "pkRollback"
    static let firmware = "fwBad"
    static let job = "job-rollout-7"

    static func name(_ number: Int) -> String { String(format: "rb-%04d", number) }

    /// What the simulator holds before the command, and so what the read-back must find after it.
    struct Rollout {
        var succeeded: [String] = []
        var failed: [String] = []
        var inProgress: [String] = []
        var withoutTask: [String] = []
        var queued: [String] = []
        var all: [String] = []
    }

    /// 450 devices of one job: 20 SUCCEEDED, 10 FAILED, 10 IN_PROGRESS, 5 without any task, the rest QUEUED,
    /// spread over the three cancel calls of 200.
    static func rollout() -> (SimulatorFixture, Rollout) {
        var rollout = Rollout()
        var fixture = SimulatorFixture(
            products: [.init(productKey: product)],
            firmwares: [.init(firmwareId: firmware, productKey: product)],
            jobs: [.init(jobId: job, firmwareId: firmware)],
            devices: [],
            tasks: []
        )
        for number in 1...450 {
            let device = name(number)
            rollout.all.append(device)
            fixture.devices.append(.init(productKey: product, deviceName: device))
            let status: String?
            switch number {
            case 1...20: status = "SUCCEEDED"
            case 201...210: status = "FAILED"
            case 401...410: status = "IN_PROGRESS"
            case 441...445: status = nil
            default: status = "QUEUED"
            }
            switch status {
            case "SUCCEEDED": rollout.succeeded.append(device)
            case "FAILED": rollout.failed.append(device)
            case "IN_PROGRESS": rollout.inProgress.append(device)
            case nil: rollout.withoutTask.append(device)
            default: rollout.queued.append(device)
            }
            if let status { fixture.tasks.append(.init(deviceName: device, jobId: job, status: status)) }
        }
        return (fixture, rollout)
    }

    static func command(_ devices: [String], jobId: String? = job, extra: String = "") -> String {
        let names = devices.map { "\"\($0)\"" }.joined(separator: ",")
        let job = jobId.map { #","jobId":"\#($0)""# } ?? ""
        return #"{"productKey":"\#(product)","firmwareId":"\#(firmware)","deviceNames":[\#(names)]\#(job)\#(extra)}"#
    }

    /// Sends `payload` with `mosquitto_rr` and returns the reply, checked against the result schema.
    static func send(
        _ payload: String,
        _ correlation: String,
        on stack: WorkerStack,
        timeout: Int
    ) async throws -> JSONValue {
        let fields = try await stack.request(
            payload,
            responseTopic: "ota/cancel/reply/rb",
            correlationData: correlation,
            timeout: timeout
        )
        return try stack.reply(fields[2])
    }

    static func strings(_ value: JSONValue?) -> [String] { value?.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// The rollout on a Tuya-style simulator (no quota) and a worker with the Tuya profile and `arguments`.
    static func withRollout(
        _ arguments: TestArguments = TestArguments(),
        cancelWithoutTask: SimulatorConfiguration.CancelWithoutTask = .succeed,
        _ body: (WorkerStack, Rollout) async throws -> Void
    ) async throws {
        let (fixture, rollout) = Self.rollout()
        var simulator = SimulatorConfiguration(fixture: fixture, qps: 0, responseStyle: .tuya)
        simulator.cancelWithoutTask = cancelWithoutTask
        var arguments = arguments
        arguments.platformProfile = "tuya"
        arguments.platformQps = 0
        try await withWorkerStack(simulator: simulator, arguments: arguments) { try await body($0, rollout) }
    }

    /// The groups a Tuya platform leaves: IN_PROGRESS cannot be cancelled there.
    static func expectTuyaGroups(
        _ devices: JSONValue?,
        _ rollout: Rollout,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(strings(devices?["canceled"]) == rollout.queued, sourceLocation: sourceLocation)
        #expect(strings(devices?["alreadyUpgraded"]) == rollout.succeeded, sourceLocation: sourceLocation)
        #expect(strings(devices?["failed"]) == rollout.failed, sourceLocation: sourceLocation)
        #expect(strings(devices?["stillActive"]) == rollout.inProgress, sourceLocation: sourceLocation)
        #expect(strings(devices?["noTask"]) == rollout.withoutTask, sourceLocation: sourceLocation)
        #expect(strings(devices?["unverified"]) == [], sourceLocation: sourceLocation)
    }

    @Test("with a jobId: ListOTATaskByJob groups the 450 devices exactly (Tuya: IN_PROGRESS still active)")
    func byJob() async throws {
        try await Self.withRollout { stack, rollout in
            let reply = try await Self.send(Self.command(rollout.all), "rb-job", on: stack, timeout: 60)
            #expect(reply["version"]?.numberValue?.int64Value == 2)
            #expect(reply["status"]?.stringValue == "succeeded")
            Self.expectTuyaGroups(reply["devices"], rollout)
            // Only what the read-back confirmed (or could not contradict) stays in cancelledDevices.
            #expect(Self.strings(reply["cancelledDevices"]) == rollout.queued)
            // 450 names, 100 a read: 5 reads, each with its request id.
            #expect(reply["devices"]?["reads"]?.numberValue?.int64Value == 5)
            #expect(Self.strings(reply["devices"]?["requestIds"]).count == 5)
            let stats = stack.simulator.state.stats()
            #expect(stats.cancelCalls == 3)
            #expect(stats.readCalls == 5)
            #expect(stack.status(of: Self.name(401)) == ["IN_PROGRESS"])
            #expect(stack.status(of: Self.name(21)) == ["CANCELED"])
        }
    }

    @Test("without a jobId, under --verify-max-devices: one ListOTAUnfinishedTaskByDevice per device, the same groups")
    func byDevice() async throws {
        try await Self.withRollout(TestArguments(verify: "on", verifyMaxDevices: 450)) { stack, rollout in
            let reply = try await Self.send(Self.command(rollout.all, jobId: nil), "rb-device", on: stack, timeout: 120)
            #expect(reply["status"]?.stringValue == "succeeded")
            Self.expectTuyaGroups(reply["devices"], rollout)
            // 450 per-device reads, then the 440 devices without an unfinished task looked up in the job the
            // still-active ones named: 5 reads of 100.
            #expect(reply["devices"]?["reads"]?.numberValue?.int64Value == 455)
            #expect(stack.simulator.state.stats().readCalls == 455)
        }
    }

    @Test("without a jobId, above --verify-max-devices: cancelled, every device unverified with the reason, no read")
    func aboveTheLimit() async throws {
        try await Self.withRollout(TestArguments(verify: "on", verifyMaxDevices: 449)) { stack, rollout in
            let reply = try await Self.send(Self.command(rollout.all, jobId: nil), "rb-over", on: stack, timeout: 60)
            #expect(reply["status"]?.stringValue == "succeeded")
            let devices = reply["devices"]
            #expect(Self.strings(devices?["unverified"]) == rollout.all)
            for group in ["canceled", "alreadyUpgraded", "failed", "stillActive", "noTask"] {
                #expect(Self.strings(devices?[group]) == [], "\(group)")
            }
            let reasons = devices?["unverifiedReasons"]?.arrayValue ?? []
            #expect(reasons.count == 1)
            #expect(reasons.first?["code"]?.stringValue == "TooManyDevicesToVerify")
            #expect(reasons.first?["deviceCount"]?.numberValue?.int64Value == 450)
            #expect(reasons.first?["message"]?.stringValue?.contains("--verify-max-devices (449)") == true)
            #expect(Self.strings(reply["cancelledDevices"]) == rollout.all)
            #expect(stack.simulator.state.stats().readCalls == 0)
        }
    }

    @Test("a read-back that fails transiently: the command still succeeded, its devices unverified with the code")
    func readBackFault() async throws {
        try await Self.withRollout { stack, rollout in
            stack.simulator.state.injectFault(FaultRule(httpStatus: 503, action: "ListOTATaskByJob"))
            let devices = Array(rollout.all.prefix(30))
            let reply = try await Self.send(Self.command(devices), "rb-fault", on: stack, timeout: 90)
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["failedGroups"] == nil)
            #expect(Self.strings(reply["devices"]?["unverified"]) == devices)
            let reasons = reply["devices"]?["unverifiedReasons"]?.arrayValue ?? []
            #expect(reasons.count == 1)
            #expect(reasons.first?["code"]?.stringValue == "ServiceUnavailable")
            #expect(reasons.first?["message"]?.stringValue?.hasPrefix("the read-back failed") == true)
            // The cancel went through: what the read could not confirm is kept as the call's answer.
            #expect(Self.strings(reply["cancelledDevices"]) == devices)
            #expect(stack.status(of: Self.name(25)) == ["CANCELED"])
        }
    }

    @Test(
        "the simulator's other choice: a cancel naming a device without a cancellable task fails; each such device fails alone, the rest is cancelled, and the read-back tells why"
    )
    func cancelWithoutTaskFails() async throws {
        try await Self.withRollout(cancelWithoutTask: .fail) { stack, _ in
            // One command of 12: two SUCCEEDED, two FAILED, two IN_PROGRESS (Tuya cannot cancel them), two
            // without a task, four QUEUED. The platform refuses a call naming any of the first eight.
            let stuck = [1, 2, 201, 202, 401, 402, 441, 442].map(Self.name)
            let queued = [50, 51, 52, 53].map(Self.name)
            let devices =
                [stuck[0], stuck[1], queued[0], stuck[2], stuck[3], queued[1]]
                + [stuck[4], stuck[5], queued[2], stuck[6], stuck[7], queued[3]]
            let reply = try await Self.send(Self.command(devices), "rb-fail", on: stack, timeout: 60)
            #expect(reply["status"]?.stringValue == "partial")
            let groups = reply["failedGroups"]?.arrayValue ?? []
            #expect(groups.map { Self.strings($0["deviceNames"]) } == stuck.map { [$0] })
            #expect(groups.allSatisfy { $0["code"]?.stringValue == "iot.ota.TaskNotCancellable" })
            #expect(Self.strings(reply["cancelledDevices"]) == queued)
            // Each refused device was taken out in turn: 8 refused calls, then the one that went through.
            #expect(reply["calls"]?.numberValue?.int64Value == 9)
            let found = reply["devices"]
            #expect(Self.strings(found?["canceled"]) == queued)
            #expect(Self.strings(found?["alreadyUpgraded"]) == [1, 2].map(Self.name))
            #expect(Self.strings(found?["failed"]) == [201, 202].map(Self.name))
            #expect(Self.strings(found?["stillActive"]) == [401, 402].map(Self.name))
            #expect(Self.strings(found?["noTask"]) == [441, 442].map(Self.name))
            #expect(stack.status(of: Self.name(52)) == ["CANCELED"])
        }
    }
}

/// A worker stopped while it reads back: the command stays unanswered, and the next start reads it back without
/// cancelling again.
@Suite("Read-back across a restart", .timeLimit(.minutes(5)))
struct ReadBackRestartTests {
    @Test("stopped while reading back: no reply, no guess; after the restart it is read back, not cancelled again")
    func stoppedWhileReading() async throws {
        let state = try makeTemporaryDirectory("ota-read-back-restart")
        defer { try? FileManager.default.removeItem(atPath: state) }
        try await withMosquittoBroker(persistence: false) { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: quietTestLogger("simulator")
            ) { simulator in
                let worker = try RestartableWorker(
                    arguments: TestArguments(
                        brokerPort: broker.port,
                        clientId: "read-back-restart",
                        platformEndpoint: simulator.endpoint,
                        platformQps: 0,
                        drainTimeout: 1,
                        stateDir: state,
                        schemaDir: WorkerStack.repositoryRoot + "/schemas"
                    )
                )
                try await worker.start()
                let requester = try await Collector.subscribed(
                    to: ["ota/cancel/reply/restart"],
                    port: broker.port,
                    persistentID: "read-back-requester"
                )
                // The read answers only after 20 s: the worker is stopped while it waits.
                simulator.state.injectFault(FaultRule(latencyMilliseconds: 20_000, action: "ListOTATaskByJob"))
                let command = EndToEndTests.command(["dev-000003", "dev-000004"], extra: #","jobId":"demoJob""#)
                try await requester.client.publish(
                    to: "ota/cancel/request",
                    payload: Array(command.utf8),
                    qos: .atLeastOnce,
                    properties: MQTTProperties(
                        responseTopic: "ota/cancel/reply/restart",
                        correlationData: Array("restart-1".utf8)
                    )
                )
                let clock = ContinuousClock()
                let giveUp = clock.now + .seconds(30)
                while simulator.state.tasks(deviceName: "dev-000004")?.first?.status != "CANCELED", clock.now < giveUp {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(simulator.state.tasks(deviceName: "dev-000004")?.first?.status == "CANCELED")
                try await Task.sleep(for: .milliseconds(300))
                await worker.stop()
                #expect(requester.correlations.isEmpty, "no reply while the read-back had not answered")

                simulator.state.clearFaults()
                try await worker.start()
                let replies = try await requester.waitFor(1, within: 60)
                let reply = try #require(replies.first.flatMap { try? JSONParser.parse($0.payload) })
                #expect(WorkerStack.resultValidator.validate(reply).isEmpty)
                #expect(reply["status"]?.stringValue == "succeeded")
                #expect(ReadBackTests.strings(reply["devices"]?["canceled"]) == ["dev-000003", "dev-000004"])
                #expect(reply["calls"]?.numberValue?.int64Value == 1)
                #expect(simulator.state.stats().cancelCalls == 1, "the cancel was not made again")
                await worker.stop()
                await requester.client.disconnect()
            }
        }
    }
}

/// A storm of one-device commands of one job under the platform's quota of 10 calls/s per action: the reads
/// coalesce like the cancels, and neither takes the other's quota. Runs last and alone (scripts/test): how many
/// calls a storm takes depends on how fast the worker takes it in, which other suites' load would slow.
@Suite("Read-back storm", .timeLimit(.minutes(5)))
struct ReadBackStormTests {
    @Test("2,000 one-device commands of one job at 10/s per action: at most 15 cancels and 30 reads, none throttled")
    func storm() async throws {
        let total = 2_000
        let product = ReadBackTests.product
        var fixture = SimulatorFixture(
            products: [.init(productKey: product)],
            firmwares: [.init(firmwareId: ReadBackTests.firmware, productKey: product)],
            jobs: [.init(jobId: ReadBackTests.job, firmwareId: ReadBackTests.firmware)],
            devices: [],
            tasks: []
        )
        let names = (1...total).map(ReadBackTests.name)
        for (index, device) in names.enumerated() {
            fixture.devices.append(.init(productKey: product, deviceName: device))
            // Every 50th device had upgraded already: the storm's replies must say so, one by one.
            let status = index % 50 == 0 ? "SUCCEEDED" : "QUEUED"
            fixture.tasks.append(.init(deviceName: device, jobId: ReadBackTests.job, status: status))
        }
        let ids = names.map { "storm-\($0)" }
        let clientId = "storm-worker-\(UUID().uuidString.prefix(8))"
        var book: ReplyBook?
        try await withWorkerStack(
            simulator: SimulatorConfiguration(fixture: fixture, qps: 10),
            // A 250 ms coalescing window (--coalesce-window): what the count measures is coalescing, not how
            // fast a debug build takes messages in. At the default 0 ms the first tokens go out at once with
            // the few names there are, so the count follows the intake's speed: 16 to 22 calls measured here
            // on a debug build (see the closing note of issue 11).
            arguments: TestArguments(clientId: clientId, platformQps: 10, coalesceWindow: 250),
            // mosquitto queues at most 1,000 messages per client by default and drops the rest.
            brokerConfig: ["max_queued_messages 0"],
            beforeTheWorker: { broker in
                // The storm is waiting when the worker connects: its session (subscribed here, under its client
                // id) holds all 2,000 commands, as when monitors fire while a worker restarts. Published live
                // instead, a debug build takes them in over about 1.5 s and the quota's first tokens go out
                // with few names each (21 calls measured; see the closing note of issue 11).
                try await Self.subscribeSession(clientId: clientId, port: broker.port)
                let replies = try await ReplyBook.subscribed(to: "ota/cancel/reply/storm", port: broker.port)
                for index in names.indices {
                    try await replies.publish(
                        ReadBackTests.command([names[index]]),
                        correlationId: ids[index],
                        to: "ota/cancel/request"
                    )
                }
                book = replies
            }
        ) { stack in
            let book = try #require(book)
            let missing = try await book.waitForReplies(ids, within: .seconds(120))
            #expect(missing.isEmpty, "\(missing.count) commands unanswered")
            var wrong = [String]()
            for (index, id) in ids.enumerated() {
                guard let payload = book.replies(id).first else { continue }
                let reply = try stack.reply(String(decoding: payload, as: UTF8.self))
                let group = index % 50 == 0 ? "alreadyUpgraded" : "canceled"
                if ReadBackTests.strings(reply["devices"]?[group]) != [names[index]]
                    || reply["status"]?.stringValue != "succeeded"
                {
                    wrong.append(id)
                }
            }
            #expect(wrong.isEmpty, "\(wrong.count) replies with the wrong group, e.g. \(wrong.prefix(3))")
            let stats = stack.simulator.state.stats()
            print(
                "read-back storm: \(total) commands, \(stats.cancelCalls) cancel calls, \(stats.readCalls) read calls, "
                    + "\(stats.throttled) throttled"
            )
            #expect(stats.cancelCalls <= 15)
            #expect(stats.readCalls <= 30)
            #expect(stats.throttled == 0)
        }
    }

    /// Makes the broker keep a session for `clientId`, subscribed to the command topic with QoS 1, so that what is
    /// published before that client connects waits for it.
    static func subscribeSession(clientId: String, port: Int) async throws {
        var configuration = MosquittoConfiguration(clientID: clientId)
        configuration.port = port
        configuration.sessionExpiryInterval = 3600
        var logger = Logger(label: "storm-session")
        logger.logLevel = .warning
        let client = try MosquittoClient(configuration: configuration, logger: logger) { _ in }
        _ = try await client.connect()
        try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "ota/cancel/request", qos: .atLeastOnce)])
        await client.disconnect()
    }
}
