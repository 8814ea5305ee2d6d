// SPDX-License-Identifier: Apache-2.0

/// Whether and how a command's devices are read back after the cancel: a pure decision from the command and
/// the worker's settings.
///
/// The default (``Mode/auto``) reads back the commands that name a job, because one `ListOTATaskByJob` call
/// answers for up to 100 devices (a 200-device cancel costs 2 reads, at the read action's own 10/s quota); a
/// command without a job needs one `ListOTAUnfinishedTaskByDevice` call per device, so it is read back only on
/// request (`"verify": true` or `--verify on`) and only up to ``maxDevicesWithoutJob`` devices.
public struct VerifyPolicy: Sendable, Hashable {
    /// `--verify`.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Read back commands with a `jobId`; the others only when they ask (`"verify": true`).
        case auto
        /// Read back every command (without a `jobId`: up to ``VerifyPolicy/maxDevicesWithoutJob`` devices).
        case on
        /// Read back only the commands that ask for it.
        case off
    }

    /// What to do for one command.
    public enum Decision: Sendable, Hashable {
        /// No read-back: the reply has no `devices` section.
        case notRead
        /// Read the job's tasks (`ListOTATaskByJob`, up to 100 devices a call).
        case byJob(String)
        /// One `ListOTAUnfinishedTaskByDevice` per device.
        case byDevice
        /// Wanted, but too many devices for per-device reads: every device is `unverified`.
        case tooManyDevices(limit: Int)
    }

    /// Default ``Mode/auto``.
    public var mode: Mode
    /// The most devices a command without a `jobId` may have to be read back one by one. Default 20 (two
    /// seconds of the read action's quota).
    public var maxDevicesWithoutJob: Int

    public init(mode: Mode = .auto, maxDevicesWithoutJob: Int = 20) {
        self.mode = mode
        self.maxDevicesWithoutJob = max(0, maxDevicesWithoutJob)
    }

    /// The decision for `command`: its own `verify` first, then ``mode``. A dry run is never read back.
    /// - Parameter deviceCount: how many devices it names (the scheduler keeps the names apart from the command).
    public func decision(for command: CancelCommand, deviceCount: Int) -> Decision {
        guard !command.dryRun else { return .notRead }
        let jobId = command.jobId.flatMap { $0.isEmpty ? nil : $0 }
        let wanted =
            command.verify
            ?? {
                switch mode {
                case .auto: jobId != nil
                case .on: true
                case .off: false
                }
            }()
        guard wanted else { return .notRead }
        if let jobId { return .byJob(jobId) }
        guard deviceCount <= maxDevicesWithoutJob else {
            return .tooManyDevices(limit: maxDevicesWithoutJob)
        }
        return .byDevice
    }
}

/// What the read-back found for one device.
public enum DeviceVerdict: Sendable, Hashable {
    /// Its task is `CANCELED`.
    case canceled
    /// Its task is `SUCCEEDED`: it runs the firmware now.
    case alreadyUpgraded
    /// Its task is `FAILED`.
    case failed
    /// Its task is still `CONFIRM`, `QUEUED`, `NOTIFIED` or `IN_PROGRESS` after the cancel.
    case stillActive
    /// No task was found for it.
    case noTask
    /// Not known, and why (a stable code and a sentence).
    case unverified(code: String, message: String)

    /// The verdict a device's tasks give, the most urgent first: one still active needs another cancel, one
    /// that succeeded needs a downgrade.
    static func of(statuses: [String]) -> DeviceVerdict {
        let unfinished: Set<String> = ["CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS"]
        let upper = statuses.map { $0.uppercased() }
        if upper.contains(where: unfinished.contains) { return .stillActive }
        if upper.contains("SUCCEEDED") { return .alreadyUpgraded }
        if upper.contains("FAILED") { return .failed }
        if upper.contains("CANCELED") || upper.contains("CANCELLED") { return .canceled }
        return statuses.isEmpty
            ? .noTask
            : .unverified(
                code: "UnknownTaskStatus",
                message:
                    "the platform listed a task in a state the worker does not know: \(statuses.joined(separator: ", "))"
            )
    }
}
