// SPDX-License-Identifier: Apache-2.0
public import CoreMetrics
import PlatformAPI

/// The worker's metrics (DESIGN §6), made once from a swift-metrics factory and updated where the work happens.
///
/// Names carry the `ota_cancel_` prefix and follow Prometheus conventions (`_total` for counters, `_seconds` for
/// durations). Every label comes from a small fixed vocabulary (an outcome, a reply status, a platform error's
/// ``PlatformAPIError/shortDescription``), never from topics, correlation ids or device names, so the number of
/// series stays bounded whatever the traffic. The fixed series are created up front: a dashboard sees a 0
/// rather than nothing before the first rejection.
///
/// The handles come from the factory given to ``init(factory:)``. The worker passes `MetricsSystem.factory`,
/// which is the task-local factory of `withMetricsFactory` when one is bound (the application binds its own
/// Prometheus registry that way, and tests bind theirs), else the global one (a no-op unless bootstrapped).
public struct WorkerMetrics: Sendable {
    /// Metric names, for dashboards, alerts and tests.
    public enum Name {
        /// Counter of MQTT messages taken in, by `outcome`: `accepted` (journaled for execution), `duplicate`
        /// (answered from, or waiting for, an earlier command with the same key), `rejected`, `expired`,
        /// `dead_letter`.
        public static let messages = "ota_cancel_messages_total"
        /// Counter of commands answered, by `status` (the reply's status): those executed, and those rejected or
        /// expired at intake (a duplicate's reply repeats its original's and is not counted again).
        public static let commandsCompleted = "ota_cancel_commands_completed_total"
        /// Counter of segments (a command's names for one call) put back in their queue: after a transient
        /// failure (sent again after a backoff), a failure split to find its culprit, or an interrupted call.
        public static let commandRetries = "ota_cancel_command_retries_total"
        /// Histogram of the time from a command's arrival to its stored reply.
        public static let commandDuration = "ota_cancel_command_duration_seconds"
        /// Histogram of the distinct device names one platform call carried (coalescing at work: 1 at low load,
        /// up to 200 while the quota holds names back).
        public static let namesPerCall = "ota_cancel_call_device_names"
        /// Histogram of how long a segment waited in its key's queue before the call that carried it.
        public static let callWait = "ota_cancel_call_wait_seconds"
        /// Gauge of device names waiting for a call (a name wanted by two commands counts twice).
        public static let namesWaiting = "ota_cancel_device_names_waiting"
        /// Gauge of commands with names waiting for a call.
        public static let commandsWaiting = "ota_cancel_commands_waiting"
        /// Gauge of batch keys (product, firmware, job, instance) with names waiting.
        public static let keysWaiting = "ota_cancel_batch_keys_waiting"
        /// Gauge of the names waiting on the busiest key (a per-key label would be unbounded: firmware ids).
        public static let largestKeyQueue = "ota_cancel_largest_key_queue_names"
        /// Counter of platform answers that were throttling errors (each slows the rate limiter down).
        public static let throttled = "ota_cancel_platform_throttled_total"
        /// Counter of shared calls whose permanent failure named no culprit, split in two to find it.
        public static let bisections = "ota_cancel_call_bisections_total"

        /// Counter of platform calls (each with its own retries inside), by `result`: `success` or the failure's
        /// category from a fixed vocabulary (``PlatformAPIError/Category``: `throttled`, `signature`,
        /// `not_found`, `invalid`, `server_error`, `timeout`, `transport`, `other`), never the platform's own
        /// code, which would make the series unbounded.
        public static let platformCalls = "ota_cancel_platform_calls_total"
        /// Histogram of one platform call's duration, pacing and retries included.
        public static let platformCallDuration = "ota_cancel_platform_call_duration_seconds"
        /// Counter of replies (and dead letters) the broker acknowledged.
        public static let repliesPublished = "ota_cancel_replies_published_total"
        /// Counter of reply publications that failed and were tried again.
        public static let replyPublishFailures = "ota_cancel_reply_publish_failures_total"
        /// Counter of stored messages that can never be published (refused by libmosquitto or the broker), by
        /// `kind`: `reply`, `dead_letter` (each replaced by a notice on the dead-letter topic) or `notice` (a notice
        /// that could not be published either: dropped, only logged).
        public static let repliesUndeliverable = "ota_cancel_replies_undeliverable_total"
        /// Gauge of commands being served right now (names waiting or in a call).
        public static let commandsInFlight = "ota_cancel_commands_in_flight"
        /// Counter of device names in executed commands' replies, by `outcome`: `cancelled` (in a call the platform
        /// accepted) or `failed` (in a failed group).
        public static let devices = "ota_cancel_devices_total"
        /// Histogram of how long a call that was ready to go waited for a rate-limiter token (0 when one was free).
        public static let limiterWait = "ota_cancel_platform_limiter_wait_seconds"
        /// Counter of read-back calls, by `action` (``ReadBackAction``: `list_by_job`, `unfinished_by_device`) and
        /// `result` (as for ``platformCalls``).
        public static let readBackCalls = "ota_cancel_read_back_calls_total"
        /// Counter of devices in read-back replies, by `group` (``ReadBackGroup``: `canceled`,
        /// `already_upgraded`, `failed`, `still_active`, `no_task`, `unverified`): `already_upgraded` counts the
        /// devices that took the firmware before the cancel, the ones a rollback must downgrade.
        public static let readBackDevices = "ota_cancel_read_back_devices_total"

        /// The HELP text of every metric above, as `GET /metrics` shows it (`promtool check metrics` wants one).
        public static let help: [String: String] = [
            messages: "MQTT messages taken in, by outcome (accepted, duplicate, rejected, expired, dead_letter)",
            commandsCompleted: "Commands answered, by the reply's status (executed ones and those answered at intake)",
            commandRetries: "Command segments put back in their queue (transient failure, bisection, interrupted call)",
            commandDuration: "Time from a command's arrival to its stored reply",
            namesPerCall: "Distinct device names one platform call carried (1 to 200)",
            callWait: "Time a command segment waited in its batch key's queue before the call that carried it",
            namesWaiting: "Device names waiting for a platform call",
            commandsWaiting: "Commands with device names waiting for a platform call",
            keysWaiting: "Batch keys (product, firmware, job, instance) with device names waiting",
            largestKeyQueue: "Device names waiting on the busiest batch key",
            throttled: "Platform answers that were throttling errors (each slows the rate limiter down)",
            bisections: "Shared calls whose permanent failure named no culprit, split in two to find it",
            platformCalls: "Platform calls (retries inside), by result (success or a fixed failure category)",
            platformCallDuration: "Duration of one platform call, rate limiting and retries included",
            repliesPublished: "Replies and dead letters the broker acknowledged",
            replyPublishFailures: "Reply publications that failed and were tried again",
            repliesUndeliverable: "Stored messages that can never be published, by kind (reply, dead_letter, notice)",
            commandsInFlight: "Commands being served now (device names waiting or in a call)",
            devices: "Device names in executed commands' replies, by outcome (cancelled, failed)",
            limiterWait: "Time a ready platform call waited for a rate-limiter token",
            readBackCalls: "Read-back calls, by action (list_by_job, unfinished_by_device) and result",
            readBackDevices:
                "Devices in read-back replies, by group (canceled, already_upgraded, failed, still_active, no_task, "
                + "unverified)",
        ]
    }

    /// What became of one MQTT message at intake (the `outcome` label of ``Name/messages``).
    public enum MessageOutcome: String, Sendable, CaseIterable {
        case accepted, duplicate, rejected, expired
        case deadLetter = "dead_letter"
    }

    /// The read action of one read-back call (the `action` label of ``Name/readBackCalls``).
    public enum ReadBackAction: String, Sendable, CaseIterable {
        case listByJob = "list_by_job"
        case unfinishedByDevice = "unfinished_by_device"
    }

    /// A group of the reply's `devices` section (the `group` label of ``Name/readBackDevices``).
    public enum ReadBackGroup: String, Sendable, CaseIterable {
        case canceled
        case alreadyUpgraded = "already_upgraded"
        case failed
        case stillActive = "still_active"
        case noTask = "no_task"
        case unverified
    }

    private let messages: [MessageOutcome: Counter]
    private let completed: [CancelReply.Status: Counter]
    private let retries: Counter
    private let commandDuration: Timer
    private let platformSuccesses: Counter
    private let platformFailures: [PlatformAPIError.Category: Counter]
    private let platformDuration: Timer
    private let published: Counter
    private let publishFailures: Counter
    private let undeliverable: [PendingReply.Kind: Counter]
    private let inFlight: Gauge
    private let namesPerCall: Recorder
    private let callWait: Timer
    private let namesWaiting: Gauge
    private let commandsWaiting: Gauge
    private let keysWaiting: Gauge
    private let largestKeyQueue: Gauge
    private let throttled: Counter
    private let bisections: Counter
    private let devicesCancelled: Counter
    private let devicesFailed: Counter
    private let limiterWait: Timer
    private let readBackCalls: [ReadBackAction: [String: Counter]]
    private let readBackDevices: [ReadBackGroup: Counter]

    /// Makes every fixed series from `factory`.
    ///
    /// - Parameter factory: where the handles come from. Default `MetricsSystem.factory` (the task-local factory
    ///   if one is bound, else the global one).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        messages = Dictionary(
            uniqueKeysWithValues: MessageOutcome.allCases.map {
                ($0, Counter(label: Name.messages, dimensions: [("outcome", $0.rawValue)], factory: factory))
            }
        )
        let statuses: [CancelReply.Status] = [.succeeded, .partial, .failed, .rejected, .expired]
        completed = Dictionary(
            uniqueKeysWithValues: statuses.map {
                ($0, Counter(label: Name.commandsCompleted, dimensions: [("status", $0.rawValue)], factory: factory))
            }
        )
        retries = Counter(label: Name.commandRetries, factory: factory)
        commandDuration = Timer(label: Name.commandDuration, factory: factory)
        platformSuccesses = Counter(label: Name.platformCalls, dimensions: [("result", "success")], factory: factory)
        platformFailures = Dictionary(
            uniqueKeysWithValues: PlatformAPIError.Category.allCases.map {
                ($0, Counter(label: Name.platformCalls, dimensions: [("result", $0.rawValue)], factory: factory))
            }
        )
        platformDuration = Timer(label: Name.platformCallDuration, factory: factory)
        published = Counter(label: Name.repliesPublished, factory: factory)
        publishFailures = Counter(label: Name.replyPublishFailures, factory: factory)
        let kinds: [(PendingReply.Kind, String)] = [
            (.reply, "reply"), (.deadLetter, "dead_letter"), (.notice, "notice"),
        ]
        undeliverable = Dictionary(
            uniqueKeysWithValues: kinds.map {
                ($0.0, Counter(label: Name.repliesUndeliverable, dimensions: [("kind", $0.1)], factory: factory))
            }
        )
        inFlight = Gauge(label: Name.commandsInFlight, factory: factory)
        namesPerCall = Recorder(label: Name.namesPerCall, factory: factory)
        callWait = Timer(label: Name.callWait, factory: factory)
        namesWaiting = Gauge(label: Name.namesWaiting, factory: factory)
        commandsWaiting = Gauge(label: Name.commandsWaiting, factory: factory)
        keysWaiting = Gauge(label: Name.keysWaiting, factory: factory)
        largestKeyQueue = Gauge(label: Name.largestKeyQueue, factory: factory)
        throttled = Counter(label: Name.throttled, factory: factory)
        bisections = Counter(label: Name.bisections, factory: factory)
        devicesCancelled = Counter(label: Name.devices, dimensions: [("outcome", "cancelled")], factory: factory)
        devicesFailed = Counter(label: Name.devices, dimensions: [("outcome", "failed")], factory: factory)
        limiterWait = Timer(label: Name.limiterWait, factory: factory)
        let results = ["success"] + PlatformAPIError.Category.allCases.map(\.rawValue)
        readBackCalls = Dictionary(
            uniqueKeysWithValues: ReadBackAction.allCases.map { action in
                let counters = results.map { result in
                    let dimensions = [("action", action.rawValue), ("result", result)]
                    return (result, Counter(label: Name.readBackCalls, dimensions: dimensions, factory: factory))
                }
                return (action, Dictionary(uniqueKeysWithValues: counters))
            }
        )
        readBackDevices = Dictionary(
            uniqueKeysWithValues: ReadBackGroup.allCases.map {
                ($0, Counter(label: Name.readBackDevices, dimensions: [("group", $0.rawValue)], factory: factory))
            }
        )
    }

    /// One read-back call ended.
    func readBackCall(_ action: ReadBackAction, _ result: Result<OTATaskPage, PlatformAPIError>) {
        let label =
            switch result {
            case .success: "success"
            case .failure(let error): error.category.rawValue
            }
        readBackCalls[action]?[label]?.increment()
    }

    /// One message taken in.
    func message(_ outcome: MessageOutcome) {
        messages[outcome]?.increment()
    }

    /// One command answered after execution, `duration` after it arrived; its devices counted by outcome.
    func completed(_ reply: CancelReply, duration: Duration) {
        completed[reply.status]?.increment()
        commandDuration.recordNanoseconds(duration.nanoseconds)
        let cancelled = reply.cancelledDevices?.count ?? 0
        let failed = reply.failedGroups?.reduce(0) { $0 + $1.deviceNames.count } ?? 0
        if cancelled > 0 { devicesCancelled.increment(by: cancelled) }
        if failed > 0 { devicesFailed.increment(by: failed) }
        if let devices = reply.devices {
            let groups: [(ReadBackGroup, Int)] = [
                (.canceled, devices.canceled.count), (.alreadyUpgraded, devices.alreadyUpgraded.count),
                (.failed, devices.failed.count), (.stillActive, devices.stillActive.count),
                (.noTask, devices.noTask.count), (.unverified, devices.unverified.count),
            ]
            for (group, count) in groups where count > 0 { readBackDevices[group]?.increment(by: count) }
        }
    }

    /// A ready call got its rate-limiter token after `waited`.
    func admitted(waited: Duration) {
        limiterWait.recordNanoseconds(waited.nanoseconds)
    }

    /// One command answered at intake, without execution (rejected, or expired on arrival): counted, but not
    /// timed (its "duration" would say nothing about the platform path).
    func answeredAtIntake(_ status: CancelReply.Status) {
        completed[status]?.increment()
    }

    /// Segments put back in their queue.
    func requeued(_ count: Int) {
        retries.increment(by: count)
    }

    /// A call is made: how many names it carries and how long each of its segments waited for it.
    func callStarted(names: Int, waited: [Double]) {
        namesPerCall.record(names)
        for seconds in waited { callWait.recordNanoseconds(Int64(max(0, seconds) * 1e9)) }
    }

    /// What waits for calls now.
    func waiting(names: Int, commands: Int, keys: Int, largestQueue: Int) {
        namesWaiting.record(names)
        commandsWaiting.record(commands)
        keysWaiting.record(keys)
        largestKeyQueue.record(largestQueue)
    }

    /// Throttling answers seen by one call.
    func throttledAnswers(_ count: Int) {
        if count > 0 { throttled.increment(by: count) }
    }

    /// A shared call's failure was split to find its culprit.
    func bisected() {
        bisections.increment()
    }

    /// One platform call ended.
    func platformCall(_ result: Result<Void, PlatformAPIError>, duration: Duration) {
        switch result {
        case .success: platformSuccesses.increment()
        case .failure(let error): platformFailures[error.category]?.increment()
        }
        platformDuration.recordNanoseconds(duration.nanoseconds)
    }

    /// One reply acknowledged by the broker.
    func replyPublished() {
        published.increment()
    }

    /// One reply publication failed (it is tried again).
    func replyPublishFailed() {
        publishFailures.increment()
    }

    /// One stored message recorded as undeliverable.
    func replyUndeliverable(_ kind: PendingReply.Kind) {
        undeliverable[kind]?.increment()
    }

    /// The number of commands being served now.
    func commandsInFlight(_ count: Int) {
        inFlight.record(count)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating), as swift-metrics timers take it.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow
            ? (seconds < 0 ? .min : .max) : whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
