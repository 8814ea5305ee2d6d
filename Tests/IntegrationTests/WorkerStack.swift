// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSignature
import PlatformSimulator
import ServiceLifecycle
import TestSupport
import Testing
import Worker
import WorkerApp

/// Worker settings as a test gives them (STYLE §16): everything `nil` falls back to the defaults.
struct TestArguments: WorkerArguments {
    var config: String?
    var brokerHost: String? = "127.0.0.1"
    var brokerPort: Int?
    var brokerTlsCaFile: String?
    var brokerTlsCertFile: String?
    var brokerTlsKeyFile: String?
    var mqttVersion: String?
    var clientId: String?
    var commandTopic: String?
    var replyTopicAllowList: [String]?
    var platformEndpoint: String?
    var platformMethod: String?
    var platformProfile: String?
    var platformConnectTimeout: Double?
    var platformReadTimeout: Double?
    var accessKeyId: String? = "testid"
    var platformQps: Double?
    var platformMaxAttempts: Int?
    var maxInFlight: Int?
    var maxPendingCommands: Int?
    var coalesceWindow: Double?
    var maxDeviceNames: Int?
    var verify: String?
    var verifyMaxDevices: Int?
    var drainTimeout: Double?
    var stateDir: String?
    var schemaDir: String?
    var logLevel: String?
    var journalSync: String?
    var defaultDeadline: Double?
    var exitOnConnectionFailure: Bool?
    var opsHost: String?
    /// Tests run in parallel: the health endpoints take a free port.
    var opsPort: Int? = 0
}

/// A real broker, the in-process simulator and the worker (its ServiceGroup, in this process), wired together.
struct WorkerStack: Sendable {
    let broker: MosquittoBroker
    let simulator: RunningSimulator
    let worker: CancelWorkerService
    let serviceGroup: ServiceGroup
    /// The operations server (`/health/*`, `/metrics`) on a free port.
    let ops: OpsServer
    /// Options that `mosquitto_rr` needs to reach the broker (TLS files), before the request's own.
    var clientOptions: [String] = []

    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Runs `mosquitto_rr` (a real third-party MQTT client) against the stack's broker.
    ///
    /// - Returns: the reply as printed with `-F`, split into the given fields (tab-separated).
    func request(
        _ payload: String,
        version: String = "5",
        responseTopic: String,
        correlationData: String? = nil,
        format: String = "%D\t%C\t%p",
        timeout: Int = 30
    ) async throws -> [String] {
        var arguments =
            clientOptions + [
                "-h", "127.0.0.1", "-p", "\(broker.port)", "-V", version, "-q", "1", "-t", "ota/cancel/request",
                "-e", responseTopic, "-W", "\(timeout)", "-F", format, "-m", payload,
            ]
        if let correlationData { arguments += ["-D", "publish", "correlation-data", correlationData] }
        let result = try await runProcess("mosquitto_rr", arguments, timeout: .seconds(timeout + 10))
        guard result.exitCode == 0 else {
            Issue.record("mosquitto_rr exited \(result.exitCode): \(result.stdout) \(result.stderr)")
            throw CancellationError()
        }
        var output = result.stdout
        if output.hasSuffix("\n") { output.removeLast() }
        return output.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
    }

    /// Parses a reply payload and checks it against `schemas/cancel-result.schema.json`.
    func reply(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let value = try JSONParser.parse(text)
        let errors = Self.resultValidator.validate(value)
        #expect(errors.isEmpty, "reply breaks the result schema: \(errors)\n\(text)", sourceLocation: sourceLocation)
        return value
    }

    static let resultValidator = validator("cancel-result.schema.json")

    /// A validator of `schemas/<file>`, formats asserted.
    static func validator(_ file: String) -> JSONSchemaValidator {
        let data = FileManager.default.contents(atPath: repositoryRoot + "/schemas/" + file)!
        return try! JSONSchemaValidator(schema: try! JSONParser.parse(data), options: .init(formatAssertion: true))
    }

    /// `schemas/dead-letter.schema.json`: what the dead-letter topic carries (dead letters and notices).
    static let deadLetterValidator = validator("dead-letter.schema.json")

    /// Expects `value` (a message of the dead-letter topic) to follow `schemas/dead-letter.schema.json`.
    static func expectDeadLetter(_ value: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
        let errors = deadLetterValidator.validate(value)
        #expect(errors.isEmpty, "breaks dead-letter.schema.json: \(errors)", sourceLocation: sourceLocation)
    }

    func cancelCalls() -> Int { simulator.state.stats().cancelCalls }

    func status(of device: String) -> [String] {
        (simulator.state.tasks(deviceName: device) ?? []).map(\.status)
    }
}

/// Starts a broker, a simulator and a worker; runs `body`; shuts the worker down gracefully and stops the rest.
func withWorkerStack(
    simulator simulatorConfiguration: SimulatorConfiguration = SimulatorConfiguration(generateDevices: 1_000, qps: 0),
    arguments: TestArguments = TestArguments(platformQps: 0),
    secret: String = "testsecret",
    brokerConfig: [String] = [],
    clientOptions: [String] = [],
    beforeTheWorker: (MosquittoBroker) async throws -> Void = { _ in },
    _ body: (WorkerStack) async throws -> Void
) async throws {
    var logger = Logger(label: "test")
    logger.logLevel =
        ProcessInfo.processInfo.environment["OTA_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("ota-state-\(UUID().uuidString)")
        .path
    defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
    try await withMosquittoBroker(extraConfig: brokerConfig) { broker in
        try await beforeTheWorker(broker)
        try await withPlatformSimulator(configuration: simulatorConfiguration, logger: logger) { simulator in
            var arguments = arguments
            arguments.brokerPort = broker.port
            arguments.platformEndpoint = arguments.platformEndpoint ?? simulator.endpoint
            arguments.clientId = arguments.clientId ?? "test-worker-\(UUID().uuidString.prefix(8))"
            arguments.stateDir = stateDirectory
            arguments.schemaDir = WorkerStack.repositoryRoot + "/schemas"
            let configuration = try WorkerConfiguration.resolve(
                arguments,
                environment: ["OTA_CANCEL_ACCESS_KEY_SECRET": secret]
            )
            let built = try WorkerApp.buildServiceGroup(configuration, logger: logger, signals: false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await built.serviceGroup.run() }
                let stack = WorkerStack(
                    broker: broker,
                    simulator: simulator,
                    worker: built.worker,
                    serviceGroup: built.serviceGroup,
                    ops: built.ops,
                    clientOptions: clientOptions
                )
                let outcome: Result<Void, any Error>
                do {
                    try await waitUntilReady(built.worker)
                    try await body(stack)
                    outcome = .success(())
                } catch {
                    outcome = .failure(error)
                }
                await built.serviceGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                try outcome.get()
            }
        }
    }
}

/// Waits (at most 30 s, a hang guard) until the worker is connected and subscribed.
func waitUntilReady(_ worker: CancelWorkerService) async throws {
    let clock = ContinuousClock()
    let giveUp = clock.now + .seconds(30)
    while !worker.isReady {
        guard clock.now < giveUp else {
            Issue.record("the worker did not become ready within 30 s")
            throw CancellationError()
        }
        try await clock.sleep(for: .milliseconds(20))
    }
}
