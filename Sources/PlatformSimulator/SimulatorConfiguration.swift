// SPDX-License-Identifier: Apache-2.0
public import PlatformSignature

/// Everything that shapes one simulated platform: where it listens, who may call it, what it holds, how it answers.
///
/// Tests, demos and benchmarks need a platform nobody can reach from a test machine; this struct is the single
/// place where a run of the simulator is described, so the executable's flags and a test's in-process instance
/// configure exactly the same things. Every field has a default that gives a working simulator on a free
/// loopback port with the documented test account.
public struct SimulatorConfiguration: Sendable {
    /// The address to bind. Default `"127.0.0.1"`: the admin API is not authenticated, so it stays on loopback
    /// unless someone asks otherwise.
    public var host: String
    /// The TCP port. Default `0`: the kernel picks a free port, which ``RunningSimulator/port`` reports.
    public var port: Int
    /// The accounts that may call the RPC endpoint: AccessKeyId to its secret. Default `["testid": "testsecret"]`,
    /// the account of the platform's documented signature examples.
    public var accounts: [String: AccessKeySecret]
    /// How many demo devices to generate. Default `0`.
    ///
    /// `N > 0` seeds product `demoProduct`, firmware `demoFirmware`, job `demoJob` and devices `dev-000001` to
    /// `dev-NNNNNN` (six digits, at most 999,999), each with one `QUEUED` task `task-NNNNNN`, on top of the fixture.
    /// ``generateFirmwares`` adds more firmware for the same devices.
    public var generateDevices: Int
    /// How many firmware (each with its job) the generated devices have a task for. Default `1`.
    ///
    /// Firmware 1 is `demoFirmware` with job `demoJob` and tasks `task-NNNNNN`, as without this setting;
    /// firmware `k` from 2 to `K` is `demoFirmware-k` with job `demoJob-k`, and every generated device has a
    /// `QUEUED` task `task-NNNNNN-k` in it. A load test of a worker that groups commands by firmware needs many
    /// firmware keys whose cancels all succeed. Only used with ``generateDevices`` `> 0`; devices × firmware is
    /// at most 5,000,000 tasks.
    public var generateFirmwares: Int
    /// A JSON fixture file with products, firmware, jobs, devices and tasks (format in `docs/simulator.md`).
    /// Default `nil`.
    public var fixturePath: String?
    /// A fixture given in code (tests), loaded in addition to ``fixturePath``. Default `nil`.
    public var fixture: SimulatorFixture?
    /// The quota, in calls per second, per AccessKeyId and per Action. Default `10`, the documented quota of
    /// `CancelOTATaskByDevice`; `0` switches the quota off.
    ///
    /// A token bucket holding at most `qps` tokens, refilled continuously at `qps` tokens per second: a burst
    /// of `qps` calls passes, then calls pass at the quota rate; the call that finds the bucket empty is
    /// answered `Throttling.User`.
    public var qps: Int
    /// Added to every RPC answer, after the work is done and before the answer is written. Default `.zero`.
    ///
    /// With ``maximumLatency`` it is the lower bound of a random delay.
    public var latency: Duration
    /// When set, every RPC answer waits a random time drawn uniformly (whole milliseconds) between ``latency``
    /// and this. Default `nil`: exactly ``latency``.
    public var maximumLatency: Duration?
    /// Fault rules in force from the start (the executable's `--fault` flags), before any added at run time;
    /// ``SimulatorState/reset()`` restores them. Default `[]`.
    public var faults: [FaultRule]
    /// Seeds the random draws of fault probabilities and random latencies, for reproducible runs. Default
    /// `nil`: a random seed.
    public var randomSeed: UInt64?
    /// How far the simulator's clock is from the real one (positive: ahead). Default `.zero`.
    ///
    /// A platform whose clock disagrees with the client's by more than ``timestampTolerance`` answers
    /// `InvalidTimeStamp.Expired`; this is how a test provokes that from a correct client.
    public var clockOffset: Duration
    /// The shape of the operations' JSON answers. Default ``ResponseStyle/aliyun``.
    public var responseStyle: ResponseStyle
    /// What `CancelOTATaskByDevice` answers for a named device without a cancellable task of the firmware (and
    /// job). Default ``CancelWithoutTask/succeed``; the public documents do not say.
    public var cancelWithoutTask: CancelWithoutTask = .succeed
    /// The simulated instance's ID. Default `nil` (an old public instance, which has none).
    ///
    /// When set, every operation call must carry `IotInstanceId` with exactly this value; when `nil`, a call
    /// that carries a non-empty `IotInstanceId` names an instance that does not exist. Both are answered
    /// `iot.system.InstanceNotFound`.
    public var iotInstanceId: String?
    /// How far a request's `Timestamp` may be from the simulator's clock, either way. Default 15 minutes
    /// (`InvalidTimeStamp.Expired` beyond it). Nonces are remembered for as long as a request carrying them
    /// could still pass this check.
    public var timestampTolerance: Duration
    /// How many used nonces are remembered at most. Default `1_000_000` (about 32 MB).
    ///
    /// Nonces are pruned once their request's timestamp is out of tolerance; this bound only matters above
    /// about 1,100 calls per second sustained for the whole tolerance window, and then the oldest nonces are
    /// forgotten first.
    public var nonceMemoryCapacity: Int
    /// The largest accepted form body of a POST, in bytes. Default `1_048_576` (200 device names need ~10 KB).
    public var maximumBodySize: Int

    /// Creates a configuration; every argument has the default documented on its property.
    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        accounts: [String: AccessKeySecret] = ["testid": AccessKeySecret("testsecret")],
        generateDevices: Int = 0,
        fixturePath: String? = nil,
        fixture: SimulatorFixture? = nil,
        qps: Int = 10,
        latency: Duration = .zero,
        responseStyle: ResponseStyle = .aliyun,
        iotInstanceId: String? = nil,
        timestampTolerance: Duration = .seconds(15 * 60),
        nonceMemoryCapacity: Int = 1_000_000,
        maximumBodySize: Int = 1_048_576,
        maximumLatency: Duration? = nil,
        faults: [FaultRule] = [],
        randomSeed: UInt64? = nil,
        clockOffset: Duration = .zero,
        generateFirmwares: Int = 1
    ) {
        self.host = host
        self.port = port
        self.accounts = accounts
        self.generateDevices = generateDevices
        self.generateFirmwares = generateFirmwares
        self.fixturePath = fixturePath
        self.fixture = fixture
        self.qps = qps
        self.latency = latency
        self.responseStyle = responseStyle
        self.iotInstanceId = iotInstanceId
        self.timestampTolerance = timestampTolerance
        self.nonceMemoryCapacity = nonceMemoryCapacity
        self.maximumBodySize = maximumBodySize
        self.maximumLatency = maximumLatency
        self.faults = faults
        self.randomSeed = randomSeed
        self.clockOffset = clockOffset
    }

    /// The two plausible answers of a cancel that names a device without a cancellable task.
    public enum CancelWithoutTask: String, Sendable, Hashable, CaseIterable {
        /// The call succeeds and that device's tasks stay as they are (cancelling twice is harmless): the
        /// simulator's choice, because it makes a retried cancel safe and matches the single `Success` the
        /// document shows for a list of names.
        case succeed
        /// The call fails, all or nothing, with `iot.ota.TaskNotCancellable` naming the first such device.
        case fail
    }

    /// Replaces ``accounts`` with one account, for callers that hold the secret as text (flags, environment).
    public mutating func useSingleAccount(accessKeyId: String, accessKeySecret: String) {
        accounts = [accessKeyId: AccessKeySecret(accessKeySecret)]
    }

    /// The most tasks ``generateDevices`` × ``generateFirmwares`` may create: about 1 GB of catalog, beyond what a
    /// test machine should give a simulator.
    static let maximumGeneratedTasks = 5_000_000

    /// Checks the values that cannot work, naming the setting.
    ///
    /// - Throws: ``SimulatorError`` with code `invalidConfiguration`.
    public func validate() throws(SimulatorError) {
        guard (0...65_535).contains(port) else {
            throw .invalidConfiguration("port must be 0...65535, got \(port)")
        }
        guard !host.isEmpty else { throw .invalidConfiguration("host must not be empty") }
        guard !accounts.isEmpty else { throw .invalidConfiguration("accounts must hold at least one AccessKeyId") }
        for (id, secret) in accounts {
            guard !id.isEmpty else { throw .invalidConfiguration("an AccessKeyId is empty") }
            guard !secret.isEmpty else { throw .invalidConfiguration("the secret of AccessKeyId \(id) is empty") }
        }
        guard (0...999_999).contains(generateDevices) else {
            throw .invalidConfiguration("generateDevices must be 0...999999 (six-digit names), got \(generateDevices)")
        }
        guard (1...999).contains(generateFirmwares) else {
            throw .invalidConfiguration("generateFirmwares must be 1...999, got \(generateFirmwares)")
        }
        guard generateDevices * generateFirmwares <= Self.maximumGeneratedTasks else {
            throw .invalidConfiguration(
                "generateDevices × generateFirmwares must be at most \(Self.maximumGeneratedTasks) tasks, got "
                    + "\(generateDevices) × \(generateFirmwares)"
            )
        }
        guard qps >= 0 else { throw .invalidConfiguration("qps must be >= 0 (0 = no quota), got \(qps)") }
        guard latency >= .zero else { throw .invalidConfiguration("latency must not be negative") }
        if let maximumLatency, maximumLatency < latency {
            throw .invalidConfiguration("maximumLatency must not be below latency")
        }
        for (index, rule) in faults.enumerated() {
            if let problem = rule.problem() { throw .invalidConfiguration("faults[\(index)]: \(problem)") }
        }
        guard timestampTolerance > .zero else { throw .invalidConfiguration("timestampTolerance must be positive") }
        guard nonceMemoryCapacity > 0 else { throw .invalidConfiguration("nonceMemoryCapacity must be positive") }
        guard maximumBodySize > 0 else { throw .invalidConfiguration("maximumBodySize must be positive") }
        if let iotInstanceId, iotInstanceId.isEmpty {
            throw .invalidConfiguration("iotInstanceId must be nil or non-empty")
        }
    }
}

/// The JSON shape of the operations' answers.
///
/// Alibaba Cloud answers in PascalCase (`{"RequestId":"…","Success":true}`); Tuya's copy of the API answers in
/// lower camel case (`{"code":"","requestId":"…","success":true}`). A client must parse both, so the simulator
/// can speak either. Gateway errors (signature, quota, parameters) keep the Alibaba shape in both styles.
public struct ResponseStyle: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Sendable, Hashable {
        case aliyun
        case tuya
    }

    let kind: Kind

    /// Alibaba Cloud IoT Platform: `RequestId`, `Success`, `Code`, `ErrorMessage`.
    public static let aliyun = ResponseStyle(kind: .aliyun)
    /// Tuya's copy: `requestId`, `success`, `code` (empty on success), `errorMessage`.
    public static let tuya = ResponseStyle(kind: .tuya)

    /// Every style, for help texts.
    public static let allStyles: [ResponseStyle] = [.aliyun, .tuya]

    /// Parses `aliyun` or `tuya` (case-insensitive).
    public init?(name: String) {
        switch name.lowercased() {
        case "aliyun": self = .aliyun
        case "tuya": self = .tuya
        default: return nil
        }
    }

    private init(kind: Kind) { self.kind = kind }

    /// `aliyun` or `tuya`.
    public var name: String {
        switch kind {
        case .aliyun: "aliyun"
        case .tuya: "tuya"
        }
    }

    public var description: String { name }
}
