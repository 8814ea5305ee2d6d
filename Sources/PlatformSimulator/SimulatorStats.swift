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
    /// How many `DeviceName.N` each `CancelOTATaskByDevice` call carried, over the calls whose parameters were
    /// valid and that reached the operation, successful or not (an unknown firmware or instance counts, a
    /// parameter error or a fault answered before the operation does not).
    ///
    /// A benchmark of a coalescing worker needs the distribution (names per call at the median), not only
    /// ``largestCancelBatch``; a histogram keeps that in a fixed 200 slots however many calls there are.
    public var cancelBatchSizes: BatchSizeHistogram

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
        cancelBatchSizes = BatchSizeHistogram()
    }
}

/// How many calls carried 1, 2, … 200 device names: a bounded record of batch sizes.
///
/// The JSON form is an object from the size (as a decimal string) to the number of calls, sizes with no call
/// left out, e.g. `{"1": 9800, "200": 49}`; `{}` when there was none.
public struct BatchSizeHistogram: Sendable, Codable, Equatable {
    /// The largest size recorded: the platform's limit of names in one `CancelOTATaskByDevice` call.
    public static let maximumSize = 200

    /// `counts[size - 1]` is the number of calls of that size.
    private var counts: [Int]

    /// No call recorded.
    public init() {
        counts = Array(repeating: 0, count: Self.maximumSize)
    }

    /// Counts one call of `size` names.
    ///
    /// A size outside `1...200` is not recorded: such a call is refused before the operation, so it never
    /// reaches the place that records.
    public mutating func record(_ size: Int) {
        guard (1...Self.maximumSize).contains(size) else { return }
        counts[size - 1] += 1
    }

    /// The number of calls of `size` names (`0` for a size outside `1...200`).
    public subscript(size: Int) -> Int {
        (1...Self.maximumSize).contains(size) ? counts[size - 1] : 0
    }

    /// The number of calls recorded.
    public var calls: Int { counts.reduce(0, +) }

    /// The number of device names over all calls recorded.
    public var deviceNames: Int {
        counts.enumerated().reduce(0) { sum, slot in sum + (slot.offset + 1) * slot.element }
    }

    /// The nearest-rank percentile of the sizes: the smallest size such that at least `fraction` of the calls
    /// carried that many names or fewer.
    ///
    /// - Parameter fraction: in `(0, 1]`; `0.5` is the median.
    /// - Returns: the size, or `nil` when no call was recorded or `fraction` is outside `(0, 1]`.
    public func percentile(_ fraction: Double) -> Int? {
        guard fraction > 0, fraction <= 1 else { return nil }
        let total = calls
        guard total > 0 else { return nil }
        let rank = Int((fraction * Double(total)).rounded(.up))
        var seen = 0
        for (offset, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return offset + 1 }
        }
        return Self.maximumSize
    }

    public init(from decoder: any Decoder) throws {
        let object = try decoder.singleValueContainer().decode([String: Int].self)
        self.init()
        for (key, count) in object {
            guard let size = Int(key), (1...Self.maximumSize).contains(size), count >= 0 else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath,
                        debugDescription: "a batch size histogram maps 1...200 to a count >= 0, got \(key): \(count)"
                    )
                )
            }
            counts[size - 1] = count
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var object: [String: Int] = [:]
        for (offset, count) in counts.enumerated() where count > 0 { object[String(offset + 1)] = count }
        var container = encoder.singleValueContainer()
        try container.encode(object)
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
