// SPDX-License-Identifier: Apache-2.0

/// What the device names of one platform call must share: one `CancelOTATaskByDevice` call names one account,
/// instance, product, firmware and job, and any number (up to 200) of devices.
///
/// Commands with equal keys can be served by the same calls; commands with different keys never are.
public struct BatchKey: Sendable, Hashable, CustomStringConvertible {
    /// The account the calls are signed with (its AccessKeyId): the quota is per account, and a store shared by
    /// several workers keeps the accounts apart.
    public var account: String
    public var iotInstanceId: String?
    public var productKey: String
    public var firmwareId: String
    public var jobId: String?

    public init(account: String, iotInstanceId: String?, productKey: String, firmwareId: String, jobId: String?) {
        self.account = account
        // An empty optional field is sent as no field at all (see `CancelOTATaskByDeviceRequest`): the same key.
        self.iotInstanceId = iotInstanceId.flatMap { $0.isEmpty ? nil : $0 }
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.jobId = jobId.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The key of a command's calls.
    public init(command: CancelCommand, account: String) {
        self.init(
            account: account,
            iotInstanceId: command.iotInstanceId,
            productKey: command.productKey,
            firmwareId: command.firmwareId,
            jobId: command.jobId
        )
    }

    public var description: String {
        "\(productKey)/\(firmwareId)" + (jobId.map { "/\($0)" } ?? "") + (iotInstanceId.map { "@\($0)" } ?? "")
    }
}

/// One segment of a command: the names of the call the command would make alone with this index (its device
/// names in order, cut into runs of at most 200). Segments are the unit the dispatcher schedules, so that a
/// command's failures fall into the same groups as they would alone.
public struct SegmentID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The command's journal id.
    public var command: Int64
    /// The segment's index in the command (the batch index of its alone run).
    public var index: Int

    public init(command: Int64, index: Int) {
        self.command = command
        self.index = index
    }

    public static func < (lhs: SegmentID, rhs: SegmentID) -> Bool {
        (lhs.command, lhs.index) < (rhs.command, rhs.index)
    }

    public var description: String { "\(command)#\(index)" }
}
