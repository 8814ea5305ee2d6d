// SPDX-License-Identifier: Apache-2.0

/// Which stored replies are published next, and when the journal must be read for more: the reply path's
/// decisions as a pure value (STYLE §21). ``ReplyPublisher`` feeds it events and executes the actions it returns.
///
/// Every reply is in the journal before it gets here, so memory only holds a bounded window of them: at most
/// ``Configuration/queueLimit`` waiting and ``Configuration/maxConcurrent`` being published. A reply that arrives
/// while the queue is full is left in the journal and read back once the queue has room (as are the replies a
/// previous run left: a new outbox starts by reading the journal). A reply is never handed out twice while it is
/// queued, being published, or acknowledged but not yet marked replied in the journal; after that the journal no
/// longer offers it.
package struct ReplyOutbox: Sendable {
    package struct Configuration: Sendable, Hashable {
        /// Publications awaiting the broker's acknowledgement at once. Default 256 (libmosquitto queues what the
        /// broker's Receive Maximum does not let through yet).
        package var maxConcurrent: Int = 256
        /// Replies kept in memory waiting for a publication slot; beyond it they wait in the journal. Default 4,096.
        package var queueLimit: Int = 4_096

        package init(maxConcurrent: Int = 256, queueLimit: Int = 4_096) {
            self.maxConcurrent = maxConcurrent
            self.queueLimit = queueLimit
        }
    }

    /// What ``ReplyPublisher`` does next.
    package enum Action: Sendable, Hashable {
        /// Publish this reply, then report ``finished(_:)``.
        case publish(PendingReply)
        /// Read at most `limit` stored replies, skipping the ids in `excluding`, then report
        /// ``journalRead(_:limit:)``.
        case readJournal(excluding: Set<Int64>, limit: Int)
    }

    package let configuration: Configuration
    /// Waiting replies, oldest first, from `head` on.
    private var queue: [PendingReply] = []
    private var head = 0
    /// Every id in hand: queued, being published, or finished but not yet marked in the journal.
    private var known: Set<Int64> = []
    private var publishing = 0
    /// Some stored replies are only in the journal (overflow, or left by a previous run).
    private var journalHasMore = true
    private var reading = false
    /// Ids marked while a journal read was running: forgotten only after its result is in (that read may have
    /// seen them before they were marked).
    private var markedDuringRead: [Int64] = []
    private var closed = false

    package init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Replies waiting for a publication slot.
    package var queued: Int { queue.count - head }

    /// Publications under way.
    package var inFlight: Int { publishing }

    /// Nothing queued, nothing being published, no journal read under way.
    package var isIdle: Bool { queued == 0 && publishing == 0 && !reading }

    /// Whether stored replies are waiting in the journal only (read when the queue has room).
    package var hasMoreInJournal: Bool { journalHasMore }

    /// New stored replies (a command's reply, a rejection, a dead letter, a notice): queued, or left in the journal
    /// when the queue is full. Ids already in hand are ignored.
    package mutating func enqueue(_ replies: some Sequence<PendingReply>) {
        for reply in replies where !known.contains(reply.id) {
            guard queued < configuration.queueLimit else {
                journalHasMore = true
                continue
            }
            queue.append(reply)
            known.insert(reply.id)
        }
    }

    /// The publications to start now, and a journal read when the queue has room and the journal has more.
    package mutating func nextActions() -> [Action] {
        var actions = [Action]()
        while publishing < configuration.maxConcurrent, head < queue.count {
            actions.append(.publish(queue[head]))
            head += 1
            publishing += 1
        }
        if head > 1_024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        // Read when the queue has drained to half: reading earlier would only find what is queued already.
        if !closed, !reading, journalHasMore, queued <= configuration.queueLimit / 2 {
            reading = true
            journalHasMore = false
            actions.append(.readJournal(excluding: known, limit: configuration.queueLimit - queued))
        }
        return actions
    }

    /// A publication ended (acknowledged, or recorded undeliverable). Its id stays in hand until ``marked(_:)``.
    package mutating func finished(_ id: Int64) {
        publishing -= 1
    }

    /// The journal no longer offers these ids (marked replied or undeliverable): they may be forgotten.
    package mutating func marked(_ ids: some Sequence<Int64>) {
        if reading {
            markedDuringRead.append(contentsOf: ids)
        } else {
            for id in ids { known.remove(id) }
        }
    }

    /// A journal read ended with these replies (`limit` as asked); a full read means there may be more.
    package mutating func journalRead(_ replies: [PendingReply], limit: Int) {
        reading = false
        if replies.count >= limit { journalHasMore = true }
        enqueue(replies)
        for id in markedDuringRead { known.remove(id) }
        markedDuringRead.removeAll()
    }

    /// A journal read failed: try again on a later ``nextActions()``.
    package mutating func journalReadFailed() {
        reading = false
        journalHasMore = true
        for id in markedDuringRead { known.remove(id) }
        markedDuringRead.removeAll()
    }

    /// Shutting down: what is queued is still handed out, but the journal is not read any more (what is left
    /// there is published at the next start).
    package mutating func close() {
        closed = true
    }
}
