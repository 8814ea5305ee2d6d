// SPDX-License-Identifier: Apache-2.0
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
public import Prometheus
import Synchronization
public import ServiceLifecycle
public import Worker

/// Where the operations endpoints listen, and the limits that keep them answering under abuse.
public struct OpsServerConfiguration: Sendable {
    /// Default `127.0.0.1`: the endpoints are unauthenticated. Use `0.0.0.0` in a container so that probes reach them.
    public var host: String
    /// Default 9464; `0` picks a free port (tests).
    public var port: Int
    /// Default `Limits()`: 256 connections, 5 s to send a request head, 120 s idle, 10 s per request, a head of
    /// at most 8 KiB and 64 fields, a backlog of 1,024, no body.
    public var limits: Limits

    public init(host: String = "127.0.0.1", port: Int = 9464, limits: Limits = Limits()) {
        self.host = host
        self.port = port
        self.limits = limits
    }

    /// What one client may hold of the operations server (issue 8).
    ///
    /// Without these, a client that opens connections and sends an unfinished request (a slowloris, or a port
    /// scanner) keeps each of them forever: it exhausted the worker's file descriptors, `/health/ready` stopped
    /// answering and the orchestrator restarted a healthy worker, and the platform client could no longer open
    /// connections. With them the server holds at most ``maxConnections`` connections whatever arrives; at the
    /// limit it closes the connection that has waited longest without a request in progress to admit the new
    /// one (see ``OpsConnectionTable``), so probes keep being answered, and every connection ends within a
    /// timeout. These are not command-line options: the defaults suit a probe and a scraper, and the limit must
    /// stay well below the process's open-file limit (typically 1,024 or more).
    public struct Limits: Sendable {
        /// Connections held at once. Default 256: a few probes and scrapers need a handful; the rest is headroom.
        /// At the limit a new connection evicts the one waiting longest without a request in progress.
        public var maxConnections: Int
        /// Time from a connection's opening to its complete first request head (the "header timeout"). Default
        /// 5 s: a probe sends its head at once; a client that trickles it (slowloris) is closed.
        public var headerTimeout: Duration
        /// Time a kept-alive connection may wait, after a response, for its next request head to be complete.
        /// Default 120 s: longer than the clients' own idle timeouts (AsyncHTTPClient 60 s, Go's net/http 90 s),
        /// so they close an idle connection first. A server that closes first races a client reusing it for the
        /// next scrape, which then fails (seen in the metrics test with 5 s). Idle connections cannot pile up
        /// meanwhile: at ``maxConnections`` the longest idle one is evicted.
        public var idleTimeout: Duration
        /// Time from a complete request head to the end of its response. Default 10 s; the endpoints answer from
        /// memory in microseconds, so only a client that does not read its response reaches it.
        public var requestTimeout: Duration
        /// Bytes of a request head (request line and header fields together, and any one of them). Default
        /// 8 KiB, far above what a probe or a scraper sends; more is answered 400 and the connection closed.
        public var maxHeadSize: Int
        /// Header fields in a request head. Default 64; more is answered 400 and the connection closed.
        public var maxHeaderCount: Int
        /// Connections the kernel queues before the server accepts them (`listen`'s backlog, capped by
        /// `net.core.somaxconn`). Default 1,024: a burst of connections larger than the queue makes the kernel
        /// drop new ones, and a dropped probe is retried only after a second, too late for a 1 s probe timeout;
        /// the server accepts (and, at the limit, evicts) quickly, so the queue only absorbs bursts.
        public var backlog: Int
        /// Bytes of a request body (as declared by `Content-Length`; a chunked body counts as too large).
        /// Default 0: the endpoints are `GET` and read no body. A request declaring more is answered 413 and its
        /// connection closed, so nobody can keep a connection busy by streaming a body.
        public var maxBodySize: Int

        public init(
            maxConnections: Int = 256,
            headerTimeout: Duration = .seconds(5),
            idleTimeout: Duration = .seconds(120),
            requestTimeout: Duration = .seconds(10),
            maxHeadSize: Int = 8 * 1024,
            maxHeaderCount: Int = 64,
            backlog: Int = 1_024,
            maxBodySize: Int = 0
        ) {
            self.maxConnections = maxConnections
            self.headerTimeout = headerTimeout
            self.idleTimeout = idleTimeout
            self.requestTimeout = requestTimeout
            self.maxHeadSize = maxHeadSize
            self.maxHeaderCount = maxHeaderCount
            self.backlog = backlog
            self.maxBodySize = maxBodySize
        }
    }
}

/// The small HTTP server for operations (DESIGN §6): `GET /health/live` (the process answers),
/// `GET /health/ready` (200 only when the journal is open, the MQTT connection is up and subscribed, and the
/// worker is not shutting down; 503 otherwise, with the reason in the body) and `GET /metrics` (the worker's
/// metrics in the Prometheus text format, see ``WorkerMetrics``, plus `ota_cancel_ready` 0 or 1 and the
/// server's own connection figures).
///
/// First in the service group, so it shuts down last: probes keep answering while the worker drains.
///
/// It must keep answering whoever else connects, because an orchestrator restarts a worker whose probe fails
/// (issue 8: 20,000 idle connections once filled the file-descriptor limit, and `/health/ready` and the platform
/// client with it). So it holds at most ``OpsServerConfiguration/Limits/maxConnections`` connections (default
/// 256); at the limit it closes the connection that has waited longest without a request in progress to admit
/// the new one, rather than leaving new connections, probes among them, queued behind the idle ones. Every
/// connection has a deadline: 5 s (default) to send its request head, 120 s idle after a response, 10 s per
/// request. A request head is at most 8 KiB and 64 fields (400 otherwise), and a request with a body is
/// answered 413. ``OpsServerConfiguration/Limits`` says why each default is what it is.
public final class OpsServer: Service, Sendable {
    private let application: Application<RouterResponder<BasicRequestContext>>
    private let connections: OpsConnections
    private let boundPort = BoundPort()
    private let address: (host: String, port: Int)

    /// The port reported by the server once it listens (a class, so the start-up callback can share it).
    private final class BoundPort: Sendable {
        let value = Mutex<Int?>(nil)
    }

    /// The content type of the Prometheus text exposition format.
    static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// - Parameters:
    ///   - worker: the worker whose readiness `GET /health/ready` reports.
    ///   - metrics: the registry `GET /metrics` shows (the one the worker's metrics were made in).
    ///   - refresh: sets the metrics that are read at scrape time (see `ScrapeTimeMetrics`) before each scrape.
    public convenience init(
        configuration: OpsServerConfiguration,
        worker: CancelWorkerService,
        metrics: PrometheusCollectorRegistry,
        refresh: @escaping @Sendable () async -> Void,
        logger: Logger
    ) {
        self.init(
            configuration: configuration,
            isReady: { worker.isReady },
            metrics: metrics,
            refresh: refresh,
            logger: logger
        )
    }

    /// The server with any readiness source (tests exercise the server's limits without a worker).
    ///
    /// - Parameters:
    ///   - isReady: what `GET /health/ready` and `ota_cancel_ready` report; called for every probe and scrape.
    ///   - metrics: the registry `GET /metrics` shows; default a new, empty one.
    ///   - refresh: called before each scrape is written, to set the metrics read at scrape time; default none.
    package init(
        configuration: OpsServerConfiguration,
        isReady: @escaping @Sendable () -> Bool,
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        refresh: @escaping @Sendable () async -> Void = {},
        logger: Logger
    ) {
        let limits = configuration.limits
        address = (configuration.host, configuration.port)
        let connections = OpsConnections(limits: limits, metrics: metrics, logger: logger)
        self.connections = connections
        let router = Router()
        router.get("/health/live") { _, _ in "ok\n" }
        router.get("/health/ready") { _, _ -> Response in
            let ready = isReady()
            return Response(
                status: ready ? .ok : .serviceUnavailable,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: ready ? "ready\n" : "not ready: connecting, subscribing or shutting down\n"
                    )
                )
            )
        }
        // Readiness as a metric too, so that an alert can follow it; read when scraped, like the probe.
        let ready = metrics.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "ota_cancel",
                metricName: "ready",
                unitName: "",
                helpText: "1 when the worker is ready to take commands (as /health/ready), else 0"
            )
        )
        let open = metrics.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "ota_cancel",
                subsystem: "ops",
                metricName: "connections",
                unitName: "",
                helpText: "Connections the operations server holds (at most its connection limit)"
            )
        )
        router.get("/metrics") { _, _ -> Response in
            await refresh()
            ready.set(Int64(isReady() ? 1 : 0))
            open.set(Int64(connections.count))
            var buffer = ByteBuffer()
            buffer.writeBytes(metrics.emitToBuffer())
            return Response(
                status: .ok,
                headers: [.contentType: Self.metricsContentType],
                body: .init(byteBuffer: buffer)
            )
        }
        let boundPort = self.boundPort
        application = Application(
            router: router,
            server: Self.http1(limits: limits, connections: connections),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: nil,
                backlog: limits.backlog
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port
                boundPort.value.withLock { $0 = port }
                // With `--ops-port 0` this line is the only way to learn the port (scripts/demo reads it).
                logger.notice(
                    "operations endpoints listening: /health/live, /health/ready, /metrics",
                    metadata: [
                        LogKey.opsURL: "http://\(configuration.host):\(port.map(String.init) ?? "?")",
                        LogKey.opsMaxConnections: .stringConvertible(limits.maxConnections),
                    ]
                )
            },
            logger: logger
        )
    }

    /// HTTP/1 with the limits: the decoder bounds the head, ``OpsConnectionHandler`` reports every connection to
    /// `connections` from its acceptance, and the responder marks each request's start and end (only a connection
    /// without a request in progress may be evicted) and refuses a body.
    ///
    /// Hummingbird's own `idleTimeout` stays off: ``OpsConnections/enforceTimeouts()`` applies all three
    /// timeouts from one table, so each has one meaning.
    private static func http1(limits: OpsServerConfiguration.Limits, connections: OpsConnections) -> HTTPServerBuilder {
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [connections.makeHandler()],
            idleTimeout: nil,
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeadSize,
                maxHeaderListSize: limits.maxHeadSize,
                maxHeaderFieldCount: limits.maxHeaderCount
            )
        )
        return HTTPServerBuilder { responder in
            HTTP1Channel(
                responder: { request, writer, channel in
                    connections.requestStarted(channel)
                    defer { connections.requestFinished(channel) }
                    let body = Self.declaresBody(
                        contentLength: request.headers[.contentLength],
                        transferEncoding: request.headers[.transferEncoding],
                        over: limits.maxBodySize
                    )
                    guard !body else {
                        // Close after this response rather than read (or drain) the body: Hummingbird's connection
                        // handler closes a quiescing connection once its response is written.
                        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                        try await writer.writeResponse(
                            HTTPResponse(
                                status: .contentTooLarge,
                                headerFields: [.connection: "close", .contentLength: "0"]
                            )
                        )
                        return
                    }
                    try await responder(request, writer, channel)
                },
                configuration: configuration
            )
        }
    }

    /// Whether a request head announces a body larger than `limit` bytes: a `Content-Length` above it (or one
    /// that is not a number), or any `Transfer-Encoding` (its length is unknown until it has been read). Without
    /// either field an HTTP/1.1 request has no body.
    ///
    /// - Parameters:
    ///   - contentLength: the request's `Content-Length` field, if any.
    ///   - transferEncoding: its `Transfer-Encoding` field, if any.
    package static func declaresBody(contentLength: String?, transferEncoding: String?, over limit: Int) -> Bool {
        if transferEncoding != nil { return true }
        guard let contentLength else { return false }
        guard let bytes = Int(contentLength) else { return true }
        return bytes > limit
    }

    /// The port the server listens on, once it does.
    public var port: Int? { boundPort.value.withLock { $0 } }

    /// Runs the server as a member of the worker's service group: it stops when the group reaches it in the
    /// shutdown order (`runService()` would trap SIGTERM itself and stop first). The connection timeouts are
    /// enforced alongside, until the server has stopped.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await self.application.run()
                } catch let error as IOError {
                    // The port checked free at start was taken since (OpsListenCheck): said as that check says it.
                    throw WorkerError.invalidConfiguration(
                        OpsListenCheck.message(
                            host: self.address.host,
                            port: self.address.port,
                            errorNumber: error.errnoCode
                        )
                    )
                }
            }
            group.addTask { await self.connections.enforceTimeouts() }
            try await group.next()
            group.cancelAll()
        }
    }
}
