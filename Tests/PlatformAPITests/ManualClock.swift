// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A clock that only moves when a test says so, so rate-limiter tests need no real sleeps.
///
/// `sleep(until:)` parks the caller until ``advance(by:)`` moves `now` past its deadline. Tests wait for the
/// number of parked sleepers with ``waitForSleepers(_:)`` before advancing, which makes every step
/// deterministic.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol, CustomStringConvertible {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        var description: String { "t+\(offset)" }
    }

    private struct Sleeper {
        var id: Int
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var nextId = 0
        var sleepers: [Sleeper] = []
    }

    private let state = Mutex(State())

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .nanoseconds(1) }

    /// The deadlines of the parked sleepers, earliest first.
    var sleeperDeadlines: [Instant] { state.withLock { $0.sleepers.map(\.deadline).sorted() } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state -> Int in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resume = state.withLock { state -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let resume { continuation.resume(with: resume) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (yielding, with a generous hang guard) until `count` sleepers are parked.
    func waitForSleepers(_ count: Int) async throws {
        let start = ContinuousClock.now
        while state.withLock({ $0.sleepers.count }) < count {
            // A hang guard only.
            if start.duration(to: .now) > .seconds(60) { throw HangGuard(what: "\(count) sleepers") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// A test waited far longer than it should have: a hang, reported instead of blocking the run.
struct HangGuard: Error, CustomStringConvertible {
    var what: String
    var description: String { "gave up waiting for \(what)" }
}
