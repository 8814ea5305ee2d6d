// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The `Action`s the simulator implements.
enum SimulatedOperation: String, Sendable, CaseIterable {
    case cancelOTATaskByDevice = "CancelOTATaskByDevice"
    case listOTATaskByJob = "ListOTATaskByJob"
    case queryOTAJob = "QueryOTAJob"
    case listOTAUnfinishedTaskByDevice = "ListOTAUnfinishedTaskByDevice"

    /// Validates the operation's parameters without touching state (gateway checks first, then business ones).
    func prepare(_ parameters: [String: String]) -> Result<PreparedCall, OperationError> {
        switch self {
        case .cancelOTATaskByDevice: CancelCall.prepare(parameters).map(PreparedCall.cancel)
        case .listOTATaskByJob: ListTasksCall.prepare(parameters).map(PreparedCall.listTasks)
        case .queryOTAJob: QueryJobCall.prepare(parameters).map(PreparedCall.queryJob)
        case .listOTAUnfinishedTaskByDevice:
            UnfinishedTasksCall.prepare(parameters).map(PreparedCall.unfinishedTasks)
        }
    }
}

/// An operation call whose parameters are valid.
enum PreparedCall: Sendable {
    case cancel(CancelCall)
    case listTasks(ListTasksCall)
    case queryJob(QueryJobCall)
    case unfinishedTasks(UnfinishedTasksCall)
}

/// `IotInstanceId`, with an empty value read as absent.
private func instanceId(_ parameters: [String: String]) -> String? {
    parameters["IotInstanceId"].flatMap { $0.isEmpty ? nil : $0 }
}

/// Reads a RepeatList (`Name.1`, `Name.2`, …): indices are decimal without leading zeros, from 1, without gaps.
private func repeatList(_ prefix: String, in parameters: [String: String]) -> Result<[String], GatewayError> {
    var byIndex: [Int: String] = [:]
    for (name, value) in parameters where name.hasPrefix(prefix) {
        let suffix = name.utf8.dropFirst(prefix.utf8.count)
        guard let first = suffix.first, first != UInt8(ascii: "0"), suffix.count <= 6,
            suffix.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let index = Int(Substring(suffix))
        else {
            return .failure(.invalidParameter("The parameter \"\(name)\" is not \(prefix)N with N a number from 1."))
        }
        byIndex[index] = value
    }
    var list: [String] = []
    list.reserveCapacity(byIndex.count)
    for index in stride(from: 1, through: byIndex.count, by: 1) {
        guard let value = byIndex[index] else {
            return .failure(
                .invalidParameter("\(prefix)\(index) is missing: \(prefix)N must be numbered from 1 without gaps.")
            )
        }
        list.append(value)
    }
    return .success(list)
}

/// `CancelOTATaskByDevice`: `ProductKey`, `FirmwareId`, `DeviceName.1..N` (N <= 200, unique), `JobId`,
/// `IotInstanceId`.
struct CancelCall: Sendable {
    static let maximumDeviceNames = 200

    var productKey: String
    var firmwareId: String
    var deviceNames: [String]
    var jobId: String?
    var iotInstanceId: String?

    static func prepare(_ parameters: [String: String]) -> Result<CancelCall, OperationError> {
        guard let productKey = parameters["ProductKey"] else {
            return .failure(.gateway(.missingParameter("ProductKey")))
        }
        guard let firmwareId = parameters["FirmwareId"], !firmwareId.isEmpty else {
            return .failure(.gateway(.missingParameter("FirmwareId")))
        }
        let names: [String]
        switch repeatList("DeviceName.", in: parameters) {
        case .success(let list): names = list
        case .failure(let error): return .failure(.gateway(error))
        }
        guard names.count <= maximumDeviceNames else {
            return .failure(
                .gateway(
                    .invalidParameter(
                        "DeviceName.N holds \(names.count) names; "
                            + "at most \(maximumDeviceNames) are allowed in one call."
                    )
                )
            )
        }
        var firstIndex: [String: Int] = [:]
        firstIndex.reserveCapacity(names.count)
        for (offset, name) in names.enumerated() {
            if let earlier = firstIndex.updateValue(offset + 1, forKey: name) {
                return .failure(
                    .gateway(.invalidParameter("DeviceName.\(offset + 1) repeats DeviceName.\(earlier) (\"\(name)\")."))
                )
            }
        }
        guard !productKey.isEmpty else { return .failure(.business(.nullProductKey)) }
        guard !names.isEmpty else { return .failure(.business(.nullDeviceName)) }
        for name in names {
            guard !name.isEmpty else { return .failure(.business(.nullDeviceName)) }
            guard DeviceNameRule.isValid(name) else { return .failure(.business(.invalidDeviceName(name))) }
        }
        let jobId = parameters["JobId"].flatMap { $0.isEmpty ? nil : $0 }
        return .success(
            CancelCall(
                productKey: productKey,
                firmwareId: firmwareId,
                deviceNames: names,
                jobId: jobId,
                iotInstanceId: instanceId(parameters)
            )
        )
    }
}

/// `ListOTATaskByJob`: `JobId`, `TaskStatus`, `DeviceNames.N`, `PageSize` (1-100, default 10), `CurrentPage`
/// (from 1, default 1; PageSize × CurrentPage <= 100,000), `IotInstanceId`.
struct ListTasksCall: Sendable {
    var jobId: String
    var taskStatus: TaskStatus?
    var deviceNames: Set<String>?
    var pageSize: Int
    var currentPage: Int
    var iotInstanceId: String?

    static func prepare(_ parameters: [String: String]) -> Result<ListTasksCall, OperationError> {
        guard let jobId = parameters["JobId"], !jobId.isEmpty else {
            return .failure(.gateway(.missingParameter("JobId")))
        }
        var taskStatus: TaskStatus?
        if let text = parameters["TaskStatus"], !text.isEmpty {
            guard let status = TaskStatus(rawValue: text) else {
                return .failure(.gateway(.invalidParameter("TaskStatus \"\(text)\" is not a task status.")))
            }
            taskStatus = status
        }
        let names: [String]
        switch repeatList("DeviceNames.", in: parameters) {
        case .success(let list): names = list
        case .failure(let error): return .failure(.gateway(error))
        }
        let pageSize = parameters["PageSize"].map { Int($0) } ?? 10
        guard let pageSize, (1...100).contains(pageSize) else {
            return .failure(.gateway(.invalidParameter("PageSize must be a number from 1 to 100.")))
        }
        let currentPage = parameters["CurrentPage"].map { Int($0) } ?? 1
        guard let currentPage, currentPage >= 1, currentPage <= 100_000 / pageSize else {
            return .failure(
                .gateway(
                    .invalidParameter("CurrentPage must be a number from 1, with PageSize × CurrentPage <= 100000.")
                )
            )
        }
        return .success(
            ListTasksCall(
                jobId: jobId,
                taskStatus: taskStatus,
                deviceNames: names.isEmpty ? nil : Set(names),
                pageSize: pageSize,
                currentPage: currentPage,
                iotInstanceId: instanceId(parameters)
            )
        )
    }
}

/// `QueryOTAJob`: `JobId`, `IotInstanceId`.
struct QueryJobCall: Sendable {
    var jobId: String
    var iotInstanceId: String?

    static func prepare(_ parameters: [String: String]) -> Result<QueryJobCall, OperationError> {
        guard let jobId = parameters["JobId"], !jobId.isEmpty else {
            return .failure(.gateway(.missingParameter("JobId")))
        }
        return .success(QueryJobCall(jobId: jobId, iotInstanceId: instanceId(parameters)))
    }
}

/// `ListOTAUnfinishedTaskByDevice`: the device by `ProductKey` + `DeviceName` (both, or neither) or by `IotId`;
/// the states asked for by `TaskStatus` or `TaskStatusList.N` (one of them is required, each an unfinished state:
/// `CONFIRM`, `QUEUED`, `NOTIFIED`, `IN_PROGRESS`); `ModuleName`; `IotInstanceId`. No paging: one device has few
/// unfinished tasks.
///
/// The parameter names are those of aliyunsdkiot's `ListOTAUnfinishedTaskByDeviceRequest`; the rules (which
/// parameters go together, which states may be asked for) are the API document's.
struct UnfinishedTasksCall: Sendable {
    enum Device: Sendable, Hashable {
        case name(productKey: String, deviceName: String)
        case iotId(String)
    }

    /// The states the action reports: a task in any other state is finished.
    static let unfinishedStates: Set<TaskStatus> = [.confirm, .queued, .notified, .inProgress]
    /// The OTA module every simulated task belongs to (the platform's default module).
    static let defaultModule = "default"

    var device: Device
    var states: Set<TaskStatus>
    var moduleName: String?
    var iotInstanceId: String?

    static func prepare(_ parameters: [String: String]) -> Result<UnfinishedTasksCall, OperationError> {
        func nonEmpty(_ name: String) -> String? { parameters[name].flatMap { $0.isEmpty ? nil : $0 } }
        let device: Device
        switch (nonEmpty("ProductKey"), nonEmpty("DeviceName"), nonEmpty("IotId")) {
        case (let productKey?, let deviceName?, _): device = .name(productKey: productKey, deviceName: deviceName)
        case (nil, nil, let iotId?): device = .iotId(iotId)
        case (_?, nil, _): return .failure(.gateway(.missingParameter("DeviceName")))
        case (nil, _?, _): return .failure(.gateway(.missingParameter("ProductKey")))
        case (nil, nil, nil): return .failure(.gateway(.missingParameter("IotId")))
        }
        var texts: [String]
        switch repeatList("TaskStatusList.", in: parameters) {
        case .success(let list): texts = list
        case .failure(let error): return .failure(.gateway(error))
        }
        if let single = nonEmpty("TaskStatus") { texts.append(single) }
        guard !texts.isEmpty else { return .failure(.gateway(.missingParameter("TaskStatus"))) }
        var states = Set<TaskStatus>()
        for text in texts {
            guard let status = TaskStatus(rawValue: text), unfinishedStates.contains(status) else {
                return .failure(
                    .gateway(
                        .invalidParameter(
                            "TaskStatus \"\(text)\" is not an unfinished task status (CONFIRM, QUEUED, NOTIFIED, "
                                + "IN_PROGRESS)."
                        )
                    )
                )
            }
            states.insert(status)
        }
        return .success(
            UnfinishedTasksCall(
                device: device,
                states: states,
                moduleName: nonEmpty("ModuleName"),
                iotInstanceId: instanceId(parameters)
            )
        )
    }
}

/// The operations over the catalog; called inside ``SimulatorState``'s lock.
enum Operations {
    /// Moves the named devices' cancellable tasks of this firmware (and job) to `CANCELED`.
    ///
    /// All or nothing: every reference is checked before any task changes, so an error changes nothing. A
    /// device without a cancellable task (none of this firmware and job, or only final ones, or with Tuya's
    /// style one in upgrade) is by default not an error: the call succeeds and that task stays as it is
    /// (cancelling twice is harmless, which is what makes a retried cancel safe). With `withoutTask: .fail` such
    /// a device fails the whole call with `iot.ota.TaskNotCancellable`, the other plausible reading.
    static func cancel(
        _ call: CancelCall,
        style: ResponseStyle,
        withoutTask: SimulatorConfiguration.CancelWithoutTask = .succeed,
        requestId: String,
        now: Date,
        storage: inout SimulatorState.Storage
    ) -> Result<RPCAnswer, OperationError> {
        guard storage.catalog.products[call.productKey] != nil else { return .failure(.business(.productNotFound)) }
        guard let firmware = storage.catalog.firmwares[call.firmwareId], firmware.productKey == call.productKey else {
            return .failure(.business(.firmwareNotFound))
        }
        if let jobId = call.jobId {
            guard let job = storage.catalog.jobs[jobId], job.firmwareId == call.firmwareId else {
                return .failure(.business(.jobNotFound))
            }
        }
        var keys: [DeviceKey] = []
        keys.reserveCapacity(call.deviceNames.count)
        for name in call.deviceNames {
            let key = DeviceKey(productKey: call.productKey, deviceName: name)
            guard storage.catalog.devices[key] != nil else { return .failure(.business(.deviceNotFound(name))) }
            keys.append(key)
        }
        if withoutTask == .fail {
            for key in keys {
                let cancellable = (storage.catalog.taskIndicesByDevice[key] ?? []).contains { index in
                    let task = storage.catalog.tasks[index]
                    return task.firmwareId == call.firmwareId && (call.jobId == nil || task.jobId == call.jobId)
                        && task.status.isCancellable(in: style)
                }
                if !cancellable { return .failure(.business(.taskNotCancellable(key.deviceName))) }
            }
        }

        var stamp: String?
        var devicesCancelled = 0
        var tasksCancelled = 0
        for key in keys {
            var cancelledOne = false
            for index in storage.catalog.taskIndicesByDevice[key] ?? [] {
                let task = storage.catalog.tasks[index]
                guard task.firmwareId == call.firmwareId, call.jobId == nil || task.jobId == call.jobId else {
                    continue
                }
                storage.catalog.tasks[index].cancelCalls += 1
                guard task.status.isCancellable(in: style) else { continue }
                let modified = stamp ?? Catalog.utcString(now)
                stamp = modified
                storage.catalog.tasks[index].status = .canceled
                storage.catalog.tasks[index].utcModified = modified
                storage.catalog.tasks[index].taskDesc = "Canceled by CancelOTATaskByDevice (\(requestId))"
                tasksCancelled += 1
                cancelledOne = true
            }
            if cancelledOne { devicesCancelled += 1 }
        }
        storage.stats.deviceNamesRequested += call.deviceNames.count
        storage.stats.devicesCancelled += devicesCancelled
        storage.stats.tasksCancelled += tasksCancelled
        storage.stats.largestCancelBatch = max(storage.stats.largestCancelBatch, call.deviceNames.count)
        return .success(AnswerBuilder.success(style: style, requestId: requestId))
    }

    /// One page of a job's tasks, filtered by state and device names, in the job's task order.
    static func listTasks(
        _ call: ListTasksCall,
        style: ResponseStyle,
        requestId: String,
        catalog: Catalog
    ) -> Result<RPCAnswer, OperationError> {
        guard catalog.jobs[call.jobId] != nil else { return .failure(.business(.jobNotFound)) }
        let matching = (catalog.taskIndicesByJob[call.jobId] ?? []).filter { index in
            let task = catalog.tasks[index]
            return (call.taskStatus == nil || task.status == call.taskStatus)
                && (call.deviceNames?.contains(task.device.deviceName) ?? true)
        }
        let start = min(matching.count, (call.currentPage - 1) * call.pageSize)
        let page = matching[start..<min(matching.count, start + call.pageSize)]
        let items = taskList(page, catalog: catalog, style: style, fields: .byJob)
        var data = JSONObjectWriter(style: style, capacity: items.utf8.count + 32)
        data.raw("SimpleOTATaskInfo", items)
        let dataJSON = data.finished()
        let pageCount = (matching.count + call.pageSize - 1) / call.pageSize
        return .success(
            AnswerBuilder.success(style: style, requestId: requestId) { writer in
                writer.int("Total", matching.count)
                writer.int("PageSize", call.pageSize)
                writer.int("PageCount", pageCount)
                writer.int("CurrentPage", call.currentPage)
                writer.raw("Data", dataJSON)
            }
        )
    }

    /// One job's description.
    static func queryJob(
        _ call: QueryJobCall,
        style: ResponseStyle,
        requestId: String,
        catalog: Catalog
    ) -> Result<RPCAnswer, OperationError> {
        guard let job = catalog.jobs[call.jobId] else { return .failure(.business(.jobNotFound)) }
        let firmware = catalog.firmwares[job.firmwareId]
        var data = JSONObjectWriter(style: style, capacity: 384)
        data.string("JobId", job.jobId)
        data.string("JobStatus", job.jobStatus)
        data.string("JobType", job.jobType)
        data.string("FirmwareId", job.firmwareId)
        data.string("ProductKey", job.productKey)
        data.string("ProductName", catalog.products[job.productKey]?.productName ?? "")
        data.string("SrcVersion", firmware?.srcVersion ?? "")
        data.string("DestVersion", firmware?.destVersion ?? "")
        data.string("JobDesc", job.jobDesc)
        data.string("UtcCreate", job.utcCreate)
        let dataJSON = data.finished()
        return .success(AnswerBuilder.success(style: style, requestId: requestId) { $0.raw("Data", dataJSON) })
    }

    /// One device's unfinished tasks in the states asked for, oldest first, as `Data.SimpleOTATaskInfo`.
    ///
    /// An unknown product or device is `iot.device.NotExistedDevice`, like the cancel's; a device without such
    /// tasks answers an empty list.
    static func unfinishedTasks(
        _ call: UnfinishedTasksCall,
        style: ResponseStyle,
        requestId: String,
        catalog: Catalog
    ) -> Result<RPCAnswer, OperationError> {
        let key: DeviceKey
        switch call.device {
        case .name(let productKey, let deviceName):
            guard catalog.products[productKey] != nil else { return .failure(.business(.productNotFound)) }
            key = DeviceKey(productKey: productKey, deviceName: deviceName)
            guard catalog.devices[key] != nil else { return .failure(.business(.deviceNotFound(deviceName))) }
        case .iotId(let iotId):
            guard let found = catalog.devices.first(where: { $0.value.iotId == iotId })?.key else {
                return .failure(.business(.deviceNotFound(iotId)))
            }
            key = found
        }
        let moduleMatches = call.moduleName.map { $0 == UnfinishedTasksCall.defaultModule } ?? true
        let indices = (moduleMatches ? catalog.taskIndicesByDevice[key] ?? [] : []).filter {
            call.states.contains(catalog.tasks[$0].status)
        }
        let items = taskList(indices, catalog: catalog, style: style, fields: .unfinished)
        var data = JSONObjectWriter(style: style, capacity: items.utf8.count + 32)
        data.raw("SimpleOTATaskInfo", items)
        let dataJSON = data.finished()
        return .success(AnswerBuilder.success(style: style, requestId: requestId) { $0.raw("Data", dataJSON) })
    }

    /// Which `SimpleOTATaskInfo` fields an action writes beside the common ones.
    enum TaskFields {
        /// `ListOTATaskByJob`: `Progress` after `DestVersion`.
        case byJob
        /// `ListOTAUnfinishedTaskByDevice`: `ModuleName` after `JobId`.
        case unfinished
    }

    /// The tasks at `indices` as a JSON list of `SimpleOTATaskInfo`, in the order given, the one shape both
    /// read-back actions answer.
    static func taskList(
        _ indices: some Collection<Int>,
        catalog: Catalog,
        style: ResponseStyle,
        fields: TaskFields
    ) -> String {
        var items = "["
        for (offset, index) in indices.enumerated() {
            if offset > 0 { items += "," }
            let task = catalog.tasks[index]
            let firmware = catalog.firmwares[task.firmwareId]
            var item = JSONObjectWriter(style: style, capacity: 512)
            item.string("TaskId", task.taskId)
            item.string("TaskStatus", task.status.rawValue)
            item.string("DeviceName", task.device.deviceName)
            item.string("ProductKey", task.device.productKey)
            item.string("ProductName", catalog.products[task.device.productKey]?.productName ?? "")
            item.string("IotId", catalog.devices[task.device]?.iotId ?? "")
            item.string("FirmwareId", task.firmwareId)
            item.string("JobId", task.jobId)
            if fields == .unfinished { item.string("ModuleName", UnfinishedTasksCall.defaultModule) }
            item.string("SrcVersion", firmware?.srcVersion ?? "")
            item.string("DestVersion", firmware?.destVersion ?? "")
            if fields == .byJob { item.string("Progress", task.status == .succeeded ? "100" : "0") }
            item.string("TaskDesc", task.taskDesc)
            item.string("UtcCreate", task.utcCreate)
            item.string("UtcModified", task.utcModified)
            items += item.finished()
        }
        return items + "]"
    }
}
