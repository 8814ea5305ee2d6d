// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformAPI
import Prometheus
import Synchronization
import Worker

/// The metrics that are a state rather than a stream of events, read when `GET /metrics` is served: the build,
/// the process (the names of Prometheus's own client libraries, so standard dashboards work), the broker
/// connection, the replies waiting for the broker, the journal's backlog and the rate limiter's current rate.
///
/// Read at scrape time because that is when they are wanted: the journal's backlog costs three index lookups,
/// nothing when nobody scrapes. The counters among them (reconnections, CPU seconds) come from monotonic sources
/// and are advanced by the difference since the last scrape.
final class ScrapeTimeMetrics: Sendable {
    /// Metric names and their HELP text.
    enum Name {
        static let buildInfo = "ota_cancel_build_info"
        static let brokerConnected = "ota_cancel_broker_connected"
        static let brokerReconnects = "ota_cancel_broker_reconnects_total"
        static let repliesAwaitingAcknowledgement = "ota_cancel_replies_awaiting_ack"
        static let repliesQueued = "ota_cancel_replies_queued"
        static let journalUnanswered = "ota_cancel_journal_unanswered_commands"
        static let journalWaitingDuplicates = "ota_cancel_journal_waiting_duplicates"
        static let journalRepliesToPublish = "ota_cancel_journal_replies_to_publish"
        static let journalOldestUnansweredAge = "ota_cancel_journal_oldest_unanswered_age_seconds"
        static let journalReadFailures = "ota_cancel_journal_scrape_failures_total"
        static let limiterRate = "ota_cancel_platform_limiter_rate_per_second"
        static let residentMemory = "process_resident_memory_bytes"
        static let virtualMemory = "process_virtual_memory_bytes"
        static let openFileDescriptors = "process_open_fds"
        static let maxFileDescriptors = "process_max_fds"
        static let startTime = "process_start_time_seconds"
        static let cpuSeconds = "process_cpu_seconds_total"

        static let help: [String: String] = [
            buildInfo: "Always 1; the labels say which version and git revision is running",
            brokerConnected: "1 while the MQTT connection is up, else 0",
            brokerReconnects: "MQTT connections established after the first one (reconnections)",
            repliesAwaitingAcknowledgement: "Replies published and waiting for the broker's acknowledgement",
            repliesQueued: "Stored replies queued for publication",
            journalUnanswered: "Commands in the journal not answered yet (the backlog)",
            journalWaitingDuplicates: "Duplicates in the journal waiting for their original's reply",
            journalRepliesToPublish: "Replies stored in the journal and not yet acknowledged by the broker",
            journalOldestUnansweredAge: "Age of the oldest unanswered command in the journal (0 when there is none)",
            journalReadFailures: "Scrapes that could not read the journal's backlog (its gauges kept their values)",
            limiterRate: "Platform calls per second the rate limiter allows now (lowered by throttling; 0: no limit)",
            residentMemory: "Resident memory size in bytes",
            virtualMemory: "Virtual memory size in bytes",
            openFileDescriptors: "Number of open file descriptors",
            maxFileDescriptors: "Maximum number of open file descriptors",
            startTime: "Start time of the process since the Unix epoch in seconds",
            cpuSeconds: "Total user and system CPU time spent in seconds",
        ]
    }

    private struct Gauges: Sendable {
        let brokerConnected: Prometheus.Gauge
        let repliesAwaitingAcknowledgement: Prometheus.Gauge
        let repliesQueued: Prometheus.Gauge
        let journalUnanswered: Prometheus.Gauge
        let journalWaitingDuplicates: Prometheus.Gauge
        let journalRepliesToPublish: Prometheus.Gauge
        let journalOldestUnansweredAge: Prometheus.Gauge
        let limiterRate: Prometheus.Gauge
        let residentMemory: Prometheus.Gauge
        let virtualMemory: Prometheus.Gauge
        let openFileDescriptors: Prometheus.Gauge
        let maxFileDescriptors: Prometheus.Gauge
        let startTime: Prometheus.Gauge
    }

    /// What the counters were advanced to, so that concurrent scrapes add each difference once.
    private struct Reported {
        var reconnections = 0
        var cpuSeconds = 0.0
    }

    private let gauges: Gauges
    private let brokerReconnects: Prometheus.Counter
    private let journalReadFailures: Prometheus.Counter
    private let cpuSeconds: Prometheus.Counter
    private let reported = Mutex(Reported())
    private let operational: @Sendable () -> CancelWorkerService.Operational
    private let journal: any CommandJournal
    private let limiterRate: @Sendable () -> Double?

    /// - Parameters:
    ///   - operational: the worker's connection and publisher state.
    ///   - limiterRate: the rate limiter's current rate; `nil` without a limit.
    init(
        registry: PrometheusCollectorRegistry,
        operational: @escaping @Sendable () -> CancelWorkerService.Operational,
        journal: any CommandJournal,
        limiterRate: @escaping @Sendable () -> Double?
    ) {
        func descriptor(_ name: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: Name.help[name] ?? "")
        }
        func gauge(_ name: String) -> Prometheus.Gauge { registry.makeGauge(descriptor: descriptor(name)) }
        registry.makeGauge(
            descriptor: descriptor(Name.buildInfo),
            labels: [("version", BuildInfo.version), ("revision", BuildInfo.revision)]
        ).set(Int64(1))
        gauges = Gauges(
            brokerConnected: gauge(Name.brokerConnected),
            repliesAwaitingAcknowledgement: gauge(Name.repliesAwaitingAcknowledgement),
            repliesQueued: gauge(Name.repliesQueued),
            journalUnanswered: gauge(Name.journalUnanswered),
            journalWaitingDuplicates: gauge(Name.journalWaitingDuplicates),
            journalRepliesToPublish: gauge(Name.journalRepliesToPublish),
            journalOldestUnansweredAge: gauge(Name.journalOldestUnansweredAge),
            limiterRate: gauge(Name.limiterRate),
            residentMemory: gauge(Name.residentMemory),
            virtualMemory: gauge(Name.virtualMemory),
            openFileDescriptors: gauge(Name.openFileDescriptors),
            maxFileDescriptors: gauge(Name.maxFileDescriptors),
            startTime: gauge(Name.startTime)
        )
        brokerReconnects = registry.makeCounter(descriptor: descriptor(Name.brokerReconnects))
        journalReadFailures = registry.makeCounter(descriptor: descriptor(Name.journalReadFailures))
        cpuSeconds = registry.makeCounter(descriptor: descriptor(Name.cpuSeconds))
        self.operational = operational
        self.journal = journal
        self.limiterRate = limiterRate
    }

    /// Reads every source and sets the metrics; called before each scrape is written.
    func refresh(now: Date = Date()) async {
        let state = operational()
        gauges.brokerConnected.set(Int64(state.brokerConnected ? 1 : 0))
        gauges.repliesAwaitingAcknowledgement.set(Int64(state.repliesAwaitingAcknowledgement))
        gauges.repliesQueued.set(Int64(state.repliesQueued))
        gauges.limiterRate.set(limiterRate() ?? 0)
        let reconnections = max(0, state.brokerConnections - 1)
        let newReconnections = reported.withLock { reported -> Int in
            defer { reported.reconnections = max(reported.reconnections, reconnections) }
            return max(0, reconnections - reported.reconnections)
        }
        if newReconnections > 0 { brokerReconnects.increment(by: Int64(newReconnections)) }

        do {
            let backlog = try await journal.backlog()
            gauges.journalUnanswered.set(Int64(backlog.unanswered))
            gauges.journalWaitingDuplicates.set(Int64(backlog.waitingDuplicates))
            gauges.journalRepliesToPublish.set(Int64(backlog.repliesToPublish))
            gauges.journalOldestUnansweredAge.set(
                backlog.oldestUnansweredAt.map { max(0, now.timeIntervalSince($0)) } ?? 0
            )
        } catch {
            journalReadFailures.increment()
        }

        if let process = ProcessStatistics.current() {
            gauges.residentMemory.set(process.residentBytes)
            gauges.virtualMemory.set(process.virtualBytes)
            gauges.openFileDescriptors.set(Int64(process.openFileDescriptors))
            gauges.maxFileDescriptors.set(Int64(process.maxFileDescriptors))
            gauges.startTime.set(process.startTime)
            let added = reported.withLock { reported -> Double in
                defer { reported.cpuSeconds = max(reported.cpuSeconds, process.cpuSeconds) }
                return max(0, process.cpuSeconds - reported.cpuSeconds)
            }
            if added > 0 { cpuSeconds.increment(by: added) }
        }
    }
}

/// The process's figures from `/proc` (Linux); the parsing is pure and unit-tested.
struct ProcessStatistics: Sendable, Hashable {
    var residentBytes: Double
    var virtualBytes: Double
    var cpuSeconds: Double
    /// Seconds since the Unix epoch.
    var startTime: Double
    var openFileDescriptors: Int
    var maxFileDescriptors: Int

    /// The fields of `/proc/self/stat` this needs, read from its text.
    ///
    /// The second field, the command name in parentheses, may hold spaces and parentheses itself: the fields
    /// are counted from the last `)`.
    ///
    /// - Parameters:
    ///   - ticksPerSecond: `sysconf(_SC_CLK_TCK)`; `pageSize`: `sysconf(_SC_PAGESIZE)`.
    ///   - bootTime: `btime` of `/proc/stat`, seconds since the epoch.
    static func parse(
        stat: String,
        ticksPerSecond: Double,
        pageSize: Double,
        bootTime: Double
    ) -> (residentBytes: Double, virtualBytes: Double, cpuSeconds: Double, startTime: Double)? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        // After ")": field 3 (state) is index 0, so field N is index N - 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        func field(_ number: Int) -> Double? {
            let index = number - 3
            return fields.indices.contains(index) ? Double(fields[index]) : nil
        }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23),
            let rss = field(24), ticksPerSecond > 0
        else { return nil }
        return (rss * pageSize, vsize, (utime + stime) / ticksPerSecond, bootTime + start / ticksPerSecond)
    }

    /// `btime` from the text of `/proc/stat`.
    static func bootTime(procStat: String) -> Double? {
        for line in procStat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// This process now; `nil` where `/proc` is not there.
    static func current() -> ProcessStatistics? {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let procStat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let bootTime = bootTime(procStat: procStat),
            let parsed = parse(
                stat: stat,
                ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))),
                pageSize: Double(sysconf(Int32(_SC_PAGESIZE))),
                bootTime: bootTime
            )
        else { return nil }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var limit = rlimit()
        let maximum = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
        return ProcessStatistics(
            residentBytes: parsed.residentBytes,
            virtualBytes: parsed.virtualBytes,
            cpuSeconds: parsed.cpuSeconds,
            startTime: parsed.startTime,
            // The listing itself holds one descriptor while it runs.
            openFileDescriptors: max(0, descriptors - 1),
            maxFileDescriptors: maximum
        )
        #else
        return nil
        #endif
    }
}
