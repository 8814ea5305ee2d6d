// SPDX-License-Identifier: Apache-2.0
import Hummingbird
public import Logging
import NIOCore
public import Prometheus
import Synchronization
public import ServiceLifecycle
public import Worker

/// Where the operations endpoints listen.
public struct OpsServerConfiguration: Sendable {
    /// Default `127.0.0.1`: the endpoints are unauthenticated. Use `0.0.0.0` in a container so that probes reach them.
    public var host: String
    /// Default 9464; `0` picks a free port (tests).
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 9464) {
        self.host = host
        self.port = port
    }
}

/// The small HTTP server for operations (DESIGN §6): `GET /health/live` (the process answers),
/// `GET /health/ready` (200 only when the journal is open, the MQTT connection is up and subscribed, and the
/// worker is not shutting down; 503 otherwise, with the reason in the body) and `GET /metrics` (the worker's
/// metrics in the Prometheus text format, see ``WorkerMetrics``, plus `ota_cancel_ready` 0 or 1).
///
/// First in the service group, so it shuts down last: probes keep answering while the worker drains.
public final class OpsServer: Service, Sendable {
    private let application: Application<RouterResponder<BasicRequestContext>>
    private let boundPort = BoundPort()

    /// The port reported by the server once it listens (a class, so the start-up callback can share it).
    private final class BoundPort: Sendable {
        let value = Mutex<Int?>(nil)
    }

    /// The content type of the Prometheus text exposition format.
    static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// - Parameters:
    ///   - metrics: the registry `GET /metrics` shows (the one the worker's metrics were made in).
    public init(
        configuration: OpsServerConfiguration,
        worker: CancelWorkerService,
        metrics: PrometheusCollectorRegistry,
        logger: Logger
    ) {
        let router = Router()
        router.get("/health/live") { _, _ in "ok\n" }
        router.get("/health/ready") { _, _ -> Response in
            let ready = worker.isReady
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
        router.get("/metrics") { _, _ -> Response in
            ready.set(Int64(worker.isReady ? 1 : 0))
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
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port
                boundPort.value.withLock { $0 = port }
                // With `--ops-port 0` this line is the only way to learn the port (scripts/demo reads it).
                logger.notice(
                    "operations endpoints listening: /health/live, /health/ready, /metrics",
                    metadata: ["ota.ops-url": "http://\(configuration.host):\(port.map(String.init) ?? "?")"]
                )
            },
            logger: logger
        )
    }

    /// The port the server listens on, once it does.
    public var port: Int? { boundPort.value.withLock { $0 } }

    /// Runs the server as a member of the worker's service group: it stops when the group reaches it in the
    /// shutdown order (`runService()` would trap SIGTERM itself and stop first).
    public func run() async throws {
        try await application.run()
    }
}
