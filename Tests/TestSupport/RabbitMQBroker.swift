// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A private RabbitMQ node with its MQTT plugin for one test: the second broker implementation the worker is
/// tested against (MQTT 3.1.1 only in RabbitMQ 3.10, Debian 12's version).
///
/// Everything the node touches is its own: free loopback ports for MQTT, AMQP, the Erlang distribution and its own
/// `epmd`; a fresh temporary directory for the configuration, the data (`mnesia`), the log and the Erlang cookie
/// (`HOME`); a node name no other node uses. So it can neither meet the Debian package's own service (if the
/// package's postinst started one: `rabbit@<host>` on 5672, 25672 and epmd's 4369) nor another test's node, and
/// nothing of `/etc/rabbitmq` is read. It listens on 127.0.0.1 only.
///
/// The node is started with `/usr/lib/rabbitmq/bin/rabbitmq-server`, not Debian's `/usr/sbin` wrapper: as root the
/// wrapper switches to the `rabbitmq` user, who could not write into our directory. RabbitMQ runs as root without
/// complaint. `RUNNING_UNDER_SYSTEMD=true` makes the script `exec` the Erlang VM, so the process we start *is* the
/// broker: SIGTERM stops it cleanly (queues and sessions are on disk) and SIGKILL in `deinit` leaves no orphan.
/// `epmd` is our own child too; started by the VM it would daemonize and outlive the test.
public final class RabbitMQBroker: Sendable {
    /// The host to connect to: always `"127.0.0.1"`.
    public let host = "127.0.0.1"
    /// The MQTT port; the same across ``restart()``.
    public let port: Int
    /// The AMQP 0-9-1 port (unused by the tests, but RabbitMQ always opens one; pinned to loopback).
    public let amqpPort: Int
    /// The Erlang distribution port, which `rabbitmqctl` talks to.
    public let distributionPort: Int
    /// The port of the node's private `epmd`.
    public let epmdPort: Int
    /// The Erlang node name, `rabbit-test-<random>@localhost`.
    public let nodeName: String
    /// The private directory: `rabbitmq.conf`, `enabled_plugins`, `mnesia/` (the data kept across restarts),
    /// `log/`, `home/` (the Erlang cookie).
    public let directory: String

    private let epmd: SpawnedProcess
    private let running: LockedValue<SpawnedProcess?>

    private init(ports: Ports, nodeName: String, directory: String, epmd: SpawnedProcess, process: SpawnedProcess) {
        port = ports.mqtt
        amqpPort = ports.amqp
        distributionPort = ports.distribution
        epmdPort = ports.epmd
        self.nodeName = nodeName
        self.directory = directory
        self.epmd = epmd
        running = LockedValue(process)
    }

    deinit {
        if let process = running.withLock({ $0 }) { process.signal(SIGKILL) }
        epmd.signal(SIGKILL)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Where Debian's package puts the start script that does not switch users.
    public static let serverScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    /// The control tool next to it.
    public static let controlScript = "/usr/lib/rabbitmq/bin/rabbitmqctl"

    /// Whether `rabbitmq-server` is installed (Debian's layout).
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: serverScript) }

    /// Whether a missing RabbitMQ must fail the tests rather than leave them skipped: in CI (`CI` set) and under
    /// `scripts/test` (`OTA_REQUIRE_SHARED=1`), which installs it.
    public static var isRequired: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OTA_REQUIRE_SHARED"] == "1" || !(environment["CI"] ?? "").isEmpty
    }

    /// The install hint used in every "not installed" message.
    public static let installHint =
        "rabbitmq-server is not installed; install it with: apt-get install -y rabbitmq-server "
        + "(scripts/test does so when run as root)"

    /// The node's log so far (`info` level: connections, listeners, channel errors).
    public var logText: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    private var logPath: String { Self.logPath(directory: directory, nodeName: nodeName) }

    /// Starts a node and returns once it accepts MQTT connections.
    ///
    /// - Returns: The running broker.
    /// - Throws: ``TestSupportError`` when RabbitMQ is not installed (the message says how to install it), or the
    ///   node does not come up (with its log).
    public static func start() async throws -> RabbitMQBroker {
        guard isInstalled else { throw TestSupportError(installHint) }
        guard let epmdExecutable = findExecutable("epmd") else {
            throw TestSupportError("epmd (erlang-base) was not found; \(installHint)")
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("rabbitmq-test-\(UUID().uuidString)").path
        let nodeName = "rabbit-test-\(UUID().uuidString.prefix(8).lowercased())@localhost"
        for folder in ["", "/home", "/log", "/mnesia"] {
            try FileManager.default.createDirectory(atPath: directory + folder, withIntermediateDirectories: true)
        }
        // An empty environment file in place of /etc/rabbitmq/rabbitmq-env.conf; the plugin list in place of
        // /etc/rabbitmq/enabled_plugins.
        try "".write(toFile: directory + "/rabbitmq-env.conf", atomically: true, encoding: .utf8)
        try "[rabbitmq_mqtt].\n".write(toFile: directory + "/enabled_plugins", atomically: true, encoding: .utf8)

        var lastError: (any Error)?
        for _ in 0..<3 {
            let ports = try Ports.free()
            try writeConfig(directory: directory, ports: ports)
            let epmd = try SpawnedProcess(
                path: epmdExecutable,
                arguments: ["-port", "\(ports.epmd)", "-address", "127.0.0.1"]
            )
            do {
                try await waitForEpmd(epmd, port: ports.epmd)
                let process = try await launch(directory: directory, nodeName: nodeName, ports: ports)
                return RabbitMQBroker(
                    ports: ports,
                    nodeName: nodeName,
                    directory: directory,
                    epmd: epmd,
                    process: process
                )
            } catch let error as PortInUse {
                // Another process took one of the ports between our probe and the node's bind.
                lastError = error
                epmd.signal(SIGKILL)
                _ = await epmd.waitForExit()
                try? FileManager.default.removeItem(atPath: directory + "/mnesia")
                try FileManager.default.createDirectory(
                    atPath: directory + "/mnesia",
                    withIntermediateDirectories: true
                )
            } catch {
                epmd.signal(SIGKILL)
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw TestSupportError("RabbitMQ could not bind free ports after 3 attempts: \(String(describing: lastError))")
    }

    /// Stops the node with SIGTERM and waits for it to exit: RabbitMQ closes its listeners and connections and
    /// writes its message stores, so durable queues (the persistent MQTT sessions) and their persistent messages
    /// are there at the next start. SIGKILL after 60 s (a hang guard). Idempotent.
    public func stop() async {
        guard
            let process = running.withLock({ process in
                defer { process = nil }; return process
            })
        else { return }
        await process.terminate(grace: .seconds(60))
    }

    /// Stops the node if it runs and starts it again on the same ports and data directory: a broker restart
    /// that keeps durable queues, as an operator's would.
    /// - Throws: ``TestSupportError`` if it does not come up again (with its log).
    public func restart() async throws {
        await stop()
        let ports = Ports(mqtt: port, amqp: amqpPort, distribution: distributionPort, epmd: epmdPort)
        var lastError: (any Error)?
        // The ports were ours a moment ago; retry briefly in case an old socket is still being torn down.
        for _ in 0..<10 {
            do {
                let process = try await Self.launch(directory: directory, nodeName: nodeName, ports: ports)
                running.withLock { $0 = process }
                return
            } catch let error as PortInUse {
                lastError = error
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw TestSupportError("RabbitMQ could not re-bind its ports: \(String(describing: lastError))")
    }

    /// Whether the node process is running.
    public var isRunning: Bool { running.withLock { $0 != nil && $0?.exitCode == nil } }

    /// A queue as `rabbitmqctl list_queues` describes it.
    public struct Queue: Sendable, Hashable {
        /// The queue's name: the MQTT plugin names a session's queue `mqtt-subscription-<client id>qos<0|1>`.
        public var name: String
        /// Whether it survives a broker restart (a persistent session's QoS 1 queue does).
        public var durable: Bool
        /// Whether it goes away with its last consumer (a clean session's queues do).
        public var autoDelete: Bool
        /// Messages ready or unacknowledged in it.
        public var messages: Int
        /// Consumers attached (1 while the session's client is connected).
        public var consumers: Int
    }

    /// The node's queues, read with `rabbitmqctl list_queues` (about a second: it starts an Erlang VM).
    /// - Throws: ``TestSupportError`` if `rabbitmqctl` fails or answers something unreadable.
    public func queues() async throws -> [Queue] {
        let result = try await runProcess(
            Self.controlScript,
            [
                "-n", nodeName, "--timeout", "30", "--quiet", "list_queues", "name", "durable", "auto_delete",
                "messages", "consumers", "--formatter", "json",
            ],
            timeout: .seconds(60),
            environment: Self.environment(directory: directory, nodeName: nodeName, ports: currentPorts)
        )
        guard result.exitCode == 0,
            let rows = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        else {
            throw TestSupportError("rabbitmqctl list_queues failed: \(result)")
        }
        return rows.map { row in
            Queue(
                name: row["name"] as? String ?? "",
                durable: row["durable"] as? Bool ?? false,
                autoDelete: row["auto_delete"] as? Bool ?? false,
                messages: (row["messages"] as? NSNumber)?.intValue ?? 0,
                consumers: (row["consumers"] as? NSNumber)?.intValue ?? 0
            )
        }
    }

    // MARK: - Private

    private var currentPorts: Ports {
        Ports(mqtt: port, amqp: amqpPort, distribution: distributionPort, epmd: epmdPort)
    }

    private struct Ports {
        var mqtt: Int
        var amqp: Int
        var distribution: Int
        var epmd: Int

        /// Four distinct ports that were free a moment ago (all probed before any is released, so they differ).
        static func free() throws -> Ports {
            let probes = try (0..<4).map { _ in try RefusingLoopbackPort() }
            return Ports(mqtt: probes[0].port, amqp: probes[1].port, distribution: probes[2].port, epmd: probes[3].port)
        }
    }

    private struct PortInUse: Error {
        var log: String
    }

    private static func logPath(directory: String, nodeName: String) -> String {
        directory + "/log/\(nodeName).log"
    }

    private static func writeConfig(directory: String, ports: Ports) throws {
        let lines = [
            "listeners.tcp.1 = 127.0.0.1:\(ports.amqp)",
            "mqtt.listeners.tcp.1 = 127.0.0.1:\(ports.mqtt)",
            // RabbitMQ's defaults, spelled out because the tests rely on them: a client without credentials is
            // the `guest` user, which may log in from loopback only.
            "mqtt.allow_anonymous = true",
            "mqtt.default_user = guest",
            "mqtt.default_pass = guest",
            "log.file.level = info",
            "log.console = false",
        ]
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: directory + "/rabbitmq.conf",
            atomically: true,
            encoding: .utf8
        )
    }

    /// The variables that make the node private (RabbitMQ reads its whole layout from them); any of the same
    /// names in the test's own environment is replaced.
    private static func environment(directory: String, nodeName: String, ports: Ports) -> [String: String] {
        [
            "HOME": directory + "/home",
            "RABBITMQ_CONF_ENV_FILE": directory + "/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": directory + "/rabbitmq.conf",
            "RABBITMQ_ADVANCED_CONFIG_FILE": directory + "/advanced.config",
            "RABBITMQ_ENABLED_PLUGINS_FILE": directory + "/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": directory + "/mnesia",
            "RABBITMQ_LOG_BASE": directory + "/log",
            "RABBITMQ_PID_FILE": directory + "/rabbitmq.pid",
            "RABBITMQ_NODENAME": nodeName,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": "\(ports.amqp)",
            "RABBITMQ_DIST_PORT": "\(ports.distribution)",
            "ERL_EPMD_PORT": "\(ports.epmd)",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            // The distribution listener binds every interface unless told otherwise.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            // `exec` the VM instead of running it as a child of the script (see the type's documentation); and no
            // readiness notification to a systemd that may run the tests.
            "RUNNING_UNDER_SYSTEMD": "true",
            "NOTIFY_SOCKET": "",
        ]
    }

    /// Waits until our `epmd` listens: a node started before that would find no epmd on its port and start one of
    /// its own, a daemon that outlives the test. An `epmd` that exits could not bind its port.
    private static func waitForEpmd(_ epmd: SpawnedProcess, port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)  // a hang guard
        while !loopbackPortAcceptsConnections(port) {
            if epmd.exitCode != nil { throw PortInUse(log: "epmd exited: port \(port) is taken") }
            guard ContinuousClock.now < deadline else {
                throw TestSupportError("epmd did not listen on 127.0.0.1:\(port) within 30 s")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    private static func launch(directory: String, nodeName: String, ports: Ports) async throws -> SpawnedProcess {
        let logPath = logPath(directory: directory, nodeName: nodeName)
        func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        let output = open(directory + "/stdout.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw TestSupportError("cannot open \(directory)/stdout.log: errno \(errno)") }
        defer { close(output) }
        // The log is appended across restarts: this start is done when one more "startup complete" line appears.
        let completeBefore = log().components(separatedBy: "Server startup complete").count
        let box = try SpawnedProcess(
            path: serverScript,
            arguments: [],
            environment: environment(directory: directory, nodeName: nodeName, ports: ports),
            stdout: output,
            stderr: output
        )
        func failure() -> String {
            let startup = (try? String(contentsOfFile: directory + "/stdout.log", encoding: .utf8)) ?? ""
            return "log:\n\(log().suffix(3_000))\nstdout/stderr:\n\(startup.suffix(1_500))"
        }
        // A hang guard, not a timing assertion: a first start takes about 11 s on two idle cores, a restart 4 s,
        // and several times that beside the rest of the suite.
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            if let code = box.exitCode {
                let text = failure()
                if text.contains("eaddrinuse") { throw PortInUse(log: text) }
                throw TestSupportError("RabbitMQ exited with \(code) during start-up; \(text)")
            }
            if log().components(separatedBy: "Server startup complete").count > completeBefore,
                loopbackPortAcceptsConnections(ports.mqtt)
            {
                return box
            }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        box.signal(SIGKILL)
        _ = await box.waitForExit()
        throw TestSupportError(
            "RabbitMQ (node \(nodeName)) did not accept MQTT connections on 127.0.0.1:\(ports.mqtt) within 120 s; "
                + failure()
        )
    }
}

/// Starts a RabbitMQ node, runs `body` with it, and stops it afterwards (also when `body` throws).
/// - Parameter body: The test.
/// - Returns: What `body` returns.
@discardableResult
public func withRabbitMQBroker<R>(_ body: (RabbitMQBroker) async throws -> R) async throws -> R {
    let broker = try await RabbitMQBroker.start()
    do {
        let result = try await body(broker)
        await broker.stop()
        return result
    } catch {
        await broker.stop()
        throw error
    }
}
