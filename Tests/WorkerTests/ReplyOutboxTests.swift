// SPDX-License-Identifier: Apache-2.0
import Mosquitto
import Testing
import Worker

/// The reply path's decisions, without a broker or a journal (STYLE §21).
@Suite("Reply outbox")
struct ReplyOutboxTests {
    private static func reply(_ id: Int64) -> PendingReply {
        PendingReply(
            id: id,
            message: OutgoingMessage(topic: "ota/cancel/reply/t", payload: [UInt8(id % 256)], properties: .init())
        )
    }

    private static func published(_ actions: [ReplyOutbox.Action]) -> [Int64] {
        actions.compactMap { if case .publish(let reply) = $0 { reply.id } else { nil } }
    }

    private static func reads(_ actions: [ReplyOutbox.Action]) -> [(excluding: Set<Int64>, limit: Int)] {
        actions.compactMap { if case .readJournal(let excluding, let limit) = $0 { (excluding, limit) } else { nil } }
    }

    /// An outbox past its start-up read of an empty journal.
    private static func started(_ configuration: ReplyOutbox.Configuration) -> ReplyOutbox {
        var outbox = ReplyOutbox(configuration: configuration)
        let read = reads(outbox.nextActions())
        #expect(read.count == 1, "a new outbox first reads what a previous run left")
        outbox.journalRead([], limit: read.first?.limit ?? 0)
        return outbox
    }

    @Test("oldest first, at most maxConcurrent at once; a finished publication frees its slot")
    func concurrencyBound() {
        var outbox = Self.started(.init(maxConcurrent: 3, queueLimit: 100))
        outbox.enqueue((1...5).map(Self.reply))
        #expect(Self.published(outbox.nextActions()) == [1, 2, 3])
        #expect(Self.published(outbox.nextActions()).isEmpty, "every slot is taken")
        outbox.finished(2)
        #expect(Self.published(outbox.nextActions()) == [4])
        outbox.finished(1)
        outbox.finished(3)
        #expect(Self.published(outbox.nextActions()) == [5])
        outbox.finished(4)
        outbox.finished(5)
        #expect(outbox.isIdle)
    }

    @Test("a full queue leaves replies in the journal; they are read back, skipping every id in hand")
    func overflowReadsTheJournal() {
        var outbox = Self.started(.init(maxConcurrent: 2, queueLimit: 4))
        outbox.enqueue((1...10).map(Self.reply))
        #expect(outbox.queued == 4 && outbox.hasMoreInJournal)
        var actions = outbox.nextActions()
        #expect(Self.published(actions) == [1, 2])
        // Half the queue is free: read the journal for what did not fit, skipping everything in hand.
        let read = Self.reads(actions)
        #expect(read.count == 1)
        #expect(read.first?.limit == 2)
        #expect(read.first?.excluding == [1, 2, 3, 4], "queued, in flight, or finished but not yet marked")
        #expect(Self.reads(outbox.nextActions()).isEmpty, "one read at a time")
        outbox.journalRead([Self.reply(5), Self.reply(6)], limit: 2)
        #expect(outbox.queued == 4)
        #expect(outbox.hasMoreInJournal, "a full read: there may be more")
        outbox.finished(1)
        outbox.finished(2)
        actions = outbox.nextActions()
        #expect(Self.published(actions) == [3, 4])
        #expect(Self.reads(actions).first?.excluding == [1, 2, 3, 4, 5, 6])
        outbox.marked([1, 2])
        outbox.journalRead((7...8).map(Self.reply), limit: 4)
        #expect(!outbox.hasMoreInJournal, "a short read: caught up")
        outbox.finished(3)
        outbox.finished(4)
        #expect(Self.published(outbox.nextActions()) == [5, 6])
    }

    @Test("a short journal read ends the reading until the queue overflows again")
    func shortReadCatchesUp() {
        var outbox = ReplyOutbox(configuration: .init(maxConcurrent: 10, queueLimit: 8))
        let read = Self.reads(outbox.nextActions())
        #expect(read.first?.limit == 8)
        outbox.journalRead([Self.reply(1), Self.reply(2)], limit: 8)
        #expect(!outbox.hasMoreInJournal)
        #expect(Self.published(outbox.nextActions()) == [1, 2])
        #expect(Self.reads(outbox.nextActions()).isEmpty)
    }

    @Test("an id in hand is never handed out twice: enqueued again, read back while in flight or before its mark")
    func noDoubleHandOut() {
        var outbox = Self.started(.init(maxConcurrent: 10, queueLimit: 2))
        outbox.enqueue([Self.reply(1), Self.reply(1)])
        #expect(Self.published(outbox.nextActions()) == [1])
        outbox.enqueue([Self.reply(1)])
        #expect(Self.published(outbox.nextActions()).isEmpty, "in flight")
        outbox.finished(1)
        outbox.enqueue([Self.reply(1)])
        #expect(Self.published(outbox.nextActions()).isEmpty, "acknowledged, not yet marked in the journal")
        outbox.marked([1])
        // Overflow, then a read that (racing the mark) still saw 1 as pending: ignored only while in hand.
        outbox.enqueue([Self.reply(2), Self.reply(3), Self.reply(4)])
        var actions = outbox.nextActions()
        #expect(Self.published(actions) == [2, 3])
        let read = Self.reads(actions).first
        #expect(read?.excluding == [2, 3], "1 is marked: the journal no longer offers it")
        // 3 is acknowledged and marked while the read runs; the read saw it before the mark.
        outbox.finished(3)
        outbox.marked([3])
        outbox.journalRead([Self.reply(3), Self.reply(4)], limit: read?.limit ?? 2)
        actions = outbox.nextActions()
        #expect(Self.published(actions) == [4], "3 was marked during the read: not again")
    }

    @Test("after close, what is queued still goes out, but the journal is not read")
    func closeStopsReading() {
        var outbox = Self.started(.init(maxConcurrent: 1, queueLimit: 1))
        outbox.enqueue([Self.reply(1), Self.reply(2)])
        outbox.close()
        #expect(Self.published(outbox.nextActions()) == [1])
        outbox.finished(1)
        let actions = outbox.nextActions()
        #expect(actions.isEmpty, "2 waits in the journal for the next start")
        #expect(outbox.isIdle)
    }

    @Test("a failed journal read is tried again")
    func failedRead() {
        var outbox = ReplyOutbox(configuration: .init(maxConcurrent: 1, queueLimit: 4))
        #expect(Self.reads(outbox.nextActions()).count == 1)
        outbox.journalReadFailed()
        #expect(Self.reads(outbox.nextActions()).count == 1)
    }
}
