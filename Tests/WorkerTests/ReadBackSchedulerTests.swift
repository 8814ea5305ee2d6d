// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformAPI
import Testing
import Worker

/// The read-back's decisions without HTTP: which reads go, how answers become groups, what a failure leaves.
@Suite("Read-back scheduler")
struct ReadBackSchedulerTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A command whose cancel calls are answered: `cancelled` in a successful call, the rest in a failed one.
    static func completed(
        _ id: Int64,
        _ names: [String],
        jobId: String? = "job1",
        firmware: String = "fw1",
        calls: Int = 1,
        correlation: String = "c"
    ) -> CompletedCommand {
        let accepted = AcceptedCommand(
            command: CancelCommand(productKey: "pk", firmwareId: firmware, deviceNames: [], jobId: jobId),
            correlationId: correlation,
            route: ReplyRoute(topic: "ota/cancel/reply", source: .defaultTopic, correlationData: nil),
            receivedAt: t0,
            deadline: nil,
            payload: [],
            digest: []
        )
        var reply = CancelReply(correlationId: correlation, status: .succeeded, receivedAt: t0, completedAt: t0)
        reply.cancelledDevices = names
        reply.calls = calls
        return CompletedCommand(id: id, accepted: accepted, reply: reply, outcomesStored: false, deviceNames: names)
    }

    static func task(_ device: String, _ status: String, job: String = "job1", firmware: String = "fw1") -> OTATaskInfo
    {
        OTATaskInfo(
            taskId: "t-\(device)",
            taskStatus: status,
            deviceName: device,
            productKey: "pk",
            firmwareId: firmware,
            jobId: job
        )
    }

    static func answer(_ tasks: [OTATaskInfo], pageCount: Int? = nil, requestId: String = "R") -> PlatformReadResult {
        PlatformReadResult(
            result: .success(OTATaskPage(tasks: tasks, total: tasks.count, pageCount: pageCount)),
            attempts: 1,
            requestIds: [requestId]
        )
    }

    struct Missing: Error {}

    /// The next read (`#require` cannot take a mutating call).
    static func next(
        _ scheduler: inout ReadBackScheduler,
        _ kind: ReadBackScheduler.Kind,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ReadBackScheduler.ReadPlan {
        guard let plan = scheduler.nextRead(kind) else {
            Issue.record("expected a read", sourceLocation: sourceLocation)
            throw Missing()
        }
        return plan
    }

    static func names(_ range: ClosedRange<Int>) -> [String] { range.map { "d\($0)" } }

    @Test("policy: the command's verify first, then --verify; auto reads commands with a jobId; a dry run never")
    func policy() {
        let withJob = CancelCommand(productKey: "pk", firmwareId: "fw", deviceNames: ["a"], jobId: "j")
        let withoutJob = CancelCommand(productKey: "pk", firmwareId: "fw", deviceNames: ["a"])
        let auto = VerifyPolicy()
        #expect(auto.decision(for: withJob, deviceCount: 1) == .byJob("j"))
        #expect(auto.decision(for: withoutJob, deviceCount: 1) == .notRead)
        var asked = withoutJob
        asked.verify = true
        #expect(auto.decision(for: asked, deviceCount: 20) == .byDevice)
        #expect(auto.decision(for: asked, deviceCount: 21) == .tooManyDevices(limit: 20))
        var refused = withJob
        refused.verify = false
        #expect(VerifyPolicy(mode: .on).decision(for: refused, deviceCount: 1) == .notRead)
        #expect(VerifyPolicy(mode: .off).decision(for: withJob, deviceCount: 1) == .notRead)
        #expect(VerifyPolicy(mode: .on, maxDevicesWithoutJob: 3).decision(for: withoutJob, deviceCount: 3) == .byDevice)
        var dry = withJob
        dry.dryRun = true
        #expect(VerifyPolicy(mode: .on).decision(for: dry, deviceCount: 1) == .notRead)
    }

    @Test("by job: reads of 100 names shared by the commands of one job; each device in one group, in command order")
    func byJobCoalesces() throws {
        var scheduler = ReadBackScheduler()
        #expect(scheduler.add(Self.completed(1, Self.names(1...150)), decision: .byJob("job1")) == nil)
        #expect(scheduler.add(Self.completed(2, Self.names(140...160)), decision: .byJob("job1")) == nil)
        #expect(scheduler.hasReadyRead(.byJob))
        #expect(!scheduler.hasReadyRead(.byDevice))
        let first = try Self.next(&scheduler, .byJob)
        let second = try Self.next(&scheduler, .byJob)
        #expect(scheduler.nextRead(.byJob) == nil)
        guard case .byJob(let one) = first.request, case .byJob(let two) = second.request else {
            Issue.record("reads of the wrong action")
            return
        }
        // 160 distinct names: the shared ones are read once.
        #expect(one.deviceNames == Self.names(1...100))
        #expect(two.deviceNames == Self.names(101...160))
        #expect(one.jobId == "job1" && one.pageSize == 100 && one.currentPage == 1)
        #expect(
            scheduler.finish(
                first.id,
                result: Self.answer(Self.names(1...100).map { Self.task($0, "CANCELED") }),
                now: Self.t0
            ).isEmpty
        )
        var tasks = Self.names(101...160).map { Self.task($0, "CANCELED") }
        tasks[0] = Self.task("d101", "SUCCEEDED")
        tasks[1] = Self.task("d102", "FAILED")
        tasks[2] = Self.task("d103", "IN_PROGRESS")
        tasks.removeAll { $0.deviceName == "d160" }
        let done = scheduler.finish(second.id, result: Self.answer(tasks), now: Self.t0)
        #expect(done.map(\.id).sorted() == [1, 2])
        let devices = try #require(done.first { $0.id == 1 }?.reply.devices)
        #expect(devices.alreadyUpgraded == ["d101"])
        #expect(devices.failed == ["d102"])
        #expect(devices.stillActive == ["d103"])
        #expect(devices.canceled == Self.names(1...100) + Self.names(104...150))
        #expect(devices.noTask.isEmpty && devices.unverified.isEmpty)
        #expect(devices.reads == 2 && devices.requestIds == ["R", "R"])
        let other = try #require(done.first { $0.id == 2 }?.reply)
        #expect(other.devices?.noTask == ["d160"])
        #expect(other.devices?.reads == 1)  // its names were all in the second read
        // Only what the read-back did not contradict stays in cancelledDevices.
        #expect(other.cancelledDevices == Self.names(140...159))
        #expect(done.first { $0.id == 1 }?.reply.cancelledDevices == Self.names(1...100) + Self.names(104...150))
        #expect(scheduler.commandCount == 0)
    }

    @Test("paging: a read whose answer has more pages asks for the next page first, and its devices wait for it")
    func paging() throws {
        var scheduler = ReadBackScheduler(configuration: .init(namesPerRead: 2))
        _ = scheduler.add(Self.completed(1, ["a", "b"]), decision: .byJob("job1"))
        let first = try Self.next(&scheduler, .byJob)
        // Two tasks of "a" on page 1 of 2 (a device may have several tasks in a job).
        #expect(
            scheduler.finish(
                first.id,
                result: Self.answer([Self.task("a", "CANCELED"), Self.task("a", "CANCELED")], pageCount: 2),
                now: Self.t0
            ).isEmpty
        )
        let next = try Self.next(&scheduler, .byJob)
        guard case .byJob(let request) = next.request else { return }
        #expect(request.currentPage == 2 && request.deviceNames == ["a", "b"])
        let done = scheduler.finish(
            next.id,
            result: Self.answer([Self.task("b", "IN_PROGRESS")], pageCount: 2),
            now: Self.t0
        )
        #expect(done.first?.reply.devices?.canceled == ["a"])
        #expect(done.first?.reply.devices?.stillActive == ["b"])
        #expect(done.first?.reply.devices?.reads == 2)
    }

    @Test("a failed read leaves its devices unverified with the code; an unknown device has no task")
    func failures() throws {
        var scheduler = ReadBackScheduler()
        _ = scheduler.add(Self.completed(1, ["a", "b"]), decision: .byJob("job1"))
        let read = try Self.next(&scheduler, .byJob)
        let error = PlatformAPIError(code: .platform, message: "busy", platformCode: "Throttling.User", httpStatus: 400)
        let done = scheduler.finish(
            read.id,
            result: PlatformReadResult(result: .failure(error), attempts: 4, requestIds: []),
            now: Self.t0
        )
        let devices = try #require(done.first?.reply.devices)
        #expect(devices.unverified == ["a", "b"])
        #expect(
            devices.unverifiedReasons == [
                .init(code: "Throttling.User", message: "the read-back failed: busy", deviceCount: 2)
            ]
        )
        #expect(done.first?.reply.cancelledDevices == ["a", "b"])
        #expect(done.first?.reply.status == .succeeded)

        _ = scheduler.add(Self.completed(2, ["ghost"], jobId: nil), decision: .byDevice)
        let perDevice = try Self.next(&scheduler, .byDevice)
        let unknown = PlatformAPIError(
            code: .platform,
            message: "no such device",
            platformCode: "iot.device.NotExistedDevice"
        )
        let ghost = scheduler.finish(
            perDevice.id,
            result: PlatformReadResult(result: .failure(unknown), attempts: 1, requestIds: []),
            now: Self.t0
        )
        #expect(ghost.first?.reply.devices?.noTask == ["ghost"])
    }

    @Test("by device: still-active devices name their job, where the others are then looked up")
    func byDeviceLearnsTheJob() throws {
        var scheduler = ReadBackScheduler()
        _ = scheduler.add(Self.completed(1, ["a", "b", "c", "d"], jobId: nil), decision: .byDevice)
        var reads = [ReadBackScheduler.ReadPlan]()
        while let read = scheduler.nextRead(.byDevice) { reads.append(read) }
        #expect(reads.count == 4)
        let unfinished: [String: [OTATaskInfo]] = [
            // "a" still in upgrade in job7; a task of another firmware on "b" does not count.
            "a": [Self.task("a", "IN_PROGRESS", job: "job7")],
            "b": [Self.task("b", "QUEUED", job: "job9", firmware: "fw-other")],
        ]
        for read in reads {
            guard case .byDevice(let request) = read.request else { continue }
            #expect(request.taskStatusList == ["CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS"])
            #expect(
                scheduler.finish(read.id, result: Self.answer(unfinished[request.deviceName] ?? []), now: Self.t0)
                    .isEmpty
            )
        }
        let lookUp = try Self.next(&scheduler, .byJob)
        guard case .byJob(let request) = lookUp.request else { return }
        #expect(request.jobId == "job7" && request.deviceNames == ["b", "c", "d"])
        let done = scheduler.finish(
            lookUp.id,
            result: Self.answer([Self.task("b", "CANCELED", job: "job7"), Self.task("c", "SUCCEEDED", job: "job7")]),
            now: Self.t0
        )
        let devices = try #require(done.first?.reply.devices)
        #expect(devices.stillActive == ["a"])
        #expect(devices.canceled == ["b"])
        #expect(devices.alreadyUpgraded == ["c"])
        #expect(devices.noTask == ["d"])
        #expect(devices.reads == 5)
    }

    @Test("by device with no job to learn: the devices without an unfinished task stay unverified (NoJobKnown)")
    func byDeviceWithoutAJob() throws {
        var scheduler = ReadBackScheduler()
        _ = scheduler.add(Self.completed(1, ["a", "b"], jobId: nil), decision: .byDevice)
        let first = try Self.next(&scheduler, .byDevice)
        let second = try Self.next(&scheduler, .byDevice)
        #expect(scheduler.finish(first.id, result: Self.answer([]), now: Self.t0).isEmpty)
        let done = scheduler.finish(second.id, result: Self.answer([]), now: Self.t0)
        #expect(done.first?.reply.devices?.unverified == ["a", "b"])
        #expect(done.first?.reply.devices?.unverifiedReasons.first?.code == "NoJobKnown")
        #expect(!scheduler.hasReadyRead(.byJob))
    }

    @Test("nothing to read: too many devices, or no cancel call made, answers at once")
    func atOnce() {
        var scheduler = ReadBackScheduler()
        let many = scheduler.add(Self.completed(1, ["a", "b"], jobId: nil), decision: .tooManyDevices(limit: 1))
        #expect(many?.reply.devices?.unverified == ["a", "b"])
        #expect(many?.reply.devices?.unverifiedReasons.first?.code == "TooManyDevicesToVerify")
        let uncalled = scheduler.add(Self.completed(2, ["a"], calls: 0), decision: .byJob("job1"))
        #expect(uncalled?.reply.devices?.unverifiedReasons.first?.code == "NotCalled")
        #expect(scheduler.add(Self.completed(3, ["a"]), decision: .notRead)?.reply.devices == nil)
        #expect(!scheduler.hasReadyRead(.byJob) && !scheduler.hasReadyRead(.byDevice))
    }

    @Test("a name wanted again while its read is in flight waits for a read of its own")
    func noAnswerOlderThanTheCancel() throws {
        var scheduler = ReadBackScheduler()
        _ = scheduler.add(Self.completed(1, ["a"]), decision: .byJob("job1"))
        let first = try Self.next(&scheduler, .byJob)
        _ = scheduler.add(Self.completed(2, ["a"], correlation: "c2"), decision: .byJob("job1"))
        let second = try Self.next(&scheduler, .byJob)
        #expect(scheduler.correlationIds(of: second) == ["c2"])
        #expect(
            scheduler.finish(first.id, result: Self.answer([Self.task("a", "QUEUED")]), now: Self.t0).map(\.id) == [1]
        )
        let done = scheduler.finish(second.id, result: Self.answer([Self.task("a", "CANCELED")]), now: Self.t0)
        #expect(done.first?.reply.devices?.canceled == ["a"])
    }
}
