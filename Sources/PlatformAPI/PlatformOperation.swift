// SPDX-License-Identifier: Apache-2.0

/// One RPC operation the client can send: its `Action` and its own parameters.
///
/// The client adds the common parameters (`AccessKeyId`, `Timestamp`, `SignatureNonce`, ...) per attempt, signs
/// them together and paces each action with a token bucket of its own: the platform's quotas are per action.
public protocol PlatformOperation: Sendable {
    /// The `Action` parameter, also the name of the action's rate limiter.
    static var action: String { get }
    /// Exactly the operation's parameters as sent and signed, `Action` included.
    func operationParameters() -> [String: String]
    /// How many devices the call concerns (for the log).
    var deviceCount: Int { get }
}

extension CancelOTATaskByDeviceRequest: PlatformOperation {
    public static let action = "CancelOTATaskByDevice"
    public var deviceCount: Int { deviceNames.count }
}

/// One page of `ListOTATaskByJob`: a job's device tasks, optionally only those of some devices.
///
/// The names are those of aliyunsdkiot's `ListOTATaskByJobRequest` (reference/platform-api.md §4.2): note the
/// plural `DeviceNames.N`. The platform answers at most 100 tasks a page.
public struct ListOTATaskByJobRequest: PlatformOperation, Hashable {
    public static let action = "ListOTATaskByJob"
    /// The most tasks one page may hold (`PageSize`).
    public static let maxPageSize = 100

    /// `JobId`: the upgrade batch.
    public var jobId: String
    /// `DeviceNames.1` ... `DeviceNames.N`: only these devices' tasks; empty sends no filter.
    public var deviceNames: [String]
    /// `PageSize`, 1 to 100.
    public var pageSize: Int
    /// `CurrentPage`, from 1.
    public var currentPage: Int
    /// `IotInstanceId`; `nil` or empty sends the configured one, if any.
    public var iotInstanceId: String?

    /// Creates a request for one page; `pageSize` is kept within 1...100 and `currentPage` at least 1.
    public init(jobId: String, deviceNames: [String], pageSize: Int = 100, currentPage: Int = 1, iotInstanceId: String?)
    {
        self.jobId = jobId
        self.deviceNames = deviceNames
        self.pageSize = min(Self.maxPageSize, max(1, pageSize))
        self.currentPage = max(1, currentPage)
        self.iotInstanceId = iotInstanceId
    }

    public var deviceCount: Int { deviceNames.count }

    public func operationParameters() -> [String: String] {
        var parameters: [String: String] = [
            "Action": Self.action,
            "JobId": jobId,
            "PageSize": String(pageSize),
            "CurrentPage": String(currentPage),
        ]
        for (index, name) in deviceNames.enumerated() { parameters["DeviceNames.\(index + 1)"] = name }
        if let iotInstanceId, !iotInstanceId.isEmpty { parameters["IotInstanceId"] = iotInstanceId }
        return parameters
    }
}

/// `ListOTAUnfinishedTaskByDevice`: one device's tasks that have not finished (the only states it may ask for:
/// `CONFIRM`, `QUEUED`, `NOTIFIED`, `IN_PROGRESS`), named by `ProductKey` + `DeviceName`.
public struct ListOTAUnfinishedTaskByDeviceRequest: PlatformOperation, Hashable {
    public static let action = "ListOTAUnfinishedTaskByDevice"
    /// The states the action knows, all asked for by default.
    public static let unfinishedStates = ["CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS"]

    public var productKey: String
    public var deviceName: String
    /// `TaskStatusList.1` ... `TaskStatusList.N`.
    public var taskStatusList: [String]
    /// `IotInstanceId`; `nil` or empty sends the configured one, if any.
    public var iotInstanceId: String?

    public init(
        productKey: String,
        deviceName: String,
        taskStatusList: [String] = Self.unfinishedStates,
        iotInstanceId: String?
    ) {
        self.productKey = productKey
        self.deviceName = deviceName
        self.taskStatusList = taskStatusList
        self.iotInstanceId = iotInstanceId
    }

    public var deviceCount: Int { 1 }

    public func operationParameters() -> [String: String] {
        var parameters: [String: String] = [
            "Action": Self.action,
            "ProductKey": productKey,
            "DeviceName": deviceName,
        ]
        for (index, status) in taskStatusList.enumerated() { parameters["TaskStatusList.\(index + 1)"] = status }
        if let iotInstanceId, !iotInstanceId.isEmpty { parameters["IotInstanceId"] = iotInstanceId }
        return parameters
    }
}
