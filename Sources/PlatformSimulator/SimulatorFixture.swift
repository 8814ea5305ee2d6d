// SPDX-License-Identifier: Apache-2.0
public import Foundation

/// The products, firmware, upgrade jobs, devices and OTA tasks a simulator starts with.
///
/// The same shape is read from a fixture file (``SimulatorConfiguration/fixturePath``) and can be built in code
/// (``SimulatorConfiguration/fixture``), so a test can describe exactly the platform state it needs. Only what
/// the simulated operations read is modelled; each entry states which fields may be left out and what they
/// default to. Unknown keys are refused, so a misspelt field fails loudly instead of being ignored.
public struct SimulatorFixture: Sendable, Codable, Equatable {
    /// A product: the namespace of device names (`ProductKey`).
    public struct Product: Sendable, Codable, Equatable {
        /// The `ProductKey`. Required.
        public var productKey: String
        /// Shown as `ProductName` in task listings. Default: the product key.
        public var productName: String?

        /// Creates a product; see each property for its default.
        public init(productKey: String, productName: String? = nil) {
            self.productKey = productKey
            self.productName = productName
        }
    }

    /// An OTA upgrade package of one product.
    public struct Firmware: Sendable, Codable, Equatable {
        /// The `FirmwareId`. Required, unique.
        public var firmwareId: String
        /// The product it belongs to. Required; must be a listed product.
        public var productKey: String
        /// The version it upgrades to (`DestVersion`). Default `"2.0.0"`.
        public var destVersion: String?
        /// The version it upgrades from (`SrcVersion`). Default `"1.0.0"`.
        public var srcVersion: String?

        /// Creates a firmware; see each property for its default.
        public init(firmwareId: String, productKey: String, destVersion: String? = nil, srcVersion: String? = nil) {
            self.firmwareId = firmwareId
            self.productKey = productKey
            self.destVersion = destVersion
            self.srcVersion = srcVersion
        }
    }

    /// An upgrade batch (`JobId`) of one firmware.
    public struct Job: Sendable, Codable, Equatable {
        /// The `JobId`. Required, unique.
        public var jobId: String
        /// The firmware it rolls out. Required; must be a listed firmware.
        public var firmwareId: String
        /// `PLANNED`, `IN_PROGRESS`, `COMPLETED` or `CANCELED`. Default `IN_PROGRESS`.
        public var jobStatus: String?
        /// `UPGRADE_FIRMWARE` or `VERIFY_FIRMWARE`. Default `UPGRADE_FIRMWARE`.
        public var jobType: String?
        /// Free text (`JobDesc`). Default empty.
        public var jobDesc: String?

        /// Creates a job; see each property for its default.
        public init(
            jobId: String,
            firmwareId: String,
            jobStatus: String? = nil,
            jobType: String? = nil,
            jobDesc: String? = nil
        ) {
            self.jobId = jobId
            self.firmwareId = firmwareId
            self.jobStatus = jobStatus
            self.jobType = jobType
            self.jobDesc = jobDesc
        }
    }

    /// A device of one product.
    public struct Device: Sendable, Codable, Equatable {
        /// The product. Required; must be a listed product.
        public var productKey: String
        /// The `DeviceName`, unique within its product. Required.
        public var deviceName: String
        /// The platform-wide device ID (`IotId`). Default `"<productKey>.<deviceName>"`.
        public var iotId: String?

        /// Creates a device; see each property for its default.
        public init(productKey: String, deviceName: String, iotId: String? = nil) {
            self.productKey = productKey
            self.deviceName = deviceName
            self.iotId = iotId
        }
    }

    /// One device's upgrade task within one job.
    public struct Task: Sendable, Codable, Equatable {
        /// The `TaskId`. Default `"<jobId>-<deviceName>"`; unique.
        public var taskId: String?
        /// The device. Required; must be a listed device of the job's product.
        public var deviceName: String
        /// The job. Required; must be a listed job. The task's firmware and product are the job's.
        public var jobId: String
        /// `CONFIRM`, `QUEUED`, `NOTIFIED`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED` or `CANCELED`. Default `QUEUED`.
        public var status: String?
        /// Free text (`TaskDesc`). Default empty.
        public var taskDesc: String?

        /// Creates a task; see each property for its default.
        public init(
            taskId: String? = nil,
            deviceName: String,
            jobId: String,
            status: String? = nil,
            taskDesc: String? = nil
        ) {
            self.taskId = taskId
            self.deviceName = deviceName
            self.jobId = jobId
            self.status = status
            self.taskDesc = taskDesc
        }
    }

    /// The products. Default empty.
    public var products: [Product]
    /// The firmware, each of a listed product. Default empty.
    public var firmwares: [Firmware]
    /// The upgrade jobs, each of a listed firmware. Default empty.
    public var jobs: [Job]
    /// The devices, each of a listed product. Default empty.
    public var devices: [Device]
    /// The OTA tasks, each of a listed device and job. Default empty.
    public var tasks: [Task]

    /// Creates a fixture; every list defaults to empty.
    public init(
        products: [Product] = [],
        firmwares: [Firmware] = [],
        jobs: [Job] = [],
        devices: [Device] = [],
        tasks: [Task] = []
    ) {
        self.products = products
        self.firmwares = firmwares
        self.jobs = jobs
        self.devices = devices
        self.tasks = tasks
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case products, firmwares, jobs, devices, tasks
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        products = try container.decodeIfPresent([Product].self, forKey: .products) ?? []
        firmwares = try container.decodeIfPresent([Firmware].self, forKey: .firmwares) ?? []
        jobs = try container.decodeIfPresent([Job].self, forKey: .jobs) ?? []
        devices = try container.decodeIfPresent([Device].self, forKey: .devices) ?? []
        tasks = try container.decodeIfPresent([Task].self, forKey: .tasks) ?? []
    }

    /// Reads and decodes a fixture file.
    ///
    /// - Throws: ``SimulatorError`` `fixtureUnreadable`, naming the file and, for a decoding failure, the path
    ///   of the offending entry.
    public static func load(path: String) throws(SimulatorError) -> SimulatorFixture {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .fixtureUnreadable("cannot read fixture \(path): \(error.localizedDescription)")
        }
        return try decode(data, source: path)
    }

    /// Decodes fixture JSON.
    ///
    /// - Parameter source: names the data in error messages (a path, or `"fixture"`).
    public static func decode(_ data: Data, source: String = "fixture") throws(SimulatorError) -> SimulatorFixture {
        do {
            return try JSONDecoder().decode(SimulatorFixture.self, from: data)
        } catch let error as DecodingError {
            throw .fixtureUnreadable("\(source): \(describe(error))")
        } catch {
            throw .fixtureUnreadable("\(source): \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
                .joined()
            return text.isEmpty ? "top level" : String(text.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \"\(key.stringValue)\" at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(context.debugDescription) at \(path(context))"
        @unknown default:
            return "\(error)"
        }
    }
}

extension SimulatorFixture.Product {
    private enum CodingKeys: String, CodingKey, CaseIterable { case productKey, productName }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        productKey = try container.decode(String.self, forKey: .productKey)
        productName = try container.decodeIfPresent(String.self, forKey: .productName)
    }
}

extension SimulatorFixture.Firmware {
    private enum CodingKeys: String, CodingKey, CaseIterable { case firmwareId, productKey, destVersion, srcVersion }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        firmwareId = try container.decode(String.self, forKey: .firmwareId)
        productKey = try container.decode(String.self, forKey: .productKey)
        destVersion = try container.decodeIfPresent(String.self, forKey: .destVersion)
        srcVersion = try container.decodeIfPresent(String.self, forKey: .srcVersion)
    }
}

extension SimulatorFixture.Job {
    private enum CodingKeys: String, CodingKey, CaseIterable { case jobId, firmwareId, jobStatus, jobType, jobDesc }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        jobId = try container.decode(String.self, forKey: .jobId)
        firmwareId = try container.decode(String.self, forKey: .firmwareId)
        jobStatus = try container.decodeIfPresent(String.self, forKey: .jobStatus)
        jobType = try container.decodeIfPresent(String.self, forKey: .jobType)
        jobDesc = try container.decodeIfPresent(String.self, forKey: .jobDesc)
    }
}

extension SimulatorFixture.Device {
    private enum CodingKeys: String, CodingKey, CaseIterable { case productKey, deviceName, iotId }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        productKey = try container.decode(String.self, forKey: .productKey)
        deviceName = try container.decode(String.self, forKey: .deviceName)
        iotId = try container.decodeIfPresent(String.self, forKey: .iotId)
    }
}

extension SimulatorFixture.Task {
    private enum CodingKeys: String, CodingKey, CaseIterable { case taskId, deviceName, jobId, status, taskDesc }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        taskId = try container.decodeIfPresent(String.self, forKey: .taskId)
        deviceName = try container.decode(String.self, forKey: .deviceName)
        jobId = try container.decode(String.self, forKey: .jobId)
        status = try container.decodeIfPresent(String.self, forKey: .status)
        taskDesc = try container.decodeIfPresent(String.self, forKey: .taskDesc)
    }
}

/// Any key, to list what an object actually holds.
private struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Refuses an object with a key outside `allowed`, so a misspelt fixture field is an error, not a silent default.
private func rejectUnknownKeys(in decoder: any Decoder, allowed: [String]) throws {
    let container = try decoder.container(keyedBy: AnyCodingKey.self)
    for key in container.allKeys where !allowed.contains(key.stringValue) {
        throw DecodingError.dataCorrupted(
            .init(
                codingPath: decoder.codingPath + [key],
                debugDescription: "unknown field \"\(key.stringValue)\" (allowed: \(allowed.joined(separator: ", ")))"
            )
        )
    }
}
