// SPDX-License-Identifier: Apache-2.0
import Logging
import NIOCore
import Prometheus
import Synchronization
import Worker

/// The operations server's connections: carries out what ``OpsConnectionTable`` decides (closes the evicted,
/// refused and timed-out channels), counts it, and warns once when the limit is reached.
///
/// Shared by every channel of the server, on any event loop, and by the request handlers: the table is behind a
/// `Mutex`, and channels are closed outside it.
final class OpsConnections: Sendable {
    typealias Table = OpsConnectionTable<ObjectIdentifier, any Channel>

    let limits: OpsServerConfiguration.Limits
    private let table: Mutex<Table>
    private let origin = ContinuousClock.now
    private let closedByReason: [Table.CloseReason: Counter]
    private let logger: Logger

    init(limits: OpsServerConfiguration.Limits, metrics: PrometheusCollectorRegistry, logger: Logger) {
        self.limits = limits
        self.table = Mutex(Table(limits: limits))
        self.logger = logger
        // Made up front, so that every series exists (at 0) before anything is closed.
        var counters: [Table.CloseReason: Counter] = [:]
        for reason in Table.CloseReason.allCases {
            counters[reason] = metrics.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "ota_cancel",
                    subsystem: "ops",
                    metricName: "connections_closed",
                    unitName: "total",
                    helpText: "Operations-port connections the server closed: evicted at the connection limit, "
                        + "rejected (every held connection busy), or ended by a header, idle or request timeout"
                ),
                labels: [("reason", reason.rawValue)]
            )
        }
        self.closedByReason = counters
    }

    /// Connections held now.
    var count: Int { table.withLock { $0.count } }

    /// A channel of the server became active: admit it, evicting another at the limit, or refuse it.
    func opened(_ channel: any Channel) {
        let now = self.now
        let admission = table.withLock { $0.open(ObjectIdentifier(channel), handle: channel, at: now) }
        if admission.limitReached {
            logger.warning(
                "operations connection limit reached: closing the connections that wait longest without a request",
                metadata: [LogKey.opsMaxConnections: .stringConvertible(limits.maxConnections)]
            )
        }
        if let evicted = admission.evicted { close(evicted, .evicted) }
        if !admission.admitted {
            // This channel may still be in its pipeline set-up: close it once that is done.
            record(.rejected)
            channel.eventLoop.execute { channel.close(promise: nil) }
        }
    }

    /// A channel of the server became inactive (closed by either side).
    func closed(_ channel: any Channel) {
        table.withLock { _ = $0.closed(ObjectIdentifier(channel)) }
    }

    /// A request head is complete on `channel` and its response is being produced.
    func requestStarted(_ channel: any Channel) {
        let now = self.now
        table.withLock { $0.requestStarted(ObjectIdentifier(channel), at: now) }
    }

    /// The response to a request on `channel` has been handed to the channel.
    func requestFinished(_ channel: any Channel) {
        let now = self.now
        table.withLock { $0.requestFinished(ObjectIdentifier(channel), at: now) }
    }

    /// Closes the connections whose time is up, every ``OpsConnectionTable/checkInterval(for:)``, until the task is
    /// cancelled.
    func enforceTimeouts() async {
        let interval = Table.checkInterval(for: limits)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = self.now
            let expired = table.withLock { $0.expire(at: now) }
            for (channel, reason) in expired { close(channel, reason) }
        }
    }

    /// The handler that reports one channel's opening and closing; one per channel.
    func makeHandler() -> OpsConnectionHandler { OpsConnectionHandler(connections: self) }

    private var now: Duration { ContinuousClock.now - origin }

    /// Closes `channel` (at once when called on its event loop, so that its descriptor is freed before the next
    /// connection is accepted there).
    private func close(_ channel: any Channel, _ reason: Table.CloseReason) {
        record(reason)
        channel.close(promise: nil)
    }

    private func record(_ reason: Table.CloseReason) {
        closedByReason[reason]?.increment()
        logger.trace("closing an operations connection", metadata: [LogKey.opsCloseReason: "\(reason.rawValue)"])
    }
}

/// Tells ``OpsConnections`` when its channel opens and closes; passes every HTTP part on untouched.
///
/// It sits in the HTTP/1 pipeline of every accepted connection, so a connection counts from its acceptance, before
/// it has sent anything. It never reads what passes through, so, like NIO's `IdleStateHandler`, it takes
/// `NIOAny` (the request parts' type is not one this module imports).
final class OpsConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny

    private let connections: OpsConnections
    private var registered = false

    init(connections: OpsConnections) {
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // An accepted channel may already be active when the pipeline is set up; otherwise channelActive follows.
        if context.channel.isActive { register(context.channel) }
    }

    func channelActive(context: ChannelHandlerContext) {
        register(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if registered { connections.closed(context.channel) }
        context.fireChannelInactive()
    }

    private func register(_ channel: any Channel) {
        guard !registered else { return }
        registered = true
        connections.opened(channel)
    }
}

@available(*, unavailable)
extension OpsConnectionHandler: Sendable {}
