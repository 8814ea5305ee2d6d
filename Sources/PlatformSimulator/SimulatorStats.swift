// SPDX-License-Identifier: Apache-2.0

/// The simulator's counters since start (or the last reset).
///
/// Tests assert on these instead of on timing: "the worker made exactly one call", "nothing was throttled",
/// "the batch never exceeded 200 names". Every counter only grows; `GET /_sim/stats` serves the same values as
/// JSON, with these property names as keys.
public struct SimulatorStats: Sendable, Codable, Equatable {
    /// Every HTTP request to the RPC endpoint `/`, answered or not (admin requests are not counted).
    public var requests: Int
    /// Authenticated `CancelOTATaskByDevice` calls that reached the operation: not throttled and not answered by a
    /// fault (a fault with `afterOperation` counts, since the operation ran). Parameter errors count.
    public var cancelCalls: Int
    /// Authenticated `ListOTATaskByJob` and `QueryOTAJob` calls that reached the operation.
    public var readCalls: Int
    /// Requests refused by authentication: a missing common parameter, an unknown AccessKeyId, a bad
    /// signature method, a bad or stale timestamp, a signature mismatch or a reused nonce.
    public var authFailures: Int
    /// Calls answered `Throttling.User` by the quota.
    public var throttled: Int
    /// Calls a fault rule applied to (an error, a delay or a dropped connection).
    public var faultsInjected: Int
    /// Connections closed without an answer by a fault rule (included in ``faultsInjected``).
    public var connectionsDropped: Int
    /// Requests answered with an error of any kind (gateway, IoT business, fault, or a form body over
    /// ``SimulatorConfiguration/maximumBodySize``, answered 413), including ``authFailures`` and ``throttled``.
    public var errorAnswers: Int
    /// Device names across the successful `CancelOTATaskByDevice` calls.
    public var deviceNamesRequested: Int
    /// Devices of which at least one task moved to `CANCELED`, summed over calls.
    public var devicesCancelled: Int
    /// Tasks moved to `CANCELED`.
    public var tasksCancelled: Int
    /// The most device names seen in one `CancelOTATaskByDevice` call that reached the operation (a batching check).
    public var largestCancelBatch: Int

    /// All counters zero.
    public init() {
        requests = 0
        cancelCalls = 0
        readCalls = 0
        authFailures = 0
        throttled = 0
        faultsInjected = 0
        connectionsDropped = 0
        errorAnswers = 0
        deviceNamesRequested = 0
        devicesCancelled = 0
        tasksCancelled = 0
        largestCancelBatch = 0
    }
}

/// One device's OTA task as the simulator holds it (a copy; changing it changes nothing).
public struct SimulatedTask: Sendable, Codable, Equatable {
    /// The task ID (`TaskId`).
    public var taskId: String
    /// The device.
    public var deviceName: String
    /// The device's product.
    public var productKey: String
    /// The firmware the task installs.
    public var firmwareId: String
    /// The upgrade batch the task belongs to.
    public var jobId: String
    /// `CONFIRM`, `QUEUED`, `NOTIFIED`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED` or `CANCELED`.
    public var status: String
    /// How many `CancelOTATaskByDevice` calls named this task's device with its firmware (and job, when given),
    /// whatever the task's state: a retried or duplicated cancel shows here.
    public var cancelCalls: Int

    /// Creates a task description (tests compare against it).
    public init(
        taskId: String,
        deviceName: String,
        productKey: String,
        firmwareId: String,
        jobId: String,
        status: String,
        cancelCalls: Int
    ) {
        self.taskId = taskId
        self.deviceName = deviceName
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.jobId = jobId
        self.status = status
        self.cancelCalls = cancelCalls
    }

    init(_ task: Catalog.Task) {
        self.init(
            taskId: task.taskId,
            deviceName: task.device.deviceName,
            productKey: task.device.productKey,
            firmwareId: task.firmwareId,
            jobId: task.jobId,
            status: task.status.rawValue,
            cancelCalls: task.cancelCalls
        )
    }
}
