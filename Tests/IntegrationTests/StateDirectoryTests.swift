// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import PlatformSimulator
import TestSupport
import Testing
import Worker
import WorkerApp

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 8: the state folder is private (`0700`, journal files `0600`) and held by one worker at a time.
@Suite("state folder", .timeLimit(.minutes(3)))
struct StateDirectoryTests {
    static var quietLogger: Logger {
        var logger = Logger(label: "state-directory-test")
        logger.logLevel = .warning
        return logger
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
    }

    /// The permission bits of `path`, or `nil` when it does not exist.
    static func mode(_ path: String) -> UInt32? {
        var status = stat()
        return stat(path, &status) == 0 ? UInt32(status.st_mode & 0o7777) : nil
    }

    static func octal(_ mode: UInt32?) -> String { mode.map { "0" + String($0, radix: 8) } ?? "missing" }

    // MARK: Pure decisions

    @Test("mode decisions: only bits beyond the allowed ones are removed, and only on what this user owns")
    func modeActions() {
        #expect(StateDirectory.modeAction(mode: 0o700, owner: 5, user: 5, maximum: 0o700) == .keep)
        #expect(StateDirectory.modeAction(mode: 0o500, owner: 5, user: 5, maximum: 0o700) == .keep)
        #expect(StateDirectory.modeAction(mode: 0o755, owner: 5, user: 5, maximum: 0o700) == .tighten(to: 0o700))
        #expect(StateDirectory.modeAction(mode: 0o644, owner: 5, user: 5, maximum: 0o600) == .tighten(to: 0o600))
        #expect(StateDirectory.modeAction(mode: 0o777, owner: 5, user: 5, maximum: 0o600) == .tighten(to: 0o600))
        #expect(StateDirectory.modeAction(mode: 0o2750, owner: 5, user: 5, maximum: 0o700) == .tighten(to: 0o700))
        #expect(StateDirectory.modeAction(mode: 0o755, owner: 0, user: 5, maximum: 0o700) == .tooOpenNotOwned)
        #expect(StateDirectory.modeAction(mode: 0o700, owner: 0, user: 5, maximum: 0o700) == .keep)
    }

    @Test("the lock record: written, read back, and anything else is not believed")
    func lockRecord() {
        let record = StateDirectoryLockRecord(pid: 4242, started: "2026-05-01T10:00:00Z")
        #expect(record.text == "pid=4242 started=2026-05-01T10:00:00Z\n")
        #expect(StateDirectoryLockRecord(text: record.text) == record)
        for text in [
            "", "pid=", "pid=0 started=2026-05-01T10:00:00Z", "pid=x started=2026", "pid=1 started=now\u{1B}[2J",
            "pid=1 started=2026 extra", "garbage",
        ] {
            #expect(StateDirectoryLockRecord(text: text) == nil, "\(text)")
        }
        let message = StateDirectoryLock.inUseMessage(directory: "/var/lib/w", holder: record)
        #expect(message.contains("state-dir '/var/lib/w' is in use by process 4242 (started 2026-05-01T10:00:00Z)"))
        #expect(StateDirectoryLock.inUseMessage(directory: "/x", holder: nil).contains("pid is not recorded"))
        #expect(WorkerApp.exitStatus(forStartFailure: .journal(message)) == 75)
        #expect(WorkerApp.exitStatus(forStartFailure: .invalidConfiguration("x")) == 78)
        #expect(WorkerApp.exitStatus(forStartFailure: .schemaNotFound("x")) == 78)
    }

    // MARK: In-process

    @Test("a new folder and journal are private; a looser existing folder and journal files are tightened")
    func modes() throws {
        let fresh = Self.temporaryPath("ota-modes") + "/nested/state"
        defer { try? FileManager.default.removeItem(atPath: (fresh as NSString).deletingLastPathComponent) }
        let lock = try StateDirectory.prepare(fresh, journalPath: fresh + "/journal.sqlite", logger: Self.quietLogger)
        #expect(Self.mode(fresh) == 0o700)
        #expect(Self.mode(fresh + "/journal.sqlite") == 0o600)
        #expect(Self.mode(fresh + "/lock") == 0o600)
        lock.release()

        let loose = Self.temporaryPath("ota-loose")
        defer { try? FileManager.default.removeItem(atPath: loose) }
        try FileManager.default.createDirectory(atPath: loose, withIntermediateDirectories: true)
        for name in ["journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "lock"] {
            #expect(FileManager.default.createFile(atPath: loose + "/" + name, contents: nil))
            #expect(chmod(loose + "/" + name, 0o666) == 0)
        }
        #expect(chmod(loose, 0o755) == 0)
        let configuration = try WorkerConfiguration.resolve(
            TestArguments(
                platformEndpoint: "http://127.0.0.1:9",
                stateDir: loose,
                schemaDir: hygieneSchemas
            ),
            environment: ["OTA_CANCEL_ACCESS_KEY_SECRET": "s"]
        )
        let built = try WorkerApp.buildServiceGroup(configuration, logger: Self.quietLogger, signals: false)
        #expect(Self.mode(loose) == 0o700)
        for name in ["journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "lock"] {
            #expect(Self.mode(loose + "/" + name) == 0o600, "\(name): \(Self.octal(Self.mode(loose + "/" + name)))")
        }
        _ = built
    }

    @Test("in one process: a second worker on a held folder is refused; a stopped or dropped worker releases it")
    func inProcessLock() async throws {
        let state = Self.temporaryPath("ota-lock")
        defer { try? FileManager.default.removeItem(atPath: state) }
        try await withMosquittoBroker { broker in
            let arguments = TestArguments(
                brokerPort: broker.port,
                clientId: "lock-worker",
                platformEndpoint: "http://127.0.0.1:9",
                stateDir: state,
                schemaDir: hygieneSchemas
            )
            let first = try RestartableWorker(arguments: arguments)
            try await first.start()
            let second = try RestartableWorker(arguments: arguments)
            do {
                try await second.start(waitUntilReady: false)
                Issue.record("a second worker started on a held state folder")
                await second.stop()
            } catch let error as WorkerError {
                #expect(error == WorkerError.journal(""))
                #expect(error.message.contains("state-dir '\(state)' is in use by process \(getpid())"), "\(error)")
            }
            #expect(first.worker?.isReady == true, "the first one keeps working")
            let stopped = await first.stop()
            #expect((try? stopped.get()) != nil)
            // Released when the group ended: the same folder can be taken again at once.
            try await second.start()
            await second.stop()

            // A built worker that never ran releases the folder when it goes away.
            let configuration = try WorkerConfiguration.resolve(
                arguments,
                environment: ["OTA_CANCEL_ACCESS_KEY_SECRET": "s"]
            )
            do {
                let unused = try WorkerApp.buildServiceGroup(configuration, logger: Self.quietLogger, signals: false)
                _ = unused
            }
            let again = try WorkerApp.buildServiceGroup(configuration, logger: Self.quietLogger, signals: false)
            _ = again
        }
    }

    // MARK: Real processes

    @Test("real processes: the journal files of a running worker are 0600, a second worker is refused (exit 75)")
    func secondProcess() async throws {
        let binary = try workerBinary()
        let state = Self.temporaryPath("ota-second")
        let logs = Self.temporaryPath("ota-second-logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: logs)
        }
        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 10, qps: 0),
                logger: Self.quietLogger
            ) { simulator in
                let arguments = [
                    "run", "--broker-port", "\(broker.port)", "--client-id", "first-worker", "--platform-endpoint",
                    simulator.endpoint, "--access-key-id", "testid", "--platform-qps", "0", "--state-dir", state,
                    "--schema-dir", hygieneSchemas, "--ops-port", "0", "--log-level", "info",
                ]
                let first = try await launchWorkerProcess(binary, arguments, logPath: logs + "/first.log")
                defer { first.signal(SIGKILL) }
                #expect(try await requestOverMQTT(port: broker.port, correlationId: "before")["status"] == "succeeded")

                // The running worker's folder: every journal file private.
                #expect(Self.mode(state) == 0o700, "state folder: \(Self.octal(Self.mode(state)))")
                for name in ["journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "lock"] {
                    let mode = Self.mode(state + "/" + name)
                    #expect(mode == 0o600, "\(name): \(Self.octal(mode))")
                }

                // A second one with the same settings (the issue's case: it took the client id) stops at once
                // and names the holder.
                let clock = ContinuousClock()
                let started = clock.now
                let second = try await runProcess(
                    binary,
                    arguments,
                    timeout: .seconds(20),
                    environment: ["OTA_CANCEL_ACCESS_KEY_SECRET": "testsecret"]
                )
                let elapsed = clock.now - started
                #expect(second.exitCode == 75, "\(second)")
                #expect(
                    second.stderr.contains("state-dir '\(state)' is in use by process \(first.pid) (started "),
                    "\(second)"
                )
                #expect(elapsed < .seconds(10), "refused at start, not after a timeout: \(elapsed)")

                // The first keeps working.
                #expect(first.exitCode == nil, "the first worker is still running:\n\(first.log.suffix(2000))")
                #expect(try await requestOverMQTT(port: broker.port, correlationId: "after")["status"] == "succeeded")
                #expect(!first.log.contains("database is locked"), "\(first.log.suffix(2000))")
                first.signal(SIGTERM)
                #expect(await first.waitForExit() == 0)
                print("state folder test: the second worker was refused in \(elapsed)")
            }
        }
    }
}
