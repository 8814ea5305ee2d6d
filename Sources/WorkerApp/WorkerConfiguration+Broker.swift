// SPDX-License-Identifier: Apache-2.0
public import Mosquitto
import Foundation
public import Worker

extension WorkerConfiguration {
    /// What a client of the worker (`request`) needs: how to reach the broker, and the command schema to check a
    /// command with before it is published.
    public struct BrokerSettings: Sendable {
        /// The connection, as `run` would make it, but with the requester's own client id.
        public var mqtt: MosquittoConfiguration
        /// `cancel-command.schema.json` in `--schema-dir`; `nil` for the copy built into the binary.
        public var commandSchemaPath: String?
        /// The device limit the schema is compiled with (`max-device-names`, default 10,000).
        public var maxDeviceNames: Int
        /// The topic commands are published to: the worker's `command-topic` without a `$share/<group>/`
        /// prefix (a shared subscription is a way to subscribe, not a topic one can publish to).
        public var commandTopic: String
    }

    /// Resolves the broker settings of `run` (flags, then `OTA_CANCEL_*`, then the configuration file, then the
    /// defaults), for a client that talks to the worker rather than being it.
    ///
    /// Only the broker's settings, the schema folder and the device limit are read: the platform, journal and
    /// pipeline settings a shared configuration file or environment also holds are the worker's business, so they
    /// are neither required nor checked here (`check-config` checks them).
    /// - Parameters:
    ///   - defaultClientID: the client id unless `--client-id` is given. `OTA_CANCEL_CLIENT_ID` and the file's
    ///     `client-id` are the worker's: a requester must not take them, or the broker would disconnect the worker.
    ///   - environment: the variables to read; `nil` (the default) reads the process environment.
    public static func resolveBroker(
        _ arguments: some WorkerArguments,
        defaultClientID: String,
        environment: [String: String]? = nil
    ) throws(WorkerError) -> BrokerSettings {
        let settings = try SettingResolver(arguments, environment: environment)
        // Only the flag: OTA_CANCEL_CLIENT_ID and the file's client-id name the worker (a `request` run in the
        // worker's container has both), and a second client with the worker's id knocks the worker off the broker.
        let mqtt = try brokerConnection(
            arguments,
            settings,
            clientID: arguments.clientId ?? defaultClientID
        )
        let filter = try settings.string(
            "command-topic",
            arguments.commandTopic,
            default: CancelWorkerConfiguration().commandTopic
        )
        // `$share/<group>/<topic>`: the part after the group is what requesters publish to.
        let shared = filter.hasPrefix("$share/") ? filter.split(separator: "/", maxSplits: 2) : []
        let commandTopic = shared.count == 3 ? String(shared[2]) : filter
        if let problem = MQTTTopicName.problem(with: commandTopic) {
            throw .invalidConfiguration("command-topic '\(commandTopic)' cannot be published to: \(problem)")
        }
        return BrokerSettings(
            mqtt: mqtt,
            commandSchemaPath: try commandSchemaPath(
                schemaDir: try settings.optionalString("schema-dir", arguments.schemaDir)
            ),
            maxDeviceNames: try settings.int(
                "max-device-names",
                arguments.maxDeviceNames,
                default: CancelWorkerConfiguration().maxDeviceNames,
                range: 1...10_000
            ),
            commandTopic: commandTopic
        )
    }

    /// The broker connection's settings (host, port, protocol, credentials, TLS, keepalive, packet limit), with
    /// the client id given, shared by ``resolve(_:environment:)`` and ``resolveBroker(_:defaultClientID:environment:)``.
    static func brokerConnection(
        _ arguments: some WorkerArguments,
        _ settings: SettingResolver,
        clientID: String
    ) throws(WorkerError) -> MosquittoConfiguration {
        let protocolText = try settings.string("mqtt-version", arguments.mqttVersion, default: "5")
        guard let protocolVersion = MQTTProtocolVersion(string: protocolText) else {
            throw .invalidConfiguration("mqtt-version must be 5 or 3.1.1, not '\(protocolText)'")
        }
        var mqtt = MosquittoConfiguration(clientID: clientID)
        mqtt.host = try settings.string("broker-host", arguments.brokerHost, default: "127.0.0.1")
        mqtt.tls = try brokerTLS(arguments, settings)
        mqtt.port = try settings.int(
            "broker-port",
            arguments.brokerPort,
            default: mqtt.tls == nil ? 1883 : 8883,
            range: 1...65_535
        )
        mqtt.protocolVersion = protocolVersion
        mqtt.keepAlive = try settings.int("keepalive", arguments.keepalive, default: 30, range: 5...65_535)
        let maxPacketSize = try settings.int(
            "broker-max-packet-size",
            arguments.brokerMaxPacketSize,
            default: 0,
            range: 0...268_435_460
        )
        if maxPacketSize != 0 && maxPacketSize < 1_024 {
            throw .invalidConfiguration(
                "broker-max-packet-size must be 0 (none) or at least 1024 bytes, not \(maxPacketSize)"
            )
        }
        mqtt.maximumPacketSize = maxPacketSize == 0 ? nil : maxPacketSize
        mqtt.username = try settings.optionalString("broker-username", arguments.brokerUsername)
        if let passwordFile = try settings.optionalString("broker-password-file", arguments.brokerPasswordFile) {
            mqtt.password = try readSecretFile(passwordFile, setting: "broker-password-file")
        } else if let password = settings.environment[environmentPrefix + "BROKER_PASSWORD"] {
            mqtt.password = password
        }
        return mqtt
    }
}
