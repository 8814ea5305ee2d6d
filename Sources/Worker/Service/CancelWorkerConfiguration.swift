// SPDX-License-Identifier: Apache-2.0

/// What the worker does with messages: topics, limits and reply rules.
///
/// The MQTT connection and the platform client have their own configurations
/// (`MosquittoConfiguration`, `PlatformAPIConfiguration`); this one holds only the pipeline's own choices.
public struct CancelWorkerConfiguration: Sendable {
    /// The topic filter the commands arrive on. Default `ota/cancel/request`.
    ///
    /// A shared subscription (`$share/<group>/ota/cancel/request`) spreads the load over several workers.
    public var commandTopic: String

    /// Where replies go when the command names no reply topic. Default `ota/cancel/reply`.
    public var defaultReplyTopic: String

    /// Where messages go that cannot be parsed and carry no MQTT 5 Response Topic. Default `ota/cancel/dead-letter`.
    public var deadLetterTopic: String

    /// Topic filters a reply topic must match, so that nobody can make the worker publish into arbitrary topics.
    /// Default `["ota/cancel/reply/#"]` (which also matches `ota/cancel/reply` itself, per MQTT).
    /// The default reply topic is always allowed.
    public var replyTopicAllowList: [String]

    /// Platform calls made at once. Default 64. The platform's quota (see the platform client's rate limit)
    /// paces the calls; this bounds open HTTP requests when the platform is slow or the quota is off.
    public var maxInFlight: Int

    /// Commands served at once: their names wait in memory for calls, so this bounds memory. Default 20,000
    /// (a storm of 10,000 one-device commands fits, and coalesces into 50 calls). More commands wait in the
    /// journal and are taken in as others finish.
    public var maxPendingCommands: Int

    /// How long a key's first waiting device name waits for others before its call may go (Kafka's `linger.ms`).
    /// Default 0: a call goes as soon as the rate limiter has a token; names still pile up while tokens are short.
    public var coalesceWindow: Duration

    /// Payloads larger than this are refused unparsed. Default 4 MiB (a 10,000-device command is about 400 KiB).
    public var maxPayloadBytes: Int

    /// Most device names one command may carry; lowers the schema's own limit when smaller. Default 10,000.
    public var maxDeviceNames: Int

    /// How long graceful shutdown waits for in-flight commands before giving up. Default 20 s.
    ///
    /// Commands still running then stay in the journal and run again at the next start.
    public var drainTimeout: Duration

    /// How long graceful shutdown then waits for the broker to acknowledge the replies still being published.
    /// Default 5 s.
    ///
    /// The two bound a SIGTERM: it ends within ``drainTimeout`` plus this, whatever is stuck. Replies still
    /// unacknowledged then stay in the journal and are published at the next start.
    public var flushTimeout: Duration

    /// The deadline of a command that sets none (and whose message has no MQTT 5 expiry). Default 1 hour;
    /// `nil` for none. While the platform answers transient errors, a command is retried until its deadline,
    /// then answered `expired` (or `partial`); this bounds how late a cancel can be executed.
    public var defaultDeadline: Duration?

    /// Which commands are read back after the cancel (their reply's `devices` section). Default
    /// ``VerifyPolicy/Mode/auto`` (the commands with a `jobId`), and without a `jobId` at most 20 devices.
    public var verify: VerifyPolicy

    public init(
        commandTopic: String = "ota/cancel/request",
        defaultReplyTopic: String = "ota/cancel/reply",
        deadLetterTopic: String = "ota/cancel/dead-letter",
        replyTopicAllowList: [String] = ["ota/cancel/reply/#"],
        maxInFlight: Int = 64,
        maxPendingCommands: Int = 20_000,
        coalesceWindow: Duration = .zero,
        maxPayloadBytes: Int = 4 << 20,
        maxDeviceNames: Int = 10_000,
        drainTimeout: Duration = .seconds(20),
        flushTimeout: Duration = .seconds(5),
        defaultDeadline: Duration? = .seconds(3600),
        verify: VerifyPolicy = VerifyPolicy()
    ) {
        self.commandTopic = commandTopic
        self.defaultReplyTopic = defaultReplyTopic
        self.deadLetterTopic = deadLetterTopic
        self.replyTopicAllowList = replyTopicAllowList
        self.maxInFlight = maxInFlight
        self.maxPendingCommands = max(1, maxPendingCommands)
        self.coalesceWindow = coalesceWindow
        self.maxPayloadBytes = maxPayloadBytes
        self.maxDeviceNames = maxDeviceNames
        self.drainTimeout = drainTimeout
        self.flushTimeout = flushTimeout
        self.defaultDeadline = defaultDeadline
        self.verify = verify
    }
}
