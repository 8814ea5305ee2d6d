// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Logging
import PlatformSimulator

/// `ota-platform-sim`: the simulated IoT platform as a process, for the demo, docker-compose and benchmarks.
///
/// Thin on purpose: flags become a ``SimulatorConfiguration`` and the library runs it. The flag names are relied
/// upon by scripts, and so is the single stdout line `ota-platform-sim listening on http://HOST:PORT`.
@main
struct OTAPlatformSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ota-platform-sim",
        abstract: "A simulated IoT Platform RPC API (CancelOTATaskByDevice and friends) for tests and demos.",
        discussion: """
            Verifies RPC signatures (v1.0, HMAC-SHA1), timestamps, nonces and the per-account quota, keeps OTA \
            tasks in their documented states and answers like the platform. Admin API (unauthenticated): \
            GET /_sim/stats, GET /_sim/devices/NAME, GET /_sim/tasks, PUT /_sim/tasks/ID, GET|POST|DELETE \
            /_sim/faults, POST /_sim/reset. Prints one line, 'ota-platform-sim listening on URL', when ready; logs \
            go to stderr. Stops on SIGTERM or SIGINT.
            """
    )

    @Option(name: .customLong("port"), help: "TCP port; 0 picks a free one.")
    var port: Int = 0

    @Option(name: .customLong("host"), help: "Address to bind (the admin API is unauthenticated: keep loopback).")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("access-key-id"), help: "The AccessKeyId callers sign with.")
    var accessKeyId: String = "testid"

    @Option(
        name: .customLong("access-key-secret"),
        help: "The AccessKey secret (default: env OTA_SIM_ACCESS_KEY_SECRET, else testsecret)."
    )
    var accessKeySecret: String?

    @Option(
        name: .customLong("access-key-secret-file"),
        help: "A file holding the AccessKey secret (default: env OTA_SIM_ACCESS_KEY_SECRET_FILE)."
    )
    var accessKeySecretFile: String?

    @Option(name: .customLong("generate-devices"), help: "Seed demoProduct/demoFirmware/demoJob and N devices.")
    var generateDevices: Int = 0

    @Option(
        name: .customLong("generate-firmwares"),
        help: """
            With --generate-devices: K firmware, each with a QUEUED task for every device: demoFirmware (job \
            demoJob, tasks task-NNNNNN) and, for k = 2...K, demoFirmware-k (job demoJob-k, tasks task-NNNNNN-k).
            """
    )
    var generateFirmwares: Int = 1

    @Option(name: .customLong("fixture"), help: "JSON fixture file (see docs/simulator.md).")
    var fixture: String?

    @Option(name: .customLong("qps"), help: "Calls per second per AccessKeyId and Action; 0 = no quota.")
    var qps: Int = 10

    @Option(name: .customLong("latency-ms"), help: "Milliseconds added to every RPC answer.")
    var latencyMilliseconds: Int = 0

    @Option(
        name: .customLong("latency-max-ms"),
        help: "With it, every RPC answer waits a random time between --latency-ms and this (milliseconds)."
    )
    var latencyMaxMilliseconds: Int?

    @Option(
        name: .customLong("fault"),
        help: """
            A fault rule in force from the start, as JSON (repeatable; see docs/simulator.md), e.g. \
            '{"httpStatus":503,"probability":0.1}' or '{"latencyMilliseconds":100,"maxLatencyMilliseconds":900}'.
            """
    )
    var faults: [String] = []

    @Option(name: .customLong("seed"), help: "Seed of the random draws (fault probabilities, random latency).")
    var seed: UInt64?

    @Option(
        name: .customLong("clock-offset-seconds"),
        help:
            "How far the simulator's clock runs ahead (negative: behind); beyond 900 s calls get InvalidTimeStamp.Expired."
    )
    var clockOffsetSeconds: Int = 0

    @Option(name: .customLong("response-style"), help: "aliyun (PascalCase) or tuya (lower camel case).")
    var responseStyle: String = "aliyun"

    @Option(
        name: .customLong("cancel-without-task"),
        help:
            "What a cancel naming a device without a cancellable task answers: succeed (that device is left as it is) or fail (iot.ota.TaskNotCancellable, nothing changes)."
    )
    var cancelWithoutTask: String = "succeed"

    @Option(name: .customLong("iot-instance-id"), help: "The instance ID calls must carry (default: none).")
    var iotInstanceId: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard ResponseStyle(name: responseStyle) != nil else {
            throw ValidationError("--response-style must be aliyun or tuya, got \(responseStyle)")
        }
        guard SimulatorConfiguration.CancelWithoutTask(rawValue: cancelWithoutTask) != nil else {
            throw ValidationError("--cancel-without-task must be succeed or fail, got \(cancelWithoutTask)")
        }
        guard latencyMilliseconds >= 0 else { throw ValidationError("--latency-ms must be >= 0") }
        if let latencyMaxMilliseconds, latencyMaxMilliseconds < latencyMilliseconds {
            throw ValidationError("--latency-max-ms must be >= --latency-ms")
        }
        _ = try parsedFaults()
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = {
            var logger = Logger(label: "ota-platform-sim")
            logger.logLevel = level
            return logger
        }()

        var configuration = SimulatorConfiguration(
            host: host,
            port: port,
            generateDevices: generateDevices,
            fixturePath: fixture,
            qps: qps,
            latency: .milliseconds(latencyMilliseconds),
            responseStyle: ResponseStyle(name: responseStyle) ?? .aliyun,
            iotInstanceId: iotInstanceId
        )
        configuration.generateFirmwares = generateFirmwares
        configuration.cancelWithoutTask =
            SimulatorConfiguration.CancelWithoutTask(rawValue: cancelWithoutTask) ?? .succeed
        configuration.maximumLatency = latencyMaxMilliseconds.map { .milliseconds($0) }
        configuration.faults = try parsedFaults()
        configuration.randomSeed = seed
        configuration.clockOffset = .seconds(clockOffsetSeconds)
        let environment = ProcessInfo.processInfo.environment
        let secretFile = accessKeySecretFile ?? environment["OTA_SIM_ACCESS_KEY_SECRET_FILE"]
        var secret = accessKeySecret ?? environment["OTA_SIM_ACCESS_KEY_SECRET"] ?? "testsecret"
        if accessKeySecret == nil, let secretFile {
            // A secrets file (docker compose `secrets:`), so the secret is never on a command line.
            guard let data = FileManager.default.contents(atPath: secretFile),
                let text = String(data: data, encoding: .utf8)
            else { throw ValidationError("--access-key-secret-file: cannot read \(secretFile)") }
            secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        configuration.useSingleAccount(accessKeyId: accessKeyId, accessKeySecret: secret)

        if !["127.0.0.1", "::1", "localhost"].contains(host) {
            logger.warning(
                "binding a non-loopback address: the /_sim admin API is not authenticated",
                metadata: ["host": "\(host)"]
            )
        }
        try await servePlatformSimulator(configuration: configuration, logger: logger) { running in
            // One unbuffered write: scripts wait for this line, so it must not sit in a stdio buffer.
            FileHandle.standardOutput.write(Data((running.listeningLine + "\n").utf8))
            logger.info(
                "simulator ready",
                metadata: [
                    "endpoint": "\(running.endpoint)",
                    "devices": "\(generateDevices)",
                    "firmwares": "\(generateFirmwares)",
                    "qps": "\(qps)",
                    "style": "\(responseStyle)",
                ]
            )
        }
        logger.info("simulator stopped")
    }

    /// The `--fault` rules, decoded and checked.
    private func parsedFaults() throws -> [FaultRule] {
        try faults.enumerated().map { index, text in
            do throws(SimulatorError) {
                return try FaultRule.decode(json: Data(text.utf8))
            } catch {
                throw ValidationError("--fault #\(index + 1): \(error.message)")
            }
        }
    }
}
