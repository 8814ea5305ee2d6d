// SPDX-License-Identifier: Apache-2.0

/// The operations server's decisions about its connections, without sockets or clocks: which connection to close
/// when the limit is reached, and which ones have run out of time.
///
/// Why eviction and not "stop accepting": a server that stops accepting at its limit leaves new connections in the
/// kernel's backlog behind the ones it holds, so one client that opens connections and sends nothing keeps every
/// health probe out until its connections time out. Here a new connection is always accepted; at the limit the
/// connection that has waited longest without a request in progress (idle after a response, or still sending its
/// request head) is closed to make room. A connection that is serving a request is never evicted: requests are
/// short (the endpoints answer from memory) and bounded by ``OpsServerConfiguration/Limits/requestTimeout``. Only
/// when every held connection is serving a request is the new one refused (closed at once). So the number of open
/// connections, and of file descriptors they use, never exceeds the limit, and a probe that sends its request
/// promptly is answered even while somebody floods the port.
///
/// Times are `Duration`s since an origin the caller picks (the server's start); the table never reads a clock.
///
/// - Parameters:
///   - ID: what identifies a connection (the server uses the channel's `ObjectIdentifier`).
///   - Handle: what the caller needs to close a connection (the channel); returned by the decisions that close one.
package struct OpsConnectionTable<ID: Hashable, Handle> {
    /// Where a connection is in its request cycle.
    package enum Phase: Sendable, Hashable {
        /// Opened, its first request head not complete yet (bounded by the header timeout).
        case awaitingFirstRequest
        /// A request is being answered (bounded by the request timeout; never evicted).
        case serving
        /// A response was sent; kept alive for another request (bounded by the idle timeout).
        case awaitingNextRequest
    }

    /// Why the table closes a connection (the `reason` label of `ota_cancel_ops_connections_closed_total`).
    package enum CloseReason: String, Sendable, CaseIterable {
        /// Closed to admit a newer connection at the limit.
        case evicted
        /// Refused at the limit because every held connection was serving a request.
        case rejected
        /// Its first request head did not arrive in time.
        case headerTimeout = "header_timeout"
        /// No further request arrived in time after a response.
        case idleTimeout = "idle_timeout"
        /// A request was not answered in time.
        case requestTimeout = "request_timeout"
    }

    /// What ``open(_:handle:at:)`` decided.
    package struct Admission {
        /// Whether the new connection is kept; `false` means close it at once (``CloseReason/rejected``).
        package var admitted: Bool
        /// The connection closed to make room (``CloseReason/evicted``), if any.
        package var evicted: Handle?
        /// `true` for the first eviction or refusal after the table was below half its limit: the moment to
        /// warn once, not for every connection of a flood.
        package var limitReached: Bool
    }

    fileprivate struct Entry {
        var handle: Handle
        var phase: Phase
        /// When the current phase began.
        var since: Duration
        /// Requests being answered (HTTP/1 pipelining could make it more than one).
        var requests: Int
        /// Admission order, to break ties between equal `since`.
        let order: UInt64
    }

    /// The limits this table enforces.
    package let limits: OpsServerConfiguration.Limits
    private var entries: [ID: Entry] = [:]
    private var nextOrder: UInt64 = 0
    /// Set by the first eviction or refusal; cleared once the count falls to half the limit.
    private var saturated = false

    /// - Precondition: `limits.maxConnections >= 1` and every timeout is positive.
    package init(limits: OpsServerConfiguration.Limits) {
        precondition(limits.maxConnections >= 1, "operations server: maxConnections must be at least 1")
        precondition(
            limits.headerTimeout > .zero && limits.idleTimeout > .zero && limits.requestTimeout > .zero,
            "operations server: timeouts must be positive"
        )
        self.limits = limits
    }

    /// How many connections are held.
    package var count: Int { entries.count }

    /// The phase of a held connection; `nil` when it is not (or no longer) held.
    package func phase(of id: ID) -> Phase? { entries[id]?.phase }

    /// A connection was accepted.
    ///
    /// At the limit, the held connection that has been waiting longest without a request in progress is removed
    /// and returned to be closed; if every held connection is serving a request, the new one is refused.
    /// An `id` that is already held keeps its entry (the caller registers each connection once).
    package mutating func open(_ id: ID, handle: Handle, at now: Duration) -> Admission {
        if entries[id] != nil { return Admission(admitted: true, evicted: nil, limitReached: false) }
        var evicted: Handle?
        if entries.count >= limits.maxConnections {
            let wasSaturated = saturated
            saturated = true
            guard let victim = longestWaiting() else {
                return Admission(admitted: false, evicted: nil, limitReached: !wasSaturated)
            }
            evicted = entries.removeValue(forKey: victim)?.handle
            insert(id, handle: handle, at: now)
            return Admission(admitted: true, evicted: evicted, limitReached: !wasSaturated)
        }
        insert(id, handle: handle, at: now)
        return Admission(admitted: true, evicted: nil, limitReached: false)
    }

    /// A request head arrived on `id` and is being answered. Ignored for a connection that is not held (it was
    /// closed meanwhile).
    package mutating func requestStarted(_ id: ID, at now: Duration) {
        guard var entry = entries[id] else { return }
        if entry.phase != .serving {
            entry.phase = .serving
            entry.since = now
        }
        entry.requests += 1
        entries[id] = entry
    }

    /// The response to a request on `id` was written. Ignored for a connection that is not held.
    package mutating func requestFinished(_ id: ID, at now: Duration) {
        guard var entry = entries[id] else { return }
        entry.requests = max(0, entry.requests - 1)
        if entry.requests == 0 {
            entry.phase = .awaitingNextRequest
            entry.since = now
        }
        entries[id] = entry
    }

    /// The connection closed (whoever closed it). Returns whether it was held.
    @discardableResult
    package mutating func closed(_ id: ID) -> Bool {
        let removed = entries.removeValue(forKey: id) != nil
        relaxIfBelowHalf()
        return removed
    }

    /// When a held connection in `phase` since `since` runs out of time.
    package func deadline(phase: Phase, since: Duration) -> Duration {
        switch phase {
        case .awaitingFirstRequest: since + limits.headerTimeout
        case .serving: since + limits.requestTimeout
        case .awaitingNextRequest: since + limits.idleTimeout
        }
    }

    /// Removes and returns every connection whose deadline is at or before `now`, with the timeout that ended it.
    package mutating func expire(at now: Duration) -> [(handle: Handle, reason: CloseReason)] {
        var expired: [(handle: Handle, reason: CloseReason)] = []
        for (id, entry) in entries where deadline(phase: entry.phase, since: entry.since) <= now {
            entries[id] = nil
            let reason: CloseReason =
                switch entry.phase {
                case .awaitingFirstRequest: .headerTimeout
                case .serving: .requestTimeout
                case .awaitingNextRequest: .idleTimeout
                }
            expired.append((entry.handle, reason))
        }
        if !expired.isEmpty { relaxIfBelowHalf() }
        return expired
    }

    /// How often the server calls ``expire(at:)``: a tenth of the shortest timeout, between 10 ms and 250 ms, so a
    /// timeout fires at most that late while an idle server wakes only a few times a second.
    package static func checkInterval(for limits: OpsServerConfiguration.Limits) -> Duration {
        let shortest = min(limits.headerTimeout, limits.idleTimeout, limits.requestTimeout)
        return min(max(shortest / 10, .milliseconds(10)), .milliseconds(250))
    }

    private mutating func insert(_ id: ID, handle: Handle, at now: Duration) {
        entries[id] = Entry(handle: handle, phase: .awaitingFirstRequest, since: now, requests: 0, order: nextOrder)
        nextOrder += 1
    }

    /// The held connection without a request in progress whose current phase began first (admission order
    /// breaks ties); `nil` when every held connection is serving a request.
    private func longestWaiting() -> ID? {
        var best: (id: ID, since: Duration, order: UInt64)?
        for (id, entry) in entries where entry.phase != .serving {
            if let current = best, (current.since, current.order) <= (entry.since, entry.order) { continue }
            best = (id, entry.since, entry.order)
        }
        return best?.id
    }

    private mutating func relaxIfBelowHalf() {
        if saturated && entries.count <= limits.maxConnections / 2 { saturated = false }
    }
}

extension OpsConnectionTable: Sendable where ID: Sendable, Handle: Sendable {}
extension OpsConnectionTable.Entry: Sendable where Handle: Sendable {}
extension OpsConnectionTable.Admission: Sendable where Handle: Sendable {}
