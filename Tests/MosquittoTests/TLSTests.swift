// SPDX-License-Identifier: Apache-2.0
import Foundation
import Mosquitto
import TestSupport
import Testing

/// The pid of the process whose command line contains `fragment` (read from /proc), e.g. one test's broker.
func processID(commandLineContaining fragment: String) -> pid_t? {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    for entry in entries {
        guard let pid = pid_t(entry),
            let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { continue }
        let commandLine = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        if commandLine.contains(fragment) { return pid }
    }
    return nil
}

/// The TLS test failed to finish within its hang guard.
struct HangGuardExpired: Error, CustomStringConvertible {
    var what: String
    var description: String { "\(what) neither succeeded nor failed within the hang guard" }
}

/// Runs `body`, failing with ``HangGuardExpired`` (and cancelling it) if it neither returns nor throws within
/// `limit`. A hang guard only, far above how long the operation takes.
func withHangGuard<R: Sendable>(
    _ what: String,
    limit: Duration = .seconds(30),
    _ body: @escaping @Sendable () async throws -> R
) async throws -> R {
    try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw HangGuardExpired(what: what) }
        return result
    }
}

/// TLS between `MosquittoClient` and a real mosquitto TLS listener, with certificates made by `openssl` at test
/// time.
@Suite("MosquittoClient over TLS", .timeLimit(.minutes(2)))
struct TLSTests {
    func tlsConfiguration(
        _ broker: MosquittoBroker,
        _ prefix: String,
        tls: MosquittoConfiguration.TLS
    ) -> MosquittoConfiguration {
        var configuration = testConfiguration(broker, clientID: uniqueClientID(prefix))
        configuration.tls = tls
        return configuration
    }

    /// Connects with `configuration` and expects the connect to fail with a TLS error (not hang, not retry).
    func expectTLSFailure(
        _ configuration: MosquittoConfiguration,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> MosquittoError? {
        let client = try MosquittoClient(
            configuration: configuration,
            logger: makeTestLogger(configuration.clientID),
            onMessage: { _ in }
        )
        let outcome: Result<Bool, any Error>
        do {
            outcome = .success(
                try await withHangGuard("connect() with a TLS configuration the broker cannot accept") {
                    try await client.connect()
                }
            )
        } catch {
            outcome = .failure(error)
        }
        await client.disconnect()
        switch outcome {
        case .success:
            Issue.record("connect() succeeded but should have failed with a TLS error", sourceLocation: sourceLocation)
            return nil
        case .failure(let error as MosquittoError):
            #expect(error.code == .library(.tls), "\(error)", sourceLocation: sourceLocation)
            #expect(!client.isConnected, sourceLocation: sourceLocation)
            return error
        case .failure(let error):
            Issue.record("connect() failed with \(error), expected MOSQ_ERR_TLS", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test("with the right CA: connects, subscribes, publishes and receives over TLS; mosquitto_pub --cafile reaches it")
    func roundTripOverTLS() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig()) { broker in
            let collector = MessageCollector()
            let configuration = tlsConfiguration(broker, "tls-rt", tls: .init(caFile: pki.caFile))
            try await withMosquittoClient(
                configuration: configuration,
                logger: makeTestLogger(configuration.clientID),
                onMessage: collector.handler
            ) { client in
                #expect(client.isConnected)
                let granted = try await client.subscribe(to: [
                    MQTTSubscribeInfo(topicFilter: "tls/#", qos: .atLeastOnce)
                ])
                #expect(granted == [1])
                try await client.publish(
                    to: "tls/self",
                    payload: Array("over TLS".utf8),
                    qos: .atLeastOnce,
                    properties: MQTTProperties(correlationData: [1, 2, 3])
                )
                let result = try await runProcess(
                    "mosquitto_pub",
                    [
                        "-h", broker.host, "-p", "\(broker.port)", "--cafile", pki.caFile, "-V", "5", "-q", "1",
                        "-t", "tls/cli", "-m", "from mosquitto_pub",
                    ],
                    timeout: .seconds(20)
                )
                #expect(result.exitCode == 0, "\(result)")
                let received = try await collector.waitFor(count: 2)
                #expect(Set(received.map(\.topic)) == ["tls/self", "tls/cli"])
                let own = try #require(received.first { $0.topic == "tls/self" })
                #expect(own.payload == Array("over TLS".utf8))
                #expect(own.properties.correlationData == [1, 2, 3])
            }
            // The broker really spoke TLS with us: a plain-TCP mosquitto_pub to the same port fails.
            let plain = try await runProcess(
                "mosquitto_pub",
                ["-h", broker.host, "-p", "\(broker.port)", "-t", "tls/plain", "-m", "x"],
                timeout: .seconds(20)
            )
            #expect(plain.exitCode != 0, "\(plain)")
            #expect(broker.logText.contains("as \(configuration.clientID) (p5"))
        }
    }

    @Test("a CA that did not sign the broker's certificate fails connect() with MOSQ_ERR_TLS, without retrying")
    func wrongCAFails() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig()) { broker in
            let configuration = tlsConfiguration(broker, "tls-wrong-ca", tls: .init(caFile: pki.otherCAFile))
            let error = try await expectTLSFailure(configuration)
            #expect(error?.message.contains("certificate verify failed") == true, "\(String(describing: error))")
            #expect(!broker.logText.contains("as \(configuration.clientID)"))
        }
    }

    @Test("require_certificate: refused without a client certificate, accepted with one signed by the CA")
    func clientCertificateRequired() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig(requireCertificate: true)) { broker in
            let anonymous = tlsConfiguration(broker, "tls-no-cert", tls: .init(caFile: pki.caFile))
            let error = try await expectTLSFailure(anonymous)
            // TLS 1.3: the broker's alert arrives after our side of the handshake finished, so libmosquitto reports
            // a read failure; the OpenSSL reason in the message is what tells it apart from a dropped connection.
            #expect(error?.message.contains("certificate required") == true, "\(String(describing: error))")
            #expect(try await broker.waitForLog { $0.contains("peer did not return a certificate") })
            #expect(!broker.logText.contains("as \(anonymous.clientID)"))

            let collector = MessageCollector()
            let withCertificate = tlsConfiguration(
                broker,
                "tls-cert",
                tls: .init(caFile: pki.caFile, certificateFile: pki.clientCertificate, keyFile: pki.clientKey)
            )
            try await withMosquittoClient(
                configuration: withCertificate,
                logger: makeTestLogger(withCertificate.clientID),
                onMessage: collector.handler
            ) { client in
                try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "mtls/a", qos: .atLeastOnce)])
                try await client.publish(to: "mtls/a", payload: [42], qos: .atLeastOnce)
                let received = try await collector.waitFor(count: 1)
                #expect(received.map(\.payload) == [[42]])
            }
            #expect(broker.logText.contains("as \(withCertificate.clientID) (p5"))
        }
    }

    @Test("a broker certificate that does not name the host fails, unless insecure skips the host name check")
    func hostNameVerification() async throws {
        let pki = try await TestPKI.make()
        let config = pki.brokerTLSConfig(certificate: pki.wrongNameCertificate, key: pki.wrongNameKey)
        try await withMosquittoBroker(extraConfig: config) { broker in
            let checked = tlsConfiguration(broker, "tls-name", tls: .init(caFile: pki.caFile))
            let error = try await expectTLSFailure(checked)
            #expect(error?.message.contains("certificate verify failed") == true, "\(String(describing: error))")

            let insecure = tlsConfiguration(broker, "tls-insecure", tls: .init(caFile: pki.caFile, insecure: true))
            try await withMosquittoClient(
                configuration: insecure,
                logger: makeTestLogger(insecure.clientID),
                onMessage: { _ in }
            ) { client in
                #expect(client.isConnected)
                try await client.publish(to: "insecure/a", payload: [1], qos: .atLeastOnce)
            }
            // insecure skips only the name: the chain is still verified.
            let untrusted = tlsConfiguration(
                broker,
                "tls-insecure-other-ca",
                tls: .init(caFile: pki.otherCAFile, insecure: true)
            )
            _ = try await expectTLSFailure(untrusted)
        }
    }

    @Test("TLS version and cipher options reach libmosquitto: TLS 1.3 connects, an unknown cipher list fails")
    func versionAndCiphers() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig()) { broker in
            let tls13 = tlsConfiguration(broker, "tls13", tls: .init(caFile: pki.caFile, version: .tlsv1_3))
            try await withMosquittoClient(
                configuration: tls13,
                logger: makeTestLogger(tls13.clientID),
                onMessage: { _ in }
            ) { client in
                #expect(client.isConnected)
            }
            let tls12 = tlsConfiguration(
                broker,
                "tls12",
                tls: .init(caFile: pki.caFile, version: .tlsv1_2, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256")
            )
            try await withMosquittoClient(
                configuration: tls12,
                logger: makeTestLogger(tls12.clientID),
                onMessage: { _ in }
            ) { client in
                #expect(client.isConnected)
            }
            let badCiphers = tlsConfiguration(
                broker,
                "tls-ciphers",
                tls: .init(caFile: pki.caFile, ciphers: "NO-SUCH-CIPHER")
            )
            let error = try await expectTLSFailure(badCiphers)
            #expect(error?.message.contains("cipher") == true, "\(String(describing: error))")
        }
    }

    @Test("after a broker restart the client reconnects over TLS and keeps its subscription")
    func reconnectsOverTLSAfterBrokerRestart() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig()) { broker in
            let collector = MessageCollector()
            var configuration = tlsConfiguration(broker, "tls-restart", tls: .init(caFile: pki.caFile))
            configuration.cleanStart = true  // no session across the restart: the client must re-subscribe
            let client = try MosquittoClient(
                configuration: configuration,
                logger: makeTestLogger(configuration.clientID),
                onMessage: collector.handler
            )
            let events = EventRecorder(client)
            try await client.connect()
            try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "restart/a", qos: .atLeastOnce)])
            try await broker.restart()
            let reconnected = try await events.waitFor { _ in events.count(\.isConnected) >= 2 }
            #expect(reconnected != nil, "events: \(events.all)")
            #expect(events.count { if case .loopExited = $0 { true } else { false } } == 0, "events: \(events.all)")
            #expect(try await broker.waitForLog { occurrences(of: "as \(configuration.clientID)", in: $0) >= 2 })
            // The re-subscription's SUBACK may still be on its way: publish until the message arrives.
            let deadline = ContinuousClock.now + .seconds(20)
            while collector.all.isEmpty && ContinuousClock.now < deadline {
                try await client.publish(to: "restart/a", payload: [7], qos: .atLeastOnce)
                _ = try await collector.waitFor(count: 1, timeout: .milliseconds(500))
            }
            #expect(collector.all.first?.payload == [7])
            await client.disconnect()
        }
    }

    @Test("a broker killed mid-session (no TLS close_notify) is a lost connection to reconnect to, not a TLS failure")
    func brokerKilledMidSession() async throws {
        let pki = try await TestPKI.make()
        try await withMosquittoBroker(extraConfig: pki.brokerTLSConfig()) { broker in
            let configuration = tlsConfiguration(broker, "tls-killed", tls: .init(caFile: pki.caFile))
            let client = try MosquittoClient(
                configuration: configuration,
                logger: makeTestLogger(configuration.clientID),
                onMessage: { _ in }
            )
            let events = EventRecorder(client)
            try await client.connect()
            let pid = try #require(processID(commandLineContaining: broker.configPath), "the broker's pid")
            #expect(kill(pid, SIGKILL) == 0)
            let lost = try await events.waitFor { $0.isLostConnection }
            #expect(lost != nil, "events: \(events.all)")
            try await broker.restart()
            let reconnected = try await events.waitFor { _ in events.count(\.isConnected) >= 2 }
            #expect(reconnected != nil, "events: \(events.all)")
            #expect(events.count { if case .loopExited = $0 { true } else { false } } == 0, "events: \(events.all)")
            await client.disconnect()
        }
    }

    @Test("validate(): names the TLS setting for missing files, a certificate without key and the reverse")
    func validation() async throws {
        let pki = try await TestPKI.make()
        func failure(_ tls: MosquittoConfiguration.TLS) -> MosquittoError? {
            let configuration = MosquittoConfiguration(clientID: "validate", tls: tls)
            do {
                try configuration.validate()
                return nil
            } catch {
                return error
            }
        }
        let missing = pki.path("missing.crt")
        let cases: [(MosquittoConfiguration.TLS, String)] = [
            (.init(), "tls.caFile or tls.caDirectory"),
            (.init(caFile: missing), "tls.caFile \"\(missing)\" does not exist"),
            (.init(caFile: pki.directory), "tls.caFile \"\(pki.directory)\" is a directory"),
            (.init(caFile: ""), "tls.caFile must be a non-empty path"),
            (.init(caDirectory: missing), "tls.caDirectory \"\(missing)\" does not exist"),
            (.init(caDirectory: pki.caFile), "tls.caDirectory \"\(pki.caFile)\" is not a directory"),
            (
                .init(caFile: pki.caFile, certificateFile: pki.clientCertificate),
                "tls.certificateFile is set but tls.keyFile is not"
            ),
            (.init(caFile: pki.caFile, keyFile: pki.clientKey), "tls.keyFile is set but tls.certificateFile is not"),
            (
                .init(caFile: pki.caFile, certificateFile: missing, keyFile: pki.clientKey),
                "tls.certificateFile \"\(missing)\" does not exist"
            ),
            (
                .init(caFile: pki.caFile, certificateFile: pki.clientCertificate, keyFile: missing),
                "tls.keyFile \"\(missing)\" does not exist"
            ),
            (
                .init(caFile: pki.caFile, certificateFile: pki.clientCertificate, keyFile: pki.encryptedClientKey),
                "tls.keyFile \"\(pki.encryptedClientKey)\" is encrypted"
            ),
            (.init(caFile: pki.caFile, ciphers: ""), "tls.ciphers must be a non-empty"),
        ]
        for (tls, expected) in cases {
            let error = failure(tls)
            #expect(error?.code == .invalidConfiguration, "\(tls)")
            #expect(error?.message.contains(expected) == true, "\(String(describing: error)) should say: \(expected)")
        }
        // Valid settings pass: CA file, CA directory, both, with a client certificate.
        #expect(failure(.init(caFile: pki.caFile)) == nil)
        #expect(failure(.init(caDirectory: pki.directory)) == nil)
        #expect(
            failure(.init(caFile: pki.caFile, certificateFile: pki.clientCertificate, keyFile: pki.clientKey)) == nil
        )
        // The client checks the configuration before it touches libmosquitto.
        #expect(throws: MosquittoError(.invalidConfiguration)) {
            _ = try MosquittoClient(
                configuration: MosquittoConfiguration(clientID: "validate", tls: .init(caFile: missing)),
                logger: makeTestLogger("validate"),
                onMessage: { _ in }
            )
        }
    }

    @Test("descriptions show TLS on/off and the file paths, and never the password")
    func descriptions() {
        let plain = MosquittoConfiguration(clientID: "d", username: "u", password: "hunter2")
        #expect(plain.description.contains("tls: off"))
        let tls = MosquittoConfiguration(
            clientID: "d",
            username: "u",
            password: "hunter2",
            tls: .init(caFile: "/etc/ca.pem", certificateFile: "/etc/c.pem", keyFile: "/etc/k.pem", version: .tlsv1_3)
        )
        #expect(
            tls.description.contains(
                "tls: TLS(caFile: /etc/ca.pem, caDirectory: -, certificateFile: /etc/c.pem, keyFile: /etc/k.pem, "
                    + "insecure: false, version: tlsv1.3, ciphers: -)"
            )
        )
        var dumped = ""
        dump(tls, to: &dumped)
        #expect(dumped.contains("/etc/ca.pem"))
        for text in [plain.description, tls.description, dumped] { #expect(!text.contains("hunter2")) }
        #expect(MosquittoConfiguration.TLS.Version(string: "TLSv1.3") == .tlsv1_3)
        #expect(MosquittoConfiguration.TLS.Version(string: "1.2") == .tlsv1_2)
        #expect(MosquittoConfiguration.TLS.Version(string: "tlsv1.1") == nil)
    }
}
