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
    }

    let storage: LockedValue<Storage>
    private let initialCatalog: Catalog

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
            createdAt: Date()
        )
        self.init(catalog: catalog, nonceMemoryCapacity: configuration.nonceMemoryCapacity)
    }

    init(catalog: Catalog, nonceMemoryCapacity: Int) {
        self.initialCatalog = catalog
        self.storage = LockedValue(Storage(catalog: catalog, nonces: NonceMemory(capacity: nonceMemoryCapacity)))
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

    /// Restores the catalog the simulator started with and clears counters, faults, nonces and quota buckets.
    public func reset() {
        storage.withLock { storage in
            storage.catalog = initialCatalog
            storage.stats = SimulatorStats()
            storage.faults.removeAll()
            storage.nonces.removeAll()
            storage.buckets.removeAll()
        }
    }
}
