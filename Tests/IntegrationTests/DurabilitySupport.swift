// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import ServiceLifecycle
import TestSupport
import Testing
import Worker
import WorkerApp

/// An in-process worker that can be stopped and started again on the same journal and MQTT client id, like a
/// restarted deployment.
final class RestartableWorker: Sendable {
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let current = LockedValue<(task: Task<Void, any Error>, built: WorkerApp.Built)?>(nil)

    init(arguments: TestArguments, secret: String = "testsecret") throws {
        var logger = Logger(label: "restartable-worker")
        logger.logLevel =
            ProcessInfo.processInfo.environment["OTA_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        self.logger = logger
        configuration = try WorkerConfiguration.resolve(
            arguments,
            environment: ["OTA_CANCEL_ACCESS_KEY_SECRET": secret]
        )
    }

    /// The running worker, if any.
    var worker: CancelWorkerService? { current.value?.built.worker }

    /// The running worker's operations port, once it listens.
    var opsPort: Int? { current.value?.built.ops.port }

    /// Starts the worker; with `waitUntilReady`, returns once it is connected and subscribed.
    func start(waitUntilReady ready: Bool = true) async throws {
        let built = try WorkerApp.buildServiceGroup(configuration, logger: logger, signals: false)
        let task = Task { try await built.serviceGroup.run() }
        current.withLock { $0 = (task, built) }
        if ready { try await waitUntilReady(built.worker) }
    }

    /// Waits (at most `timeout`) for the worker to end by itself; `nil` when it is still running.
    func ended(within timeout: Duration) async -> Result<Void, any Error>? {
        guard let task = current.value?.task else { return nil }
        let clock = ContinuousClock()
        let giveUp = clock.now + timeout
        while clock.now < giveUp {
            if let result = await withTaskGroup(
                of: Result<Void, any Error>?.self,
                body: { group in
                    group.addTask { await task.result }
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(100))
                        return nil
                    }
                    let first = await group.next() ?? nil
                    group.cancelAll()
                    return first
                }
            ) {
                current.withLock { $0 = nil }
                return result
            }
        }
        return nil
    }

    /// Stops it gracefully and waits; returns how `run()` ended.
    @discardableResult
    func stop() async -> Result<Void, any Error> {
        guard
            let (task, built) = current.withLock({ value in
                defer { value = nil }; return value
            })
        else { return .success(()) }
        await built.serviceGroup.triggerGracefulShutdown()
        return await task.result
    }
}

/// A logger for tests that shows warnings and worse only.
func quietTestLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// A new, empty folder under the temporary directory, named `<name>-<UUID>` (the caller removes it).
func makeTemporaryDirectory(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The `ota-cancel-worker` executable of this build, for tests that must kill a real process.
///
/// It lies next to the test bundle (`swift build --build-tests` builds every product); `OTA_CANCEL_WORKER_BINARY`
/// overrides the location.
func workerBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["OTA_CANCEL_WORKER_BINARY"] { return path }
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("ota-cancel-worker").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestSupportError(
        "the ota-cancel-worker executable was not found next to the tests (\(directory.path)); build it with "
            + "`swift build --build-tests` or set OTA_CANCEL_WORKER_BINARY"
    )
}

/// Starts the worker executable (secret from the environment) and waits until it logs "worker ready" again.
///
/// The log is appended across restarts, so readiness is a new "worker ready" line; a process that exits or a
/// minute without readiness (a hang guard) fails the test with the log's end.
func launchWorkerProcess(_ binary: String, _ arguments: [String], logPath: String) async throws -> BackgroundProcess {
    let readyBefore = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").components(
        separatedBy: "worker ready"
    ).count
    let process = try BackgroundProcess(
        binary,
        arguments,
        environment: ["OTA_CANCEL_ACCESS_KEY_SECRET": "testsecret"],
        logPath: logPath
    )
    let clock = ContinuousClock()
    let giveUp = clock.now + .seconds(60)
    while process.log.components(separatedBy: "worker ready").count == readyBefore {
        guard clock.now < giveUp, process.exitCode == nil else {
            process.signal(SIGKILL)
            Issue.record("the worker did not become ready:\n\(process.log.suffix(3000))")
            throw CancellationError()
        }
        try await clock.sleep(for: .milliseconds(20))
    }
    return process
}

/// A reply with the `duplicate` marker removed: what "the same result" compares.
func withoutDuplicateMarker(_ payload: [UInt8]) -> JSONValue? {
    guard case .object(var object)? = try? JSONParser.parse(payload) else { return nil }
    object["duplicate"] = nil
    return .object(object)
}

/// Publishes cancel commands for single devices with MQTT 5 Response Topic and Correlation Data `<prefix><n>`.
func publishCommands(
    _ indices: some Sequence<Int>,
    through client: MosquittoClient,
    replyTopic: String,
    prefix: String,
    extra: String = ""
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in indices {
            group.addTask {
                let payload = EndToEndTests.command([String(format: "dev-%06d", index)], extra: extra)
                try await client.publish(
                    to: "ota/cancel/request",
                    payload: Array(payload.utf8),
                    qos: .atLeastOnce,
                    properties: MQTTProperties(
                        responseTopic: replyTopic,
                        correlationData: Array("\(prefix)\(index)".utf8)
                    )
                )
            }
        }
        try await group.waitForAll()
    }
}
