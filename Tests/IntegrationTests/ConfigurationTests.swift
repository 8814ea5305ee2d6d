// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Mosquitto
import PlatformAPI
import PlatformSignature
import TestSupport
import Testing
import Worker
import WorkerApp

/// Settings: flags first, then `OTA_CANCEL_<NAME>`, then the documented default; errors name the setting.
@Suite("Configuration")
struct ConfigurationTests {
    private let minimal: [String: String] = [
        "OTA_CANCEL_PLATFORM_ENDPOINT": "http://127.0.0.1:9",
        "OTA_CANCEL_ACCESS_KEY_ID": "id",
        "OTA_CANCEL_ACCESS_KEY_SECRET": "s3cr3t",
        "OTA_CANCEL_SCHEMA_DIR": WorkerStack.repositoryRoot + "/schemas",
    ]

    private struct NoArguments: WorkerArguments {}

    @Test("defaults, as documented")
    func defaults() throws {
        let configuration = try WorkerConfiguration.resolve(NoArguments(), environment: minimal)
        #expect(configuration.mqtt.host == "127.0.0.1")
        #expect(configuration.mqtt.port == 1883)
        #expect(configuration.mqtt.protocolVersion == .v5)
        #expect(configuration.mqtt.cleanStart == false)
        #expect(configuration.mqtt.sessionExpiryInterval == 86_400)
        #expect(configuration.mqtt.clientID.hasPrefix("ota-cancel-worker-"))
        #expect(configuration.worker.commandTopic == "ota/cancel/request")
        #expect(configuration.worker.defaultReplyTopic == "ota/cancel/reply")
        #expect(configuration.worker.deadLetterTopic == "ota/cancel/dead-letter")
        #expect(configuration.worker.replyTopicAllowList == ["ota/cancel/reply/#"])
        #expect(configuration.worker.maxInFlight == 64)
        #expect(configuration.mqtt.receiveMaximum == 64)
        #expect(configuration.platform.method == .get)
        #expect(configuration.platform.rateLimit.ratePerSecond == 10)
        #expect(configuration.platform.retry.maxAttempts == 4)
        #expect(configuration.platform.timeouts.connect == .seconds(5))
        #expect(configuration.platform.timeouts.read == .seconds(10))
        #expect(configuration.stateDirectory == "./state")
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .text)
    }

    @Test("every flag has an OTA_CANCEL_ variable, and a flag beats its variable")
    func environmentFallback() throws {
        var environment = minimal
        environment["OTA_CANCEL_BROKER_HOST"] = "broker.example"
        environment["OTA_CANCEL_BROKER_PORT"] = "8883"
        environment["OTA_CANCEL_MQTT_VERSION"] = "3.1.1"
        environment["OTA_CANCEL_CLIENT_ID"] = "w-7"
        environment["OTA_CANCEL_COMMAND_TOPIC"] = "$share/g/ota/cancel/request"
        environment["OTA_CANCEL_DEFAULT_REPLY_TOPIC"] = "r/default"
        environment["OTA_CANCEL_DEAD_LETTER_TOPIC"] = "r/dead"
        environment["OTA_CANCEL_REPLY_TOPIC_ALLOW"] = "r/#, s/+"
        environment["OTA_CANCEL_PLATFORM_QPS"] = "2.5"
        environment["OTA_CANCEL_PLATFORM_METHOD"] = "post"
        environment["OTA_CANCEL_MAX_IN_FLIGHT"] = "8"
        environment["OTA_CANCEL_REGION_ID"] = "cn-shanghai"
        environment["OTA_CANCEL_STATE_DIR"] = "/tmp/x"
        environment["OTA_CANCEL_LOG_LEVEL"] = "DEBUG"
        environment["OTA_CANCEL_LOG_FORMAT"] = "JSON"
        let fromEnvironment = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        #expect(fromEnvironment.mqtt.host == "broker.example")
        #expect(fromEnvironment.mqtt.port == 8883)
        #expect(fromEnvironment.mqtt.protocolVersion == .v3_1_1)
        #expect(fromEnvironment.mqtt.clientID == "w-7")
        #expect(fromEnvironment.worker.commandTopic == "$share/g/ota/cancel/request")
        #expect(fromEnvironment.worker.defaultReplyTopic == "r/default")
        #expect(fromEnvironment.worker.deadLetterTopic == "r/dead")
        #expect(fromEnvironment.worker.replyTopicAllowList == ["r/#", "s/+"])
        #expect(fromEnvironment.platform.rateLimit.ratePerSecond == 2.5)
        #expect(fromEnvironment.platform.method == .post)
        #expect(fromEnvironment.worker.maxInFlight == 8)
        #expect(fromEnvironment.platform.regionId == "cn-shanghai")
        #expect(fromEnvironment.stateDirectory == "/tmp/x")
        #expect(fromEnvironment.logLevel == .debug)
        #expect(fromEnvironment.logFormat == .json)

        let flags = TestArguments(brokerHost: "flag.example", brokerPort: 1884, clientId: "from-flag", maxInFlight: 3)
        let fromFlags = try WorkerConfiguration.resolve(flags, environment: environment)
        #expect(fromFlags.mqtt.host == "flag.example")
        #expect(fromFlags.mqtt.port == 1884)
        #expect(fromFlags.mqtt.clientID == "from-flag")
        #expect(fromFlags.worker.maxInFlight == 3)
        #expect(fromFlags.mqtt.protocolVersion == .v3_1_1)
    }

    @Test("the secret comes from a file or the environment, and never shows in the summary")
    func secret() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        try "from-file-secret\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        var environment = minimal
        environment["OTA_CANCEL_ACCESS_KEY_SECRET_FILE"] = file
        let configuration = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        #expect(configuration.platform.accessKeySecret == AccessKeySecret("from-file-secret"))
        #expect(!configuration.summary.contains("from-file-secret"))
        #expect(!configuration.summary.contains("s3cr3t"))
        #expect(!"\(configuration)".contains("from-file-secret"))
        #expect(configuration.summary.contains("access-key-secret"))
    }

    @Test(
        "bad values are refused with the setting's name",
        arguments: [
            ("OTA_CANCEL_BROKER_PORT", "eighty", "broker-port"),
            ("OTA_CANCEL_BROKER_PORT", "70000", "broker-port"),
            ("OTA_CANCEL_MQTT_VERSION", "3.1", "mqtt-version"),
            ("OTA_CANCEL_PLATFORM_METHOD", "PUT", "platform-method"),
            ("OTA_CANCEL_PLATFORM_ENDPOINT", "ftp://x", "platform-endpoint"),
            ("OTA_CANCEL_MAX_IN_FLIGHT", "0", "max-in-flight"),
            ("OTA_CANCEL_DEFAULT_REPLY_TOPIC", "a/#", "default-reply-topic"),
            ("OTA_CANCEL_LOG_LEVEL", "loud", "log-level"),
            ("OTA_CANCEL_LOG_FORMAT", "yaml", "log-format"),
            ("OTA_CANCEL_ACCESS_KEY_SECRET", "", "secret"),
            ("OTA_CANCEL_SCHEMA_DIR", "/nonexistent", "schema"),
        ]
    )
    func badValues(variable: String, value: String, name: String) throws {
        var environment = minimal
        environment[variable] = value
        do {
            let configuration = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
            _ = try WorkerApp.loadCommandSchema(configuration)
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            #expect(error.message.contains(name), "\(error.message)")
        }
    }

    @Test(
        "topics are checked as the broker would check them, naming the setting and where its value came from",
        arguments: [
            ("OTA_CANCEL_COMMAND_TOPIC", "ota/#/x", "command-topic (from OTA_CANCEL_COMMAND_TOPIC) 'ota/#/x'"),
            ("OTA_CANCEL_COMMAND_TOPIC", "ota/a+", "'+' must be a whole level"),
            ("OTA_CANCEL_COMMAND_TOPIC", "$share/g", "the filter after the group is missing"),
            ("OTA_CANCEL_COMMAND_TOPIC", "$share/a#/x", "the group cannot contain"),
            (
                "OTA_CANCEL_REPLY_TOPIC_ALLOW", "ota/ok/#, ota/#/bad",
                "reply-topic-allow (from OTA_CANCEL_REPLY_TOPIC_ALLOW)"
            ),
            ("OTA_CANCEL_DEFAULT_REPLY_TOPIC", "ota/+/r", "default-reply-topic (from OTA_CANCEL_DEFAULT_REPLY_TOPIC)"),
            ("OTA_CANCEL_DEAD_LETTER_TOPIC", "ota/#", "dead-letter-topic (from OTA_CANCEL_DEAD_LETTER_TOPIC)"),
            // A control character in a value is shown escaped.
            ("OTA_CANCEL_COMMAND_TOPIC", "ota/\u{1B}[2J#", #"'ota/\u{1B}[2J#'"#),
        ]
    )
    func badTopics(variable: String, value: String, expected: String) {
        var environment = minimal
        environment[variable] = value
        #expect {
            _ = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        } throws: { error in
            let message = (error as? WorkerError)?.message ?? ""
            return message.contains(expected) && !message.contains("\u{1B}[2J#")
        }
        let flagged = TestArguments(commandTopic: "a/#/b")
        #expect {
            _ = try WorkerConfiguration.resolve(flagged, environment: minimal)
        } throws: { error in
            (error as? WorkerError)?.message.contains("command-topic (from --command-topic) 'a/#/b'") == true
        }
    }

    @Test("an OTA_CANCEL_ variable that names no setting is refused, with the closest known one")
    func unknownVariables() throws {
        var environment = minimal
        environment["OTA_CANCEL_BROKER_HOTS"] = "x"
        environment["OTA_CANCEL_PLATFORM_QSP"] = "1"
        environment["OTA_CANCEL_ZZZZZZZZZZ"] = "secret-looking-value"
        environment["OTA_CANCEL_WORKER_METRICS_SERVICE_HOST"] = "10.0.0.1"
        environment["OTA_CANCEL_WORKER_METRICS_PORT_9464_TCP_ADDR"] = "10.0.0.1"
        environment["OTA_CANCEL_BROKR_PORT"] = "1883"
        #expect {
            _ = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        } throws: { error in
            let message = (error as? WorkerError)?.message ?? ""
            return message.contains("OTA_CANCEL_BROKER_HOTS (did you mean OTA_CANCEL_BROKER_HOST?)")
                && message.contains("OTA_CANCEL_PLATFORM_QSP (did you mean OTA_CANCEL_PLATFORM_QPS?)")
                // Nothing is close to this one: named without a guess.
                && message.contains("OTA_CANCEL_ZZZZZZZZZZ: the worker reads OTA_CANCEL_<OPTION>")
                && !message.contains("secret-looking-value")
                && message.contains("OTA_CANCEL_WORKER_METRICS_SERVICE_HOST (set by Kubernetes for a Service")
                && message.contains("OTA_CANCEL_WORKER_METRICS_PORT_9464_TCP_ADDR (set by Kubernetes for a Service")
                && message.contains("OTA_CANCEL_BROKR_PORT (did you mean OTA_CANCEL_BROKER_PORT?)")
        }
        // The few that are no option's are known.
        var extras = minimal
        for variable in WorkerConfiguration.otherEnvironmentVariables { extras[variable] = extras[variable] ?? "x" }
        extras["OTA_CANCEL_CONFIG"] = nil
        _ = try WorkerConfiguration.resolve(NoArguments(), environment: extras)
        // Other prefixes are none of the worker's business.
        var others = minimal
        others["OTA_REQUIRE_SHARED"] = "1"
        others["OTA_CANCELLED"] = "1"
        _ = try WorkerConfiguration.resolve(NoArguments(), environment: others)
    }

    @Test("every option `run --help` lists has a variable the worker knows")
    func everyOptionsVariableIsKnown() async throws {
        let help = try await runProcess(try workerBinary(), ["run", "--help"])
        let options = Set(
            help.stdout.split(separator: "\n").compactMap { line -> String? in
                let trimmed = line.drop(while: { $0 == " " })
                guard trimmed.hasPrefix("--") else { return nil }
                return trimmed.dropFirst(2).prefix(while: { $0.isLetter || $0.isNumber || $0 == "-" }).description
            }
        ).subtracting(["help", "version"])
        #expect(options.count >= 40, "found \(options.sorted())")
        for option in options.sorted() {
            var environment = minimal
            let variable = "OTA_CANCEL_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
            environment[variable] = environment[variable] ?? "1"
            do {
                _ = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
            } catch {
                #expect(!error.message.contains("unknown environment variable"), "\(variable): \(error.message)")
            }
        }
    }

    @Test("every OTA_CANCEL_ variable the repository sets or documents (image, compose, units, scripts) is known")
    func shippedVariablesAreKnown() async throws {
        let help = try await runProcess(try workerBinary(), ["run", "--help"])
        let options = help.stdout.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.drop(while: { $0 == " " })
            guard trimmed.hasPrefix("--") else { return nil }
            return trimmed.dropFirst(2).prefix(while: { $0.isLetter || $0.isNumber || $0 == "-" }).description
        }
        let known = Set(options.map { "OTA_CANCEL_" + $0.uppercased().replacingOccurrences(of: "-", with: "_") })
            .union(WorkerConfiguration.otherEnvironmentVariables)
        let root = WorkerStack.repositoryRoot
        var files = ["README.md", "Dockerfile", "docker-compose.yml"].map { root + "/" + $0 }
        for folder in ["deploy", "scripts", "docs"] {
            let enumerator = FileManager.default.enumerator(atPath: root + "/" + folder)
            while let name = enumerator?.nextObject() as? String { files.append(root + "/" + folder + "/" + name) }
        }
        var found = 0
        for file in files {
            guard let content = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            // Comments of YAML, shell and unit files explain, they set nothing (the StatefulSet's names the
            // variables Kubernetes would add for a Service, which it turns off).
            let text =
                file.hasSuffix(".md")
                ? content
                : content.split(separator: "\n").filter { !$0.drop(while: { $0 == " " }).hasPrefix("#") }
                    .joined(separator: "\n")
            var rest = Substring(text)
            while let range = rest.range(of: "OTA_CANCEL_") {
                let name = rest[range.lowerBound...].prefix(while: { $0.isUppercase || $0.isNumber || $0 == "_" })
                rest = rest[range.upperBound...]
                // `OTA_CANCEL_<OPTION>`, `OTA_CANCEL_*` and `OTA_CANCEL_WORKER_*` are patterns, not variables.
                let next = rest.dropFirst(name.count - "OTA_CANCEL_".count).first
                guard name.count > "OTA_CANCEL_".count, next != "*", next != "<" else { continue }
                found += 1
                let isKnown = known.contains(String(name))
                #expect(isKnown, "\(file) names \(name), which the worker would refuse")
            }
        }
        #expect(found >= 10, "found only \(found) variables: the scan is broken")
    }

    @Test("--connect-timeout: 30 s by default, from 1 s to a day")
    func connectTimeout() throws {
        #expect(
            try WorkerConfiguration.resolve(NoArguments(), environment: minimal).supervision.connectTimeout
                == .seconds(30)
        )
        var environment = minimal
        environment["OTA_CANCEL_CONNECT_TIMEOUT"] = "2.5"
        let configured = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        #expect(configured.supervision.connectTimeout == .milliseconds(2_500))
        #expect(configured.summary.contains("connect-timeout"))
        environment["OTA_CANCEL_CONNECT_TIMEOUT"] = "0.5"
        #expect(throws: WorkerError.self) { try WorkerConfiguration.resolve(NoArguments(), environment: environment) }
    }

    @Test("TLS to the broker: off by default; any --broker-tls-* setting turns it on, with port 8883 by default")
    func brokerTLS() async throws {
        #expect(try WorkerConfiguration.resolve(NoArguments(), environment: minimal).mqtt.tls == nil)
        let pki = try await TestPKI.make()
        var environment = minimal
        environment["OTA_CANCEL_BROKER_TLS_CA_FILE"] = pki.caFile
        environment["OTA_CANCEL_BROKER_TLS_CERT_FILE"] = pki.clientCertificate
        environment["OTA_CANCEL_BROKER_TLS_KEY_FILE"] = pki.clientKey
        environment["OTA_CANCEL_BROKER_TLS_VERSION"] = "tlsv1.3"
        environment["OTA_CANCEL_BROKER_TLS_INSECURE"] = "true"
        let configuration = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        let tls = try #require(configuration.mqtt.tls)
        #expect(tls.caFile == pki.caFile)
        #expect(tls.certificateFile == pki.clientCertificate)
        #expect(tls.keyFile == pki.clientKey)
        #expect(tls.version == .tlsv1_3)
        #expect(tls.insecure)
        #expect(configuration.mqtt.port == 8883)
        #expect(configuration.summary.contains("broker-tls") && configuration.summary.contains(pki.caFile))
        // A flag beats its variable; an explicit port beats the TLS default.
        let flags = TestArguments(brokerPort: 1884, brokerTlsCaFile: pki.otherCAFile)
        let fromFlags = try WorkerConfiguration.resolve(flags, environment: environment)
        #expect(fromFlags.mqtt.tls?.caFile == pki.otherCAFile)
        #expect(fromFlags.mqtt.port == 1884)

        // Errors name the setting by its flag.
        for (variable, value, name) in [
            ("OTA_CANCEL_BROKER_TLS_CA_FILE", "/nonexistent/ca.crt", "broker-tls-ca-file"),
            ("OTA_CANCEL_BROKER_TLS_VERSION", "sslv3", "broker-tls-version"),
            ("OTA_CANCEL_BROKER_TLS_KEY_FILE", pki.encryptedClientKey, "broker-tls-key-file"),
        ] {
            var bad = environment
            bad[variable] = value
            #expect {
                _ = try WorkerConfiguration.resolve(NoArguments(), environment: bad)
            } throws: { error in
                (error as? WorkerError)?.message.contains(name) == true
            }
        }
        var certificateOnly = minimal
        certificateOnly["OTA_CANCEL_BROKER_TLS_CA_FILE"] = pki.caFile
        certificateOnly["OTA_CANCEL_BROKER_TLS_CERT_FILE"] = pki.clientCertificate
        #expect {
            _ = try WorkerConfiguration.resolve(NoArguments(), environment: certificateOnly)
        } throws: { error in
            let message = (error as? WorkerError)?.message ?? ""
            return message.contains("broker-tls-cert-file") && message.contains("broker-tls-key-file")
        }
    }

    /// Writes `json` to a temporary file and returns its path.
    private static func configFile(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).json")
            .path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a configuration file fills what flags and variables leave open; a flag beats a variable beats the file")
    func configurationFile() throws {
        let path = try Self.configFile(
            """
            {"broker-host": "file.example", "broker-port": 1999, "platform-qps": 2.5,
             "reply-topic-allow": ["a/#", "b/+"], "exit-on-connection-failure": true,
             "platform-endpoint": "http://127.0.0.1:9", "access-key-id": "from-file", "log-level": "debug",
             "log-format": "json"}
            """
        )
        defer { try? FileManager.default.removeItem(atPath: path) }
        var environment = minimal
        environment["OTA_CANCEL_PLATFORM_ENDPOINT"] = nil
        environment["OTA_CANCEL_ACCESS_KEY_ID"] = nil
        environment["OTA_CANCEL_CONFIG"] = path
        let fromFile = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        #expect(fromFile.mqtt.host == "file.example")
        #expect(fromFile.mqtt.port == 1999)
        #expect(fromFile.platform.rateLimit.ratePerSecond == 2.5)
        #expect(fromFile.worker.replyTopicAllowList == ["a/#", "b/+"])
        #expect(fromFile.supervision.exitOnConnectionFailure)
        #expect(fromFile.platform.endpoint == "http://127.0.0.1:9")
        #expect(fromFile.platform.accessKeyId == "from-file")
        #expect(fromFile.logLevel == .debug)
        #expect(fromFile.logFormat == .json && fromFile.summary.contains("log-format"))
        #expect(fromFile.configFile == path && fromFile.summary.contains(path))

        environment["OTA_CANCEL_BROKER_HOST"] = "env.example"
        let fromEnvironment = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        #expect(fromEnvironment.mqtt.host == "env.example")
        #expect(fromEnvironment.mqtt.port == 1999)
        let fromFlag = try WorkerConfiguration.resolve(
            TestArguments(brokerHost: "flag.example"),
            environment: environment
        )
        #expect(fromFlag.mqtt.host == "flag.example")
    }

    @Test(
        "a configuration file with a typo, a secret, a wrong value or the wrong shape is refused, naming it",
        arguments: [
            (#"{"broker-hots": "x"}"#, ["broker-hots", "unknown option"]),
            (#"{"access-key-secret": "s"}"#, ["access-key-secret-file", "does not belong"]),
            (#"{"broker-password": "p"}"#, ["broker-password-file"]),
            (#"{"broker-port": "eighty"}"#, ["broker-port", "an integer"]),
            (#"{"broker-port": null}"#, ["broker-port", "a string, a number or a boolean"]),
            (#"{"reply-topic-allow": [1]}"#, ["reply-topic-allow", "array of strings"]),
            (#"{"broker-host": "a", "broker-host": "b"}"#, ["not valid JSON", "(duplicateKey)"]),
            // Keys are named escaped: a control character in the file does not reach the terminal raw.
            (#"{"a\u001b[2Jb": 1}"#, [#"'a\u{1B}[2Jb'"#, "unknown option"]),
            (#"["broker-host"]"#, ["one JSON object"]),
        ]
    )
    func badConfigurationFile(json: String, expected: [String]) throws {
        let path = try Self.configFile(json)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var environment = minimal
        environment["OTA_CANCEL_CONFIG"] = path
        #expect {
            _ = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        } throws: { error in
            let message = (error as? WorkerError)?.message ?? ""
            return expected.allSatisfy { message.contains($0) } && message.contains(path)
        }
        #expect {
            _ = try WorkerConfiguration.resolve(TestArguments(config: "/nonexistent/config.json"), environment: minimal)
        } throws: { error in
            (error as? WorkerError)?.message.contains("/nonexistent/config.json") == true
        }
    }

    @Test("every option `run --help` lists may be set in the configuration file")
    func everyOptionInTheFile() async throws {
        let help = try await runProcess(try workerBinary(), ["run", "--help"])
        #expect(help.exitCode == 0)
        // Option lines start with the option: "  --broker-host <broker-host>", "  --x/--no-x".
        let options = Set(
            help.stdout.split(separator: "\n").compactMap { line -> String? in
                let trimmed = line.drop(while: { $0 == " " })
                guard trimmed.hasPrefix("--") else { return nil }
                return trimmed.dropFirst(2).prefix(while: { $0.isLetter || $0.isNumber || $0 == "-" }).description
            }
        ).subtracting(["help", "version", "config"])
        #expect(options.count >= 40, "found \(options.sorted())")
        for option in options.sorted() {
            // A value some options refuse: what matters is that none is refused as an unknown option.
            let path = try Self.configFile(#"{"\#(option)": "1"}"#)
            defer { try? FileManager.default.removeItem(atPath: path) }
            var environment = minimal
            environment["OTA_CANCEL_CONFIG"] = path
            do {
                _ = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
            } catch {
                #expect(!error.message.contains("unknown option"), "\(option): \(error.message)")
            }
        }
    }

    @Test("deploy/ota-cancel-worker.json, the example configuration, resolves: every key is an option")
    func exampleConfiguration() async throws {
        let pki = try await TestPKI.make()
        let secret = try Self.configFile("example-secret\n")
        defer { try? FileManager.default.removeItem(atPath: secret) }
        // The files the example names exist only on a real host: stand-ins through the variables (which beat it).
        let environment = [
            "OTA_CANCEL_CONFIG": WorkerStack.repositoryRoot + "/deploy/ota-cancel-worker.json",
            "OTA_CANCEL_BROKER_TLS_CA_FILE": pki.caFile,
            "OTA_CANCEL_BROKER_PASSWORD_FILE": secret,
            "OTA_CANCEL_ACCESS_KEY_SECRET_FILE": secret,
            "OTA_CANCEL_SCHEMA_DIR": WorkerStack.repositoryRoot + "/schemas",
        ]
        let configuration = try WorkerConfiguration.resolve(NoArguments(), environment: environment)
        #expect(configuration.mqtt.host == "mqtt.example.internal")
        #expect(configuration.mqtt.port == 8883)
        #expect(configuration.mqtt.tls?.caFile == pki.caFile)
        #expect(configuration.mqtt.username == "ota-cancel-worker")
        #expect(configuration.worker.commandTopic == "$share/cancel-workers/ota/cancel/request")
        #expect(configuration.platform.endpoint == "https://iot.cn-shanghai.aliyuncs.com")
        #expect(configuration.platform.regionId == "cn-shanghai")
        #expect(configuration.platform.rateLimit.ratePerSecond == 10)
    }

    @Test("required settings are named when missing")
    func required() {
        for missing in ["OTA_CANCEL_PLATFORM_ENDPOINT", "OTA_CANCEL_ACCESS_KEY_ID", "OTA_CANCEL_ACCESS_KEY_SECRET"] {
            var environment = minimal
            environment.removeValue(forKey: missing)
            #expect(throws: WorkerError.self) {
                try WorkerConfiguration.resolve(NoArguments(), environment: environment)
            }
        }
    }
}
