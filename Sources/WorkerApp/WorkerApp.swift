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
        // Before any connection: a busy operations port stops the start here, not after MQTT connected.
        try OpsListenCheck.check(host: configuration.ops.host, port: configuration.ops.port)
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

    /// The exit statuses of `ota-cancel-worker`, as `sysexits.h` names them.
    public enum ExitStatus {
        /// `EX_USAGE`: the command line cannot be parsed (an unknown flag, a flag without its value), as
        /// ArgumentParser exits.
        public static let usage: Int32 = 64
        /// `EX_UNAVAILABLE`: with `--exit-on-connection-failure`, the broker refused the worker for good or could
        /// not be reached within `--connect-timeout`.
        public static let unavailable: Int32 = 69
        /// `EX_TEMPFAIL`: the journal cannot be used (at start, a state folder held by another worker; while
        /// running, a failed write): a condition a restart may clear.
        public static let temporaryFailure: Int32 = 75
        /// `EX_CONFIG`: a setting is invalid or missing, or what it names is unusable (a secret file, the schema,
        /// the state folder, the operations port).
        public static let configuration: Int32 = 78
    }

    /// The exit status of `run` when ``buildServiceGroup(_:logger:signals:)`` fails.
    ///
    /// 75 (`EX_TEMPFAIL`) when the journal cannot be used, which includes a state folder held by another worker:
    /// the same status as a journal that fails while running, a condition that may pass (the other worker stops),
    /// so a supervisor's restart is right. 78 (`EX_CONFIG`) for everything else: the schema, the state folder's
    /// permissions, the operations port; restarting does not help until somebody changes something.
    public static func exitStatus(forStartFailure error: WorkerError) -> Int32 {
        error == WorkerError.journal("") ? ExitStatus.temporaryFailure : ExitStatus.configuration
    }

    /// The exit status of `run` when its service group ends with `error`: 69 for the MQTT connection given up
    /// (`--exit-on-connection-failure`), 75 for the journal, 78 for a configuration found unusable while starting
    /// (the operations port taken after the check), 1 for anything else.
    public static func exitStatus(forRunFailure error: any Error) -> Int32 {
        guard let error = error as? WorkerError else { return 1 }
        if error == WorkerError.mqtt("") { return ExitStatus.unavailable }
        if error == WorkerError.journal("") { return ExitStatus.temporaryFailure }
        if error == WorkerError.invalidConfiguration("") { return ExitStatus.configuration }
        return 1
    }

    /// Every start-up check that needs no network, as `run` makes them, changing nothing: the command schema
    /// loads, the state folder can be created or written and is not held (a held one is reported, not refused:
    /// `check-config` may run beside its worker), and the operations port can be bound (not checked while the
    /// folder is held: its worker likely holds the port too).
    ///
    /// - Returns: lines for the summary.
    /// - Throws: the first check that fails, naming the setting.
    public static func checkStart(_ configuration: WorkerConfiguration) throws(WorkerError) -> [String] {
        _ = try loadCommandSchema(configuration)
        let state = try StateDirectory.check(configuration.stateDirectory, journalPath: configuration.journal.path)
        var lines = ["state-dir: " + state.summary]
        if state.inUse {
            lines.append("ops: not checked, the worker holding the state folder probably listens there")
        } else {
            try OpsListenCheck.check(host: configuration.ops.host, port: configuration.ops.port)
            lines.append("ops: \(configuration.ops.host):\(configuration.ops.port) can be listened on")
        }
        return lines
    }

    /// Loads and compiles the command schema named by the configuration, with its device limit applied.
    public static func loadCommandSchema(_ configuration: WorkerConfiguration) throws(WorkerError) -> CommandSchema {
        try commandSchema(path: configuration.commandSchemaPath, maxDeviceNames: configuration.worker.maxDeviceNames)
    }

    /// The command schema from `path` (a `--schema-dir` file), or the copy built into the binary when `nil`.
    public static func commandSchema(path: String?, maxDeviceNames: Int?) throws(WorkerError) -> CommandSchema {
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
