// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import WorkerApp

/// The settings shared by `run` and `check-config`. Defaults are applied in `WorkerConfiguration.resolve`,
/// after the environment, so every option here is optional.
struct WorkerOptions: ParsableArguments, WithBrokerOptions {
    /// The broker connection's settings, shared with `request`.
    @OptionGroup var broker: BrokerOptions

    @Option(
        help:
            "MQTT 5 session expiry in seconds: how long the broker queues commands while the worker is away. (default: 86400)"
    )
    var sessionExpiry: Int?

    @Option(
        help:
            "Topic filter the commands arrive on; $share/<group>/<topic> spreads them over several workers. (default: ota/cancel/request)"
    )
    var commandTopic: String?

    @Option(help: "Reply topic for commands that name none. (default: ota/cancel/reply)")
    var defaultReplyTopic: String?

    @Option(
        help: "Topic for messages that cannot be parsed and carry no Response Topic. (default: ota/cancel/dead-letter)"
    )
    var deadLetterTopic: String?

    @Option(help: "Topic filter reply topics must match; repeat or separate with commas. (default: ota/cancel/reply/#)")
    var replyTopicAllow: [String] = []

    @Option(help: "Platform API endpoint, e.g. https://iot.cn-shanghai.aliyuncs.com or the simulator's URL. (required)")
    var platformEndpoint: String?

    @Option(help: "HTTP method of platform calls: GET or POST. (default: GET)")
    var platformMethod: String?

    @Option(
        help:
            "Request profile: aliyun (Format, Version, SignatureVersion, RegionId: the official SDKs' parameters) or tuya (the seed's: none of them). (default: aliyun)"
    )
    var platformProfile: String?

    @Option(help: "AccessKey ID. (required)")
    var accessKeyId: String?

    @Option(help: "File holding the AccessKey secret (or OTA_CANCEL_ACCESS_KEY_SECRET).")
    var accessKeySecretFile: String?

    @Option(help: "RegionId sent with every call, e.g. cn-shanghai. (default: not sent)")
    var regionId: String?

    @Option(help: "IotInstanceId sent with every call unless the command names one. (default: not sent)")
    var iotInstanceId: String?

    @Option(help: "Platform calls per second for this account; 0 for no limit. (default: 10, the documented quota)")
    var platformQps: Double?

    @Option(help: "Attempts per platform call, retries of transient errors included. (default: 4)")
    var platformMaxAttempts: Int?

    @Option(help: "Seconds to connect to the platform (TCP and TLS). (default: 5)")
    var platformConnectTimeout: Double?

    @Option(
        help:
            "Seconds of silence while waiting for the platform's answer; an attempt ends after connect + read timeouts. (default: 10)"
    )
    var platformReadTimeout: Double?

    @Option(
        help:
            "Most HTTP connections to the platform at once; a call needs one for its whole round trip. (default: --max-in-flight)"
    )
    var platformMaxConnections: Int?

    @Option(help: "Platform calls made at once. (default: 64)")
    var maxInFlight: Int?

    @Option(
        help:
            "Commands served at once (their device names wait in memory for calls); more wait in the journal. (default: 20000)"
    )
    var maxPendingCommands: Int?

    @Option(
        help:
            "Milliseconds a key's first waiting device name waits for others before its call goes, like Kafka's linger.ms; names pile up anyway while the quota holds calls back. (default: 0)"
    )
    var coalesceWindow: Double?

    @Option(
        help:
            "Read the devices' tasks back after the cancel, for the reply's devices section: auto (commands with a jobId), on (every command), off (only commands that ask with \"verify\": true). (default: auto)"
    )
    var verify: String?

    @Option(
        help:
            "Most devices of a command without a jobId that are read back (one ListOTAUnfinishedTaskByDevice call each); above it they are unverified. (default: 20)"
    )
    var verifyMaxDevices: Int?

    @Option(help: "Most devices one command may name. (default: 10000)")
    var maxDeviceNames: Int?

    @Option(help: "Largest payload accepted, in bytes. (default: 4194304)")
    var maxPayloadBytes: Int?

    @Option(help: "Seconds a graceful shutdown waits for in-flight commands. (default: 20)")
    var drainTimeout: Double?

    @Option(help: "State folder (journal). (default: ./state)")
    var stateDir: String?

    @Option(
        help:
            "Folder holding cancel-command.schema.json, to use instead of the copy built into the binary. (default: the built-in copy)"
    )
    var schemaDir: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. (default: info)")
    var logLevel: String?

    @Option(
        help:
            "Log format: text (logfmt: key=value, values quoted when needed) or json (one object per line). (default: text)"
    )
    var logFormat: String?

    @Option(
        help:
            "Journal durability: normal (survives a crash of the worker), full (also a power loss; a disk flush per message), or memory (nothing survives: for benchmarks only). (default: normal)"
    )
    var journalSync: String?

    @Option(help: "Seconds a replied command is kept for deduplication. (default: 86400)")
    var journalRetention: Double?

    @Option(help: "Most replied commands kept in the journal. (default: 1000000)")
    var journalMaxEntries: Int?

    @Option(
        help:
            "Deadline, in seconds after receipt, of a command that sets none; transient platform errors are retried until then. 0 for none. (default: 3600)"
    )
    var defaultDeadline: Double?

    @Flag(
        inversion: .prefixedNo,
        help:
            "Exit (69) when the broker refuses the worker for good or cannot be reached within --connect-timeout, instead of reconnecting with backoff. (default: reconnect)"
    )
    var exitOnConnectionFailure: Bool?

    @Option(
        help:
            "With --exit-on-connection-failure: seconds the worker may stay without a broker connection (at start, or after losing it) before it gives up and exits 69. (default: 30)"
    )
    var connectTimeout: Double?

    @Option(help: "Address of the health endpoints (/health/live, /health/ready). (default: 127.0.0.1)")
    var opsHost: String?

    @Option(help: "Port of the health endpoints; 0 picks a free one. (default: 9464)")
    var opsPort: Int?

    var replyTopicAllowList: [String]? { replyTopicAllow.isEmpty ? nil : replyTopicAllow }
}
