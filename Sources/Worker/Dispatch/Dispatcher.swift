// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import PlatformAPI
import PlatformSignature
import Synchronization

/// The I/O around the ``CallScheduler``: takes journaled commands in, waits for a rate-limiter token before each
/// call (so that names pile up while tokens are short), makes the calls, stores what the scheduler decided and
/// hands the replies to the publisher.
///
/// One path from "journaled" to "running": a command journaled by the intake is handed over in memory
/// (``submit(_:_:)``); when the hand-off is full, or at start-up, the dispatcher reads it from the journal instead.
/// Every decision is the scheduler's; this type only sequences effects: a call's result goes to the scheduler,
/// and what the scheduler settled (the call with the segments it carried, segment outcomes, replies) is stored in
/// one transaction before any reply is published.
final class Dispatcher: Sendable {
    struct Configuration: Sendable {
        /// Most platform calls at once.
        var maxCallsInFlight: Int
        /// Most commands served at once (held in memory); more wait in the journal.
        var maxPendingCommands: Int
        var scheduler: CallScheduler.Configuration
        /// Which commands are read back after their cancel calls.
        var verify = VerifyPolicy()
        var readBack = ReadBackScheduler.Configuration()
        var drainTimeout: Duration
    }

    /// What the dispatcher has done (for the service's counters).
    struct Counters: Sendable, Hashable {
        var started = 0
        var executed = 0
        var expired = 0
        var requeued = 0
        var calls = 0
    }

    private enum Event: Sendable {
        case wake
        case tick
        case token
        /// A read action's bucket has a token.
        case readToken(ReadBackScheduler.Kind)
        /// A call or a stored settlement ended: slots and queues may have changed.
        case ended
        case drain
        case drainTimedOut
    }

    private struct Shared: Sendable {
        var handoff: [(Int64, AcceptedCommand)] = []
        var handoffOverflows = 0
        var wakePending = false
        var draining = false
        var counters = Counters()
    }

    let configuration: Configuration
    let platform: PlatformAPIClient
    let method: RPCHTTPMethod
    private let journal: any CommandJournal
    private let publisher: ReplyPublisher
    private let metrics: WorkerMetrics
    private let logger: Logger
    private let journalFailed: @Sendable (any Error) -> Never
    private let shared = Mutex(Shared())
    private let core = Mutex(Core())
    private let events: AsyncStream<Event>
    private let emit: AsyncStream<Event>.Continuation

    init(
        configuration: Configuration,
        platform: PlatformAPIClient,
        platformConfiguration: PlatformAPIConfiguration,
        journal: any CommandJournal,
        publisher: ReplyPublisher,
        metrics: WorkerMetrics,
        logger: Logger,
        journalFailed: @escaping @Sendable (any Error) -> Never
    ) {
        self.configuration = configuration
        self.platform = platform
        self.method = platformConfiguration.method
        self.journal = journal
        self.publisher = publisher
        self.metrics = metrics
        self.logger = logger
        self.journalFailed = journalFailed
        (events, emit) = AsyncStream.makeStream(of: Event.self)
    }

    var counters: Counters { shared.withLock { $0.counters } }

    /// A command the intake has journaled. Never waits: called on the MQTT loop thread.
    func submit(_ id: Int64, _ accepted: AcceptedCommand) {
        let bound = max(1024, configuration.maxPendingCommands / 4)
        shared.withLock { shared in
            if shared.handoff.count < bound {
                shared.handoff.append((id, accepted))
            } else {
                shared.handoffOverflows += 1
            }
        }
        wake()
    }

    /// Stop starting calls; ``run()`` ends when the calls in flight have ended (or after the drain timeout).
    func drain() {
        let first = shared.withLock { shared -> Bool in
            defer { shared.draining = true }
            return !shared.draining
        }
        guard first else { return }
        emit.yield(.drain)
        let timeout = configuration.drainTimeout
        let emit = emit
        Task {
            try? await Task.sleep(for: timeout)
            emit.yield(.drainTimedOut)
        }
    }

    private func wake() {
        // Coalesced: one pending wake-up is enough, however many messages arrive before the dispatcher looks.
        let first = shared.withLock { shared -> Bool in
            defer { shared.wakePending = true }
            return !shared.wakePending
        }
        if first { emit.yield(.wake) }
    }

    /// Runs until a drain completes.
    func run() async {
        let lastCallId: Int64
        do {
            lastCallId = try await journal.lastCallId()
        } catch {
            journalFailed(error)
        }
        core.withLock {
            $0.scheduler = CallScheduler(
                configuration: configuration.scheduler,
                firstCallId: lastCallId + 1,
                seed: UInt64.random(in: .min ... .max)
            )
            $0.readBack = ReadBackScheduler(configuration: configuration.readBack)
        }
        await withDiscardingTaskGroup { group in
            var loop = Loop()
            emit.yield(.wake)
            for await event in events {
                let now = Date()
                switch event {
                case .wake:
                    shared.withLock { $0.wakePending = false }
                case .tick:
                    loop.timer = nil
                case .token:
                    loop.tokenPending = false
                    if !loop.draining, let plan = core.withLock({ $0.scheduler.nextCall(now: now) }) {
                        start([plan], in: &group)
                    }
                case .readToken(let kind):
                    loop.readTokenPending.remove(kind)
                    if !loop.draining, let plan = core.withLock({ $0.readBack.nextRead(kind) }) {
                        read(plan, in: &group)
                    }
                case .ended:
                    break
                case .drain:
                    loop.draining = true
                case .drainTimedOut:
                    let calls = core.withLock { $0.scheduler.callsInFlight + $0.readBack.readsInFlight }
                    if calls > 0 {
                        logger.warning(
                            "drain timeout: stopping the calls still running; their commands stay in the journal",
                            metadata: [LogKey.calls: .stringConvertible(calls)]
                        )
                        group.cancelAll()
                    }
                }
                if loop.draining {
                    // Commands still being read back stay unanswered in the journal: read back after the restart.
                    let idle = core.withLock {
                        $0.scheduler.callsInFlight == 0 && $0.readBack.readsInFlight == 0 && $0.writes == 0
                    }
                    if idle { break }
                    continue
                }
                await ingest(loop: &loop, now: now, group: &group)
                if let expired = core.withLock({ $0.scheduler.expire(now: now) }) { persist(expired, in: &group) }
                startCalls(loop: &loop, now: now, group: &group)
                startReads(loop: &loop, group: &group)
                if let wake = core.withLock({ $0.scheduler.nextWake(now: now) }), loop.timer.map({ wake < $0 }) ?? true
                {
                    loop.timer = wake
                    group.addTask {
                        let delay = max(0, wake.timeIntervalSince(Date()))
                        try? await Task.sleep(for: .milliseconds(Int64((delay * 1000).rounded(.up))))
                        self.emit.yield(.tick)
                    }
                }
                // The gauges walk the queues: ten times a second is enough for a scrape, and costs nothing in a storm.
                // Becoming idle is always reported, so the gauges never stay stale after the last command.
                let idle = core.withLock { $0.scheduler.commandCount == 0 }
                if now.timeIntervalSince(loop.gaugesAt) >= 0.1 || (idle && !loop.gaugesIdle) {
                    loop.gaugesAt = now
                    loop.gaugesIdle = idle
                    core.withLock { core in
                        let scheduler = core.scheduler
                        metrics.waiting(
                            names: scheduler.waitingNames,
                            commands: scheduler.waitingCommands,
                            keys: scheduler.waitingKeys,
                            largestQueue: scheduler.largestQueue
                        )
                        metrics.commandsInFlight(scheduler.commandCount)
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Starts every call that may go now: a free token (taken without waiting) and a ready key each. When the rate
    /// limiter has no token, one task waits for the next and the names keep piling up meanwhile.
    private func startCalls(loop: inout Loop, now: Date, group: inout DiscardingTaskGroup) {
        var plans = [CallPlan]()
        while !loop.tokenPending {
            let ready = core.withLock {
                $0.scheduler.callsInFlight < configuration.maxCallsInFlight && $0.scheduler.hasReadyCall(now: now)
            }
            guard ready else { break }
            guard platform.tryAdmit() else {
                loop.tokenPending = true
                group.addTask {
                    // No deadline: a slot later than a command's deadline still serves the others; the
                    // scheduler drops expired names when it packs the call.
                    let waiting = ContinuousClock.now
                    try? await self.platform.admit(deadline: nil)
                    self.metrics.admitted(waited: ContinuousClock.now - waiting)
                    self.emit.yield(.token)
                }
                break
            }
            metrics.admitted(waited: .zero)
            guard let plan = core.withLock({ $0.scheduler.nextCall(now: now) }) else { break }
            plans.append(plan)
        }
        start(plans, in: &group)
    }

    /// Starts every read that may go now, each kind with its own action's bucket: a read never takes a cancel's
    /// token, so read-backs cannot delay a cancel. Without a token, one task waits for the next, as for calls.
    private func startReads(loop: inout Loop, group: inout DiscardingTaskGroup) {
        for kind in ReadBackScheduler.Kind.allCases where !loop.readTokenPending.contains(kind) {
            while core.withLock({ $0.readBack.hasReadyRead(kind) }) {
                guard platform.tryAdmit(kind.operation) else {
                    loop.readTokenPending.insert(kind)
                    group.addTask {
                        try? await self.platform.admit(kind.operation, deadline: nil)
                        self.emit.yield(.readToken(kind))
                    }
                    break
                }
                guard let plan = core.withLock({ $0.readBack.nextRead(kind) }) else { break }
                read(plan, in: &group)
            }
        }
    }

    /// How long one read may take, retries included: a read-back is worth waiting for, but not for long (the
    /// reply waits for it).
    static let readBudget: Duration = .seconds(30)

    /// Makes one read in a task of its own, applies its answer and stores the replies it completed.
    private func read(_ plan: ReadBackScheduler.ReadPlan, in group: inout DiscardingTaskGroup) {
        group.addTask {
            let commands = CommandLog.call(correlationIds: self.core.withLock { $0.readBack.correlationIds(of: plan) })
            let deadline = ContinuousClock.now + Self.readBudget
            let result = await self.platform.readTasks(
                plan.operation,
                deadline: deadline,
                admitted: true,
                logMetadata: commands
            )
            self.metrics.throttledAnswers(result.throttledAttempts)
            if case .failure(let error) = result.result, error == .cancelled || error == .shutdown {
                // Stopped by the worker's own shutdown: that says nothing about the devices. The commands stay
                // unanswered in the journal and are read back after the restart.
                self.core.withLock { $0.readBack.abandon(plan.id) }
                self.emit.yield(.ended)
                return
            }
            self.metrics.readBackCall(plan.kind == .byJob ? .listByJob : .unfinishedByDevice, result.result)
            if case .failure(let error) = result.result {
                var line = commands
                line[LogKey.error] = .string(error.shortDescription)
                self.logger.warning("read-back failed: its devices are unverified", metadata: line)
            }
            var settlement = Settlement()
            settlement.completed = self.core.withLock { core in
                let completed = core.readBack.finish(plan.id, result: result, now: Date())
                core.unpersisted.formUnion(completed.map(\.id))
                core.writes += 1
                return completed
            }
            await self.store(settlement, readBackDone: true)
            self.emit.yield(.ended)
        }
    }

    /// The scheduler and what the call tasks share with the loop.
    private struct Core: Sendable {
        var scheduler = CallScheduler()
        /// The commands being read back (answered once their reads are).
        var readBack = ReadBackScheduler()
        /// Commands the scheduler finished whose settlement is not stored yet: not to be read back as new.
        var unpersisted = Set<Int64>()
        /// Settlements being stored.
        var writes = 0
        /// While the loop reads the journal: the commands whose settlement was stored meanwhile (the read may have
        /// seen them before their reply was), so that they are not taken in again.
        var storedDuringRead: Set<Int64>?
    }

    /// The loop's own state (only the loop task touches it).
    private struct Loop {
        /// The journal has been read up to this id.
        var cursor: Int64 = 0
        /// Read the journal for commands (at start-up, and after the hand-off overflowed).
        var journalBehind = true
        var overflowsRead = 0
        var tokenPending = false
        var readTokenPending = Set<ReadBackScheduler.Kind>()
        var timer: Date?
        var draining = false
        var gaugesAt = Date.distantPast
        var gaugesIdle = false
    }

    // MARK: - Commands in

    private func ingest(loop: inout Loop, now: Date, group: inout DiscardingTaskGroup) async {
        var capacity = configuration.maxPendingCommands - core.withLock { $0.scheduler.commandCount }
        let (handed, overflows) = shared.withLock { shared in
            let taken = Array(shared.handoff.prefix(max(0, capacity)))
            shared.handoff.removeFirst(taken.count)
            return (taken, shared.handoffOverflows)
        }
        for (id, accepted) in handed where id > loop.cursor {
            admit(JournaledCommand(id: id, accepted: accepted), now: now, group: &group)
        }
        if overflows != loop.overflowsRead { loop.journalBehind = true }
        // Read until the journal is caught up or the scheduler is full: a read that finds only commands taken in
        // already must go on at once (no event would come to resume it).
        while loop.journalBehind {
            capacity = configuration.maxPendingCommands - core.withLock { $0.scheduler.commandCount }
            guard capacity > 0 else { return }
            let limit = max(capacity, 256)
            core.withLock { $0.storedDuringRead = [] }
            let read: [JournaledCommand]
            do {
                read = try await journal.unansweredCommands(after: loop.cursor, limit: limit)
            } catch {
                journalFailed(error)
            }
            let storedMeanwhile = core.withLock { core in
                defer { core.storedDuringRead = nil }
                return core.storedDuringRead ?? []
            }
            // The cursor passes only the rows dealt with: taken in now, or known already.
            var room = capacity
            var processed = loop.cursor
            for command in read {
                let known =
                    storedMeanwhile.contains(command.id)
                    || core.withLock {
                        $0.scheduler.contains(command.id) || $0.unpersisted.contains(command.id)
                            || $0.readBack.contains(command.id)
                    }
                if !known {
                    guard room > 0 else { break }
                    admit(command, now: now, group: &group)
                    room -= 1
                }
                processed = command.id
            }
            loop.cursor = max(loop.cursor, processed)
            if read.count < limit && processed == (read.last?.id ?? processed) {
                loop.journalBehind = false
                loop.overflowsRead = overflows
            }
        }
    }

    private func admit(_ command: JournaledCommand, now: Date, group: inout DiscardingTaskGroup) {
        shared.withLock { $0.counters.started += 1 }
        if command.accepted.command.dryRun {
            persist(dryRun(command, now: now), in: &group)
            return
        }
        let settlement = core.withLock {
            $0.scheduler.add(
                command.id,
                accepted: command.accepted,
                outcomes: command.outcomes,
                calls: command.calls,
                retryRound: command.retryRound,
                now: now
            )
        }
        if let settlement { persist(settlement, in: &group) }
    }

    // MARK: - Calls out

    /// Makes each call in a task of its own, which also applies the result and stores the settlement (the call
    /// with it): the loop hears of it only to start what the freed slot allows.
    private func start(_ plans: [CallPlan], in group: inout DiscardingTaskGroup) {
        guard !plans.isEmpty else { return }
        shared.withLock { $0.counters.calls += plans.count }
        for plan in plans {
            metrics.callStarted(names: plan.deviceNames.count, waited: plan.waited)
            group.addTask {
                let result = await self.make(plan)
                let settlement = self.core.withLock { core in
                    let settlement = core.scheduler.finish(plan.id, result: result, now: Date())
                    core.unpersisted.formUnion(settlement.completed.map(\.id))
                    core.writes += 1
                    return settlement
                }
                await self.store(settlement)
                self.emit.yield(.ended)
            }
        }
    }

    private func make(_ plan: CallPlan) async -> CallResult {
        let request = CancelOTATaskByDeviceRequest(
            productKey: plan.key.productKey,
            firmwareId: plan.key.firmwareId,
            deviceNames: plan.deviceNames,
            jobId: plan.key.jobId,
            iotInstanceId: plan.key.iotInstanceId
        )
        let deadline = plan.deadline.map { ContinuousClock.now + .seconds($0.timeIntervalSinceNow) }
        // The platform client's lines about this call (attempts, retries) name the commands it carries.
        let commands = CommandLog.call(correlationIds: core.withLock { $0.scheduler.correlationIds(of: plan) })
        let started = ContinuousClock.now
        let result = await platform.cancelOTATaskByDevice(
            request,
            deadline: deadline,
            admitted: true,
            logMetadata: commands
        )
        metrics.platformCall(result.result.map { _ in }, duration: ContinuousClock.now - started)
        metrics.throttledAnswers(result.throttledAttempts)
        let callResult = CallResult(result)
        if let line = CommandLog.callEnded(callResult, metadata: commands) { logger.log(line) }
        return callResult
    }

    // MARK: - Results stored

    /// Stores a settlement the loop made (expiry, a command finished at once, a dry run) in a task of its own.
    private func persist(_ settlement: Settlement, in group: inout DiscardingTaskGroup) {
        guard !settlement.isEmpty else { return }
        core.withLock {
            $0.unpersisted.formUnion(settlement.completed.map(\.id))
            $0.writes += 1
        }
        group.addTask {
            await self.store(settlement)
            self.emit.yield(.ended)
        }
    }

    /// Stores what the scheduler settled in one transaction, then hands the replies to the publisher.
    ///
    /// A finished command to be read back is held out of the transaction (its segment outcomes are stored, its
    /// reply is not) and handed to the read-back once they are: a crash meanwhile leaves it unanswered, to be
    /// read back after the restart.
    private func store(_ settlement: Settlement, readBackDone: Bool = false) async {
        var settlement = settlement
        let finished = settlement.completed.map(\.id)
        var toReadBack = [(CompletedCommand, VerifyPolicy.Decision)]()
        if !readBackDone {
            var answered = [CompletedCommand]()
            for completed in settlement.completed {
                let decision = configuration.verify.decision(
                    for: completed.accepted.command,
                    deviceCount: completed.deviceNames.count
                )
                if decision == .notRead {
                    answered.append(completed)
                } else {
                    toReadBack.append((completed, decision))
                }
            }
            settlement.completed = answered
        }
        let ids = settlement.completed.map(\.id)
        defer {
            core.withLock {
                // The commands held out are the read-back's now (it answers for them), no longer unpersisted.
                $0.unpersisted.subtract(finished)
                $0.storedDuringRead?.formUnion(ids)
                $0.writes -= 1
            }
        }
        guard !settlement.isEmpty || !toReadBack.isEmpty else { return }
        if settlement.bisected { metrics.bisected() }
        if settlement.requeued > 0 { metrics.requeued(settlement.requeued) }
        shared.withLock {
            $0.counters.requeued += settlement.requeued
            $0.counters.executed += ids.count
            $0.counters.expired += settlement.completed.count(where: { $0.reply.status == .expired })
        }
        var stored = [PendingReply]()
        if !settlement.isEmpty {
            do {
                stored = try await journal.record(settlement, at: Date())
            } catch {
                journalFailed(error)
            }
        }
        if !toReadBack.isEmpty {
            // Commands with nothing to read are answered at once, in a settlement of their own.
            let atOnce = core.withLock { core in
                var atOnce = [CompletedCommand]()
                for (completed, decision) in toReadBack {
                    if let done = core.readBack.add(completed, decision: decision) { atOnce.append(done) }
                }
                core.unpersisted.formUnion(atOnce.map(\.id))
                core.writes += atOnce.isEmpty ? 0 : 1
                return atOnce
            }
            if !atOnce.isEmpty {
                var direct = Settlement()
                direct.completed = atOnce
                await store(direct, readBackDone: true)
            }
            emit.yield(.wake)
        }
        // Stored: as good as sent; the publisher takes it from here.
        publisher.enqueue(stored)
        let now = Date()
        for completed in settlement.completed {
            let reply = completed.reply
            metrics.completed(reply, duration: .seconds(now.timeIntervalSince(completed.accepted.receivedAt)))
            logger.log(CommandLog.completed(completed))
        }
    }
}
