// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// Coalescing (issue 9): commands of one batch key share platform calls, and no command can tell. Both tests run
/// the real `ota-cancel-worker` process against a real mosquitto and the in-process simulator.
@Suite("Coalescing", .timeLimit(.minutes(10)))
struct CoalescingTests {
    private static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The property run's seed: `OTA_PROPERTY_SEED` (decimal, or hexadecimal with `0x`) replays another one; the
    /// default is fixed so that CI runs the same cases every time.
    static func seed() throws -> UInt64 {
        guard let text = environment["OTA_PROPERTY_SEED"] else { return 20_250_909 }
        let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let parsed else { throw TestSupportError("OTA_PROPERTY_SEED=\(text) is not a number") }
        return parsed
    }

    /// How many cases: `OTA_PROPERTY_CASES`, default 200; `OTA_PROPERTY_CASE=n` runs case n alone.
    static var caseIndices: [Int] {
        if let one = environment["OTA_PROPERTY_CASE"].flatMap({ Int($0) }) { return [one] }
        return Array(0..<(environment["OTA_PROPERTY_CASES"].flatMap { Int($0) } ?? 200))
    }

    /// Independent worker + simulator pairs the cases are spread over: `OTA_PROPERTY_LANES`, default 6. Each has
    /// its own account (its own simulator), so each runs at the full quota of 10 calls/s.
    static var laneCount: Int { max(1, environment["OTA_PROPERTY_LANES"].flatMap { Int($0) } ?? 6) }

    private static var quietLogger: Logger { quietTestLogger("coalescing-test") }

    // MARK: The case generator

    @Test("the property's cases: reproducible from the seed, 1-30 commands over 1-4 keys, overlapping names")
    func caseGenerator() {
        let cases = (0..<200).map { PropertyCase.random(seed: 7, index: $0) }
        let again = (0..<200).map { PropertyCase.random(seed: 7, index: $0) }
        #expect(cases.map(\.commands) == again.map(\.commands) && cases.map(\.faults) == again.map(\.faults))
        #expect(cases.map(\.description) == again.map(\.description), "the failure text is reproducible too")
        #expect(PropertyCase.random(seed: 8, index: 0).commands != cases[0].commands, "another seed, other cases")
        var sawBig = false
        var sawGhost = false
        var sawUnknownKey = false
        var sawFault = false
        var ruleKinds = Set<String>()
        var overlapping = 0
        for propertyCase in cases {
            #expect((1...30).contains(propertyCase.commands.count))
            let keys = Set(propertyCase.commands.map(\.key))
            #expect((1...4).contains(keys.count))
            var seen = [PropertyKey: Set<String>]()
            var overlaps = false
            for command in propertyCase.commands {
                let names = command.deviceNames
                #expect(Set(names).count == names.count, "names are unique within a command")
                #expect((1...5).contains(names.count) || (201...250).contains(names.count))
                sawBig = sawBig || names.count > 200
                sawGhost = sawGhost || names.contains { $0.hasPrefix("ghost-") }
                if !seen[command.key, default: []].isDisjoint(with: names) { overlaps = true }
                seen[command.key, default: []].formUnion(names)
            }
            if overlaps { overlapping += 1 }
            sawUnknownKey =
                sawUnknownKey
                || keys.contains {
                    $0.productKey == PropertyUniverse.unknownProduct || $0.firmwareId.hasSuffix("-fwX")
                        || $0.jobId?.hasSuffix("-jobX") == true || $0.iotInstanceId != nil
                }
            sawFault = sawFault || !propertyCase.faults.isEmpty
            for rule in propertyCase.faults {
                let target = rule.deviceName != nil ? "device" : rule.firmwareId != nil ? "key" : "any call"
                ruleKinds.insert("\(rule.errorCode ?? "-") \(rule.count == nil ? "always" : "counted") \(target)")
            }
        }
        #expect(sawBig && sawGhost && sawUnknownKey && sawFault, "every kind of case occurs")
        #expect(
            ruleKinds == [
                "ServiceUnavailable counted any call", "ServiceUnavailable counted device",
                "ServiceUnavailable counted key", "iot.system.IllegalRequest always device",
                "iot.system.IllegalRequest always key",
            ],
            "every kind of fault occurs: \(ruleKinds.sorted())"
        )
        #expect(cases.contains { !$0.callsBoundApplies } && cases.contains { $0.callsBoundApplies })
        #expect(overlapping > 100, "most cases name a device in several commands: \(overlapping) of 200")
    }

    // MARK: Alone versus together

    /// What one lane measured.
    struct LaneReport: Sendable {
        var cases = 0
        var commands = 0
        var callsAlone = 0
        var callsTogether = 0
        var throttled = 0
        var statuses: [String: Int] = [:]
        /// Cases with a permanent fault that names no device, where "no more calls" cannot hold.
        var casesWithoutBound = 0
        /// Of those, the ones where together took more calls than alone, and the first of them.
        var casesOverBound = 0
        var overBoundExample: String?
        /// The simulator's request count when the last reply had arrived: a call made after that, when every
        /// command was answered, would be counted for the next command instead.
        var requestsAtLastReply: Int?
    }

    @Test("property: with others, each command's outcome is what it is alone, and together costs no more calls")
    func aloneEqualsTogether() async throws {
        let binary = try workerBinary()
        let root = try makeTemporaryDirectory("ota-property")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let seed = try Self.seed()
        let cases = Self.caseIndices.map { PropertyCase.random(seed: seed, index: $0) }
        try #require(!cases.isEmpty, "OTA_PROPERTY_CASES must be at least 1")
        let lanes = min(Self.laneCount, cases.count)
        print(
            "property: seed \(seed), \(cases.count) cases on \(lanes) lanes; replay one with "
                + "OTA_PROPERTY_SEED=\(seed) OTA_PROPERTY_CASE=<n>"
        )
        let clock = ContinuousClock()
        let started = clock.now
        let reports = try await withMosquittoBroker { broker in
            try await withThrowingTaskGroup(of: LaneReport.self) { group in
                for lane in 0..<lanes {
                    let mine = cases.enumerated().filter { $0.offset % lanes == lane }.map(\.element)
                    group.addTask {
                        try await Self.runLane(lane, cases: mine, brokerPort: broker.port, binary: binary, root: root)
                    }
                }
                var reports: [LaneReport] = []
                for try await report in group { reports.append(report) }
                return reports
            }
        }
        var total = LaneReport()
        for report in reports {
            total.cases += report.cases
            total.commands += report.commands
            total.callsAlone += report.callsAlone
            total.callsTogether += report.callsTogether
            total.throttled += report.throttled
            total.statuses.merge(report.statuses, uniquingKeysWith: +)
            total.casesWithoutBound += report.casesWithoutBound
            total.casesOverBound += report.casesOverBound
            total.overBoundExample = total.overBoundExample ?? report.overBoundExample
        }
        print(
            "property: \(total.cases) cases, \(total.commands) commands in \(clock.now - started); platform calls "
                + "alone \(total.callsAlone), together \(total.callsTogether) (throttled answers not counted: "
                + "\(total.throttled)); outcomes alone \(total.statuses.sorted { $0.key < $1.key }); "
                + "\(total.casesWithoutBound) cases with a permanent fault naming no device (no calls bound), "
                + "\(total.casesOverBound) of them took more calls together"
                + (total.overBoundExample.map { ", e.g. \($0)" } ?? "")
        )
        #expect(total.cases == cases.count, "every case ran")
        // The comparison means something only if the outcomes are real platform outcomes of every kind.
        #expect(total.statuses["rejected", default: 0] == 0, "no command was rejected: \(total.statuses)")
        #expect(total.statuses["expired", default: 0] == 0, "no command ran out of time: \(total.statuses)")
        if cases.count >= 50 {
            for status in ["succeeded", "partial", "failed"] {
                #expect(total.statuses[status, default: 0] > 0, "some commands end \(status): \(total.statuses)")
            }
        }
    }

    /// One worker process and one simulator (its own account and quota) running `cases` one after the other.
    private static func runLane(
        _ lane: Int,
        cases: [PropertyCase],
        brokerPort: Int,
        binary: String,
        root: String
    ) async throws -> LaneReport {
        let state = root + "/lane-\(lane)"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        return try await withPlatformSimulator(
            configuration: SimulatorConfiguration(fixture: PropertyUniverse.fixture),
            logger: quietLogger
        ) { simulator in
            let commandTopic = "ota/cancel/property/\(lane)"
            let book = try await ReplyBook.subscribed(to: "ota/cancel/reply/property/\(lane)", port: brokerPort)
            // The default pacing (10 calls/s) and in-flight limit: the coalescing worker's normal conditions.
            let arguments = [
                "run", "--broker-port", "\(brokerPort)", "--client-id", "property-worker-\(lane)", "--command-topic",
                commandTopic, "--platform-endpoint", simulator.endpoint, "--access-key-id", "testid", "--state-dir",
                state, "--schema-dir", WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0", "--log-level",
                "notice",
            ]
            let process = try await launchWorkerProcess(binary, arguments, logPath: state + "/worker.log")
            var report = LaneReport()
            do {
                for propertyCase in cases {
                    try await runCase(
                        propertyCase,
                        simulator: simulator,
                        book: book,
                        topic: commandTopic,
                        into: &report
                    )
                }
            } catch {
                process.signal(SIGKILL)
                await process.waitForExit()
                await book.client.disconnect()
                throw error
            }
            // Nothing is called once everything is answered, not even a little later.
            try await Task.sleep(for: .milliseconds(500))
            #expect(
                simulator.state.stats().requests == report.requestsAtLastReply,
                "lane \(lane): platform calls after the last case was answered"
            )
            process.signal(SIGTERM)
            let code = await process.waitForExit()
            #expect(code == 0, "lane \(lane): a graceful stop exits 0, not \(code):\n\(process.log.suffix(3000))")
            await book.client.disconnect()
            return report
        }
    }

    /// Runs one case alone (each command by itself on a fresh platform) and together (all at once), and compares.
    private static func runCase(
        _ propertyCase: PropertyCase,
        simulator: RunningSimulator,
        book: ReplyBook,
        topic: String,
        into report: inout LaneReport
    ) async throws {
        let tag = "s\(propertyCase.seed)-c\(propertyCase.index)"
        let replay = "replay: OTA_PROPERTY_SEED=\(propertyCase.seed) OTA_PROPERTY_CASE=\(propertyCase.index)"
        func freshPlatform() {
            if let seen = report.requestsAtLastReply {
                let now = simulator.state.stats().requests
                #expect(now == seen, "\(replay): \(now - seen) platform calls after every command was answered")
            }
            simulator.state.reset()
            for rule in propertyCase.faults { simulator.state.injectFault(rule) }
        }
        func outcome(_ id: String) throws -> CommandOutcome {
            let payload = try #require(book.replies(id).first)
            guard let outcome = CommandOutcome(reply: payload) else {
                Issue.record("\(replay): reply to \(id) is not a result: \(String(decoding: payload, as: UTF8.self))")
                throw CancellationError()
            }
            return outcome
        }
        func awaitReplies(_ ids: [String], _ phase: String) async throws {
            let missing = try await book.waitForReplies(ids, within: .seconds(150))
            guard missing.isEmpty else {
                Issue.record("\(replay): no reply \(phase) to \(missing) within 150 s\n\(propertyCase)")
                throw CancellationError()
            }
        }

        // Alone: one command at a time, each on the platform's initial state with the same fault rules.
        var alone: [CommandOutcome] = []
        var callsAlone = 0
        for (index, command) in propertyCase.commands.enumerated() {
            freshPlatform()
            let id = "\(tag)-alone-\(index)"
            try await book.publish(command.payload(deadline: Date() + 120), correlationId: id, to: topic)
            try await awaitReplies([id], "alone")
            alone.append(try outcome(id))
            let stats = simulator.state.stats()
            callsAlone += platformCalls(stats)
            report.throttled += stats.throttled
            report.requestsAtLastReply = stats.requests
        }

        // Together: every command at once.
        freshPlatform()
        let ids = propertyCase.commands.indices.map { "\(tag)-together-\($0)" }
        let deadline = Date() + 120
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, command) in propertyCase.commands.enumerated() {
                group.addTask {
                    try await book.publish(command.payload(deadline: deadline), correlationId: ids[index], to: topic)
                }
            }
            try await group.waitForAll()
        }
        try await awaitReplies(ids, "together")
        let stats = simulator.state.stats()
        let callsTogether = platformCalls(stats)
        report.throttled += stats.throttled
        report.requestsAtLastReply = stats.requests

        for (index, id) in ids.enumerated() {
            let together = try outcome(id)
            #expect(
                together == alone[index],
                """
                \(replay): command #\(index) (\(propertyCase.commands[index])) differs
                  alone:    \(alone[index])
                  together: \(together)
                \(propertyCase)
                """
            )
        }
        if propertyCase.callsBoundApplies {
            #expect(
                callsTogether <= callsAlone,
                "\(replay): together took \(callsTogether) platform calls, alone \(callsAlone)\n\(propertyCase)"
            )
        } else {
            // A permanent fault that names no device: the bound cannot hold (see callsBoundApplies), so these
            // cases are counted and shown instead. Still, one merged attempt per call made alone is the most
            // that finding each command's own outcome should cost.
            report.casesWithoutBound += 1
            if callsTogether > callsAlone {
                report.casesOverBound += 1
                report.overBoundExample =
                    report.overBoundExample
                    ?? "\(replay): together \(callsTogether) calls, alone \(callsAlone)\n\(propertyCase)"
            }
            #expect(
                callsTogether <= 2 * callsAlone,
                "\(replay): together took \(callsTogether) platform calls, more than twice the \(callsAlone) alone\n\(propertyCase)"
            )
        }
        report.cases += 1
        report.commands += propertyCase.commands.count
        report.callsAlone += callsAlone
        report.callsTogether += callsTogether
        for outcome in alone { report.statuses[outcome.status, default: 0] += 1 }
    }

    // MARK: Crashes during a storm

    /// How many commands the storm has: `OTA_CRASH_STORM_COUNT`, default 2,000 (a worker that makes one call per
    /// command needs 200 s for them at 10 calls/s; scale it down to develop against one).
    static var stormCount: Int { max(20, environment["OTA_CRASH_STORM_COUNT"].flatMap { Int($0) } ?? 2_000) }

    /// The most platform calls the worker has under way at once at its default pacing: 10 calls/s with a burst of
    /// 5 (`--platform-qps` / 2), so about a second's worth of calls, 10, can be sent and not yet journaled. Only
    /// these can be lost in a kill and made again after the restart.
    static let maximumCallsInFlight = 10

    @Test("crash test: a storm of single-device commands of one key, SIGKILLed three times; all answered, consistently")
    func crashStorm() async throws {
        let binary = try workerBinary()
        let state = try makeTemporaryDirectory("ota-crash-storm")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let total = Self.stormCount
        // A hang guard, generous even for a worker that makes one call per command at 10 calls/s.
        let guardTime = Duration.seconds(Double(total) / 10 * 1.5 + 60)
        try await withMosquittoBroker(persistence: false, extraConfig: ["max_queued_messages 0"]) { broker in
            // The platform's documented quota (10 calls/s), enforced.
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: total),
                logger: Self.quietLogger
            ) { simulator in
                let book = try await ReplyBook.subscribed(to: "ota/cancel/reply/storm", port: broker.port)
                // Default pacing (10 calls/s) and default in-flight limit.
                let arguments = [
                    "run", "--broker-port", "\(broker.port)", "--client-id", "storm-worker", "--platform-endpoint",
                    simulator.endpoint, "--access-key-id", "testid", "--state-dir", state, "--schema-dir",
                    WorkerStack.repositoryRoot + "/schemas", "--ops-port", "0", "--log-level", "notice",
                ]
                let logPath = state + "/worker.log"
                var process = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                let clock = ContinuousClock()
                let started = clock.now
                let ids = (1...total).map { "storm-\($0)" }
                let deadline = Date() + 3_600
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for number in 1...total {
                        group.addTask {
                            let command = PropertyCommand(
                                key: PropertyKey(productKey: "demoProduct", firmwareId: "demoFirmware"),
                                deviceNames: [String(format: "dev-%06d", number)]
                            )
                            try await book.publish(
                                command.payload(deadline: deadline),
                                correlationId: ids[number - 1],
                                to: "ota/cancel/request"
                            )
                        }
                    }
                    try await group.waitForAll()
                }
                // Three kills while the storm is being worked through, a restart on the same state after each.
                var killedAt: [Int] = []
                for threshold in [total * 3 / 20, total * 9 / 20, total * 15 / 20] {
                    try await book.waitForAnswered(threshold, within: guardTime)
                    process.signal(SIGKILL)
                    let answered = book.answeredCount
                    #expect(await process.waitForExit() == 128 + SIGKILL)
                    try #require(answered >= threshold, "no hang: \(answered) of \(threshold) answered in time")
                    #expect(answered < total, "the kill came while commands were still being processed")
                    killedAt.append(answered)
                    process = try await launchWorkerProcess(binary, arguments, logPath: logPath)
                }
                let missing = try await book.waitForReplies(ids, within: guardTime)
                let elapsed = clock.now - started
                process.signal(SIGTERM)
                let exitCode = await process.waitForExit()
                #expect(exitCode == 0, "a graceful stop exits 0, not \(exitCode):\n\(process.log.suffix(4000))")
                #expect(missing.isEmpty, "\(missing.count) commands never answered, e.g. \(missing.prefix(5))")

                // Every reply to one id carries the same result, a success.
                let replies = book.all
                #expect(Set(replies.keys) == Set(ids), "replies only to the storm's commands")
                var inconsistent: [String] = []
                var requestIds = Set<String>()
                var extraReplies = 0
                for (id, payloads) in replies {
                    extraReplies += payloads.count - 1
                    let outcomes = payloads.map { CommandOutcome(reply: $0) }
                    if !outcomes.allSatisfy({ $0 != nil && $0 == outcomes[0] }) { inconsistent.append(id) }
                    let number = Int(id.dropFirst("storm-".count)) ?? 0
                    #expect(
                        outcomes.first??.status == "succeeded"
                            && outcomes.first??.cancelledDevices == [String(format: "dev-%06d", number)],
                        "\(id): \(outcomes.first.map { $0.map(\.description) ?? "unparseable" } ?? "no reply")"
                    )
                    for payload in payloads {
                        let reply = try? JSONParser.parse(payload)
                        for value in reply?["requestIds"]?.arrayValue ?? [] {
                            if let requestId = value.stringValue { requestIds.insert(requestId) }
                        }
                    }
                }
                let examples = inconsistent.prefix(3).map { id in
                    "\(id): " + (replies[id] ?? []).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " | ")
                }
                #expect(inconsistent.isEmpty, "\(inconsistent.count) ids got differing replies, e.g. \(examples)")
                let notCancelled = (1...total).filter {
                    simulator.state.tasks(deviceName: String(format: "dev-%06d", $0))?.first?.status != "CANCELED"
                }
                #expect(
                    notCancelled.isEmpty,
                    "\(notCancelled.count) tasks not CANCELED, e.g. \(notCancelled.prefix(5))"
                )

                // Calls made beyond the ones whose answers the replies cite: lost in a kill and made again.
                let stats = simulator.state.stats()
                let extraCalls = stats.cancelCalls - requestIds.count
                let devicesCalledTwice = (1...total).filter {
                    (simulator.state.tasks(deviceName: String(format: "dev-%06d", $0))?.first?.cancelCalls ?? 0) > 1
                }.count
                // The calls the worker stored (each with its answer): any call beyond those was in flight at a kill.
                let journal = try SQLiteJournal(configuration: JournalConfiguration(path: state + "/journal.sqlite"))
                let storedCalls = try await journal.summary().calls
                let lostCalls = stats.cancelCalls - storedCalls
                print(
                    "crash storm: \(total) commands in \(elapsed), SIGKILLs at \(killedAt) answered; "
                        + "\(stats.cancelCalls) platform calls, \(requestIds.count) cited by replies, "
                        + "\(extraCalls) extra, \(storedCalls) stored by the worker, so \(lostCalls) in flight at the kills "
                        + "(bound \(3 * Self.maximumCallsInFlight)); "
                        + "\(devicesCalledTwice) devices called more than once; "
                        + "\(stats.throttled) throttled answers; largest call \(stats.largestCancelBatch) names; "
                        + "\(extraReplies) extra (duplicate) replies"
                )
                #expect(
                    extraCalls >= 0,
                    "the replies cite \(requestIds.count) calls, the platform saw \(stats.cancelCalls)"
                )
                #expect(lostCalls >= 0, "every stored call was made: \(storedCalls) stored, \(stats.cancelCalls) made")
                #expect(
                    extraCalls <= lostCalls,
                    "only calls in flight at a kill may be made again: \(extraCalls) extra, \(lostCalls) in flight"
                )
                #expect(
                    lostCalls <= 3 * Self.maximumCallsInFlight,
                    "at most a burst of calls is in flight at each kill: \(lostCalls)"
                )
                await book.client.disconnect()
            }
        }
    }
}
