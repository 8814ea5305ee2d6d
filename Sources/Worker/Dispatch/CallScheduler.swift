// SPDX-License-Identifier: Apache-2.0
public import Foundation
import PlatformAPI

/// The dispatcher's decisions, without I/O: which device names wait for which key, which go into the next call,
/// what a call's result means for each command, when a command is finished and what its reply says.
///
/// Natural batching: names wait in one queue per ``BatchKey``; the dispatcher asks for the next call only when
/// the rate limiter has a token, so a lone command goes out at once, and while tokens are short names pile up
/// and each call carries as many as it can (up to ``Configuration/maxNamesPerCall``). Keys take turns (the
/// longest waiting first, then round-robin), so a 10,000-device command cannot starve a one-device command of
/// another key.
///
/// The invariant: every command's outcome is the one it would have had alone. A command's names are cut into
/// the segments it would send alone; a call packs whole segments, so a failure can always be traced to the
/// segments it concerns (``FailureScope``): a transient failure puts them back at the head of their queue with
/// backoff; a failure that names a device fails that name alone and sends the rest of its segment again (one
/// unknown device does not keep 199 others from being cancelled); another permanent failure of a shared call is
/// split until it concerns one segment; a segment's final failure is its own.
///
/// Time comes in as arguments (`now`), randomness from a seeded generator: every decision is reproducible.
public struct CallScheduler: Sendable {
    public struct Configuration: Sendable {
        /// Most distinct device names in one call. Default 200 (the platform's limit).
        public var maxNamesPerCall: Int
        /// How long a key's first waiting name waits for others before its call may go (Kafka's `linger.ms`).
        /// Default 0: a call goes as soon as a token is free.
        public var coalesceWindow: TimeInterval
        /// First delay before names that failed transiently are sent again; doubles per round. Default 1 s.
        public var initialRetryDelay: TimeInterval
        /// Longest such delay. Default 30 s.
        public var maximumRetryDelay: TimeInterval
        /// How many waiting segments the packer looks at for ones that fit in a call. Default 4,096.
        public var packingScanLimit: Int
        /// The account calls are signed with (part of every ``BatchKey``). Default "".
        public var account: String

        public init(
            maxNamesPerCall: Int = 200,
            coalesceWindow: TimeInterval = 0,
            initialRetryDelay: TimeInterval = 1,
            maximumRetryDelay: TimeInterval = 30,
            packingScanLimit: Int = 4096,
            account: String = ""
        ) {
            self.maxNamesPerCall = max(1, maxNamesPerCall)
            self.coalesceWindow = max(0, coalesceWindow)
            self.initialRetryDelay = initialRetryDelay
            self.maximumRetryDelay = maximumRetryDelay
            self.packingScanLimit = max(1, packingScanLimit)
            self.account = account
        }
    }

    /// A command being served.
    struct Entry: Sendable {
        var accepted: AcceptedCommand
        var key: BatchKey
        var segments: [[String]]
        /// The latest outcome of each segment (final, or the attempts of transient failures so far).
        var outcomes: [BatchOutcome?]
        /// The call carrying each segment now.
        var carriedBy: [Int64?]
        /// Transient-failure rounds per segment (for the backoff).
        var rounds: [Int]
        var calls: [CallTrace] = []
        /// Segments not final yet.
        var unsettled: Int
        /// Segments waiting in a queue (neither final nor in a call).
        var waiting: Int
        /// Whether the journal holds segment outcomes of this command (to delete when it completes).
        var outcomesStored = false
        /// The names of a segment still to send: all but those that failed on their own, which its outcome
        /// keeps (``BatchOutcome/excluded``, the one place they are held, so the journal stores them with it).
        func sendable(_ index: Int) -> [String] {
            guard let excluded = outcomes[index]?.excluded, !excluded.isEmpty else { return segments[index] }
            return segments[index].filter { excluded[$0] == nil }
        }
    }

    /// A segment in its key's queue.
    struct Waiting: Sendable {
        var segment: SegmentID
        /// Not sent before this time (backoff after a transient failure).
        var readyAt: Date
        /// When it started waiting (first enqueued).
        var since: Date
        var group: Int64?
        var names: Int
    }

    public let configuration: Configuration
    private(set) var entries: [Int64: Entry] = [:]
    private var queues: [BatchKey: [Waiting]] = [:]
    /// Keys with waiting segments, in the order they are served (round-robin; a new key joins at the end).
    private var order: [BatchKey] = []
    private var inFlight: [Int64: CallPlan] = [:]
    private var nextCallId: Int64
    private var nextGroup: Int64 = 1
    /// The earliest deadline among commands with waiting segments (nil: none, or not known to be earlier).
    private var nextExpiry: Date?
    /// Times at which backed-off segments become ready (only the future ones matter).
    private var backoffs: [Date] = []
    private var random: SplitMix64
    /// Names waiting in all queues (a name wanted by two segments counts twice).
    public private(set) var waitingNames = 0

    /// - Parameters:
    ///   - firstCallId: the id of the first call (past every call id stored already).
    ///   - seed: the seed of the backoff jitter.
    public init(configuration: Configuration = .init(), firstCallId: Int64 = 1, seed: UInt64 = 0x9E37_79B9) {
        self.configuration = configuration
        self.nextCallId = max(1, firstCallId)
        self.random = SplitMix64(seed: seed)
    }

    // MARK: - State for metrics and tests

    /// Commands being served (waiting or in a call).
    public var commandCount: Int { entries.count }
    /// Commands with names waiting in a queue.
    public var waitingCommands: Int { entries.values.count(where: { $0.waiting > 0 }) }
    /// Keys with names waiting.
    public var waitingKeys: Int { order.count }
    /// The most names waiting on one key.
    public var largestQueue: Int { queues.values.map { $0.reduce(0) { $0 + $1.names } }.max() ?? 0 }
    /// Calls made and not finished.
    public var callsInFlight: Int { inFlight.count }
    /// Whether the command is being served.
    public func contains(_ id: Int64) -> Bool { entries[id] != nil }

    /// The correlation ids of the commands whose names `plan` carries, each command once, in the order of its
    /// parts (`nil` for a command that has none, or that is no longer served).
    public func correlationIds(of plan: CallPlan) -> [String?] {
        var seen = Set<Int64>()
        return plan.parts.compactMap { part in
            seen.insert(part.command).inserted ? .some(entries[part.command]?.accepted.correlationId) : nil
        }
    }

    // MARK: - Commands in

    /// Takes a command in.
    ///
    /// - Parameters:
    ///   - outcomes: what the journal holds for its segments (after a restart): final ones are not sent again.
    ///   - calls: the answered calls that carried its names before (after a restart), for its reply.
    ///   - retryRound: transient rounds so far (from a journal of an earlier version).
    /// - Returns: a settlement when the command is finished at once (every segment final, or its deadline past).
    public mutating func add(
        _ id: Int64,
        accepted: AcceptedCommand,
        outcomes: [Int: BatchOutcome] = [:],
        calls: [CallTrace] = [],
        retryRound: Int = 0,
        now: Date
    ) -> Settlement? {
        guard entries[id] == nil else { return nil }
        // The same cut as the calls a dry run plans: the calls the command would make alone.
        let command = accepted.command
        let segments = CancelOTATaskByDeviceRequest.batches(
            productKey: command.productKey,
            firmwareId: command.firmwareId,
            deviceNames: command.deviceNames,
            jobId: command.jobId,
            iotInstanceId: command.iotInstanceId,
            maxPerCall: configuration.maxNamesPerCall
        ).map(\.deviceNames)
        var slim = accepted
        // The names live in `segments` from here on; the payload is in the journal.
        slim.command.deviceNames = []
        slim.payload = []
        slim.digest = []
        var entry = Entry(
            accepted: slim,
            key: BatchKey(command: accepted.command, account: configuration.account),
            segments: segments,
            outcomes: segments.indices.map { outcomes[$0] },
            carriedBy: Array(repeating: nil, count: segments.count),
            rounds: Array(repeating: retryRound, count: segments.count),
            calls: calls,
            unsettled: 0,
            waiting: 0,
            outcomesStored: !outcomes.isEmpty
        )
        let expired = accepted.deadline.map { $0 <= now } ?? false
        var settlement = Settlement()
        for index in segments.indices where entry.outcomes[index]?.final != true {
            if expired {
                let outcome = Self.expiredOutcome(entry.outcomes[index])
                entry.outcomes[index] = outcome
                settlement.outcomes[SegmentID(command: id, index: index)] = outcome
                continue
            }
            entry.unsettled += 1
            entry.waiting += 1
            enqueue(
                Waiting(
                    segment: SegmentID(command: id, index: index),
                    readyAt: now,
                    since: now,
                    group: nil,
                    names: entry.sendable(index).count
                ),
                key: entry.key,
                atHead: false
            )
        }
        if entry.unsettled == 0 {
            settlement.completed.append(complete(id, entry, now: now))
            return settlement
        }
        if let deadline = accepted.deadline { nextExpiry = min(nextExpiry ?? deadline, deadline) }
        entries[id] = entry
        return settlement.isEmpty ? nil : settlement
    }

    // MARK: - Calls out

    /// Whether a call could go now (the dispatcher then waits for a token and calls ``nextCall(now:)``).
    public func hasReadyCall(now: Date) -> Bool {
        order.contains { isReady($0, now: now) }
    }

    /// The next call to make: the first ready key in turn, packed with as many whole segments as fit.
    ///
    /// - Returns: `nil` when no key is ready (backoff, coalescing window, or nothing waits).
    public mutating func nextCall(now: Date) -> CallPlan? {
        guard let position = order.firstIndex(where: { isReady($0, now: now) }) else { return nil }
        let key = order.remove(at: position)
        let plan = pack(key, now: now)
        if queues[key]?.isEmpty == false { order.append(key) }
        guard let plan else { return nil }
        inFlight[plan.id] = plan
        return plan
    }

    private func isReady(_ key: BatchKey, now: Date) -> Bool {
        guard let queue = queues[key] else { return false }
        var names = 0
        var oldest: Date?
        for waiting in queue where waiting.readyAt <= now && !isExpired(waiting.segment, now: now) {
            if waiting.group != nil || configuration.coalesceWindow <= 0 { return true }
            oldest = min(oldest ?? waiting.since, waiting.since)
            names += waiting.names
            if names >= configuration.maxNamesPerCall { return true }
        }
        guard let oldest else { return false }
        // The same arithmetic as ``nextWake(now:)``: a wake-up at that time finds the key ready.
        return oldest.addingTimeInterval(configuration.coalesceWindow) <= now
    }

    private func isExpired(_ segment: SegmentID, now: Date) -> Bool {
        entries[segment.command]?.accepted.deadline.map { $0 <= now } ?? false
    }

    private mutating func pack(_ key: BatchKey, now: Date) -> CallPlan? {
        guard var queue = queues[key] else { return nil }
        let limit = configuration.maxNamesPerCall
        var names = [String]()
        var seen = Set<String>()
        var parts = [SegmentID]()
        var waited = [TimeInterval]()
        var taken = Set<Int>()
        var group: Int64?
        var scanned = 0
        for (position, waiting) in queue.enumerated() {
            if scanned >= configuration.packingScanLimit || seen.count >= limit { break }
            guard waiting.readyAt <= now, !isExpired(waiting.segment, now: now) else { continue }
            scanned += 1
            // A bisection group is sent on its own; the first ready entry decides which kind of call this is.
            if parts.isEmpty { group = waiting.group }
            guard waiting.group == group, let entry = entries[waiting.segment.command] else { continue }
            let segmentNames = entry.sendable(waiting.segment.index)
            let new = segmentNames.filter { !seen.contains($0) }
            guard seen.count + new.count <= limit else { continue }
            names += new
            seen.formUnion(new)
            parts.append(waiting.segment)
            waited.append(now.timeIntervalSince(waiting.since))
            taken.insert(position)
        }
        guard !parts.isEmpty else { return nil }
        queue = queue.enumerated().filter { !taken.contains($0.offset) }.map(\.element)
        queues[key] = queue.isEmpty ? nil : queue
        let id = nextCallId
        nextCallId += 1
        var deadline: Date?
        for part in parts {
            entries[part.command]?.carriedBy[part.index] = id
            entries[part.command]?.waiting -= 1
            waitingNames -= entries[part.command]?.sendable(part.index).count ?? 0
            if let own = entries[part.command]?.accepted.deadline { deadline = min(deadline ?? own, own) }
        }
        return CallPlan(
            id: id,
            key: key,
            deviceNames: names,
            parts: parts,
            deadline: deadline,
            waited: waited,
            group: group,
            sentAt: now
        )
    }

    // MARK: - Results in

    /// Applies a call's result: decides each carried segment's fate and finishes the commands it completes.
    public mutating func finish(_ callId: Int64, result: CallResult, now: Date) -> Settlement {
        guard let plan = inFlight.removeValue(forKey: callId) else { return Settlement() }
        var settlement = Settlement()
        settlement.call = (plan, result)
        let shared = plan.isShared
        for part in plan.parts {
            guard entries[part.command] != nil else { continue }
            entries[part.command]!.carriedBy[part.index] = nil
            entries[part.command]!.calls.append(
                CallTrace(callId: plan.id, requestId: result.requestId, attempts: result.attempts, shared: shared)
            )
        }

        switch result.kind {
        case .succeeded:
            for part in plan.parts {
                settle(
                    part,
                    BatchOutcome(succeeded: true, final: true, requestId: result.requestId, attempts: 0),
                    addingAttempts: result.attempts,
                    into: &settlement
                )
            }
        case .interrupted:
            for part in plan.parts {
                record(part, failure: result, final: false, into: &settlement)
                requeue([part], group: plan.group, readyAt: now, now: now)
            }
            settlement.requeued += plan.parts.count
        case .transientFailure:
            var retry = [SegmentID]()
            for part in plan.parts {
                let deadline = entries[part.command]?.accepted.deadline
                if let deadline, deadline > now {
                    record(part, failure: result, final: false, into: &settlement)
                    retry.append(part)
                } else {
                    record(part, failure: result, final: true, into: &settlement)
                }
            }
            if !retry.isEmpty {
                let round = retry.compactMap { entries[$0.command]?.rounds[$0.index] }.max() ?? 0
                for part in retry { entries[part.command]?.rounds[part.index] += 1 }
                var readyAt = now.addingTimeInterval(retryDelay(round: round))
                let deadlines = retry.compactMap { entries[$0.command]?.accepted.deadline }
                if let latest = deadlines.max() { readyAt = min(readyAt, latest) }
                backoffs.append(readyAt)
                requeue(retry, group: plan.group, readyAt: readyAt, now: now)
                settlement.requeued += retry.count
            }
        case .permanentFailure:
            var scope = FailureScope.of(
                code: result.code ?? "",
                message: result.message ?? "",
                deviceNames: plan.deviceNames
            )
            // One segment alone cannot be split: a failure that names nobody is its own.
            if plan.parts.count == 1, scope == .unknown { scope = .key }
            switch scope {
            case .key:
                for part in plan.parts { record(part, failure: result, final: true, into: &settlement) }
            case .device(let name):
                let culprits = culprits(of: plan, named: name)
                if culprits.isEmpty && plan.parts.count == 1 {
                    record(plan.parts[0], failure: result, final: true, into: &settlement)
                } else if culprits.isEmpty {
                    bisect(plan, result: result, now: now, into: &settlement)
                } else {
                    // The named device fails on its own; the rest of its segments and the other segments go again.
                    var again = Set<SegmentID>()
                    for part in plan.parts where !culprits.contains(part) {
                        record(part, failure: result, final: false, into: &settlement)
                        again.insert(part)
                    }
                    for part in culprits {
                        if exclude(name, from: part, failure: result, into: &settlement) {
                            again.insert(part)
                        } else {
                            record(part, failure: result, final: true, into: &settlement)
                        }
                    }
                    let requeued = plan.parts.filter { again.contains($0) }
                    requeue(requeued, group: plan.group, readyAt: now, now: now)
                    settlement.requeued += requeued.count
                }
            case .unknown:
                bisect(plan, result: result, now: now, into: &settlement)
            }
        }
        completeFinished(plan.parts.map(\.command), now: now, into: &settlement)
        return settlement
    }

    /// Segments that a failure naming `name` belongs to: those that contain the name and whose names before it (in
    /// their own order) were all sent before it, so that alone they would have stopped at the same name.
    private func culprits(of plan: CallPlan, named name: String) -> Set<SegmentID> {
        var position = [String: Int]()
        for (index, sent) in plan.deviceNames.enumerated() { position[sent] = index }
        guard let failing = position[name] else { return [] }
        var result = Set<SegmentID>()
        for part in plan.parts {
            guard let names = entries[part.command]?.sendable(part.index),
                let own = names.firstIndex(of: name)
            else { continue }
            if names[..<own].allSatisfy({ (position[$0] ?? .max) < failing }) { result.insert(part) }
        }
        return result
    }

    /// Takes `name` out of a segment that failed because of it: the name's failure is final, the rest of the
    /// segment waits to be sent again. The exclusion is stored with the segment's (not final) outcome.
    /// - Returns: `false` when the name is the segment's last one to send (the segment's failure is then final).
    private mutating func exclude(
        _ name: String,
        from part: SegmentID,
        failure result: CallResult,
        into settlement: inout Settlement
    ) -> Bool {
        guard var entry = entries[part.command] else { return false }
        let names = entry.sendable(part.index)
        guard names.count > 1, names.contains(name) else { return false }
        var outcome =
            entry.outcomes[part.index] ?? BatchOutcome(succeeded: false, final: false, transient: true, attempts: 0)
        outcome.final = false
        outcome.excluded = (outcome.excluded ?? [:]).merging([
            name: BatchOutcome(
                succeeded: false,
                final: true,
                requestId: result.requestId,
                code: result.code,
                message: result.message,
                httpStatus: result.httpStatus,
                transient: false,
                attempts: result.attempts
            )
        ]) { _, new in new }
        entry.outcomes[part.index] = outcome
        entries[part.command] = entry
        settlement.outcomes[part] = outcome
        return true
    }

    private mutating func bisect(_ plan: CallPlan, result: CallResult, now: Date, into settlement: inout Settlement) {
        let middle = plan.parts.count / 2
        for half in [Array(plan.parts[..<middle]), Array(plan.parts[middle...])] where !half.isEmpty {
            for part in half { record(part, failure: result, final: false, into: &settlement) }
            let group = nextGroup
            nextGroup += 1
            requeue(half, group: group, readyAt: now, now: now)
        }
        settlement.requeued += plan.parts.count
        settlement.bisected = true
    }

    /// Records a failure of a segment: final (the command's answer for it), or the attempts so far.
    private mutating func record(
        _ part: SegmentID,
        failure result: CallResult,
        final: Bool,
        into settlement: inout Settlement
    ) {
        // A call that made no attempt (its deadline came first) tells nothing new: the last failure stands.
        if result.attempts == 0, var previous = entries[part.command]?.outcomes[part.index], !previous.succeeded,
            previous.code != nil
        {
            previous.final = final
            settle(part, previous, addingAttempts: 0, into: &settlement)
            return
        }
        let outcome = BatchOutcome(
            succeeded: false,
            final: final,
            requestId: result.requestId,
            code: result.code,
            message: result.message,
            httpStatus: result.httpStatus,
            transient: result.kind != .permanentFailure,
            attempts: 0
        )
        settle(part, outcome, addingAttempts: result.attempts, into: &settlement)
    }

    private mutating func settle(
        _ part: SegmentID,
        _ outcome: BatchOutcome,
        addingAttempts attempts: Int,
        into settlement: inout Settlement
    ) {
        guard var entry = entries[part.command] else { return }
        var outcome = outcome
        outcome.attempts = (entry.outcomes[part.index]?.attempts ?? 0) + attempts
        outcome.excluded = entry.outcomes[part.index]?.excluded
        entry.outcomes[part.index] = outcome
        if outcome.final { entry.unsettled -= 1 }
        entries[part.command] = entry
        settlement.outcomes[part] = outcome
    }

    private mutating func requeue(_ parts: [SegmentID], group: Int64?, readyAt: Date, now: Date) {
        guard let first = parts.first, let key = entries[first.command]?.key else { return }
        var front = [Waiting]()
        for part in parts {
            guard let entry = entries[part.command] else { continue }
            entries[part.command]?.waiting += 1
            if let deadline = entry.accepted.deadline { nextExpiry = min(nextExpiry ?? deadline, deadline) }
            front.append(
                Waiting(
                    segment: part,
                    readyAt: readyAt,
                    since: now,
                    group: group,
                    names: entry.sendable(part.index).count
                )
            )
        }
        for waiting in front.reversed() { enqueue(waiting, key: key, atHead: true) }
    }

    private mutating func enqueue(_ waiting: Waiting, key: BatchKey, atHead: Bool) {
        if queues[key] == nil {
            queues[key] = []
            order.append(key)
        }
        if atHead {
            queues[key]!.insert(waiting, at: 0)
        } else {
            queues[key]!.append(waiting)
        }
        waitingNames += waiting.names
    }

    // MARK: - Deadlines

    /// Finishes the waiting segments of commands whose deadline has passed: their last transient failure, or
    /// `DeadlineExceeded` when they were never sent, becomes final (what the command alone would have answered).
    public mutating func expire(now: Date) -> Settlement? {
        guard let due = nextExpiry, due <= now else { return nil }
        var settlement = Settlement()
        var touched = [Int64]()
        var next: Date?
        for (id, entry) in entries where entry.waiting > 0 {
            guard let deadline = entry.accepted.deadline else { continue }
            guard deadline <= now else {
                next = min(next ?? deadline, deadline)
                continue
            }
            touched.append(id)
        }
        for id in touched {
            guard var entry = entries[id] else { continue }
            var queue = queues[entry.key] ?? []
            queue.removeAll { waiting in
                guard waiting.segment.command == id else { return false }
                let outcome = Self.expiredOutcome(entry.outcomes[waiting.segment.index])
                entry.outcomes[waiting.segment.index] = outcome
                entry.unsettled -= 1
                entry.waiting -= 1
                waitingNames -= waiting.names
                settlement.outcomes[waiting.segment] = outcome
                return true
            }
            queues[entry.key] = queue.isEmpty ? nil : queue
            if queue.isEmpty { order.removeAll { $0 == entry.key } }
            entries[id] = entry
        }
        nextExpiry = next
        completeFinished(touched, now: now, into: &settlement)
        return settlement.isEmpty ? nil : settlement
    }

    /// The earliest time something may become possible without a new command or result: a deadline, the end of
    /// a backoff or of a coalescing window.
    public mutating func nextWake(now: Date) -> Date? {
        backoffs.removeAll { $0 <= now }
        var wake = nextExpiry
        if let backoff = backoffs.min() { wake = min(wake ?? backoff, backoff) }
        if configuration.coalesceWindow > 0 {
            for key in order {
                // Queues are in arrival order (requeued segments keep their first time): the first ready one is oldest.
                guard let since = queues[key]?.first(where: { $0.readyAt <= now })?.since else { continue }
                let ready = since.addingTimeInterval(configuration.coalesceWindow)
                if ready > now { wake = min(wake ?? ready, ready) }
            }
        }
        return wake
    }

    // MARK: - Completion

    private mutating func completeFinished(_ ids: [Int64], now: Date, into settlement: inout Settlement) {
        var done = Set<Int64>()
        for id in ids where !done.contains(id) {
            guard let entry = entries[id], entry.unsettled == 0 else { continue }
            done.insert(id)
            entries[id] = nil
            settlement.completed.append(complete(id, entry, now: now))
        }
        // The journal stores the outcomes of the commands that go on.
        for segment in settlement.outcomes.keys where entries[segment.command] != nil {
            entries[segment.command]?.outcomesStored = true
        }
    }

    private func complete(_ id: Int64, _ entry: Entry, now: Date) -> CompletedCommand {
        let reply = ReplyAssembly.reply(
            for: entry.accepted,
            segments: entry.segments,
            outcomes: entry.outcomes,
            calls: entry.calls,
            now: now
        )
        return CompletedCommand(
            id: id,
            accepted: entry.accepted,
            reply: reply,
            outcomesStored: entry.outcomesStored,
            deviceNames: entry.segments.flatMap { $0 }
        )
    }

    /// A waiting segment's answer once its command's deadline has passed.
    /// Names the segment took out keep their own failures.
    static func expiredOutcome(_ last: BatchOutcome?) -> BatchOutcome {
        if var last, !last.succeeded, last.code != nil {
            last.final = true
            return last
        }
        var expired = BatchOutcome(
            succeeded: false,
            final: true,
            code: "DeadlineExceeded",
            message: "the deadline passed before this call could be made",
            transient: true,
            attempts: last?.attempts ?? 0
        )
        expired.excluded = last?.excluded
        return expired
    }

    /// Exponential backoff with equal jitter, capped.
    private mutating func retryDelay(round: Int) -> TimeInterval {
        let base = min(
            configuration.maximumRetryDelay,
            configuration.initialRetryDelay * pow(2, Double(min(round, 20)))
        )
        return base / 2 + random.nextUnit() * base / 2
    }
}
