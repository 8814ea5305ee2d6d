// SPDX-License-Identifier: Apache-2.0
public import Logging
import Prometheus
public import ServiceLifecycle
import UnixSignals
public import Worker
import Foundation
import JSONSchema
import Mosquitto
import PlatformAPI

/// The composition root: configuration in, a ready-to-run `ServiceGroup` out (STYLE §16).
public enum WorkerApp {
    /// What ``buildServiceGroup(_:logger:)`` made: the group to run and the worker inside it (tests read
    /// its readiness and counters).
    public struct Built: Sendable {
        public var serviceGroup: ServiceGroup
        public var worker: CancelWorkerService
        public var ops: OpsServer
        public var journal: any CommandJournal
    }

    /// Builds the services in shutdown order: the operations server first (probes answer to the end), the
    /// platform client next (it stops after the pipeline has drained its calls), then the MQTT pipeline (it
    /// stops taking commands first).
    ///
    /// - Parameter signals: `true` in the executable (SIGTERM and SIGINT start a graceful shutdown); tests
    ///   stop the group by cancelling or by `triggerGracefulShutdown()`.
    public static func buildServiceGroup(
        _ configuration: WorkerConfiguration,
        logger: Logger,
        signals: Bool = true
    ) throws(WorkerError) -> Built {
        let schema = try loadCommandSchema(configuration)
        // Before the journal opens and before any connection: a second worker on this folder stops here.
        let lock = try StateDirectory.prepare(
            configuration.stateDirectory,
            journalPath: configuration.journal.path,
            logger: logger
        )
        let journal = try SQLiteJournal(configuration: configuration.journal)
        let platform = PlatformAPIClient(configuration: configuration.platform, logger: logger)
        // Each built worker has its own registry (no global bootstrap): two workers in one process, as in tests,
        // keep their figures apart.
        let registry = PrometheusCollectorRegistry()
        let worker = CancelWorkerService(
            configuration: configuration.worker,
            mqtt: configuration.mqtt,
            schema: schema,
            journal: journal,
            platform: platform,
            platformConfiguration: configuration.platform,
            supervision: configuration.supervision,
            metrics: WorkerMetrics(factory: WorkerMetrics.prometheusFactory(registry: registry)),
            logger: logger
        )
        let scrapeTime = ScrapeTimeMetrics(
            registry: registry,
            operational: { worker.operational },
            journal: journal,
            limiterRate: { platform.effectiveRatePerSecond }
        )
        let ops = OpsServer(
            configuration: configuration.ops,
            worker: worker,
            metrics: registry,
            refresh: { await scrapeTime.refresh() },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    // First, so it is shut down last: the folder is released once everything else has stopped.
                    .init(service: StateDirectoryLockService(lock: lock)),
                    .init(service: ops),
                    .init(service: platform),
                    .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
                logger: logger
            )
        )
        return Built(serviceGroup: group, worker: worker, ops: ops, journal: journal)
    }

    /// The exit status of `run` when ``buildServiceGroup(_:logger:signals:)`` fails.
    ///
    /// 75 (`EX_TEMPFAIL`) when the journal cannot be used, which includes a state folder held by another worker:
    /// the same status as a journal that fails while running, a condition that may pass (the other worker stops),
    /// so a supervisor's restart is right. 1 for everything else (schema, state folder), as before.
    public static func exitStatus(forStartFailure error: WorkerError) -> Int32 {
        error == WorkerError.journal("") ? 75 : 1
    }

    /// Loads and compiles the command schema named by the configuration, with its device limit applied.
    public static func loadCommandSchema(_ configuration: WorkerConfiguration) throws(WorkerError) -> CommandSchema {
        try commandSchema(path: configuration.commandSchemaPath, maxDeviceNames: configuration.worker.maxDeviceNames)
    }

    /// The command schema from `path` (a `--schema-dir` file), or the copy built into the binary when `nil`.
    static func commandSchema(path: String?, maxDeviceNames: Int?) throws(WorkerError) -> CommandSchema {
        if let path { return try CommandSchema.load(path: path, maxDeviceNames: maxDeviceNames) }
        let name = WorkerConfiguration.commandSchemaFileName
        guard let data = BuildInfo.embeddedSchema(name) else { throw WorkerError.schemaNotFound("(built in) " + name) }
        let document: JSONValue
        do {
            document = try JSONParser.parse(data)
        } catch {
            throw WorkerError.invalidSchema("(built in) \(name): \(error)")
        }
        return try CommandSchema(document: document, maxDeviceNames: maxDeviceNames)
    }
}

/// Holds the state folder's lock for as long as the service group runs, and releases it when the group ends
/// (graceful shutdown, cancellation or a failure), so an in-process restart on the same folder can take it again.
struct StateDirectoryLockService: Service {
    let lock: StateDirectoryLock

    func run() async {
        defer { lock.release() }
        // Returns on graceful shutdown, and throws (ignored) on cancellation: both end the hold.
        try? await gracefulShutdown()
    }
}

extension WorkerMetrics {
    /// A Prometheus factory that gives every metric its HELP text, with buckets that fit the worker's histograms:
    /// names per call run from 1 to 200 (the default value buckets stop at 10), waits before a call from a
    /// millisecond to minutes, command and call durations up to the default deadline of an hour.
    static func prometheusFactory(registry: PrometheusCollectorRegistry) -> DocumentedPrometheusFactory {
        var factory = DocumentedPrometheusFactory(registry: registry, help: Name.help)
        factory.valueBuckets[Name.namesPerCall] = [1, 2, 5, 10, 20, 50, 100, 150, 199, 200]
        // A command may be retried until its deadline (an hour by default): its duration and a call's (pacing and
        // retries included) need buckets that far; the default ones stop at 10 s.
        let longDurations: [Duration] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1_800), .seconds(3_600),
        ]
        factory.durationBuckets[Name.commandDuration] = longDurations
        factory.durationBuckets[Name.platformCallDuration] = longDurations
        let waits: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(120),
        ]
        factory.durationBuckets[Name.callWait] = waits
        factory.durationBuckets[Name.limiterWait] = waits
        return factory
    }
}
