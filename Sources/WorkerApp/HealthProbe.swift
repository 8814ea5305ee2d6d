// SPDX-License-Identifier: Apache-2.0
import Foundation
public import Worker

/// The settings of `ota-cancel-worker health` as given on the command line: `nil` means "not given".
///
/// `ops-host` and `ops-port` fall back to `OTA_CANCEL_OPS_HOST` / `OTA_CANCEL_OPS_PORT`, then to the configuration
/// file (`--config` or `OTA_CANCEL_CONFIG`), then to the defaults, exactly as `run` resolves them, so a probe
/// started beside a worker (a Docker `HEALTHCHECK`, with the worker's environment) finds the worker's endpoints.
public protocol HealthArguments: Sendable {
    /// The worker's configuration file (JSON); only `ops-host` and `ops-port` are read from it.
    var config: String? { get }
    /// Address of the worker's operations endpoints. Default `127.0.0.1`; a wildcard (`0.0.0.0`, `::`) probes
    /// the loopback address of its family.
    var opsHost: String? { get }
    /// Port of the worker's operations endpoints. Default 9464.
    var opsPort: Int? { get }
    /// Any `http://` URL to probe instead of the worker's `/health/ready` (e.g. the simulator's). Default none.
    var url: String? { get }
    /// Seconds the whole probe may take (name resolution aside). Default 3.
    var timeout: Double? { get }
}

/// `ota-cancel-worker health`: one HTTP `GET` of the worker's `/health/ready` (or any `http://` URL), and an exit
/// status a container runtime acts on (0 healthy, 1 unhealthy), with one line saying what was seen.
///
/// The runtime image has no curl (and should not need one), so the probe is the worker's own binary: a blocking
/// HTTP/1.1 request over a POSIX socket (``probe(_:timeout:)``), no event loop, gone in milliseconds. What counts
/// as healthy is decided from what was seen by the pure ``verdict(_:target:)``: only a `200` answer is healthy
/// (`/health/ready` answers `503` with its reason while the worker connects, subscribes or shuts down); a refused
/// connection, a timeout, or anything that is not an HTTP answer is unhealthy.
public enum HealthProbe {
    /// The default of ``HealthArguments/timeout``: well below Docker's and Kubernetes' own probe timeouts.
    public static let defaultTimeout = 3.0

    /// What to probe.
    public struct Target: Sendable, Equatable {
        /// The host connected to: a name or an address (an IPv6 address without brackets).
        public var host: String
        public var port: Int
        /// The request target: path and query, e.g. `/health/ready`.
        public var path: String

        public init(host: String, port: Int, path: String) {
            self.host = host
            self.port = port
            self.path = path
        }

        /// `host:port` as an HTTP `Host` field and a URL authority write it (IPv6 in brackets).
        public var authority: String {
            (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        }

        /// The probed URL, for messages.
        public var url: String { "http://\(authority)\(path)" }
    }

    /// What the probe saw: the input of ``verdict(_:target:)``.
    public enum Observation: Sendable, Equatable {
        /// The connection was made and these bytes came back (possibly cut at the deadline or a size limit;
        /// empty when the server closed without answering).
        case answered([UInt8])
        /// No connection: the reason (e.g. `Connection refused`, a name that does not resolve).
        case unreachable(String)
        /// Nothing came back within the timeout (seconds).
        case timedOut(Double)
    }

    /// The outcome: healthy or not, and the line to print.
    public struct Verdict: Sendable, Equatable {
        public var healthy: Bool
        /// One line (no line break) saying what was probed and what was seen.
        public var line: String

        public init(healthy: Bool, line: String) {
            self.healthy = healthy
            self.line = line
        }

        /// The process's exit status: 0 healthy, 1 unhealthy (as Docker's `HEALTHCHECK` reads it).
        public var exitStatus: Int32 { healthy ? 0 : 1 }
    }

    // MARK: Settings

    /// Resolves what to probe and for how long: `--url`, or the worker's `/health/ready` at `ops-host`/`ops-port`
    /// (flag, `OTA_CANCEL_*` variable, configuration file, default, as `run` resolves them).
    ///
    /// - Parameters:
    ///   - arguments: the command line.
    ///   - environment: the variables to read; `nil` reads the process environment.
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` naming the setting.
    public static func resolve(
        _ arguments: some HealthArguments,
        environment: [String: String]? = nil
    ) throws(WorkerError) -> (target: Target, timeout: Double) {
        let timeout = arguments.timeout ?? defaultTimeout
        guard timeout.isFinite, timeout > 0, timeout <= 600 else {
            throw .invalidConfiguration("timeout must be more than 0 and at most 600 seconds, not \(timeout)")
        }
        if let url = arguments.url {
            guard arguments.opsHost == nil, arguments.opsPort == nil else {
                throw .invalidConfiguration("give either --url or --ops-host/--ops-port, not both")
            }
            return (try target(url: url), timeout)
        }
        let environment = environment ?? ProcessInfo.processInfo.environment
        let configPath = arguments.config ?? environment[WorkerConfiguration.environmentPrefix + "CONFIG"]
        let file = try configPath.map { path throws(WorkerError) in try ConfigurationFile.load(path: path) }
        let settings = SettingResolver(environment: environment, file: file)
        let host = try settings.string("ops-host", arguments.opsHost, default: "127.0.0.1")
        let port = try settings.int("ops-port", arguments.opsPort, default: 9464, range: 0...65_535)
        guard port != 0 else {
            throw .invalidConfiguration(
                "ops-port is 0: the worker then picks a free port when it starts (it logs it); probe that port"
            )
        }
        return (Target(host: loopback(forListening: host), port: port, path: "/health/ready"), timeout)
    }

    /// The address a probe uses for a server listening on `host`: a wildcard address listens on every interface,
    /// loopback included, and is not an address one can connect to everywhere, so it becomes the loopback
    /// address of its family (`0.0.0.0` → `127.0.0.1`, `::` → `::1`); anything else is kept.
    public static func loopback(forListening host: String) -> String {
        switch host {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::", "[::]", "::0", "0:0:0:0:0:0:0:0": return "::1"
        default: return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        }
    }

    /// The target of an `http://` URL (port 80 unless given; path `/` unless given; the query kept).
    ///
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` for anything but an absolute `http://` URL
    ///   with a host: the endpoints probed (the worker's, the simulator's) speak plain HTTP only.
    public static func target(url text: String) throws(WorkerError) -> Target {
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "http" else {
            throw .invalidConfiguration(
                "url must be an http:// URL (plain HTTP, as the health endpoints), not '\(text)'"
            )
        }
        guard let rawHost = components.host, !rawHost.isEmpty else {
            throw .invalidConfiguration("url '\(text)' names no host")
        }
        guard components.user == nil, components.password == nil else {
            throw .invalidConfiguration("url '\(text)': user information is not supported")
        }
        let host = loopback(forListening: rawHost)
        let port = components.port ?? 80
        guard (1...65_535).contains(port) else {
            throw .invalidConfiguration("url '\(text)': port \(port) is out of range")
        }
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }
        return Target(host: host, port: port, path: path)
    }

    // MARK: The decision (pure)

    /// Healthy only when the answer's status line says `200`; the line says what was seen, with the first line
    /// of the body of an unhealthy answer (`/health/ready` gives its reason there).
    ///
    /// - Parameters:
    ///   - observation: what ``probe(_:timeout:)`` saw.
    ///   - target: what was probed, named in the line.
    public static func verdict(_ observation: Observation, target: Target) -> Verdict {
        let url = target.url
        switch observation {
        case .unreachable(let reason):
            return Verdict(healthy: false, line: "unhealthy: \(url): \(printable(reason))")
        case .timedOut(let seconds):
            return Verdict(healthy: false, line: "unhealthy: \(url): no answer within \(formatted(seconds)) s")
        case .answered(let bytes):
            guard !bytes.isEmpty else {
                return Verdict(healthy: false, line: "unhealthy: \(url): the connection was closed without an answer")
            }
            guard let response = Response(bytes) else {
                return Verdict(healthy: false, line: "unhealthy: \(url): the answer is not HTTP")
            }
            let status = "\(response.status)" + (response.reason.isEmpty ? "" : " \(response.reason)")
            guard response.status == 200 else {
                let body = response.firstBodyLine.map { ": " + $0 } ?? ""
                return Verdict(healthy: false, line: "unhealthy: \(url) answered \(status)\(body)")
            }
            return Verdict(healthy: true, line: "healthy: \(url) answered \(status)")
        }
    }

    /// The parts of an HTTP/1.x answer the verdict reads.
    struct Response {
        /// The status code, 100...999.
        var status: Int
        /// The reason phrase (may be empty).
        var reason: String
        /// The first non-empty line of the body, clipped and made printable, if the body arrived.
        var firstBodyLine: String?

        /// Most characters of the body quoted in the line.
        static let bodyQuoteLength = 160

        /// `nil` unless `bytes` start with a complete HTTP/1.x status line.
        init?(_ bytes: [UInt8]) {
            let text = String(decoding: bytes, as: UTF8.self)
            guard let statusEnd = text.range(of: "\r\n") ?? text.range(of: "\n") else { return nil }
            let parts = text[..<statusEnd.lowerBound].split(
                separator: " ",
                maxSplits: 2,
                omittingEmptySubsequences: false
            )
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3,
                parts[1].allSatisfy(\.isASCII), let status = Int(parts[1]), status >= 100
            else { return nil }
            self.status = status
            reason = parts.count > 2 ? HealthProbe.printable(String(parts[2])) : ""
            guard let headEnd = text.range(of: "\r\n\r\n") ?? text.range(of: "\n\n") else { return }
            // From the status line's end (an answer without fields ends its head right there).
            let head = text[statusEnd.lowerBound..<headEnd.lowerBound].lowercased()
            let chunked = head.split(whereSeparator: \.isNewline).contains {
                $0.hasPrefix("transfer-encoding:") && $0.contains("chunked")
            }
            var lines = text[headEnd.upperBound...].split(whereSeparator: \.isNewline).map(String.init)
            if chunked, !lines.isEmpty { lines.removeFirst() }  // the first chunk's size
            if let line = lines.first(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                let clipped = line.count > Self.bodyQuoteLength ? line.prefix(Self.bodyQuoteLength) + "…" : line[...]
                firstBodyLine = HealthProbe.printable(String(clipped))
            }
        }
    }

    /// `text` with control characters as `?`, so that the line stays one line whatever a server sends.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
            .trimmingCharacters(in: .whitespaces)
    }

    /// `3` for 3.0, `0.5` for 0.5.
    static func formatted(_ seconds: Double) -> String {
        seconds == seconds.rounded() && seconds < 1e9 ? String(Int(seconds)) : String(seconds)
    }

    // MARK: All of it

    /// Resolves the settings, probes, and decides.
    ///
    /// - Parameters:
    ///   - arguments: the command line.
    ///   - environment: the variables to read; `nil` reads the process environment.
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` for unusable settings (not for an unhealthy
    ///   answer: that is the verdict).
    public static func run(
        _ arguments: some HealthArguments,
        environment: [String: String]? = nil
    ) throws(WorkerError) -> Verdict {
        let (target, timeout) = try resolve(arguments, environment: environment)
        return verdict(probe(target, timeout: timeout), target: target)
    }
}
