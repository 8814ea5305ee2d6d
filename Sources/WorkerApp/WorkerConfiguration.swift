// SPDX-License-Identifier: Apache-2.0
public import Logging
public import Mosquitto
public import PlatformAPI
public import Worker
import Foundation
import PlatformSignature

/// Everything the worker needs to run, resolved and checked.
public struct WorkerConfiguration: Sendable {
    public var mqtt: MosquittoConfiguration
    public var platform: PlatformAPIConfiguration
    public var worker: CancelWorkerConfiguration
    /// Path of `cancel-command.schema.json` given by `--schema-dir`; `nil` for the copy built into the binary.
    public var commandSchemaPath: String?
    /// The state folder (journal and other local state). Created when missing.
    public var stateDirectory: String
    public var logLevel: Logger.Level
    /// How log records are written. Default ``LogFormat/text``.
    public var logFormat: LogFormat
    /// The journal in the state folder.
    public var journal: JournalConfiguration
    /// The operations endpoints (health, readiness).
    public var ops: OpsServerConfiguration
    /// What to do when the MQTT connection fails for good.
    public var supervision: CancelWorkerService.Supervision
    /// The configuration file the settings were read from, if any (shown by `check-config`).
    public var configFile: String?

    public init(
        mqtt: MosquittoConfiguration,
        platform: PlatformAPIConfiguration,
        worker: CancelWorkerConfiguration,
        commandSchemaPath: String?,
        stateDirectory: String,
        logLevel: Logger.Level,
        logFormat: LogFormat = .text,
        journal: JournalConfiguration? = nil,
        ops: OpsServerConfiguration = .init(),
        supervision: CancelWorkerService.Supervision = .init(),
        configFile: String? = nil
    ) {
        self.mqtt = mqtt
        self.platform = platform
        self.worker = worker
        self.commandSchemaPath = commandSchemaPath
        self.stateDirectory = stateDirectory
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.journal = journal ?? JournalConfiguration(path: stateDirectory + "/journal.sqlite")
        self.ops = ops
        self.supervision = supervision
        self.configFile = configFile
    }

    /// The prefix of every environment variable the worker reads.
    public static let environmentPrefix = "OTA_CANCEL_"

    /// The environment variable holding the AccessKey secret itself (prefer a file: see `--access-key-secret-file`).
    public static let secretEnvironmentVariable = "OTA_CANCEL_ACCESS_KEY_SECRET"

    /// The log format asked for (flag, `OTA_CANCEL_LOG_FORMAT`, configuration file), read on its own.
    ///
    /// For the one line that says why the worker could not start: when ``resolve(_:environment:)`` fails, the
    /// settings are not whole, yet a log pipeline that was promised JSON lines should still get one. Anything that
    /// cannot be read here, the format included, gives `text`.
    public static func requestedLogFormat(
        _ arguments: some WorkerArguments,
        environment: [String: String]? = nil
    ) -> LogFormat {
        let text: String?
        if let settings = try? SettingResolver(arguments, environment: environment) {
            text = try? settings.string("log-format", arguments.logFormat, default: "text")
        } else {
            // The resolver itself refused (an unknown variable, an unreadable file): the flag, else the variable.
            text = arguments.logFormat ?? (environment ?? ProcessInfo.processInfo.environment)["OTA_CANCEL_LOG_FORMAT"]
        }
        return text.flatMap { LogFormat(rawValue: $0.lowercased()) } ?? .text
    }

    /// Resolves every setting: the command line first, then `OTA_CANCEL_<NAME>`, then the default.
    ///
    /// - Parameter environment: the variables to read; `nil` (the default) reads the process environment.
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` naming the setting (and the variable it
    ///   came from) when a value is missing or unusable.
    public static func resolve(
        _ arguments: some WorkerArguments,
        environment: [String: String]? = nil
    ) throws(WorkerError) -> WorkerConfiguration {
        let settings = try SettingResolver(arguments, environment: environment)
        let (environment, file) = (settings.environment, settings.file)

        // MQTT.
        var mqtt = try brokerConnection(
            arguments,
            settings,
            clientID: try settings.string("client-id", arguments.clientId, default: defaultClientID())
        )
        mqtt.sessionExpiryInterval = UInt32(
            try settings.int("session-expiry", arguments.sessionExpiry, default: 86_400, range: 1...Int(UInt32.max))
        )

        // Pipeline.
        var worker = CancelWorkerConfiguration()
        worker.commandTopic = try settings.string("command-topic", arguments.commandTopic, default: worker.commandTopic)
        worker.defaultReplyTopic = try settings.string(
            "default-reply-topic",
            arguments.defaultReplyTopic,
            default: worker.defaultReplyTopic
        )
        worker.deadLetterTopic = try settings.string(
            "dead-letter-topic",
            arguments.deadLetterTopic,
            default: worker.deadLetterTopic
        )
        worker.replyTopicAllowList = try settings.list(
            "reply-topic-allow",
            arguments.replyTopicAllowList,
            default: worker.replyTopicAllowList
        )
        worker.maxInFlight = try settings.int(
            "max-in-flight",
            arguments.maxInFlight,
            default: worker.maxInFlight,
            range: 1...100_000
        )
        worker.maxPendingCommands = try settings.int(
            "max-pending-commands",
            arguments.maxPendingCommands,
            default: worker.maxPendingCommands,
            range: 1...1_000_000
        )
        worker.coalesceWindow = .microseconds(
            Int64(
                try settings.double("coalesce-window", arguments.coalesceWindow, default: 0, range: 0...60_000) * 1000
            )
        )
        let verifyText = try settings.string("verify", arguments.verify, default: VerifyPolicy.Mode.auto.rawValue)
        guard let verifyMode = VerifyPolicy.Mode(rawValue: verifyText.lowercased()) else {
            throw .invalidConfiguration("verify must be auto, on or off, not '\(verifyText)'")
        }
        worker.verify = VerifyPolicy(
            mode: verifyMode,
            maxDevicesWithoutJob: try settings.int(
                "verify-max-devices",
                arguments.verifyMaxDevices,
                default: worker.verify.maxDevicesWithoutJob,
                range: 0...10_000
            )
        )
        worker.maxDeviceNames = try settings.int(
            "max-device-names",
            arguments.maxDeviceNames,
            default: worker.maxDeviceNames,
            range: 1...10_000
        )
        worker.maxPayloadBytes = try settings.int(
            "max-payload-bytes",
            arguments.maxPayloadBytes,
            default: worker.maxPayloadBytes,
            range: 1_024...(256 << 20)
        )
        worker.drainTimeout = .milliseconds(
            Int64(try settings.double("drain-timeout", arguments.drainTimeout, default: 20, range: 0...3_600) * 1000)
        )
        let defaultDeadline = try settings.double(
            "default-deadline",
            arguments.defaultDeadline,
            default: 3600,
            range: 0...31_536_000
        )
        worker.defaultDeadline = defaultDeadline == 0 ? nil : .milliseconds(Int64(defaultDeadline * 1000))
        try checkTopics(worker, arguments, settings)
        // Receive Maximum bounds what the broker sends before acknowledgements. A message is acknowledged once it
        // is journaled, not once it is executed, so the calls in flight are no bound for it: at least the default.
        mqtt.receiveMaximum = min(65_535, max(mqtt.receiveMaximum, worker.maxInFlight))

        // Platform.
        guard let endpoint = try settings.optionalString("platform-endpoint", arguments.platformEndpoint) else {
            throw .invalidConfiguration(
                "platform-endpoint is required (--platform-endpoint or OTA_CANCEL_PLATFORM_ENDPOINT)"
            )
        }
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw .invalidConfiguration("platform-endpoint must start with http:// or https://, not '\(endpoint)'")
        }
        guard let accessKeyId = try settings.optionalString("access-key-id", arguments.accessKeyId) else {
            throw .invalidConfiguration("access-key-id is required (--access-key-id or OTA_CANCEL_ACCESS_KEY_ID)")
        }
        let secret: AccessKeySecret
        if let secretFile = try settings.optionalString("access-key-secret-file", arguments.accessKeySecretFile) {
            secret = AccessKeySecret(try readSecretFile(secretFile, setting: "access-key-secret-file"))
        } else if let value = environment[secretEnvironmentVariable] {
            secret = AccessKeySecret(value)
        } else {
            throw .invalidConfiguration(
                "the AccessKey secret is required: --access-key-secret-file FILE, OTA_CANCEL_ACCESS_KEY_SECRET_FILE "
                    + "or OTA_CANCEL_ACCESS_KEY_SECRET"
            )
        }
        guard !secret.isEmpty else { throw .invalidConfiguration("the AccessKey secret is empty") }
        var platform = PlatformAPIConfiguration(endpoint: endpoint, accessKeyId: accessKeyId, accessKeySecret: secret)
        let method = try settings.string("platform-method", arguments.platformMethod, default: "GET").uppercased()
        guard let rpcMethod = RPCHTTPMethod(rawValue: method) else {
            throw .invalidConfiguration("platform-method must be GET or POST, not '\(method)'")
        }
        platform.method = rpcMethod
        let profileName = try settings.string("platform-profile", arguments.platformProfile, default: "aliyun")
        guard let profile = PlatformProfile(name: profileName) else {
            throw .invalidConfiguration("platform-profile must be aliyun or tuya, not '\(profileName)'")
        }
        platform.profile = profile
        platform.regionId = try settings.optionalString("region-id", arguments.regionId)
        if platform.regionId != nil, !profile.sendsRegionId {
            throw .invalidConfiguration(
                "region-id is not sent with platform-profile \(profile) (Tuya has no RegionId): remove it"
            )
        }
        platform.timeouts = .init(
            connect: .milliseconds(
                Int64(
                    try settings.double(
                        "platform-connect-timeout",
                        arguments.platformConnectTimeout,
                        default: 5,
                        range: 0.1...300
                    ) * 1000
                )
            ),
            read: .milliseconds(
                Int64(
                    try settings.double(
                        "platform-read-timeout",
                        arguments.platformReadTimeout,
                        default: 10,
                        range: 0.1...3_600
                    ) * 1000
                )
            )
        )
        platform.iotInstanceId = try settings.optionalString("iot-instance-id", arguments.iotInstanceId)
        let qps = try settings.double("platform-qps", arguments.platformQps, default: 10, range: 0...10_000)
        // The client's bucket holds half a second's worth of calls: the platform's own bucket (a full second)
        // then always has room left to absorb network jitter, so pacing at the quota is not throttled.
        platform.rateLimit = qps == 0 ? .unlimited : .perSecond(qps, burst: max(1, Int((qps / 2).rounded(.down))))
        let attempts = try settings.int(
            "platform-max-attempts",
            arguments.platformMaxAttempts,
            default: 4,
            range: 1...20
        )
        platform.retry = .exponentialBackoff(maxAttempts: attempts, base: .milliseconds(200), cap: .seconds(10))
        // One connection per command in flight by default: a call holds its connection for the platform's whole
        // answer time, so fewer connections than commands turn a slow platform into a queue.
        platform.connectionPool.maxConnections = try settings.int(
            "platform-max-connections",
            arguments.platformMaxConnections,
            default: worker.maxInFlight,
            range: 1...100_000
        )

        // Files and logging.
        let stateDirectory = try settings.string("state-dir", arguments.stateDir, default: "./state")
        let schemaPath = try commandSchemaPath(
            schemaDir: try settings.optionalString("schema-dir", arguments.schemaDir)
        )
        let levelText = try settings.string("log-level", arguments.logLevel, default: "info")
        guard let logLevel = Logger.Level(rawValue: levelText.lowercased()) else {
            throw .invalidConfiguration(
                "log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not '\(levelText)'"
            )
        }
        let formatText = try settings.string("log-format", arguments.logFormat, default: "text")
        guard let logFormat = LogFormat(rawValue: formatText.lowercased()) else {
            throw .invalidConfiguration("log-format must be text or json, not '\(formatText)'")
        }
        // Journal, operations endpoints, supervision.
        let syncText = try settings.string("journal-sync", arguments.journalSync, default: "normal")
        // `memory` keeps the journal in memory: nothing survives the process. It exists to measure what the
        // durable journal costs (scripts/bench), not for production.
        let inMemory = syncText.lowercased() == "memory"
        guard let synchronous = inMemory ? .normal : JournalConfiguration.Synchronous(name: syncText) else {
            throw .invalidConfiguration("journal-sync must be normal, full or memory, not '\(syncText)'")
        }
        let retention = try settings.double(
            "journal-retention",
            arguments.journalRetention,
            default: 86_400,
            range: 60...31_536_000
        )
        let journal = JournalConfiguration(
            path: inMemory ? nil : stateDirectory + "/journal.sqlite",
            synchronous: synchronous,
            retention: .milliseconds(Int64(retention * 1000)),
            maxEntries: try settings.int(
                "journal-max-entries",
                arguments.journalMaxEntries,
                default: 1_000_000,
                range: 1_000...100_000_000
            )
        )
        let ops = OpsServerConfiguration(
            host: try settings.string("ops-host", arguments.opsHost, default: "127.0.0.1"),
            port: try settings.int("ops-port", arguments.opsPort, default: 9464, range: 0...65_535)
        )
        let supervision = CancelWorkerService.Supervision(
            exitOnConnectionFailure: try settings.bool(
                "exit-on-connection-failure",
                arguments.exitOnConnectionFailure,
                default: false
            ),
            connectTimeout: .milliseconds(
                Int64(
                    try settings.double("connect-timeout", arguments.connectTimeout, default: 30, range: 1...86_400)
                        * 1000
                )
            )
        )
        try file?.checkKeys(known: settings.lookedUp)
        try settings.checkEnvironment()
        return WorkerConfiguration(
            mqtt: mqtt,
            platform: platform,
            worker: worker,
            commandSchemaPath: schemaPath,
            stateDirectory: stateDirectory,
            logLevel: logLevel,
            logFormat: logFormat,
            journal: journal,
            ops: ops,
            supervision: supervision,
            configFile: file?.path
        )
    }

    /// `ota-cancel-worker-<hostname>`: fixed across restarts of one host (the persistent session needs it) and
    /// different between hosts (two workers sharing an id knock each other off the broker).
    public static func defaultClientID() -> String { "ota-cancel-worker-" + shortHostName }

    /// This host's name without its domain (`localhost` if it has none): what default ids and topics that must stay
    /// the same across restarts of one host are made of.
    public static var shortHostName: String {
        ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
    }

    /// The file name of the command schema, in `schemas/` and in a `--schema-dir` folder.
    public static let commandSchemaFileName = "cancel-command.schema.json"

    /// Where the command schema is read from: the file in `--schema-dir`, else (`nil`) the copy built into the
    /// binary, so that the worker and its subcommands work from any folder and an image needs no schema files.
    static func commandSchemaPath(schemaDir: String?) throws(WorkerError) -> String? {
        schemaDir.map { $0 + "/" + commandSchemaFileName }
    }

    static func readSecretFile(_ path: String, setting: String) throws(WorkerError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidConfiguration("\(setting): cannot read '\(path)'")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .invalidConfiguration("\(setting): '\(path)' is not UTF-8 text")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Reads one setting from its flag, else its environment variable, else the configuration file, with errors that
/// name the setting and where its value came from.
struct SettingResolver {
    let environment: [String: String]
    let file: ConfigurationFile?
    /// Every setting name looked up so far: the configuration file may use these and no others.
    private let names = NameLog()

    private final class NameLog {
        var names = Set<String>()
    }

    init(environment: [String: String], file: ConfigurationFile? = nil) {
        self.environment = environment
        self.file = file
    }

    /// The settings of `arguments`: `environment` (the process environment when `nil`) and the configuration file
    /// that `--config` or `OTA_CANCEL_CONFIG` names, read and checked.
    init(_ arguments: some WorkerArguments, environment: [String: String]?) throws(WorkerError) {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let path = arguments.config ?? environment[WorkerConfiguration.environmentPrefix + "CONFIG"]
        self.init(
            environment: environment,
            file: try path.map { path throws(WorkerError) in try ConfigurationFile.load(path: path) }
        )
    }

    var lookedUp: Set<String> { names.names }

    static func variable(for name: String) -> String {
        WorkerConfiguration.environmentPrefix + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The raw text and where it came from, or `nil` when neither the variable nor the file sets it.
    private func raw(_ name: String) -> (text: String, origin: String)? {
        let variable = Self.variable(for: name)
        if let text = environment[variable] { return (text, variable) }
        if let file, let text = file.values[name] { return (text, file.path) }
        return nil
    }

    /// Where a setting's value came from, for errors: `--name` when the flag was given, else its variable or the
    /// configuration file when one sets it, else `the default`.
    func origin(_ name: String, flagGiven: Bool) -> String {
        if flagGiven { return "--\(name)" }
        return raw(name)?.origin ?? "the default"
    }

    func optionalString(_ name: String, _ flag: String?) throws(WorkerError) -> String? {
        names.names.insert(name)
        if let flag { return flag }
        guard let (text, origin) = raw(name) else { return nil }
        guard !text.isEmpty else { throw .invalidConfiguration("\(name) (from \(origin)) is empty") }
        return text
    }

    func string(_ name: String, _ flag: String?, default value: String) throws(WorkerError) -> String {
        try optionalString(name, flag) ?? value
    }

    func bool(_ name: String, _ flag: Bool?, default value: Bool) throws(WorkerError) -> Bool {
        names.names.insert(name)
        if let flag { return flag }
        guard let (text, variable) = raw(name) else { return value }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw .invalidConfiguration("\(name) (from \(variable)) must be true or false, not '\(text)'")
        }
    }

    func list(_ name: String, _ flag: [String]?, default value: [String]) throws(WorkerError) -> [String] {
        names.names.insert(name)
        if let flag, !flag.isEmpty { return flag.flatMap { $0.split(separator: ",").map(String.init) } }
        guard let (text, _) = raw(name) else { return value }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func int(_ name: String, _ flag: Int?, default value: Int, range: ClosedRange<Int>) throws(WorkerError) -> Int {
        try number(name, flag, default: value, range: range, kind: "an integer") { Int($0) }
    }

    func double(
        _ name: String,
        _ flag: Double?,
        default value: Double,
        range: ClosedRange<Double>
    ) throws(WorkerError) -> Double {
        try number(name, flag, default: value, range: range, kind: "a number") {
            Double($0).flatMap { $0.isFinite ? $0 : nil }
        }
    }

    /// A number from its flag, else its variable (parsed), else the default; always checked against `range`.
    private func number<Value: Comparable>(
        _ name: String,
        _ flag: Value?,
        default value: Value,
        range: ClosedRange<Value>,
        kind: String,
        parse: (String) -> Value?
    ) throws(WorkerError) -> Value {
        names.names.insert(name)
        var result = value
        var origin = "--\(name)"
        if let flag {
            result = flag
        } else if let (text, variable) = raw(name) {
            guard let parsed = parse(text.trimmingCharacters(in: .whitespaces)) else {
                throw .invalidConfiguration("\(name) (from \(variable)) must be \(kind), not '\(text)'")
            }
            result = parsed
            origin = variable
        }
        guard range.contains(result) else {
            throw .invalidConfiguration(
                "\(name) (from \(origin)) must be between \(range.lowerBound) and \(range.upperBound), not \(result)"
            )
        }
        return result
    }
}

extension WorkerConfiguration {
    /// The `--broker-tls-*` settings; any of them turns TLS on. `nil` when none is set (plain TCP).
    static func brokerTLS(
        _ arguments: some WorkerArguments,
        _ settings: SettingResolver
    ) throws(WorkerError) -> MosquittoConfiguration.TLS? {
        var tls = MosquittoConfiguration.TLS()
        tls.caFile = try settings.optionalString("broker-tls-ca-file", arguments.brokerTlsCaFile)
        tls.caDirectory = try settings.optionalString("broker-tls-ca-dir", arguments.brokerTlsCaDir)
        tls.certificateFile = try settings.optionalString("broker-tls-cert-file", arguments.brokerTlsCertFile)
        tls.keyFile = try settings.optionalString("broker-tls-key-file", arguments.brokerTlsKeyFile)
        tls.insecure = try settings.bool("broker-tls-insecure", arguments.brokerTlsInsecure, default: false)
        if let text = try settings.optionalString("broker-tls-version", arguments.brokerTlsVersion) {
            guard let version = MosquittoConfiguration.TLS.Version(string: text) else {
                throw .invalidConfiguration("broker-tls-version must be tlsv1.2 or tlsv1.3, not '\(text)'")
            }
            tls.version = version
        }
        tls.ciphers = try settings.optionalString("broker-tls-ciphers", arguments.brokerTlsCiphers)
        guard tls != MosquittoConfiguration.TLS() else { return nil }
        do {
            try tls.validate()
        } catch {
            // The Mosquitto module names its fields (`tls.caFile`); a user knows the settings by their flags.
            var message = error.message
            for (field, setting) in [
                ("tls.caFile", "broker-tls-ca-file"), ("tls.caDirectory", "broker-tls-ca-dir"),
                ("tls.certificateFile", "broker-tls-cert-file"), ("tls.keyFile", "broker-tls-key-file"),
                ("tls.version", "broker-tls-version"), ("tls.ciphers", "broker-tls-ciphers"),
            ] {
                message = message.replacingOccurrences(of: field, with: setting)
            }
            throw .invalidConfiguration(message)
        }
        return tls
    }
}

extension WorkerConfiguration {
    /// The resolved settings, one `name = value` per line, secrets shown only as set or not set.
    public var summary: String {
        let lines: [(String, String)] = [
            ("broker", "\(mqtt.host):\(mqtt.port) (MQTT \(mqtt.protocolVersion == .v5 ? "5" : "3.1.1"))"),
            ("client-id", mqtt.clientID),
            ("broker-username", mqtt.username ?? "(none)"),
            ("broker-password", mqtt.password == nil ? "(not set)" : "(set)"),
            ("broker-tls", mqtt.tls.map { "\($0)" } ?? "off"),
            ("keepalive", "\(mqtt.keepAlive) s"),
            ("broker-max-packet-size", mqtt.maximumPacketSize.map { "\($0) bytes" } ?? "(what the broker announces)"),
            ("session-expiry", "\(mqtt.sessionExpiryInterval) s"),
            ("command-topic", worker.commandTopic),
            ("default-reply-topic", worker.defaultReplyTopic),
            ("dead-letter-topic", worker.deadLetterTopic),
            ("reply-topic-allow", worker.replyTopicAllowList.joined(separator: ", ")),
            ("platform-endpoint", platform.endpoint),
            ("platform-method", platform.method.rawValue),
            ("platform-profile", platform.profile.name),
            ("platform-timeouts", "connect \(platform.timeouts.connect), read \(platform.timeouts.read)"),
            ("access-key-id", platform.accessKeyId),
            ("access-key-secret", "(set)"),
            ("region-id", platform.regionId ?? "(not sent)"),
            ("iot-instance-id", platform.iotInstanceId ?? "(not sent)"),
            ("platform-qps", "\(platform.rateLimit)"),
            ("platform-max-attempts", "\(platform.retry.maxAttempts)"),
            ("platform-max-connections", "\(platform.connectionPool.maxConnections)"),
            ("max-in-flight", "\(worker.maxInFlight)"),
            ("max-pending-commands", "\(worker.maxPendingCommands)"),
            ("coalesce-window", "\(worker.coalesceWindow)"),
            ("verify", worker.verify.mode.rawValue),
            ("verify-max-devices", "\(worker.verify.maxDevicesWithoutJob)"),
            ("max-device-names", "\(worker.maxDeviceNames)"),
            ("max-payload-bytes", "\(worker.maxPayloadBytes)"),
            ("drain-timeout", "\(worker.drainTimeout)"),
            ("default-deadline", worker.defaultDeadline.map { "\($0)" } ?? "(none)"),
            ("state-dir", stateDirectory),
            (
                "journal",
                "\(journal.path ?? ":memory:") (synchronous=\(journal.synchronous), retention \(journal.retention), at most \(journal.maxEntries) entries)"
            ),
            ("ops", "http://\(ops.host):\(ops.port)/health/ready"),
            ("exit-on-connection-failure", "\(supervision.exitOnConnectionFailure)"),
            ("connect-timeout", "\(supervision.connectTimeout)"),
            (
                "command-schema",
                commandSchemaPath ?? "built in (schemas/cancel-command.schema.json of \(BuildInfo.revision))"
            ),
            ("log-level", logLevel.rawValue),
            ("log-format", logFormat.rawValue),
            ("config", configFile ?? "(none)"),
        ]
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + " = " + $0.1 }.joined(
            separator: "\n"
        )
    }
}
