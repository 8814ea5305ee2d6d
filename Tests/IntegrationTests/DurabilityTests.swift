// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// Nothing lost, nothing done twice (issue 3): the journal, replay, deduplication, deadlines, restarts.
@Suite("Durability", .timeLimit(.minutes(5)))
struct DurabilityTests {
    private static var quietLogger: Logger { quietTestLogger("durability-test") }

    private static func temporaryDirectory(_ name: String) throws -> String { try makeTemporaryDirectory(name) }

    @Test("the same command five times: one platform call, five replies, the last four marked duplicate")
    func duplicates() async throws {
        try await withWorkerStack { stack in
            let collector = try await Collector.subscribed(to: ["ota/cancel/reply/dup"], port: stack.broker.port)
            let payload = EndToEndTests.command(["dev-000001", "dev-000002"], extra: #","reason":"dedupe test""#)
            for _ in 0..<5 {
                let result = try await runProcess(
                    "mosquitto_pub",
                    [
                        "-h", "127.0.0.1", "-p", "\(stack.broker.port)", "-V", "5", "-q", "1", "-t",
                        "ota/cancel/request",
                        "-D", "publish", "response-topic", "ota/cancel/reply/dup", "-D", "publish", "correlation-data",
                        "same-1",
                        "-m", payload,
                    ],
                    timeout: .seconds(20)
                )
                #expect(result.exitCode == 0, "\(result)")
            }
            let replies = try await collector.waitFor(5)
            #expect(replies.count == 5)
            #expect(stack.cancelCalls() == 1)
            let flags = replies.map { (try? JSONParser.parse($0.payload))?["duplicate"]?.boolValue }
            #expect(flags.filter { $0 == nil }.count == 1, "exactly one original reply: \(flags)")
            #expect(flags.filter { $0 == true }.count == 4, "four marked duplicates: \(flags)")
            let results = Set(replies.compactMap { withoutDuplicateMarker($0.payload) })
            #expect(results.count == 1, "every reply carries the same result")
            #expect(results.first?["status"]?.stringValue == "succeeded")
            #expect(replies.allSatisfy { $0.properties.correlationData == Array("same-1".utf8) })

            // The same correlation id with another command is refused, and nothing is called.
            let conflict = try await stack.request(
                EndToEndTests.command(["dev-000003"]),
                responseTopic: "ota/cancel/reply/dup",
                correlationData: "same-1"
            )
            let refused = try stack.reply(conflict[2])
            #expect(refused["status"]?.stringValue == "rejected")
            #expect(refused["errors"]?.arrayValue?.first?["code"]?.stringValue == "ConflictingDuplicate")
            #expect(stack.cancelCalls() == 1)
            #expect(stack.status(of: "dev-000003") == ["QUEUED"])
            await collector.client.disconnect()
        }
    }

    @Test("a platform outage: commands complete after recovery, those past their deadline are expired, none is lost")
    func platformOutage() async throws {
        try await withWorkerStack(simulator: SimulatorConfiguration(generateDevices: 100, qps: 0)) { stack in
            stack.simulator.state.injectFault(FaultRule(httpStatus: 503, errorCode: "ServiceUnavailable"))
            let collector = try await Collector.subscribed(to: ["ota/cancel/reply/outage"], port: stack.broker.port)
            // Long enough for a first attempt even on a loaded machine (else the group's code is DeadlineExceeded,
            // not the platform's), short enough to pass during the outage.
            let soon = RFC3339.string(from: Date().addingTimeInterval(5))
            try await publishCommands(
                1...5,
                through: collector.client,
                replyTopic: "ota/cancel/reply/outage",
                prefix: "short-",
                extra: #","deadline":"\#(soon)""#
            )
            try await publishCommands(
                6...10,
                through: collector.client,
                replyTopic: "ota/cancel/reply/outage",
                prefix: "long-"
            )
            // The short deadlines pass during the outage.
            let expired = try await collector.waitUntil(within: 60) { messages in
                messages.filter {
                    String(decoding: $0.properties.correlationData ?? [], as: UTF8.self).hasPrefix("short-")
                }.count == 5
            }
            #expect(expired.count == 5, "only the short-deadline commands are answered during the outage")
            for message in expired {
                let reply = try #require(try? JSONParser.parse(message.payload))
                #expect(reply["status"]?.stringValue == "expired")
                let group = reply["failedGroups"]?.arrayValue?.first
                #expect(group?["code"]?.stringValue == "ServiceUnavailable")
                #expect(group?["transient"]?.boolValue == true)
                #expect((group?["attempts"]?.numberValue?.int64Value ?? 0) >= 1)
            }
            #expect(stack.status(of: "dev-000006") == ["QUEUED"])
            // Recovery.
            stack.simulator.state.clearFaults()
            let all = try await collector.waitFor(10, within: 90)
            #expect(all.count == 10)
            #expect(collector.correlations.count == 10, "one reply per command")
            for message in all
            where String(decoding: message.properties.correlationData ?? [], as: UTF8.self).hasPrefix("long-") {
                let reply = try #require(try? JSONParser.parse(message.payload))
                #expect(reply["status"]?.stringValue == "succeeded")
                #expect((reply["attempts"]?.numberValue?.int64Value ?? 0) > 1, "it went through failed attempts first")
            }
            for device in 6...10 { #expect(stack.status(of: String(format: "dev-%06d", device)) == ["CANCELED"]) }
            for device in 1...5 { #expect(stack.status(of: String(format: "dev-%06d", device)) == ["QUEUED"]) }
            await collector.client.disconnect()
        }
    }

    @Test("broker restarts during a stream and while the worker is away: every command is answered once")
    func brokerRestarts() async throws {
        let state = try Self.temporaryDirectory("ota-broker-restart")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try await MosquittoBroker.start(persistence: true, extraConfig: ["max_queued_messages 0"])
        do {
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 400, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                let worker = try RestartableWorker(
                    arguments: TestArguments(
                        brokerPort: broker.port,
                        clientId: "restart-worker",
                        platformEndpoint: simulator.endpoint,
                        platformQps: 0,
                        stateDir: state,
                        schemaDir: WorkerStack.repositoryRoot + "/schemas"
                    )
                )
                try await worker.start()
                let requester = try await Collector.subscribed(
                    to: ["ota/cancel/reply/restart"],
                    port: broker.port,
                    persistentID: "restart-requester"
                )

                // A stream of commands, with a broker restart in the middle of it.
                try await publishCommands(
                    1...100,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/restart",
                    prefix: "r-"
                )
                async let secondHalf: Void = publishCommands(
                    101...200,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/restart",
                    prefix: "r-"
                )
                await broker.stop()
                try await Task.sleep(for: .milliseconds(500))
                try await broker.restart()
                try await secondHalf
                _ = try await requester.waitUntil { _ in requester.correlations.count == 200 }
                #expect(requester.correlations.count == 200)

                // The worker goes away; commands arrive meanwhile; the broker restarts; the worker comes back.
                await worker.stop()
                try await publishCommands(
                    201...300,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/restart",
                    prefix: "r-"
                )
                await broker.stop()
                try await broker.restart()
                try await worker.start()
                _ = try await requester.waitUntil { _ in requester.correlations.count == 300 }
                #expect(
                    requester.correlations.count == 300,
                    "every command is answered, those sent while the worker was away too"
                )
                #expect(requester.correlations == Set((1...300).map { "r-\($0)" }))
                let calls = simulator.state.stats().cancelCalls
                #expect(calls <= 300, "coalesced: at most one platform call per command: \(calls)")
                let repeated = (1...300).filter {
                    simulator.state.tasks(deviceName: String(format: "dev-%06d", $0))?.first?.cancelCalls != 1
                }
                #expect(
                    repeated.isEmpty,
                    "each device is sent once (redeliveries are deduplicated): \(repeated.prefix(10))"
                )
                for message in requester.messages {
                    #expect(withoutDuplicateMarker(message.payload)?["status"]?.stringValue == "succeeded")
                }
                await worker.stop()
                await requester.client.disconnect()
            }
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    @Test("crash test: 2,000 commands, the worker SIGKILLed three times while processing; every command answered")
    func crashes() async throws {
        let binary = try workerBinary()
        let state = try Self.temporaryDirectory("ota-crash")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let total = 2_000
        // Coalesced, 2,000 commands need only about ten calls: slow calls, few at a time, so that the kills land
        // while commands are still being processed.
        let maxInFlight = 2
        try await withMosquittoBroker(persistence: false, extraConfig: ["max_queued_messages 0"]) { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: total, qps: 0, latency: .milliseconds(250)),
                logger: Self.quietLogger
            ) { simulator in
                let requester = try await Collector.subscribed(to: ["ota/cancel/reply/crash"], port: broker.port)
                let arguments = [
                    "run", "--broker-port", "\(broker.port)", "--client-id", "crash-worker", "--platform-endpoint",
                    simulator.endpoint,
                    "--access-key-id", "testid", "--platform-qps", "0", "--max-in-flight", "\(maxInFlight)",
                    "--state-dir", state,
                    "--schema-dir", WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0", "--log-level", "notice",
                ]
                let logPath = state + "/worker.log"
                func launch() async throws -> BackgroundProcess {
                    try await launchWorkerProcess(binary, arguments, logPath: logPath)
                }
                var process = try await launch()
                try await publishCommands(
                    1...total,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/crash",
                    prefix: "k-"
                )
                // Kill it at three moments while it works through the backlog, and start it again each time.
                for threshold in [total / 5, total / 2, total * 4 / 5] {
                    _ = try await requester.waitUntil { _ in requester.correlations.count >= threshold }
                    let answered = requester.correlations.count
                    process.signal(SIGKILL)
                    #expect(await process.waitForExit() == 128 + SIGKILL)
                    #expect(answered < total, "the kill came while commands were still being processed")
                    process = try await launch()
                }
                _ = try await requester.waitUntil(within: 180) { _ in requester.correlations.count == total }
                process.signal(SIGTERM)
                let exitCode = await process.waitForExit()
                #expect(exitCode == 0, "a graceful stop exits 0, not \(exitCode):\n\(process.log.suffix(4000))")

                // Every command has a reply; every reply to one correlation id carries the same result.
                #expect(requester.correlations == Set((1...total).map { "k-\($0)" }))
                var byCorrelation = [String: [JSONValue]]()
                for message in requester.messages {
                    let key = String(decoding: message.properties.correlationData ?? [], as: UTF8.self)
                    byCorrelation[key, default: []].append(try #require(withoutDuplicateMarker(message.payload)))
                }
                let inconsistent = byCorrelation.filter { Set($0.value).count != 1 }
                #expect(
                    inconsistent.isEmpty,
                    "\(inconsistent.count) correlation ids got differing replies, e.g. \(inconsistent.first.map { "\($0.key): \(Set($0.value).map { $0.serialized() })" } ?? "")"
                )
                #expect(byCorrelation.values.allSatisfy { $0.first?["status"]?.stringValue == "succeeded" })
                let extraReplies = requester.messages.count - total
                let calls = simulator.state.stats().cancelCalls
                let journal = try SQLiteJournal(configuration: JournalConfiguration(path: state + "/journal.sqlite"))
                let summary = try await journal.summary()
                let devicesCalledTwice = (1...total).filter {
                    (simulator.state.tasks(deviceName: String(format: "dev-%06d", $0))?.first?.cancelCalls ?? 0) > 1
                }.count
                // Every answered call is stored with its answer; the calls beyond those were in flight at a kill.
                let lost = calls - summary.calls
                print(
                    "crash test: \(total) commands, 3 SIGKILLs, \(calls) platform calls, \(summary.calls) stored by the "
                        + "worker (\(lost) in flight at the kills), \(devicesCalledTwice) devices called more than once, "
                        + "\(extraReplies) extra (duplicate) replies"
                )
                #expect(lost >= 0, "every stored call was made")
                #expect(lost <= 3 * maxInFlight, "only calls in flight at the three kills may be made again")
                #expect(devicesCalledTwice <= lost * 200, "only devices of calls in flight at a kill")
                await requester.client.disconnect()
            }
        }
    }

    @Test("SIGTERM drains; a second signal ends the process at once; the next start finishes the work")
    func secondSignal() async throws {
        let binary = try workerBinary()
        let state = try Self.temporaryDirectory("ota-signals")
        defer { try? FileManager.default.removeItem(atPath: state) }
        try await withMosquittoBroker { broker in
            // Every platform answer takes 3 s, so the commands are in flight when the signals come.
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0, latency: .seconds(3)),
                logger: Self.quietLogger
            ) { simulator in
                let requester = try await Collector.subscribed(to: ["ota/cancel/reply/signals"], port: broker.port)
                let arguments = [
                    "run", "--broker-port", "\(broker.port)", "--client-id", "signal-worker", "--platform-endpoint",
                    simulator.endpoint,
                    "--access-key-id", "testid", "--platform-qps", "0", "--state-dir", state, "--drain-timeout", "60",
                    "--schema-dir", WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0", "--log-level", "info",
                ]
                func launch() async throws -> BackgroundProcess {
                    try await launchWorkerProcess(binary, arguments, logPath: state + "/worker.log")
                }
                let process = try await launch()
                try await publishCommands(
                    1...5,
                    through: requester.client,
                    replyTopic: "ota/cancel/reply/signals",
                    prefix: "s-"
                )
                let clock = ContinuousClock()
                let giveUp = clock.now + .seconds(30)
                // Coalesced: the five commands go out in one to five calls, all at once (no quota).
                while simulator.state.stats().requests < 1 && clock.now < giveUp {
                    try await clock.sleep(for: .milliseconds(20))
                }
                try await clock.sleep(for: .milliseconds(200))
                process.signal(SIGTERM)
                try await clock.sleep(for: .milliseconds(300))
                #expect(process.exitCode == nil, "the first signal drains (the calls take 3 s, the drain allows 60 s)")
                let second = clock.now
                process.signal(SIGTERM)
                let code = await process.waitForExit()
                #expect(code == 130, "the second signal ends the process at once (exit 130), not \(code)")
                #expect(clock.now - second < .seconds(2), "at once: before the 3 s calls finish")
                #expect(requester.messages.isEmpty, "nothing was answered before the forced stop")

                // The next start runs the journaled commands again and answers them all.
                let again = try await launch()
                _ = try await requester.waitUntil(within: 60) { _ in requester.correlations.count == 5 }
                #expect(requester.correlations == Set((1...5).map { "s-\($0)" }))
                again.signal(SIGTERM)
                #expect(await again.waitForExit() == 0)
                await requester.client.disconnect()
            }
        }
    }

    @Test(
        "readiness follows reality: not ready without a broker, ready once connected and subscribed, not ready when stopping"
    )
    func readiness() async throws {
        let state = try Self.temporaryDirectory("ota-ready")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try await MosquittoBroker.start()
        await broker.stop()
        do {
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                let worker = try RestartableWorker(
                    arguments: TestArguments(
                        brokerPort: broker.port,
                        clientId: "ready-worker",
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
                func ready() async throws -> Int {
                    try await runProcess(
                        "curl",
                        ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/health/ready"]
                    ).stdout == "200" ? 200 : 503
                }
                #expect(try await runProcess("curl", ["-s", "http://127.0.0.1:\(port)/health/live"]).stdout == "ok\n")
                try await clock.sleep(for: .milliseconds(500))
                #expect(try await ready() == 503, "no broker: not ready")
                try await broker.restart()
                giveUp = clock.now + .seconds(60)
                while try await ready() != 200 && clock.now < giveUp { try await clock.sleep(for: .milliseconds(100)) }
                #expect(try await ready() == 200, "connected and subscribed: ready")
                #expect(worker.worker?.isReady == true)
                await worker.stop()
            }
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    @Test("when the broker refuses the worker for good: it keeps retrying, or exits non-zero when told to")
    func connectionSupervision() async throws {
        let state = try Self.temporaryDirectory("ota-supervision")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let passwords = state + "/passwords"
        let created = try await runProcess("mosquitto_passwd", ["-c", "-b", passwords, "someone", "else"])
        try #require(created.exitCode == 0, "\(created)")
        try await withMosquittoBroker(extraConfig: ["allow_anonymous false", "password_file \(passwords)"]) { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                var arguments = TestArguments(
                    brokerPort: broker.port,
                    clientId: "refused-worker",
                    platformEndpoint: simulator.endpoint,
                    platformQps: 0,
                    stateDir: state + "/a",
                    schemaDir: WorkerStack.repositoryRoot + "/schemas"
                )
                // Told to exit: run() ends with the refusal.
                arguments.exitOnConnectionFailure = true
                let strict = try RestartableWorker(arguments: arguments)
                try await strict.start(waitUntilReady: false)
                let ended = await strict.ended(within: .seconds(60))
                let outcome = try #require(ended, "a worker told to exit on connection failure must stop by itself")
                // A WorkerError (the run exits 69) saying which broker refused and what to check.
                #expect {
                    try outcome.get()
                } throws: { error in
                    let message = (error as? WorkerError)?.message ?? ""
                    return error as? WorkerError == WorkerError.mqtt("")
                        && message.contains("the MQTT broker at 127.0.0.1:\(broker.port) refused the connection")
                }
                // Not told to: it keeps going (and is not ready) until stopped.
                arguments.exitOnConnectionFailure = false
                arguments.stateDir = state + "/b"
                arguments.clientId = "patient-worker"
                let patient = try RestartableWorker(arguments: arguments)
                try await patient.start(waitUntilReady: false)
                try await Task.sleep(for: .seconds(3))
                #expect(patient.worker?.isReady == false)
                let stopped = await patient.stop()
                #expect((try? stopped.get()) != nil, "a patient worker stops cleanly")
            }
        }
    }
}
