// SPDX-License-Identifier: Apache-2.0

/// The worker's settings as given on the command line: `nil` means "not given".
///
/// The command-line tool conforms to this protocol and tests pass their own values (STYLE §16). Every setting
/// not given falls back to the environment variable `OTA_CANCEL_<NAME>` (upper case, dashes as underscores),
/// then to its documented default; see ``WorkerConfiguration/resolve(_:environment:)``.
public protocol WorkerArguments: Sendable {
    /// The configuration file (JSON), looked at after flags and environment variables.
    var config: String? { get }
    var brokerHost: String? { get }
    var brokerPort: Int? { get }
    var mqttVersion: String? { get }
    var clientId: String? { get }
    var brokerUsername: String? { get }
    var brokerPasswordFile: String? { get }
    var brokerTlsCaFile: String? { get }
    var brokerTlsCaDir: String? { get }
    var brokerTlsCertFile: String? { get }
    var brokerTlsKeyFile: String? { get }
    var brokerTlsInsecure: Bool? { get }
    var brokerTlsVersion: String? { get }
    var brokerTlsCiphers: String? { get }
    var brokerMaxPacketSize: Int? { get }
    var keepalive: Int? { get }
    var sessionExpiry: Int? { get }
    var commandTopic: String? { get }
    var defaultReplyTopic: String? { get }
    var deadLetterTopic: String? { get }
    var replyTopicAllowList: [String]? { get }
    var platformEndpoint: String? { get }
    var platformMethod: String? { get }
    var platformProfile: String? { get }
    var accessKeyId: String? { get }
    var accessKeySecretFile: String? { get }
    var regionId: String? { get }
    var iotInstanceId: String? { get }
    var platformQps: Double? { get }
    var platformMaxAttempts: Int? { get }
    var platformConnectTimeout: Double? { get }
    var platformReadTimeout: Double? { get }
    var platformMaxConnections: Int? { get }
    var maxInFlight: Int? { get }
    var maxPendingCommands: Int? { get }
    var coalesceWindow: Double? { get }
    var verify: String? { get }
    var verifyMaxDevices: Int? { get }
    var maxDeviceNames: Int? { get }
    var maxPayloadBytes: Int? { get }
    var drainTimeout: Double? { get }
    var stateDir: String? { get }
    var schemaDir: String? { get }
    var logLevel: String? { get }
    var logFormat: String? { get }
    var journalSync: String? { get }
    var journalRetention: Double? { get }
    var journalMaxEntries: Int? { get }
    var defaultDeadline: Double? { get }
    var exitOnConnectionFailure: Bool? { get }
    var connectTimeout: Double? { get }
    var opsHost: String? { get }
    var opsPort: Int? { get }
}

extension WorkerArguments {
    public var config: String? { nil }
    public var brokerHost: String? { nil }
    public var brokerPort: Int? { nil }
    public var mqttVersion: String? { nil }
    public var clientId: String? { nil }
    public var brokerUsername: String? { nil }
    public var brokerPasswordFile: String? { nil }
    public var brokerTlsCaFile: String? { nil }
    public var brokerTlsCaDir: String? { nil }
    public var brokerTlsCertFile: String? { nil }
    public var brokerTlsKeyFile: String? { nil }
    public var brokerTlsInsecure: Bool? { nil }
    public var brokerTlsVersion: String? { nil }
    public var brokerTlsCiphers: String? { nil }
    public var brokerMaxPacketSize: Int? { nil }
    public var keepalive: Int? { nil }
    public var sessionExpiry: Int? { nil }
    public var commandTopic: String? { nil }
    public var defaultReplyTopic: String? { nil }
    public var deadLetterTopic: String? { nil }
    public var replyTopicAllowList: [String]? { nil }
    public var platformEndpoint: String? { nil }
    public var platformMethod: String? { nil }
    public var platformProfile: String? { nil }
    public var accessKeyId: String? { nil }
    public var accessKeySecretFile: String? { nil }
    public var regionId: String? { nil }
    public var iotInstanceId: String? { nil }
    public var platformQps: Double? { nil }
    public var platformMaxAttempts: Int? { nil }
    public var platformConnectTimeout: Double? { nil }
    public var platformReadTimeout: Double? { nil }
    public var platformMaxConnections: Int? { nil }
    public var maxInFlight: Int? { nil }
    public var maxPendingCommands: Int? { nil }
    public var coalesceWindow: Double? { nil }
    public var verify: String? { nil }
    public var verifyMaxDevices: Int? { nil }
    public var maxDeviceNames: Int? { nil }
    public var maxPayloadBytes: Int? { nil }
    public var drainTimeout: Double? { nil }
    public var stateDir: String? { nil }
    public var schemaDir: String? { nil }
    public var logLevel: String? { nil }
    public var logFormat: String? { nil }
    public var journalSync: String? { nil }
    public var journalRetention: Double? { nil }
    public var journalMaxEntries: Int? { nil }
    public var defaultDeadline: Double? { nil }
    public var exitOnConnectionFailure: Bool? { nil }
    public var connectTimeout: Double? { nil }
    public var opsHost: String? { nil }
    public var opsPort: Int? { nil }
}
