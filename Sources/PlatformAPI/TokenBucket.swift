// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A fair token bucket: at most `burst` calls back to back, `ratePerSecond` sustained, first come first served.
///
/// The platform's quota (10 calls/s per account for `CancelOTATaskByDevice`) is the bottleneck of the whole
/// worker by design, so every HTTP attempt takes a token here before it leaves. The bucket is kept as a
/// *theoretical arrival time* (the generic cell rate algorithm): each caller reserves the next free slot under
/// a short lock and then sleeps until it, so no lock is held across an `await`, waiters are served strictly in
/// the order they arrived (FIFO), and the arithmetic is exact in `Duration` (no drifting floating-point token
/// counts).
///
/// Adaptive rate (AIMD):
/// - ``slowDown()`` (called on a throttling answer) halves the effective rate, never below
///   `min(1, ratePerSecond)` calls/s, and empties the bucket, so no saved-up burst hits a platform that just
///   said "too fast". Throttling answers usually arrive in clusters from calls that were already in flight, so
///   at most one halving happens per second of the bucket's clock.
/// - ``recordSuccess()`` (called on every answer that was not throttled) raises the effective rate by a tenth
///   of the configured rate, up to the configured rate: from the floor back to full speed takes about ten
///   successful calls.
///
/// A waiter that is cancelled keeps its slot (the slot is not handed to a later arrival): giving it back would
/// let a newcomer overtake earlier waiters, and an unused slot only errs on the side of the quota.
///
/// - Important: thread-safe; every method may be called from any task concurrently.
public final class TokenBucket<C: Clock>: Sendable where C.Duration == Duration {
    private struct State: Sendable {
        /// When the bucket would be full again if nobody else came: the GCRA "theoretical arrival time".
        var theoreticalArrival: C.Instant
        /// The latest slot handed out; later arrivals never get an earlier one (FIFO across rate changes).
        var lastSlot: C.Instant
        /// The effective rate, between the floor and the configured rate.
        var ratePerSecond: Double
        /// When the rate was last halved (throttling answers are rate-limited themselves).
        var lastSlowDown: C.Instant?
    }

    private let configuredRate: Double
    private let floorRate: Double
    private let burst: Int
    private let clock: C
    private let state: Mutex<State>

    /// Creates a full bucket.
    ///
    /// - Parameters:
    ///   - ratePerSecond: the sustained rate; must be positive and finite.
    ///   - burst: how many tokens the bucket holds; values below 1 count as 1.
    ///   - clock: the clock to pace against (`ContinuousClock` in production, a manual clock in tests).
    public init(ratePerSecond: Double, burst: Int, clock: C) {
        precondition(ratePerSecond > 0 && ratePerSecond.isFinite, "TokenBucket needs a positive, finite rate")
        self.configuredRate = ratePerSecond
        self.floorRate = min(1, ratePerSecond)
        self.burst = max(1, burst)
        self.clock = clock
        let now = clock.now
        self.state = Mutex(
            State(theoreticalArrival: now, lastSlot: now, ratePerSecond: ratePerSecond, lastSlowDown: nil)
        )
    }

    /// The rate in force now (lower than configured after throttling answers).
    public var effectiveRatePerSecond: Double {
        state.withLock { $0.ratePerSecond }
    }

    /// The rate the bucket was created with, and returns to.
    public var configuredRatePerSecond: Double { configuredRate }

    /// Waits for a token.
    ///
    /// Returns at once when the bucket has one and nobody is waiting; otherwise sleeps until this caller's
    /// slot. When the slot would come after `deadline`, throws at once without taking a token (there is no
    /// point in waiting for a slot that is too late).
    /// - Parameter deadline: the latest acceptable slot; `nil` waits as long as it takes.
    /// - Throws: ``PlatformAPIError`` with code ``PlatformAPIError/Code/deadlineExceeded`` or, when the task is
    ///   cancelled (before or while waiting), ``PlatformAPIError/Code/cancelled``.
    public func acquire(deadline: C.Instant?) async throws {
        if Task.isCancelled {
            throw PlatformAPIError(code: .cancelled, message: "cancelled while waiting for the rate limiter")
        }
        let now = clock.now
        let slot = state.withLock { state -> C.Instant? in
            let interval = Self.interval(forRate: state.ratePerSecond)
            let tolerance = interval * (burst - 1)
            let arrival = max(state.theoreticalArrival, now)
            var slot = arrival.advanced(by: .zero - tolerance)
            if slot < state.lastSlot { slot = state.lastSlot }
            if slot < now { slot = now }
            if let deadline, slot > deadline { return nil }
            state.theoreticalArrival = arrival.advanced(by: interval)
            state.lastSlot = slot
            return slot
        }
        guard let slot else {
            throw PlatformAPIError(code: .deadlineExceeded, message: "the rate limiter has no slot before the deadline")
        }
        guard slot > now else { return }
        do {
            try await clock.sleep(until: slot, tolerance: nil)
        } catch {
            throw PlatformAPIError(code: .cancelled, message: "cancelled while waiting for the rate limiter")
        }
    }

    /// Takes a token if one is free now, without waiting and without reserving a later slot.
    ///
    /// - Returns: `false` when the next slot is in the future (or a waiter holds it): the caller then waits with
    ///   ``acquire(deadline:)``, behind earlier waiters.
    public func tryAcquire() -> Bool {
        let now = clock.now
        return state.withLock { state -> Bool in
            let interval = Self.interval(forRate: state.ratePerSecond)
            let tolerance = interval * (burst - 1)
            let arrival = max(state.theoreticalArrival, now)
            var slot = arrival.advanced(by: .zero - tolerance)
            if slot < state.lastSlot { slot = state.lastSlot }
            guard slot <= now else { return false }
            state.theoreticalArrival = arrival.advanced(by: interval)
            state.lastSlot = now
            return true
        }
    }

    /// Reacts to a throttling answer: halves the effective rate (floor `min(1, rate)` calls/s, at most once per
    /// second) and empties the bucket.
    public func slowDown() {
        let now = clock.now
        state.withLock { state in
            if let last = state.lastSlowDown, last.duration(to: now) < .seconds(1) { return }
            state.lastSlowDown = now
            state.ratePerSecond = max(floorRate, state.ratePerSecond / 2)
            let interval = Self.interval(forRate: state.ratePerSecond)
            // Empty: the next caller waits one full interval of the new rate.
            let empty = now.advanced(by: interval * burst)
            if state.theoreticalArrival < empty { state.theoreticalArrival = empty }
        }
    }

    /// Reacts to an answer that was not throttled: raises the effective rate by a tenth of the configured
    /// rate, up to the configured rate.
    public func recordSuccess() {
        state.withLock { state in
            guard state.ratePerSecond < configuredRate else { return }
            state.ratePerSecond = min(configuredRate, state.ratePerSecond + configuredRate / 10)
        }
    }

    /// The time between two tokens at `rate`, rounded to the nanosecond.
    private static func interval(forRate rate: Double) -> Duration {
        .nanoseconds(Int64((1e9 / rate).rounded()))
    }
}
