// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import PlatformAPI

/// The read-back's decisions, without I/O: which devices are read in which call, what an answer means for each
/// command waiting for it, and when a command's `devices` section is complete.
///
/// Reads coalesce like cancels: device names wait in one queue per job (or per product, for per-device reads),
/// the dispatcher asks for the next read only when that action's token bucket has a token, and a read takes up to
/// ``Configuration/namesPerRead`` distinct names of one queue, whichever commands want them. A name wanted by two
/// commands is read once for both.
///
/// Without a `jobId`, each device is read with `ListOTAUnfinishedTaskByDevice`: a task of the command's firmware
/// still unfinished makes it `stillActive`, and names the job it belongs to. That action lists no finished task,
/// so the other devices are then looked up in the jobs learnt that way with `ListOTATaskByJob` (cancelled,
/// succeeded, failed, or `noTask` when no learnt job has a task for them); when no job was learnt they stay
/// `unverified` (`NoJobKnown`): the platform offers no per-device read of finished tasks.
///
/// A read that fails leaves its devices `unverified` with the platform's code: the cancel's outcome stands.
public struct ReadBackScheduler: Sendable {
    public struct Configuration: Sendable {
        /// Most device names in one `ListOTATaskByJob` (`DeviceNames.N`), also its `PageSize`. Default 100 (the
        /// platform's largest page).
        public var namesPerRead: Int

        public init(namesPerRead: Int = ListOTATaskByJobRequest.maxPageSize) {
            self.namesPerRead = min(ListOTATaskByJobRequest.maxPageSize, max(1, namesPerRead))
        }
    }

    /// Which action's bucket a read needs.
    public enum Kind: Sendable, Hashable, CaseIterable {
        case byJob, byDevice

        /// The action a read of this kind calls, whose token bucket paces it.
        public var operation: any PlatformOperation.Type {
            switch self {
            case .byJob: ListOTATaskByJobRequest.self
            case .byDevice: ListOTAUnfinishedTaskByDeviceRequest.self
            }
        }
    }

    /// A read to make now.
    public struct ReadPlan: Sendable, Hashable {
        public enum Request: Sendable, Hashable {
            case byJob(ListOTATaskByJobRequest)
            case byDevice(ListOTAUnfinishedTaskByDeviceRequest)
        }
        public var id: Int64
        public var request: Request
        var queue: QueueKey
        /// The names the read answers for (for a per-device read, the one device).
        var names: [String]
        /// The commands waiting for each name (taken from the queue: a command that wants a name later waits for
        /// a read of its own, which cannot predate its cancel).
        var commands: [String: [Int64]]
        /// Tasks found on the earlier pages of the same read.
        var carried: [String: [OTATaskInfo]]

        public var kind: Kind {
            if case .byJob = request { .byJob } else { .byDevice }
        }

        /// The request to send.
        public var operation: any PlatformOperation {
            switch request {
            case .byJob(let request): request
            case .byDevice(let request): request
            }
        }
    }

    enum QueueKey: Sendable, Hashable {
        case job(jobId: String, productKey: String, iotInstanceId: String?)
        case device(productKey: String, iotInstanceId: String?)

        var kind: Kind {
            if case .job = self { .byJob } else { .byDevice }
        }
    }

    /// A command being read back.
    struct Entry: Sendable {
        var completed: CompletedCommand
        var names: [String]
        var verdicts: [String: DeviceVerdict] = [:]
        var byDevice: Bool
        /// Per-device mode: names whose device read found no unfinished task (to look up in the learnt jobs).
        var lookUp: [String] = []
        var deviceReadsLeft = 0
        var learntJobs: [String] = []
        /// Per-device mode, second step: what the learnt jobs' reads found for a name, and how many are left.
        var found: [String: [String]] = [:]
        var jobReadsLeft: [String: Int] = [:]
        var failures: [String: DeviceVerdict] = [:]
        var reads = 0
        var requestIds: [String] = []
    }

    public let configuration: Configuration
    private var entries: [Int64: Entry] = [:]
    private var queues: [QueueKey: [String]] = [:]
    private var waiters: [QueueKey: [String: [Int64]]] = [:]
    private var order: [Kind: [QueueKey]] = [:]
    private var continuations: [Kind: [ReadPlan]] = [:]
    private var inFlight: [Int64: ReadPlan] = [:]
    private var nextId: Int64 = 1

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Commands being read back.
    public var commandCount: Int { entries.count }
    /// Reads made and not finished.
    public var readsInFlight: Int { inFlight.count }
    /// Whether the command is being read back (it is not answered yet, but not to be taken in again).
    public func contains(_ id: Int64) -> Bool { entries[id] != nil }

    // MARK: - Commands in

    /// Takes in a command whose cancel calls are all answered.
    /// - Returns: the command with its `devices` section when nothing is to be read (nothing was cancelled, or
    ///   too many devices); `nil` when it now waits for reads.
    public mutating func add(_ completed: CompletedCommand, decision: VerifyPolicy.Decision) -> CompletedCommand? {
        let id = completed.id
        let command = completed.accepted.command
        var seen = Set<String>()
        let names = completed.deviceNames.filter { seen.insert($0).inserted }
        var entry = Entry(completed: completed, names: names, byDevice: false)
        let anyCalled = (completed.reply.calls ?? 0) > 0
        switch decision {
        case .notRead:
            return completed
        case .tooManyDevices(let limit):
            return finished(
                entry,
                all: .unverified(
                    code: "TooManyDevicesToVerify",
                    message:
                        "without a jobId each device costs one read; this command has \(names.count) devices, more "
                        + "than --verify-max-devices (\(limit))"
                )
            )
        case _ where names.isEmpty:
            return finished(entry, all: nil)
        case _ where !anyCalled:
            return finished(
                entry,
                all: .unverified(code: "NotCalled", message: "no cancel call was made, so nothing was read back")
            )
        case .byJob(let jobId):
            entries[id] = entry
            let key = QueueKey.job(jobId: jobId, productKey: command.productKey, iotInstanceId: command.iotInstanceId)
            for name in names { enqueue(name, key: key, command: id) }
        case .byDevice:
            entry.byDevice = true
            entry.deviceReadsLeft = names.count
            entries[id] = entry
            let key = QueueKey.device(productKey: command.productKey, iotInstanceId: command.iotInstanceId)
            for name in names { enqueue(name, key: key, command: id) }
        }
        return nil
    }

    private mutating func enqueue(_ name: String, key: QueueKey, command: Int64) {
        if waiters[key]?[name] == nil {
            if queues[key] == nil {
                queues[key] = []
                order[key.kind, default: []].append(key)
            }
            queues[key]!.append(name)
        }
        waiters[key, default: [:]][name, default: []].append(command)
    }

    // MARK: - Reads out

    /// Whether a read of this kind could go now (the dispatcher then takes a token of its action).
    public func hasReadyRead(_ kind: Kind) -> Bool {
        !(continuations[kind] ?? []).isEmpty || !(order[kind] ?? []).isEmpty
    }

    /// The next read of this kind: the next page of a read first, then the next queue in turn.
    public mutating func nextRead(_ kind: Kind) -> ReadPlan? {
        if var pending = continuations[kind], !pending.isEmpty {
            var plan = pending.removeFirst()
            continuations[kind] = pending
            plan.id = takeId()
            inFlight[plan.id] = plan
            return plan
        }
        guard var keys = order[kind], !keys.isEmpty else { return nil }
        let key = keys.removeFirst()
        var queue = queues[key] ?? []
        let take = kind == .byJob ? configuration.namesPerRead : 1
        let names = Array(queue.prefix(take))
        queue.removeFirst(names.count)
        if queue.isEmpty {
            queues[key] = nil
        } else {
            queues[key] = queue
            keys.append(key)
        }
        order[kind] = keys
        guard !names.isEmpty else { return nil }
        let request: ReadPlan.Request
        switch key {
        case .job(let jobId, _, let instance):
            request = .byJob(
                ListOTATaskByJobRequest(
                    jobId: jobId,
                    deviceNames: names,
                    pageSize: configuration.namesPerRead,
                    currentPage: 1,
                    iotInstanceId: instance
                )
            )
        case .device(let productKey, let instance):
            request = .byDevice(
                ListOTAUnfinishedTaskByDeviceRequest(
                    productKey: productKey,
                    deviceName: names[0],
                    iotInstanceId: instance
                )
            )
        }
        var commands = [String: [Int64]]()
        for name in names { commands[name] = waiters[key]?.removeValue(forKey: name) ?? [] }
        if waiters[key]?.isEmpty == true { waiters[key] = nil }
        let plan = ReadPlan(id: takeId(), request: request, queue: key, names: names, commands: commands, carried: [:])
        inFlight[plan.id] = plan
        return plan
    }

    private mutating func takeId() -> Int64 {
        defer { nextId += 1 }
        return nextId
    }

    /// The correlation ids of the commands a read serves (for its log lines).
    public func correlationIds(of plan: ReadPlan) -> [String?] {
        var seen = Set<Int64>()
        var ids = [String?]()
        for name in plan.names {
            for command in plan.commands[name] ?? [] where seen.insert(command).inserted {
                ids.append(entries[command]?.completed.accepted.correlationId)
            }
        }
        return ids
    }

    // MARK: - Results in

    /// Applies a read's answer.
    /// - Returns: the commands it completed, their replies with the `devices` section.
    public mutating func finish(_ id: Int64, result: PlatformReadResult, now: Date) -> [CompletedCommand] {
        guard var plan = inFlight.removeValue(forKey: id) else { return [] }
        var perName = plan.carried
        var failure: DeviceVerdict?
        switch result.result {
        case .success(let page):
            for task in page.tasks { perName[task.deviceName, default: []].append(task) }
            if case .byJob(var request) = plan.request, let pages = page.pageCount, request.currentPage < pages {
                // More pages of the same read: it goes on first, and its devices wait for it.
                request.currentPage += 1
                plan.request = .byJob(request)
                plan.carried = perName
                continuations[plan.kind, default: []].insert(plan, at: 0)
                note(result, for: plan)
                return []
            }
        case .failure(let error):
            failure = Self.verdict(for: error)
        }
        note(result, for: plan)
        var touched = [Int64]()
        for name in plan.names {
            for command in plan.commands[name] ?? [] {
                touched.append(command)
                apply(failure, tasks: perName[name] ?? [], name: name, queue: plan.queue, command: command)
            }
        }
        var done = [CompletedCommand]()
        var seen = Set<Int64>()
        for command in touched where seen.insert(command).inserted {
            guard let entry = entries[command], entry.verdicts.count == entry.names.count else { continue }
            entries[command] = nil
            done.append(finished(entry, all: nil, now: now))
        }
        return done
    }

    /// Forgets a read the worker stopped (shutdown): nothing is decided, its commands stay unanswered, to be read
    /// back after the restart.
    public mutating func abandon(_ id: Int64) {
        inFlight[id] = nil
    }

    /// Counts the read and its request id for every command it serves.
    private mutating func note(_ result: PlatformReadResult, for plan: ReadPlan) {
        var seen = Set<Int64>()
        for name in plan.names {
            for command in plan.commands[name] ?? [] where seen.insert(command).inserted {
                entries[command]?.reads += 1
                if let requestId = result.requestIds.last { entries[command]?.requestIds.append(requestId) }
            }
        }
    }

    private mutating func apply(
        _ failure: DeviceVerdict?,
        tasks: [OTATaskInfo],
        name: String,
        queue: QueueKey,
        command id: Int64
    ) {
        guard var entry = entries[id] else { return }
        let command = entry.completed.accepted.command
        let ownTasks = tasks.filter {
            ($0.productKey.isEmpty || $0.productKey == command.productKey)
                && ($0.firmwareId.isEmpty || $0.firmwareId == command.firmwareId)
        }
        switch (queue, entry.byDevice) {
        case (.job, false):
            entry.verdicts[name] = failure ?? DeviceVerdict.of(statuses: ownTasks.map(\.taskStatus))
        case (.device, _):
            entry.deviceReadsLeft -= 1
            if let failure {
                entry.verdicts[name] = failure
            } else if !ownTasks.isEmpty {
                entry.verdicts[name] = DeviceVerdict.of(statuses: ownTasks.map(\.taskStatus))
                for job in ownTasks.map(\.jobId) where !job.isEmpty && !entry.learntJobs.contains(job) {
                    entry.learntJobs.append(job)
                }
            } else {
                entry.lookUp.append(name)
            }
            if entry.deviceReadsLeft == 0 { startLookUps(&entry, id: id) }
        case (.job, true):
            if let failure { entry.failures[name] = failure }
            entry.found[name, default: []] += ownTasks.map(\.taskStatus)
            entry.jobReadsLeft[name, default: 1] -= 1
            if entry.jobReadsLeft[name] == 0 {
                let statuses = entry.found[name] ?? []
                entry.verdicts[name] =
                    statuses.isEmpty ? (entry.failures[name] ?? .noTask) : DeviceVerdict.of(statuses: statuses)
            }
        }
        entries[id] = entry
    }

    /// Per-device mode, once every device was read: looks the devices without an unfinished task up in the jobs
    /// learnt from the others, or leaves them unverified when none was learnt.
    private mutating func startLookUps(_ entry: inout Entry, id: Int64) {
        guard !entry.lookUp.isEmpty else { return }
        guard !entry.learntJobs.isEmpty else {
            for name in entry.lookUp {
                entry.verdicts[name] = .unverified(
                    code: "NoJobKnown",
                    message:
                        "no task of this firmware is unfinished on the device; without a jobId the platform lists "
                        + "no finished task by device, so cancelled, upgraded and missing tasks look alike"
                )
            }
            return
        }
        let command = entry.completed.accepted.command
        for name in entry.lookUp { entry.jobReadsLeft[name] = entry.learntJobs.count }
        for job in entry.learntJobs {
            let key = QueueKey.job(jobId: job, productKey: command.productKey, iotInstanceId: command.iotInstanceId)
            for name in entry.lookUp { enqueue(name, key: key, command: id) }
        }
    }

    /// A failed read's verdict for its devices: a device the platform does not know has no task; anything else
    /// leaves it unverified with the platform's (or the worker's) code.
    static func verdict(for error: PlatformAPIError) -> DeviceVerdict {
        if error.platformCode == "iot.device.NotExistedDevice" { return .noTask }
        let code = error.platformCode ?? CallResult.workerCode(error.code)
        return .unverified(code: code, message: "the read-back failed: \(String(error.message.prefix(256)))")
    }

    // MARK: - Completion

    private func finished(_ entry: Entry, all verdict: DeviceVerdict?, now: Date? = nil) -> CompletedCommand {
        var completed = entry.completed
        var groups = CancelReply.DeviceGroups()
        var reasons = [String: (message: String, count: Int)]()
        var reasonOrder = [String]()
        for name in entry.names {
            switch verdict ?? entry.verdicts[name] ?? .unverified(code: "Unknown", message: "no answer") {
            case .canceled: groups.canceled.append(name)
            case .alreadyUpgraded: groups.alreadyUpgraded.append(name)
            case .failed: groups.failed.append(name)
            case .stillActive: groups.stillActive.append(name)
            case .noTask: groups.noTask.append(name)
            case .unverified(let code, let message):
                groups.unverified.append(name)
                if reasons[code] == nil { reasonOrder.append(code) }
                reasons[code, default: (message, 0)].count += 1
            }
        }
        groups.unverifiedReasons = reasonOrder.map {
            CancelReply.UnverifiedReason(code: $0, message: reasons[$0]!.message, deviceCount: reasons[$0]!.count)
        }
        groups.reads = entry.reads
        groups.requestIds = entry.requestIds
        // `cancelledDevices` keeps what the read-back did not contradict: confirmed, or not known otherwise.
        let kept = Set(groups.canceled).union(groups.unverified)
        completed.reply.cancelledDevices = completed.reply.cancelledDevices?.filter { kept.contains($0) }
        completed.reply.devices = groups
        if let now { completed.reply.completedAt = now }
        completed.outcomesStored = true
        return completed
    }
}
