// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature

/// The OTA task states of `ListOTATaskByJob`.
enum TaskStatus: String, Sendable, CaseIterable {
    case confirm = "CONFIRM"
    case queued = "QUEUED"
    case notified = "NOTIFIED"
    case inProgress = "IN_PROGRESS"
    case succeeded = "SUCCEEDED"
    case failed = "FAILED"
    case canceled = "CANCELED"

    /// Whether `CancelOTATaskByDevice` moves a task in this state to `CANCELED` on a platform answering in
    /// `style`: the current Alibaba document cancels pending confirmation, to be pushed, pushed and in upgrade;
    /// Tuya's copy only the first three (a task already installing runs on). The others are final everywhere.
    func isCancellable(in style: ResponseStyle) -> Bool {
        switch self {
        case .confirm, .queued, .notified: true
        case .inProgress: style == .aliyun
        case .succeeded, .failed, .canceled: false
        }
    }
}

/// A device is unique within its product, not across products.
struct DeviceKey: Hashable, Sendable {
    var productKey: String
    var deviceName: String
}

/// The simulated platform's data, indexed for the operations. A value type: a copy is a snapshot (used by reset).
struct Catalog: Sendable {
    struct Product: Sendable {
        var productKey: String
        var productName: String
    }

    struct Firmware: Sendable {
        var firmwareId: String
        var productKey: String
        var destVersion: String
        var srcVersion: String
    }

    struct Job: Sendable {
        var jobId: String
        var firmwareId: String
        var productKey: String
        var jobStatus: String
        var jobType: String
        var jobDesc: String
        var utcCreate: String
    }

    struct Device: Sendable {
        var productKey: String
        var deviceName: String
        var iotId: String
    }

    struct Task: Sendable {
        var taskId: String
        var device: DeviceKey
        var firmwareId: String
        var jobId: String
        var status: TaskStatus
        var taskDesc: String
        var utcCreate: String
        var utcModified: String
        /// How many `CancelOTATaskByDevice` calls reached this task (whatever its state), for exactly-once tests.
        var cancelCalls: Int
    }

    var products: [String: Product] = [:]
    var firmwares: [String: Firmware] = [:]
    var jobs: [String: Job] = [:]
    var devices: [DeviceKey: Device] = [:]
    /// Device name to the product keys that have a device of that name, in insertion order.
    var productKeysByDeviceName: [String: [String]] = [:]
    var tasks: [Task] = []
    var taskIndexByID: [String: Int] = [:]
    var taskIndicesByDevice: [DeviceKey: [Int]] = [:]
    var taskIndicesByJob: [String: [Int]] = [:]

    /// Builds the catalog from fixtures, then adds `generateDevices` demo devices with a task in each of
    /// `generateFirmwares` demo firmware.
    ///
    /// - Parameter createdAt: the `UtcCreate` of everything (the simulator's start).
    static func build(
        fixtures: [SimulatorFixture],
        generateDevices: Int,
        generateFirmwares: Int = 1,
        createdAt: Date
    ) throws(SimulatorError) -> Catalog {
        var catalog = Catalog()
        let stamp = Self.utcString(createdAt)
        for fixture in fixtures {
            try catalog.add(fixture, stamp: stamp)
        }
        if generateDevices > 0 {
            try catalog.add(Self.generatedFixture(count: generateDevices, firmwares: generateFirmwares), stamp: stamp)
        }
        return catalog
    }

    /// The demo data of `--generate-devices N --generate-firmwares K`: devices `dev-NNNNNN`; firmware
    /// `demoFirmware` (job `demoJob`, tasks `task-NNNNNN`) and, for `k` in `2...K`, `demoFirmware-k` (job
    /// `demoJob-k`, tasks `task-NNNNNN-k`); every device has a `QUEUED` task in every firmware.
    static func generatedFixture(count: Int, firmwares: Int = 1) -> SimulatorFixture {
        var fixture = SimulatorFixture(products: [.init(productKey: "demoProduct", productName: "Demo product")])
        for firmware in 1...max(1, firmwares) {
            fixture.firmwares.append(
                .init(firmwareId: generatedFirmwareId(firmware), productKey: "demoProduct")
            )
            fixture.jobs.append(.init(jobId: generatedJobId(firmware), firmwareId: generatedFirmwareId(firmware)))
        }
        fixture.devices.reserveCapacity(count)
        fixture.tasks.reserveCapacity(count * max(1, firmwares))
        for number in 1...count {
            fixture.devices.append(.init(productKey: "demoProduct", deviceName: "dev-" + sixDigits(number)))
        }
        for firmware in 1...max(1, firmwares) {
            let jobId = generatedJobId(firmware)
            let taskSuffix = firmware == 1 ? "" : "-\(firmware)"
            for number in 1...count {
                let digits = sixDigits(number)
                fixture.tasks.append(
                    .init(
                        taskId: "task-" + digits + taskSuffix,
                        deviceName: "dev-" + digits,
                        jobId: jobId,
                        status: "QUEUED"
                    )
                )
            }
        }
        return fixture
    }

    /// `demoFirmware` for the first generated firmware, `demoFirmware-k` for the others.
    static func generatedFirmwareId(_ number: Int) -> String {
        number == 1 ? "demoFirmware" : "demoFirmware-\(number)"
    }

    /// `demoJob` for the first generated firmware's job, `demoJob-k` for the others.
    static func generatedJobId(_ number: Int) -> String {
        number == 1 ? "demoJob" : "demoJob-\(number)"
    }

    /// `000042`: the generated names' number, six digits.
    private static func sixDigits(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// `2024-11-19T09:47:43.000Z`, the shape of the platform's `UtcCreate` fields.
    static func utcString(_ date: Date) -> String {
        var text = RPCTimestamp.string(from: date)
        text.removeLast()
        return text + ".000Z"
    }

    private mutating func add(_ fixture: SimulatorFixture, stamp: String) throws(SimulatorError) {
        for (index, product) in fixture.products.enumerated() {
            let at = "products[\(index)]"
            guard !product.productKey.isEmpty else { throw .invalidFixture("\(at): productKey is empty") }
            guard products[product.productKey] == nil else {
                throw .invalidFixture("\(at): product \(product.productKey) is defined twice")
            }
            products[product.productKey] = Product(
                productKey: product.productKey,
                productName: product.productName ?? product.productKey
            )
        }
        for (index, firmware) in fixture.firmwares.enumerated() {
            let at = "firmwares[\(index)]"
            guard !firmware.firmwareId.isEmpty else { throw .invalidFixture("\(at): firmwareId is empty") }
            guard firmwares[firmware.firmwareId] == nil else {
                throw .invalidFixture("\(at): firmware \(firmware.firmwareId) is defined twice")
            }
            guard products[firmware.productKey] != nil else {
                throw .invalidFixture("\(at): unknown product \(firmware.productKey)")
            }
            firmwares[firmware.firmwareId] = Firmware(
                firmwareId: firmware.firmwareId,
                productKey: firmware.productKey,
                destVersion: firmware.destVersion ?? "2.0.0",
                srcVersion: firmware.srcVersion ?? "1.0.0"
            )
        }
        for (index, job) in fixture.jobs.enumerated() {
            let at = "jobs[\(index)]"
            guard !job.jobId.isEmpty else { throw .invalidFixture("\(at): jobId is empty") }
            guard jobs[job.jobId] == nil else { throw .invalidFixture("\(at): job \(job.jobId) is defined twice") }
            guard let firmware = firmwares[job.firmwareId] else {
                throw .invalidFixture("\(at): unknown firmware \(job.firmwareId)")
            }
            let status = job.jobStatus ?? "IN_PROGRESS"
            guard ["PLANNED", "IN_PROGRESS", "COMPLETED", "CANCELED"].contains(status) else {
                throw .invalidFixture("\(at): jobStatus \(status) is not PLANNED, IN_PROGRESS, COMPLETED or CANCELED")
            }
            let type = job.jobType ?? "UPGRADE_FIRMWARE"
            guard ["UPGRADE_FIRMWARE", "VERIFY_FIRMWARE"].contains(type) else {
                throw .invalidFixture("\(at): jobType \(type) is not UPGRADE_FIRMWARE or VERIFY_FIRMWARE")
            }
            jobs[job.jobId] = Job(
                jobId: job.jobId,
                firmwareId: firmware.firmwareId,
                productKey: firmware.productKey,
                jobStatus: status,
                jobType: type,
                jobDesc: job.jobDesc ?? "",
                utcCreate: stamp
            )
        }
        for (index, device) in fixture.devices.enumerated() {
            let at = "devices[\(index)]"
            guard products[device.productKey] != nil else {
                throw .invalidFixture("\(at): unknown product \(device.productKey)")
            }
            guard DeviceNameRule.isValid(device.deviceName) else {
                throw .invalidFixture(
                    "\(at): device name \"\(device.deviceName)\" is not 4-32 of A-Z a-z 0-9 - _ @ . :"
                )
            }
            let key = DeviceKey(productKey: device.productKey, deviceName: device.deviceName)
            guard devices[key] == nil else {
                throw .invalidFixture("\(at): device \(device.deviceName) of \(device.productKey) is defined twice")
            }
            devices[key] = Device(
                productKey: device.productKey,
                deviceName: device.deviceName,
                iotId: device.iotId ?? "\(device.productKey).\(device.deviceName)"
            )
            productKeysByDeviceName[device.deviceName, default: []].append(device.productKey)
        }
        for (index, task) in fixture.tasks.enumerated() {
            let at = "tasks[\(index)]"
            guard let job = jobs[task.jobId] else { throw .invalidFixture("\(at): unknown job \(task.jobId)") }
            let key = DeviceKey(productKey: job.productKey, deviceName: task.deviceName)
            guard devices[key] != nil else {
                throw .invalidFixture("\(at): unknown device \(task.deviceName) of product \(job.productKey)")
            }
            let statusText = task.status ?? "QUEUED"
            guard let status = TaskStatus(rawValue: statusText) else {
                throw .invalidFixture(
                    "\(at): status \(statusText) is not one of "
                        + TaskStatus.allCases.map(\.rawValue).joined(separator: ", ")
                )
            }
            let taskId = task.taskId ?? "\(task.jobId)-\(task.deviceName)"
            guard !taskId.isEmpty, taskIndexByID[taskId] == nil else {
                throw .invalidFixture("\(at): task id \"\(taskId)\" is empty or defined twice")
            }
            let index = tasks.count
            tasks.append(
                Task(
                    taskId: taskId,
                    device: key,
                    firmwareId: job.firmwareId,
                    jobId: job.jobId,
                    status: status,
                    taskDesc: task.taskDesc ?? "",
                    utcCreate: stamp,
                    utcModified: stamp,
                    cancelCalls: 0
                )
            )
            taskIndexByID[taskId] = index
            taskIndicesByDevice[key, default: []].append(index)
            taskIndicesByJob[job.jobId, default: []].append(index)
        }
    }
}

/// The platform's DeviceName rule: 4 to 32 of `A-Z a-z 0-9 - _ @ . :`.
enum DeviceNameRule {
    static func isValid(_ name: String) -> Bool {
        let bytes = name.utf8
        guard (4...32).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "@"),
                UInt8(ascii: "."), UInt8(ascii: ":"):
                true
            default:
                false
            }
        }
    }
}
