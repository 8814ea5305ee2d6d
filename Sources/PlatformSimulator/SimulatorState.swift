// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The simulated platform's mutable state: catalog, counters, fault rules, used nonces and quota buckets.
///
/// One lock (a pthread mutex, see ``LockedValue``) guards everything, and an authenticated call takes it once
/// (nonce, quota, fault, operation and counters in one critical section of a few microseconds), so the HTTP
/// handlers never hop to an actor and tests can read the state directly while the server runs.
///
/// - Important: Thread-safe. Every method may be called from any task or thread, concurrently with requests.
public final class SimulatorState: Sendable {
    struct Storage: Sendable {
        var catalog: Catalog
        var stats = SimulatorStats()
        var faults: [FaultRule] = []
        var nonces: NonceMemory
        var buckets = TokenBuckets()
        /// Draws for fault probabilities and random latencies (seeded by the configuration, or at random).
        var random: SimulatorRandom
    }

    let storage: LockedValue<Storage>
    private let initialCatalog: Catalog
    private let initialFaults: [FaultRule]
    private let randomSeed: UInt64?

    /// Builds the state a configuration describes: fixture file, in-code fixture, then generated devices.
    ///
    /// - Throws: ``SimulatorError`` when the configuration is invalid or the fixture does not load.
    public convenience init(configuration: SimulatorConfiguration) throws(SimulatorError) {
        try configuration.validate()
        var fixtures: [SimulatorFixture] = []
        if let path = configuration.fixturePath { fixtures.append(try SimulatorFixture.load(path: path)) }
        if let fixture = configuration.fixture { fixtures.append(fixture) }
        let catalog = try Catalog.build(
            fixtures: fixtures,
            generateDevices: configuration.generateDevices,
            generateFirmwares: configuration.generateFirmwares,
            createdAt: Date()
        )
        self.init(
            catalog: catalog,
            nonceMemoryCapacity: configuration.nonceMemoryCapacity,
            faults: configuration.faults,
            randomSeed: configuration.randomSeed
        )
    }

    init(catalog: Catalog, nonceMemoryCapacity: Int, faults: [FaultRule] = [], randomSeed: UInt64? = nil) {
        self.initialCatalog = catalog
        self.initialFaults = faults
        self.randomSeed = randomSeed
        self.storage = LockedValue(
            Storage(
                catalog: catalog,
                faults: faults,
                nonces: NonceMemory(capacity: nonceMemoryCapacity),
                random: SimulatorRandom(seed: randomSeed)
            )
        )
    }

    /// A snapshot of the counters.
    public func stats() -> SimulatorStats {
        storage.withLock { $0.stats }
    }

    /// The tasks of every device with this name, across products, in fixture order.
    ///
    /// - Returns: `nil` when no product has a device of that name; an empty array when it has no task.
    public func tasks(deviceName: String) -> [SimulatedTask]? {
        tasks(deviceName: deviceName, productKey: nil)
    }

    /// The tasks of one device.
    ///
    /// - Parameter productKey: the device's product, or `nil` for devices of that name in any product.
    /// - Returns: `nil` when there is no such device.
    public func tasks(deviceName: String, productKey: String?) -> [SimulatedTask]? {
        storage.withLock { storage -> [SimulatedTask]? in
            let catalog = storage.catalog
            let productKeys = productKey.map { [$0] } ?? catalog.productKeysByDeviceName[deviceName] ?? []
            var found = false
            var result: [SimulatedTask] = []
            for productKey in productKeys {
                let key = DeviceKey(productKey: productKey, deviceName: deviceName)
                guard catalog.devices[key] != nil else { continue }
                found = true
                for index in catalog.taskIndicesByDevice[key] ?? [] {
                    result.append(SimulatedTask(catalog.tasks[index]))
                }
            }
            return found ? result : nil
        }
    }

    /// Every task, in fixture order.
    public func allTasks() -> [SimulatedTask] {
        storage.withLock { $0.catalog.tasks.map(SimulatedTask.init) }
    }

    /// The product keys that have a device of this name (usually one).
    public func productKeys(deviceName: String) -> [String] {
        storage.withLock { $0.catalog.productKeysByDeviceName[deviceName] ?? [] }
    }

    /// Sets a task's state, as the device or the platform would (to prepare `IN_PROGRESS` or finished tasks).
    ///
    /// - Parameter status: one of `CONFIRM`, `QUEUED`, `NOTIFIED`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED`,
    ///   `CANCELED`.
    /// - Returns: `false` when the task or the status is unknown.
    @discardableResult
    public func setTaskStatus(taskId: String, status: String) -> Bool {
        guard let status = TaskStatus(rawValue: status) else { return false }
        let stamp = Catalog.utcString(Date())
        return storage.withLock { storage in
            guard let index = storage.catalog.taskIndexByID[taskId] else { return false }
            storage.catalog.tasks[index].status = status
            storage.catalog.tasks[index].utcModified = stamp
            return true
        }
    }

    /// Adds a fault rule after the existing ones.
    ///
    /// Rules apply in the order they were added; a call consumes at most one. Prefer checking
    /// ``FaultRule/problem()`` first: an unusable rule is still stored and applied as well as it can be.
    public func injectFault(_ rule: FaultRule) {
        storage.withLock { $0.faults.append(rule) }
    }

    /// Removes every fault rule.
    public func clearFaults() {
        storage.withLock { $0.faults.removeAll() }
    }

    /// The fault rules still in force (with their remaining counts).
    public func faults() -> [FaultRule] {
        storage.withLock { $0.faults }
    }

    /// Restores the state the simulator started with: its catalog, the fault rules of its configuration (none
    /// unless ``SimulatorConfiguration/faults`` has some) and its random sequence; clears counters, nonces and
    /// quota buckets.
    public func reset() {
        storage.withLock { storage in
            storage.catalog = initialCatalog
            storage.stats = SimulatorStats()
            storage.faults = initialFaults
            storage.nonces.removeAll()
            storage.buckets.removeAll()
            storage.random = SimulatorRandom(seed: randomSeed)
        }
    }
}

/// The simulator's random numbers: SplitMix64, small, fast and reproducible from a seed.
///
/// Fault probabilities and random latencies draw from it under the state's lock, so a seeded simulator gives
/// the same sequence of decisions for the same sequence of calls (a test can count on a share being hit
/// without being at the mercy of chance), while an unseeded one starts from a random seed.
struct SimulatorRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// - Parameter seed: the seed; `nil` draws one from the system's generator.
    init(seed: UInt64?) {
        var system = SystemRandomNumberGenerator()
        state = seed ?? system.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
