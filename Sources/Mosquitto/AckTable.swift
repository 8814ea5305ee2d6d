// SPDX-License-Identifier: Apache-2.0

/// What a PUBACK/PUBCOMP or SUBACK carried.
package enum AckOutcome: Sendable, Hashable {
    /// The publish completed with this reason code (0 on MQTT 3.1.1; 0x10 "no matching subscribers" is success).
    case published(reasonCode: Int32)
    /// The subscribe completed; one granted QoS / reason code per topic filter.
    case subscribed(granted: [UInt8])
}

/// Acknowledgement waits keyed by libmosquitto message id, free of the publish/ack race.
///
/// `mosquitto_publish_v5` reports the message id through an out-parameter, but the loop thread may process the
/// PUBACK before that call even returns to us. So either side may come first: the callback stores `.early` when
/// nobody waits yet, the waiter consumes it; the waiter stores `.waiting` when the ack has not come yet, the
/// callback resumes it. Everything happens under the owner's lock; this struct only returns the continuation
/// to resume, so no continuation is ever resumed while the lock is held.
///
/// Message ids are 16-bit and reused. Entries nobody will claim (an ack for a QoS 0 publish that never reached
/// the socket, a cancelled wait whose ack never came) are swept once they are older than half an id cycle,
/// which no legitimate entry can be: a waiter claims its id right after the publish call returns.
package struct AckTable: Sendable {
    /// Which packet an id belongs to, so that SUBACK waits can be failed on reconnect (SUBSCRIBE is not resent)
    /// while publish waits survive (libmosquitto resends QoS ≥ 1 publishes).
    package enum Kind: Sendable, Hashable {
        case publish
        case subscribe
    }

    package typealias Waiter = CheckedContinuation<AckOutcome, any Error>

    /// One continuation to resume, with what to resume it with.
    package struct Resumption: Sendable {
        package let waiter: Waiter
        package let result: Result<AckOutcome, any Error>

        package func resume() { waiter.resume(with: result) }
    }

    private enum Entry: Sendable {
        case waiting(Waiter, Kind)
        case early(AckOutcome, stamp: UInt64)
        case cancelled(stamp: UInt64)
        case unclaimed(stamp: UInt64)
    }

    private var entries: [Int32: Entry] = [:]
    private var sequence: UInt64 = 0
    /// An entry older than this many operations is stale (half of the 16-bit id space).
    private let staleAfter: UInt64

    package init(staleAfter: UInt64 = 32_768) {
        self.staleAfter = staleAfter
    }

    /// The number of entries (waiting or not), for tests and diagnostics.
    package var count: Int { entries.count }

    /// The number of waiters actually suspended.
    package var waitingCount: Int {
        entries.values.reduce(0) { count, entry in
            if case .waiting = entry { return count + 1 }
            return count
        }
    }

    /// A task wants to wait for the ack of `mid`.
    /// - Returns: A resumption to run at once (the ack already came, or the wait was cancelled already).
    package mutating func wait(for mid: Int32, kind: Kind, waiter: Waiter) -> Resumption? {
        tick()
        switch entries[mid] {
        case .early(let outcome, _):
            entries[mid] = nil
            return Resumption(waiter: waiter, result: .success(outcome))
        case .cancelled:
            entries[mid] = .unclaimed(stamp: sequence)
            return Resumption(waiter: waiter, result: .failure(CancellationError()))
        case .waiting(let stale, _):
            // Cannot happen with unique ids; never leave a continuation hanging if it does.
            entries[mid] = .waiting(waiter, kind)
            return Resumption(
                waiter: stale,
                result: .failure(MosquittoError.invalidArgument("message id \(mid) reused while still awaited"))
            )
        case .unclaimed, nil:
            entries[mid] = .waiting(waiter, kind)
            return nil
        }
    }

    /// Nobody will wait for `mid` (QoS 0, or a re-subscribe the loop thread issued): drop its ack when it comes.
    package mutating func ignore(_ mid: Int32) {
        tick()
        if case .early = entries[mid] {
            entries[mid] = nil
        } else {
            entries[mid] = .unclaimed(stamp: sequence)
        }
    }

    /// The ack for `mid` arrived (loop thread).
    /// - Returns: The waiter to resume, if one is waiting.
    package mutating func acknowledge(_ mid: Int32, outcome: AckOutcome) -> Resumption? {
        tick()
        switch entries[mid] {
        case .waiting(let waiter, _):
            entries[mid] = nil
            return Resumption(waiter: waiter, result: .success(outcome))
        case .unclaimed:
            entries[mid] = nil
            return nil
        case .cancelled, .early, nil:
            entries[mid] = .early(outcome, stamp: sequence)
            return nil
        }
    }

    /// The task waiting for `mid` was cancelled.
    /// - Returns: The waiter to resume with `CancellationError`, if it was already suspended.
    package mutating func cancel(_ mid: Int32) -> Resumption? {
        tick()
        switch entries[mid] {
        case .waiting(let waiter, _):
            entries[mid] = .unclaimed(stamp: sequence)
            return Resumption(waiter: waiter, result: .failure(CancellationError()))
        case nil, .unclaimed:
            entries[mid] = .cancelled(stamp: sequence)
            return nil
        case .early, .cancelled:
            // The ack is already here: the waiter will take it (success wins over a late cancellation).
            return nil
        }
    }

    /// Fails every waiter of `kind` (or all kinds) and forgets their ids.
    package mutating func failAll(kind: Kind? = nil, with error: any Error) -> [Resumption] {
        var resumptions: [Resumption] = []
        for (mid, entry) in entries {
            if case .waiting(let waiter, let waiterKind) = entry, kind == nil || kind == waiterKind {
                resumptions.append(Resumption(waiter: waiter, result: .failure(error)))
                entries[mid] = nil
            }
        }
        if kind == nil { entries.removeAll() }
        return resumptions
    }

    private mutating func tick() {
        sequence &+= 1
        guard sequence % 4096 == 0 else { return }
        let limit = sequence > staleAfter ? sequence - staleAfter : 0
        entries = entries.filter { _, entry in
            switch entry {
            case .waiting: true
            case .early(_, let stamp), .cancelled(let stamp), .unclaimed(let stamp): stamp >= limit
            }
        }
    }
}
