// SPDX-License-Identifier: Apache-2.0
import Testing
import WorkerApp

/// The operations server's connection decisions (issue 8), as values: no socket, no clock. (In this target only
/// because it is the one that links WorkerApp.)
@Suite("Operations connection table")
struct OpsConnectionTableTests {
    typealias Table = OpsConnectionTable<Int, String>

    static func limits(_ maxConnections: Int) -> OpsServerConfiguration.Limits {
        OpsServerConfiguration.Limits(
            maxConnections: maxConnections,
            headerTimeout: .seconds(5),
            idleTimeout: .seconds(3),
            requestTimeout: .seconds(10)
        )
    }

    @Test("below the limit every connection is admitted and nothing is evicted")
    func belowTheLimit() {
        var table = Table(limits: Self.limits(3))
        for id in 0..<3 {
            let admission = table.open(id, handle: "c\(id)", at: .seconds(id))
            #expect(admission.admitted)
            #expect(admission.evicted == nil)
            #expect(!admission.limitReached)
        }
        #expect(table.count == 3)
        #expect(table.phase(of: 0) == .awaitingFirstRequest)
    }

    @Test("at the limit the connection waiting longest is evicted, and the count stays at the limit")
    func evictsTheLongestWaiting() {
        var table = Table(limits: Self.limits(3))
        for id in 0..<3 { _ = table.open(id, handle: "c\(id)", at: .seconds(id)) }
        let admission = table.open(3, handle: "c3", at: .seconds(10))
        #expect(admission.admitted)
        #expect(admission.evicted == "c0")
        #expect(admission.limitReached, "the first eviction is the moment to warn")
        #expect(table.count == 3)
        #expect(table.phase(of: 0) == nil)
        // A flood: each newcomer evicts the oldest of the others; the newcomer itself survives the next one.
        #expect(table.open(4, handle: "c4", at: .seconds(11)).evicted == "c1")
        let next = table.open(5, handle: "c5", at: .seconds(12))
        #expect(next.evicted == "c2")
        #expect(!next.limitReached, "one warning per episode, not one per connection")
        #expect(table.phase(of: 3) == .awaitingFirstRequest)
    }

    @Test("a connection serving a request is never evicted; idle ones go by how long they have waited")
    func servingIsNeverEvicted() {
        var table = Table(limits: Self.limits(3))
        _ = table.open(0, handle: "oldest-serving", at: .seconds(0))
        _ = table.open(1, handle: "kept-alive", at: .seconds(1))
        _ = table.open(2, handle: "head-pending", at: .seconds(2))
        table.requestStarted(0, at: .seconds(3))
        table.requestStarted(1, at: .seconds(3))
        table.requestFinished(1, at: .seconds(4))
        #expect(table.phase(of: 0) == .serving)
        #expect(table.phase(of: 1) == .awaitingNextRequest)
        // head-pending has waited since 2 s, kept-alive since its response at 4 s.
        #expect(table.open(3, handle: "new", at: .seconds(5)).evicted == "head-pending")
        #expect(table.open(4, handle: "newer", at: .seconds(6)).evicted == "kept-alive")
        #expect(table.phase(of: 0) == .serving)
    }

    @Test("equal waiting times: the one admitted first is evicted first")
    func tiesGoByAdmissionOrder() {
        var table = Table(limits: Self.limits(3))
        for id in [7, 3, 5] { _ = table.open(id, handle: "c\(id)", at: .seconds(1)) }
        #expect(table.open(9, handle: "c9", at: .seconds(1)).evicted == "c7")
        #expect(table.open(10, handle: "c10", at: .seconds(1)).evicted == "c3")
    }

    @Test("when every held connection is serving, the newcomer is refused and nothing is evicted")
    func refusesWhenAllServe() {
        var table = Table(limits: Self.limits(2))
        for id in 0..<2 {
            _ = table.open(id, handle: "c\(id)", at: .zero)
            table.requestStarted(id, at: .seconds(1))
        }
        let admission = table.open(2, handle: "c2", at: .seconds(2))
        #expect(!admission.admitted)
        #expect(admission.evicted == nil)
        #expect(admission.limitReached)
        #expect(table.count == 2)
        #expect(table.phase(of: 2) == nil)
        // Once one finishes, it can be evicted for the next newcomer.
        table.requestFinished(1, at: .seconds(3))
        #expect(table.open(3, handle: "c3", at: .seconds(4)).evicted == "c1")
    }

    @Test("the warning comes again only after the table has fallen to half its limit")
    func warningEpisodes() {
        var table = Table(limits: Self.limits(4))
        for id in 0..<4 { _ = table.open(id, handle: "c\(id)", at: .zero) }
        #expect(table.open(4, handle: "c4", at: .seconds(1)).limitReached)
        table.closed(1)
        _ = table.open(5, handle: "c5", at: .seconds(1))
        #expect(!table.open(6, handle: "c6", at: .seconds(2)).limitReached, "still the same episode")
        // Held now: c3 c4 c5 c6; closing two brings it to half the limit.
        for id in [3, 4] { table.closed(id) }
        #expect(table.count == 2)
        for id in 7..<9 { _ = table.open(id, handle: "c\(id)", at: .seconds(3)) }
        #expect(table.open(9, handle: "c9", at: .seconds(4)).limitReached, "a new episode")
    }

    @Test("header, request and idle timeouts each end the phase they bound, at their deadline")
    func timeouts() {
        var table = Table(limits: Self.limits(10))
        _ = table.open(0, handle: "silent", at: .zero)  // header timeout 5 s → 5 s
        _ = table.open(1, handle: "slow-response", at: .zero)
        table.requestStarted(1, at: .seconds(1))  // request timeout 10 s → 11 s
        _ = table.open(2, handle: "kept-alive", at: .zero)
        table.requestStarted(2, at: .seconds(1))
        table.requestFinished(2, at: .seconds(2))  // idle timeout 3 s → 5 s
        _ = table.open(3, handle: "late-opener", at: .seconds(4))  // → 9 s

        #expect(table.expire(at: .milliseconds(4_999)).isEmpty)
        let atFive = table.expire(at: .seconds(5))
        #expect(
            Set(atFive.map { "\($0.handle):\($0.reason.rawValue)" }) == [
                "silent:header_timeout", "kept-alive:idle_timeout",
            ]
        )
        #expect(table.count == 2)
        #expect(table.expire(at: .seconds(6)).isEmpty, "an expired connection is reported once")
        #expect(table.expire(at: .seconds(9)).map(\.handle) == ["late-opener"])
        let atEleven = table.expire(at: .seconds(11))
        #expect(atEleven.map(\.handle) == ["slow-response"])
        #expect(atEleven.first?.reason == .requestTimeout)
        #expect(table.count == 0)
    }

    @Test("a new request restarts the clock; pipelined requests keep a connection serving until the last ends")
    func requestCycle() {
        var table = Table(limits: Self.limits(10))
        _ = table.open(0, handle: "c0", at: .zero)
        table.requestStarted(0, at: .seconds(4))  // within the header timeout
        table.requestStarted(0, at: .seconds(4))  // a pipelined second request
        table.requestFinished(0, at: .seconds(5))
        #expect(table.phase(of: 0) == .serving, "one request is still being answered")
        table.requestFinished(0, at: .seconds(6))
        #expect(table.phase(of: 0) == .awaitingNextRequest)
        #expect(table.expire(at: .milliseconds(8_999)).isEmpty)
        #expect(table.expire(at: .seconds(9)).first?.reason == .idleTimeout)
    }

    @Test("events for connections that are no longer held change nothing")
    func unknownConnections() {
        var table = Table(limits: Self.limits(1))
        _ = table.open(0, handle: "c0", at: .zero)
        #expect(table.open(1, handle: "c1", at: .seconds(1)).evicted == "c0")
        table.requestStarted(0, at: .seconds(2))  // the evicted connection's request arrives late
        table.requestFinished(0, at: .seconds(2))
        let wasHeld = table.closed(0)
        #expect(!wasHeld, "it was already removed when it was evicted")
        #expect(table.count == 1)
        #expect(table.phase(of: 1) == .awaitingFirstRequest)
        #expect(table.open(1, handle: "again", at: .seconds(3)).admitted, "registering twice keeps one entry")
        #expect(table.count == 1)
    }

    @Test("timeouts are checked a tenth of the shortest timeout apart, between 10 ms and 250 ms")
    func checkInterval() {
        #expect(Table.checkInterval(for: OpsServerConfiguration.Limits()) == .milliseconds(250))
        let short = OpsServerConfiguration.Limits(headerTimeout: .milliseconds(500), idleTimeout: .seconds(2))
        #expect(Table.checkInterval(for: short) == .milliseconds(50))
        let tiny = OpsServerConfiguration.Limits(requestTimeout: .milliseconds(20))
        #expect(Table.checkInterval(for: tiny) == .milliseconds(10))
    }

    @Test(
        "the defaults: 256 connections, 5 s head, 120 s idle, 10 s request, 8 KiB and 64 fields, backlog 1,024, no body"
    )
    func defaults() {
        let limits = OpsServerConfiguration().limits
        #expect(limits.maxConnections == 256)
        #expect(limits.headerTimeout == .seconds(5))
        #expect(limits.idleTimeout == .seconds(120))
        #expect(limits.requestTimeout == .seconds(10))
        #expect(limits.maxHeadSize == 8 * 1024)
        #expect(limits.maxHeaderCount == 64)
        #expect(limits.backlog == 1_024)
        #expect(limits.maxBodySize == 0)
    }

    @Test("a body is announced by Content-Length above the limit, a malformed one, or any Transfer-Encoding")
    func declaredBodies() {
        func declares(_ length: String?, chunked: Bool = false, over limit: Int) -> Bool {
            OpsServer.declaresBody(contentLength: length, transferEncoding: chunked ? "chunked" : nil, over: limit)
        }
        #expect(!declares(nil, over: 0))
        #expect(!declares("0", over: 0))
        #expect(declares("1", over: 0))
        #expect(!declares("100", over: 100))
        #expect(declares("101", over: 100))
        #expect(declares("12abc", over: 100))
        #expect(declares(nil, chunked: true, over: 1 << 20))
    }
}
