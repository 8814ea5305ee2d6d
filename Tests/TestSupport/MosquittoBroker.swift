// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `mosquitto` broker for one test, on a free loopback port, with a private configuration.
///
/// Tests run against the installed broker rather than a mock so that they exercise what production meets:
/// session persistence, PUBACK reason codes, refusals. Everything lives in a fresh temporary directory
/// (config, log, persistence file) that is removed when the broker object goes away. The broker never
/// listens on anything but 127.0.0.1.
///
/// As root, mosquitto would drop privileges to the `mosquitto` user and then fail to write into the temporary
/// directory; the generated config says `user root` to keep it, which mosquitto ignores when not root.
public final class MosquittoBroker: Sendable {
    /// The host to connect to: always `"127.0.0.1"`.
    public let host = "127.0.0.1"
    /// The TCP port the broker listens on; the same across ``restart()``.
    public let port: Int
    /// The private directory holding `mosquitto.conf`, `mosquitto.log` and the persistence file.
    public let directory: String
    /// Whether the broker saves sessions and queued messages to disk on shutdown (and loads them on start).
    public let persistence: Bool

    private let executable: String
    private let running: LockedValue<SpawnedProcess?>

    private init(executable: String, port: Int, directory: String, persistence: Bool, process: SpawnedProcess) {
        self.executable = executable
        self.port = port
        self.directory = directory
        self.persistence = persistence
        self.running = LockedValue(process)
    }

    deinit {
        if let process = running.withLock({ $0 }) { process.signal(SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The path of the generated configuration file.
    public var configPath: String { directory + "/mosquitto.conf" }

    /// The broker's log so far (`log_type all`: connections, every packet, refusals).
    public var logText: String {
        (try? String(contentsOfFile: directory + "/mosquitto.log", encoding: .utf8)) ?? ""
    }

    /// Starts a broker.
    /// - Parameters:
    ///   - persistence: Save sessions and queued messages on clean shutdown and load them on start; default off.
    ///   - extraConfig: Further config lines (e.g. `"allow_anonymous false"`, `"password_file /path"`). A line whose
    ///     option name matches a default line (`allow_anonymous`, `persistence`...) replaces that default.
    ///     They follow the generated `listener` line, so listener options (`cafile`, `certfile`, `keyfile`,
    ///     `require_certificate`) configure that listener, e.g. to make it a TLS listener.
    /// - Returns: The running broker, accepting connections.
    /// - Throws: ``TestSupportError`` when mosquitto is not installed (the message says how to install it) or
    ///   does not come up.
    public static func start(persistence: Bool = false, extraConfig: [String] = []) async throws -> MosquittoBroker {
        guard let executable = findExecutable("mosquitto") else {
            throw TestSupportError("the mosquitto broker is not installed; \(mosquittoInstallHint)")
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mosquitto-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            try writeConfig(directory: directory, port: port, persistence: persistence, extraConfig: extraConfig)
            do {
                let process = try await launch(executable: executable, directory: directory, port: port)
                return MosquittoBroker(
                    executable: executable,
                    port: port,
                    directory: directory,
                    persistence: persistence,
                    process: process
                )
            } catch let error as PortInUse {
                lastError = error  // another process took the port between our probe and the broker's bind
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw TestSupportError(
            "mosquitto could not bind a free port after 5 attempts: \(String(describing: lastError))"
        )
    }

    /// Stops the broker with SIGTERM and waits for it to exit (it writes its persistence file on the way out).
    /// Idempotent.
    public func stop() async {
        guard
            let process = running.withLock({ process in
                defer { process = nil }; return process
            })
        else { return }
        await process.terminate(grace: .seconds(10))
    }

    /// Stops the broker if it runs and starts it again on the same port with the same directory (so the same
    /// persistence file).
    /// - Parameter extraConfig: If given, replaces the extra config lines of ``start(persistence:extraConfig:)``
    ///   for the new run (e.g. to start requiring a password); default: keep the current configuration.
    public func restart(extraConfig: [String]? = nil) async throws {
        await stop()
        if let extraConfig {
            try Self.writeConfig(directory: directory, port: port, persistence: persistence, extraConfig: extraConfig)
        }
        var lastError: (any Error)?
        // The port was ours a moment ago; retry briefly in case the old socket is still being torn down.
        for _ in 0..<20 {
            do {
                let process = try await Self.launch(executable: executable, directory: directory, port: port)
                running.withLock { $0 = process }
                return
            } catch let error as PortInUse {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw TestSupportError("mosquitto could not re-bind port \(port): \(String(describing: lastError))")
    }

    /// Sends a signal to the running broker: `SIGSTOP` freezes it with every connection open (a broker that
    /// stops answering without closing anything), `SIGCONT` lets it go on.
    public func signal(_ signal: Int32) {
        running.withLock { $0 }?.signal(signal)
    }

    /// Whether the broker process is running.
    public var isRunning: Bool { running.withLock { $0 != nil && $0?.exitCode == nil } }

    /// Waits until `predicate` holds for the broker log (e.g. a SUBSCRIBE from a client was received).
    /// - Returns: `true` if it held before `timeout` (a hang guard, not a timing assertion).
    public func waitForLog(timeout: Duration = .seconds(10), _ predicate: (String) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if predicate(logText) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return predicate(logText)
    }

    // MARK: - Private

    private struct PortInUse: Error {
        var log: String
    }

    private static func writeConfig(directory: String, port: Int, persistence: Bool, extraConfig: [String]) throws {
        let defaults = [
            "allow_anonymous true",
            // Without it the broker's small packets wait for delayed ACKs: ~40 ms per request/response.
            "set_tcp_nodelay true",
            "persistence \(persistence)",
            "persistence_location \(directory)/",
            "log_dest file \(directory)/mosquitto.log",
            "log_type all",
            "user root",
        ]
        let overridden = Set(extraConfig.compactMap { $0.split(separator: " ").first.map(String.init) })
        let lines =
            ["listener \(port) 127.0.0.1"]
            + defaults.filter { !overridden.contains(String($0.split(separator: " ")[0])) } + extraConfig
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: directory + "/mosquitto.conf",
            atomically: true,
            encoding: .utf8
        )
    }

    private static func launch(executable: String, directory: String, port: Int) async throws -> SpawnedProcess {
        let box = try SpawnedProcess(path: executable, arguments: ["-c", directory + "/mosquitto.conf"])
        func log() -> String {
            (try? String(contentsOfFile: directory + "/mosquitto.log", encoding: .utf8)) ?? ""
        }
        // A hang guard, not a timing assertion: with ~75 suites on two cores a waiting task can be resumed
        // long after its sleep ended (CI once saw four brokers "not up within 10 s" at the same moment), so
        // the bound is generous and the port is looked at once more after it, before giving up.
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let code = box.exitCode {
                let log = log()
                if log.contains("Address already in use") { throw PortInUse(log: log) }
                throw TestSupportError("mosquitto exited with \(code) during start-up; log:\n\(log)")
            }
            if loopbackPortAcceptsConnections(port) { return box }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        box.signal(SIGKILL)
        throw TestSupportError(
            "mosquitto (running: \(box.exitCode == nil)) did not accept connections on 127.0.0.1:\(port) "
                + "within 30 s; log:\n\(log().suffix(2_000))"
        )
    }
}

/// Starts a broker, runs `body` with it, and stops it afterwards (also when `body` throws).
/// - Parameters:
///   - persistence: See ``MosquittoBroker/start(persistence:extraConfig:)``; default off.
///   - extraConfig: Further config lines; default none.
///   - body: The test.
/// - Returns: What `body` returns.
@discardableResult
public func withMosquittoBroker<R>(
    persistence: Bool = false,
    extraConfig: [String] = [],
    _ body: (MosquittoBroker) async throws -> R
) async throws -> R {
    let broker = try await MosquittoBroker.start(persistence: persistence, extraConfig: extraConfig)
    do {
        let result = try await body(broker)
        await broker.stop()
        return result
    } catch {
        await broker.stop()
        throw error
    }
}
