// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import WorkerApp

/// How to reach the broker: the settings `run` and `request` share (a requester connects as the worker does, TLS
/// and all). Defaults are applied in `WorkerConfiguration.resolve` and `resolveBroker`, after the environment and
/// the configuration file, so every option here is optional.
struct BrokerOptions: ParsableArguments {
    @Option(
        help:
            "JSON file of settings ({\"broker-host\": ..., \"platform-qps\": ...}); flags and OTA_CANCEL_* variables beat it. (default: none)"
    )
    var config: String?

    @Option(help: "MQTT broker host. (default: 127.0.0.1)")
    var brokerHost: String?

    @Option(help: "MQTT broker port. (default: 1883, or 8883 with TLS)")
    var brokerPort: Int?

    @Option(help: "MQTT protocol version: 5 or 3.1.1. (default: 5)")
    var mqttVersion: String?

    @Option(
        help:
            "MQTT client id; a worker's is fixed per instance, so the broker keeps its session. (default: ota-cancel-worker-<hostname>; for request, ota-cancel-request-<random>)"
    )
    var clientId: String?

    @Option(help: "MQTT user name. (default: none)")
    var brokerUsername: String?

    @Option(help: "File holding the MQTT password (or OTA_CANCEL_BROKER_PASSWORD). (default: none)")
    var brokerPasswordFile: String?

    @Option(
        help:
            "TLS to the broker: PEM file of the CA certificates to trust. Any --broker-tls-* setting turns TLS on. (default: plain TCP)"
    )
    var brokerTlsCaFile: String?

    @Option(help: "TLS to the broker: directory of hashed CA certificates, e.g. /etc/ssl/certs. (default: none)")
    var brokerTlsCaDir: String?

    @Option(
        help: "TLS client certificate (PEM), for brokers that require one; needs --broker-tls-key-file. (default: none)"
    )
    var brokerTlsCertFile: String?

    @Option(help: "Unencrypted PEM key of the TLS client certificate. (default: none)")
    var brokerTlsKeyFile: String?

    @Flag(
        inversion: .prefixedNo,
        help:
            "Do not check that the broker's certificate names --broker-host (the chain is still verified). Dangerous: for tests only. (default: check)"
    )
    var brokerTlsInsecure: Bool?

    @Option(help: "Lowest TLS version: tlsv1.2 or tlsv1.3. (default: tlsv1.2)")
    var brokerTlsVersion: String?

    @Option(help: "OpenSSL cipher list for TLS 1.2. (default: OpenSSL's)")
    var brokerTlsCiphers: String?

    @Option(
        help:
            "Largest packet the broker accepts, in bytes, for brokers that cannot announce it (MQTT 3.1.1); a reply that cannot fit is recorded undeliverable instead of costing the connection. An MQTT 5 broker's own announcement applies too. (default: none)"
    )
    var brokerMaxPacketSize: Int?

    @Option(help: "MQTT keepalive in seconds. (default: 30)")
    var keepalive: Int?
}

/// A command whose broker settings are a ``BrokerOptions`` group: the group's values are its `WorkerArguments`
/// broker settings, forwarded here once for `run`, `check-config` and `request`.
protocol WithBrokerOptions: WorkerArguments {
    var broker: BrokerOptions { get }
}

extension WithBrokerOptions {
    var config: String? { broker.config }
    var brokerHost: String? { broker.brokerHost }
    var brokerPort: Int? { broker.brokerPort }
    var mqttVersion: String? { broker.mqttVersion }
    var clientId: String? { broker.clientId }
    var brokerUsername: String? { broker.brokerUsername }
    var brokerPasswordFile: String? { broker.brokerPasswordFile }
    var brokerTlsCaFile: String? { broker.brokerTlsCaFile }
    var brokerTlsCaDir: String? { broker.brokerTlsCaDir }
    var brokerTlsCertFile: String? { broker.brokerTlsCertFile }
    var brokerTlsKeyFile: String? { broker.brokerTlsKeyFile }
    var brokerTlsInsecure: Bool? { broker.brokerTlsInsecure }
    var brokerTlsVersion: String? { broker.brokerTlsVersion }
    var brokerTlsCiphers: String? { broker.brokerTlsCiphers }
    var brokerMaxPacketSize: Int? { broker.brokerMaxPacketSize }
    var keepalive: Int? { broker.keepalive }
}
