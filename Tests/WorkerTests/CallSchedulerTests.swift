// SPDX-License-Identifier: Apache-2.0
import Foundation
import Mosquitto
import Testing
import Worker

/// The dispatcher's decisions, without broker, HTTP or database: the scheduler is a value driven by explicit
/// times and results.
@Suite("Call scheduler")
struct CallSchedulerTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func command(
        _ names: [String],
        firmware: String = "fw-A",
        deadline: Date? = t0.addingTimeInterval(3600),
        correlation: String = "c"
    ) -> AcceptedCommand {
        AcceptedCommand(
            command: CancelCommand(productKey: "pk", firmwareId: firmware, deviceNames: names),
            correlationId: correlation,
            route: ReplyRoute(topic: "ota/cancel/reply", source: .defaultTopic, correlationData: nil),
            receivedAt: t0,
            deadline: deadline,
            payload: [],
            digest: []
        )
    }

    static func devices(_ range: Range<Int>, prefix: String = "d") -> [String] {
        range.map { "\(prefix)\($0)" }
    }

    static let ok = CallResult(kind: .succeeded, requestId: "R", attempts: 1)

    struct Missing: Error {}

    /// The value, or a recorded issue and a thrown error (`#require` cannot take a mutating call).
    static func some<T>(_ value: T?, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
        guard let value else {
            Issue.record("expected a value", sourceLocation: sourceLocation)
            throw Missing()
        }
        return value
    }

    /// Runs every call the scheduler offers at `now`, answering each with `answer`, until none is ready; returns the
    /// calls made and the replies completed.
    static func drain(
        _ scheduler: inout CallScheduler,
        at now: Date,
        answer: (CallPlan) -> CallResult = { _ in ok }
    ) -> (calls: [CallPlan], replies: [Int64: CancelReply]) {
        var calls = [CallPlan]()
        var replies = [Int64: CancelReply]()
        while let plan = scheduler.nextCall(now: now) {
            calls.append(plan)
            for completed in scheduler.finish(plan.id, result: answer(plan), now: now).completed {
                replies[completed.id] = completed.reply
            }
        }
        return (calls, replies)
    }

    @Test("a lone command goes out at once, in one call of its own")
    func loneCommand() throws {
        var scheduler = CallScheduler()
        #expect(scheduler.add(1, accepted: Self.command(["d1"]), now: Self.t0) == nil)
        #expect(scheduler.hasReadyCall(now: Self.t0))
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        #expect(plan.deviceNames == ["d1"] && plan.parts == [SegmentID(command: 1, index: 0)] && !plan.isShared)
        let settlement = scheduler.finish(plan.id, result: Self.ok, now: Self.t0)
        let reply = try Self.some(settlement.completed.first?.reply)
        #expect(settlement.completed.first?.outcomesStored == false, "finished in one step: the journal holds none")
        #expect(reply.status == .succeeded && reply.cancelledDevices == ["d1"])
        #expect(reply.calls == 1 && reply.sharedCalls == 0 && reply.requestIds == ["R"] && reply.deviceCount == 1)
        #expect(scheduler.commandCount == 0 && !scheduler.hasReadyCall(now: Self.t0))
    }

    @Test("names that pile up go out 200 per call, each key apart")
    func naturalBatching() throws {
        var scheduler = CallScheduler()
        for id in 1...500 { _ = scheduler.add(Int64(id), accepted: Self.command(["d\(id)"]), now: Self.t0) }
        for id in 501...510 {
            _ = scheduler.add(Int64(id), accepted: Self.command(["d\(id)"], firmware: "fw-B"), now: Self.t0)
        }
        #expect(scheduler.waitingNames == 510 && scheduler.waitingKeys == 2 && scheduler.waitingCommands == 510)
        let (calls, replies) = Self.drain(&scheduler, at: Self.t0)
        #expect(calls.map(\.deviceNames.count) == [200, 10, 200, 100], "keys take turns")
        #expect(calls.allSatisfy { plan in Set(plan.parts.map { $0.command > 500 }).count == 1 }, "keys never mix")
        #expect(replies.count == 510 && replies.values.allSatisfy { $0.status == .succeeded && $0.sharedCalls == 1 })
        #expect(scheduler.waitingNames == 0 && scheduler.commandCount == 0)
    }

    @Test("a name wanted by two commands is sent once, and both get its outcome")
    func sharedName() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(["d1", "d2"]), now: Self.t0)
        _ = scheduler.add(2, accepted: Self.command(["d2", "d3"]), now: Self.t0)
        let (calls, replies) = Self.drain(&scheduler, at: Self.t0)
        #expect(calls.map(\.deviceNames) == [["d1", "d2", "d3"]])
        #expect(replies[1]?.cancelledDevices == ["d1", "d2"] && replies[2]?.cancelledDevices == ["d2", "d3"])
        #expect(replies[1]?.sharedCalls == 1 && replies[2]?.calls == 1)
    }

    @Test("a 10,000-device command cannot starve a one-device command of another key")
    func fairness() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(Self.devices(0..<10_000)), now: Self.t0)
        for id in 2...101 {
            _ = scheduler.add(Int64(id), accepted: Self.command(["b\(id)"], firmware: "fw-B"), now: Self.t0)
        }
        var firstCalls = [CallPlan]()
        for _ in 0..<2 {
            let plan = try Self.some(scheduler.nextCall(now: Self.t0))
            firstCalls.append(plan)
            _ = scheduler.finish(plan.id, result: Self.ok, now: Self.t0)
        }
        #expect(firstCalls.map(\.key.firmwareId) == ["fw-A", "fw-B"])
        #expect(firstCalls[1].deviceNames.count == 100, "all hundred B commands in the second call")
        let (rest, replies) = Self.drain(&scheduler, at: Self.t0)
        #expect(rest.count == 49 && rest.allSatisfy { $0.deviceNames.count == 200 })
        #expect(replies[1]?.calls == 50 && replies[1]?.cancelledDevices?.count == 10_000)
    }

    @Test("segments are packed whole: a command's failure groups are those it would have alone")
    func wholeSegments() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(Self.devices(0..<450)), now: Self.t0)
        _ = scheduler.add(2, accepted: Self.command(Self.devices(0..<120, prefix: "x")), now: Self.t0)
        let (calls, _) = Self.drain(&scheduler, at: Self.t0)
        #expect(calls.map(\.deviceNames.count) == [200, 200, 170], "the 50-name tail shares a call with the 120")
        #expect(calls.last?.parts == [SegmentID(command: 1, index: 2), SegmentID(command: 2, index: 0)])
    }

    @Test("a transient failure puts the names back at the head with backoff; attempts add up")
    func transientFailure() throws {
        var scheduler = CallScheduler(configuration: .init(initialRetryDelay: 1, maximumRetryDelay: 30))
        _ = scheduler.add(1, accepted: Self.command(["d1"]), now: Self.t0)
        _ = scheduler.add(2, accepted: Self.command(["d2"]), now: Self.t0)
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        let failure = CallResult(kind: .transientFailure, requestId: "R-1", code: "ServiceUnavailable", attempts: 4)
        let settlement = scheduler.finish(plan.id, result: failure, now: Self.t0)
        #expect(settlement.completed.isEmpty && settlement.requeued == 2)
        #expect(settlement.outcomes.values.allSatisfy { !$0.final && $0.attempts == 4 })
        #expect(!scheduler.hasReadyCall(now: Self.t0), "backing off")
        let wake = try Self.some(scheduler.nextWake(now: Self.t0))
        #expect(wake > Self.t0.addingTimeInterval(0.49) && wake <= Self.t0.addingTimeInterval(1))
        let retry = try Self.some(scheduler.nextCall(now: wake))
        #expect(retry.deviceNames == ["d1", "d2"], "still together")
        let done = scheduler.finish(retry.id, result: Self.ok, now: wake)
        #expect(done.completed.allSatisfy { $0.outcomesStored }, "the journal holds the first round's outcomes")
        let replies = Dictionary(uniqueKeysWithValues: done.completed.map { ($0.id, $0.reply) })
        #expect(replies[1]?.status == .succeeded && replies[1]?.attempts == 5 && replies[1]?.calls == 2)
        #expect(replies[1]?.requestIds == ["R-1", "R"])
    }

    @Test("a transient failure at the deadline is final: the command is expired with that failure")
    func transientAtDeadline() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(["d1"], deadline: Self.t0.addingTimeInterval(5)), now: Self.t0)
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        #expect(plan.deadline == Self.t0.addingTimeInterval(5))
        let failure = CallResult(kind: .transientFailure, code: "ServiceUnavailable", httpStatus: 503, attempts: 2)
        let reply = try Self.some(
            scheduler.finish(plan.id, result: failure, now: Self.t0.addingTimeInterval(5)).completed.first?.reply
        )
        #expect(reply.status == .expired)
        #expect(reply.failedGroups?.map(\.code) == ["ServiceUnavailable"] && reply.failedGroups?[0].transient == true)
    }

    @Test("names still waiting at their deadline leave the queue: expired, with the last failure or DeadlineExceeded")
    func expiry() throws {
        var scheduler = CallScheduler()
        let deadline = Self.t0.addingTimeInterval(10)
        _ = scheduler.add(1, accepted: Self.command(Self.devices(0..<300), deadline: deadline), now: Self.t0)
        _ = scheduler.add(2, accepted: Self.command(["late"], deadline: nil), now: Self.t0)
        let first = try Self.some(scheduler.nextCall(now: Self.t0))
        #expect(first.deviceNames.count == 200)
        _ = scheduler.finish(first.id, result: Self.ok, now: Self.t0)
        #expect(scheduler.expire(now: deadline.addingTimeInterval(-1)) == nil)
        #expect(scheduler.nextWake(now: Self.t0) == deadline)
        let expired = try Self.some(scheduler.expire(now: deadline))
        let reply = try Self.some(expired.completed.first?.reply)
        #expect(reply.status == .partial && reply.cancelledDevices?.count == 200)
        #expect(
            reply.failedGroups?.map(\.code) == ["DeadlineExceeded"] && reply.failedGroups?[0].deviceNames.count == 100
        )
        #expect(scheduler.commandCount == 1 && scheduler.waitingNames == 1, "the command without deadline still waits")
        let (calls, _) = Self.drain(&scheduler, at: deadline)
        #expect(calls.map(\.deviceNames) == [["late"]])
    }

    @Test("a permanent failure that concerns the key fails every command of the call, without sending again")
    func keyFailure() throws {
        var scheduler = CallScheduler()
        for id in 1...3 { _ = scheduler.add(Int64(id), accepted: Self.command(["d\(id)"]), now: Self.t0) }
        let failure = CallResult(kind: .permanentFailure, code: "iot.ota.FirmwareNotFound", message: "no", attempts: 1)
        let (calls, replies) = Self.drain(&scheduler, at: Self.t0) { _ in failure }
        #expect(calls.count == 1)
        #expect(replies.values.allSatisfy { $0.status == .failed && $0.failedGroups?.first?.code == failure.code })
    }

    @Test("a failure naming a device fails that name alone, in the segments that sent it first; the rest goes again")
    func namedDevice() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(["d1", "bad"]), now: Self.t0)
        _ = scheduler.add(2, accepted: Self.command(["d2"]), now: Self.t0)
        _ = scheduler.add(3, accepted: Self.command(["bad", "d3"]), now: Self.t0)
        let (calls, replies) = Self.drain(&scheduler, at: Self.t0) { plan in
            plan.deviceNames.contains("bad")
                ? CallResult(
                    kind: .permanentFailure,
                    requestId: "R-bad",
                    code: "iot.device.NotExistedDevice",
                    message: "The specified device does not exist: bad.",
                    attempts: 1
                ) : Self.ok
        }
        #expect(calls.map(\.deviceNames) == [["d1", "bad", "d2", "d3"], ["d1", "d2", "d3"]])
        #expect(replies[2]?.status == .succeeded)
        for id in [1, 3] as [Int64] {
            let reply = try #require(replies[id])
            #expect(reply.status == .partial)
            #expect(reply.failedGroups?.map(\.deviceNames) == [["bad"]])
            #expect(reply.failedGroups?.first?.code == "iot.device.NotExistedDevice")
            #expect(reply.failedGroups?.first?.requestId == "R-bad")
            #expect(reply.failedGroups?.first?.transient == false)
            #expect(reply.deviceCount == 2)
        }
        #expect(replies[1]?.cancelledDevices == ["d1"])
        #expect(replies[3]?.cancelledDevices == ["d3"])
    }

    @Test("one command alone: each named device is taken out in turn, the other 198 are cancelled")
    func namedDevicesAlone() throws {
        var scheduler = CallScheduler()
        var names = Self.devices(0..<200)
        names[50] = "bad1"
        names[120] = "bad2"
        _ = scheduler.add(1, accepted: Self.command(names), now: Self.t0)
        let (calls, replies) = Self.drain(&scheduler, at: Self.t0) { plan in
            guard let bad = plan.deviceNames.first(where: { $0.hasPrefix("bad") }) else { return Self.ok }
            return CallResult(
                kind: .permanentFailure,
                code: "iot.ota.TaskNotCancellable",
                message: "The device has no upgrade task of this firmware that can be cancelled: \(bad).",
                attempts: 1
            )
        }
        #expect(calls.map(\.deviceNames.count) == [200, 199, 198])
        let reply = try #require(replies[1])
        #expect(reply.status == .partial)
        #expect(reply.cancelledDevices == names.filter { !$0.hasPrefix("bad") })
        #expect(reply.failedGroups?.map(\.deviceNames) == [["bad1"], ["bad2"]])
        #expect(reply.calls == 3)
    }

    @Test("a taken-out name keeps its own failure when the deadline passes before the rest is sent again")
    func exclusionThenDeadline() throws {
        var scheduler = CallScheduler()
        let deadline = Self.t0.addingTimeInterval(10)
        _ = scheduler.add(1, accepted: Self.command(["d1", "bad"], deadline: deadline), now: Self.t0)
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        let failure = CallResult(
            kind: .permanentFailure,
            code: "iot.device.NotExistedDevice",
            message: "The specified device does not exist: bad.",
            attempts: 1
        )
        #expect(scheduler.finish(plan.id, result: failure, now: Self.t0).completed.isEmpty)
        // No call goes before the deadline: the rest ("d1") expires, "bad" keeps the platform's answer.
        let expired = try Self.some(scheduler.expire(now: deadline.addingTimeInterval(1)))
        let reply = try #require(expired.completed.first?.reply)
        #expect(reply.failedGroups?.map(\.deviceNames) == [["d1"], ["bad"]])
        #expect(reply.failedGroups?.map(\.code) == ["DeadlineExceeded", "iot.device.NotExistedDevice"])
        #expect(reply.status == .failed)
    }

    @Test("a taken-out name stays out after a restart: the journal's outcome carries it")
    func exclusionSurvivesARestart() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(["d1", "bad", "d2"]), now: Self.t0)
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        let failure = CallResult(
            kind: .permanentFailure,
            code: "iot.device.NotExistedDevice",
            message: "The specified device does not exist: bad.",
            attempts: 1
        )
        let settlement = scheduler.finish(plan.id, result: failure, now: Self.t0)
        #expect(settlement.completed.isEmpty)
        let stored = try #require(settlement.outcomes[SegmentID(command: 1, index: 0)])
        #expect(stored.final == false)
        #expect(stored.excluded?["bad"]?.code == "iot.device.NotExistedDevice")
        // A new worker reads the command and that outcome from the journal.
        var restarted = CallScheduler()
        _ = restarted.add(1, accepted: Self.command(["d1", "bad", "d2"]), outcomes: [0: stored], now: Self.t0)
        let (calls, replies) = Self.drain(&restarted, at: Self.t0)
        #expect(calls.map(\.deviceNames) == [["d1", "d2"]])
        #expect(replies[1]?.status == .partial)
        #expect(replies[1]?.failedGroups?.map(\.deviceNames) == [["bad"]])
        #expect(replies[1]?.cancelledDevices == ["d1", "d2"])
    }

    @Test("a failure that names nobody is bisected until it concerns one segment; the others succeed")
    func bisection() throws {
        var scheduler = CallScheduler()
        for id in 1...8 { _ = scheduler.add(Int64(id), accepted: Self.command(["d\(id)"]), now: Self.t0) }
        var bisected = 0
        var calls = [CallPlan]()
        var replies = [Int64: CancelReply]()
        while let plan = scheduler.nextCall(now: Self.t0) {
            calls.append(plan)
            let result =
                plan.deviceNames.contains("d6")
                ? CallResult(kind: .permanentFailure, code: "iot.system.IllegalRequest", message: "bad", attempts: 1)
                : Self.ok
            let settlement = scheduler.finish(plan.id, result: result, now: Self.t0)
            if settlement.bisected { bisected += 1 }
            for completed in settlement.completed { replies[completed.id] = completed.reply }
        }
        #expect(calls.count == 7, "8 → 4+4 → 2+2 → 1+1: one merged call, then two per level")
        #expect(bisected == 3)
        #expect(replies.count == 8)
        #expect(replies[6]?.status == .failed && replies[6]?.failedGroups?.first?.code == "iot.system.IllegalRequest")
        #expect(replies.filter { $0.key != 6 }.values.allSatisfy { $0.status == .succeeded })
    }

    @Test("after a restart, final segments are not sent again; a command with all of them final completes at once")
    func restart() throws {
        var scheduler = CallScheduler(firstCallId: 42)
        let done = BatchOutcome(succeeded: true, final: true, requestId: "R-0", attempts: 1)
        let trace = CallTrace(callId: 3, requestId: "R-0", attempts: 1, shared: true)
        let immediate = scheduler.add(
            1,
            accepted: Self.command(["d1"]),
            outcomes: [0: done],
            calls: [trace],
            now: Self.t0
        )
        #expect(immediate?.completed.first?.reply.calls == 1 && immediate?.completed.first?.reply.sharedCalls == 1)
        _ = scheduler.add(2, accepted: Self.command(Self.devices(0..<300)), outcomes: [0: done], now: Self.t0)
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        #expect(plan.id == 42 && plan.parts == [SegmentID(command: 2, index: 1)] && plan.deviceNames.count == 100)
    }

    @Test("a coalescing window holds a key's first name until it ends, unless the call is full")
    func coalesceWindow() throws {
        var scheduler = CallScheduler(configuration: .init(coalesceWindow: 0.05))
        _ = scheduler.add(1, accepted: Self.command(["d1"]), now: Self.t0)
        #expect(!scheduler.hasReadyCall(now: Self.t0.addingTimeInterval(0.01)))
        #expect(scheduler.nextWake(now: Self.t0.addingTimeInterval(0.01)) == Self.t0.addingTimeInterval(0.05))
        #expect(scheduler.hasReadyCall(now: Self.t0.addingTimeInterval(0.05)))
        var full = CallScheduler(configuration: .init(coalesceWindow: 10))
        for id in 1...200 { _ = full.add(Int64(id), accepted: Self.command(["d\(id)"]), now: Self.t0) }
        #expect(full.hasReadyCall(now: Self.t0), "200 names fill a call: no reason to wait")
    }

    @Test("an interrupted call decides nothing: its names wait again")
    func interrupted() throws {
        var scheduler = CallScheduler()
        _ = scheduler.add(1, accepted: Self.command(["d1"]), now: Self.t0)
        let plan = try Self.some(scheduler.nextCall(now: Self.t0))
        let settlement = scheduler.finish(plan.id, result: CallResult(kind: .interrupted, attempts: 0), now: Self.t0)
        #expect(settlement.completed.isEmpty && settlement.outcomes.values.allSatisfy { !$0.final })
        #expect(scheduler.nextCall(now: Self.t0)?.deviceNames == ["d1"])
    }

    @Test("the same seed, the same decisions")
    func reproducible() throws {
        func run() -> [Date?] {
            var scheduler = CallScheduler(seed: 7)
            var wakes = [Date?]()
            for id in 1...3 {
                _ = scheduler.add(Int64(id), accepted: Self.command(["d\(id)"]), now: Self.t0)
                let plan = scheduler.nextCall(now: Self.t0)!
                _ = scheduler.finish(
                    plan.id,
                    result: CallResult(kind: .transientFailure, code: "Timeout", attempts: 1),
                    now: Self.t0
                )
                wakes.append(scheduler.nextWake(now: Self.t0))
            }
            return wakes
        }
        #expect(run() == run())
    }
}

@Suite("Failure scope")
struct FailureScopeTests {
    @Test("key-wide codes, a named device, and the rest")
    func scopes() throws {
        #expect(FailureScope.of(code: "iot.prod.NotExistedProduct", message: "", deviceNames: ["a"]) == .key)
        #expect(FailureScope.of(code: "IOT.OTA.FirmwareNotFound", message: "", deviceNames: ["a"]) == .key)
        #expect(FailureScope.of(code: "SignatureDoesNotMatch", message: "a", deviceNames: ["a"]) == .key)
        #expect(
            FailureScope.of(
                code: "iot.system.IllegalRequest",
                message: "The specified JobId does not exist.",
                deviceNames: []
            )
                == .key
        )
        #expect(FailureScope.of(code: "iot.system.IllegalRequest", message: "bad", deviceNames: ["a"]) == .unknown)
        #expect(
            FailureScope.of(
                code: "iot.device.NotExistedDevice",
                message: "The specified device does not exist: dev10.",
                deviceNames: ["dev1", "dev10", "dev2"]
            ) == .device("dev10"),
            "dev1 is part of dev10: not a separate match"
        )
        #expect(
            FailureScope.of(
                code: "iot.device.NotExistedDevice",
                message: "The device does not exist.",
                deviceNames: ["a1"]
            )
                == .unknown,
            "no name: nothing to go by"
        )
    }
}

@Suite("Dedupe verdict")
struct DedupeVerdictTests {
    let when = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("new, conflict, replay of a stored reply, wait for a running original")
    func verdicts() throws {
        #expect(DedupeVerdict.decide(digest: [1], original: nil) == .new)
        let running = DedupeVerdict.Original(id: 5, digest: [1], state: .accepted, reply: nil, receivedAt: when)
        #expect(DedupeVerdict.decide(digest: [1], original: running) == .wait(originalId: 5))
        #expect(DedupeVerdict.decide(digest: [2], original: running) == .conflict(originalReceivedAt: when))
        for state in [MessageState.done, .replied, .undeliverable] {
            let answered = DedupeVerdict.Original(id: 5, digest: [1], state: state, reply: [9], receivedAt: when)
            #expect(DedupeVerdict.decide(digest: [1], original: answered) == .replay(originalId: 5, reply: [9]))
        }
    }

    @Test("a replayed reply is marked duplicate right after its status, keeping its key order")
    func marked() throws {
        let reply = Array(#"{"version":1,"status":"succeeded","calls":1}"#.utf8)
        #expect(
            String(decoding: DedupeVerdict.markedDuplicate(reply), as: UTF8.self)
                == #"{"version":1,"status":"succeeded","duplicate":true,"calls":1}"#
        )
    }
}
