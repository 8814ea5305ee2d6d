// SPDX-License-Identifier: Apache-2.0
import PlatformAPI
import Synchronization
import Testing

/// The rate limiter against a manual clock: every wait is a parked sleeper, every step is explicit.
@Suite("TokenBucket")
struct TokenBucketTests {
    @Test("a full bucket serves `burst` calls at once, then one per interval")
    func burstThenRate() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 3, clock: clock)
        for _ in 0..<3 { try await bucket.acquire(deadline: nil) }
        #expect(clock.sleeperDeadlines.isEmpty)

        let fourth = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [clock.now.advanced(by: .milliseconds(100))])
        clock.advance(by: .milliseconds(99))
        #expect(clock.sleeperDeadlines.count == 1)
        clock.advance(by: .milliseconds(1))
        try await fourth.value
        #expect(clock.sleeperDeadlines.isEmpty)
    }

    @Test("tryAcquire takes a free token without waiting, refuses when none is free, and never overtakes a waiter")
    func tryAcquire() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 2, clock: clock)
        #expect(bucket.tryAcquire() && bucket.tryAcquire())
        #expect(!bucket.tryAcquire(), "the burst is spent")
        #expect(clock.sleeperDeadlines.isEmpty, "a refusal reserves nothing")
        clock.advance(by: .milliseconds(100))
        #expect(bucket.tryAcquire(), "one token refilled")
        #expect(!bucket.tryAcquire())
        let waiter = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(1)
        clock.advance(by: .milliseconds(99))
        #expect(!bucket.tryAcquire(), "the waiter's slot is not handed to a newcomer")
        clock.advance(by: .milliseconds(1))
        try await waiter.value
    }

    @Test("tokens refill at the rate and never beyond the burst")
    func refillCapsAtBurst() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 2, clock: clock)
        try await bucket.acquire(deadline: nil)
        try await bucket.acquire(deadline: nil)
        clock.advance(by: .seconds(60))  // a long quiet period refills 2 tokens, not 600
        try await bucket.acquire(deadline: nil)
        try await bucket.acquire(deadline: nil)
        #expect(clock.sleeperDeadlines.isEmpty)
        let third = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [clock.now.advanced(by: .milliseconds(100))])
        clock.advance(by: .milliseconds(100))
        try await third.value
    }

    @Test("waiters are served first come, first served, one interval apart")
    func fifo() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 1, clock: clock)
        try await bucket.acquire(deadline: nil)
        let order = OrderLog()
        var tasks = [Task<Void, any Error>]()
        for index in 0..<5 {
            tasks.append(
                Task {
                    try await bucket.acquire(deadline: nil)
                    order.append(index)
                }
            )
            try await clock.waitForSleepers(index + 1)  // task `index` has its slot before the next one starts
        }
        let start = clock.now
        #expect(clock.sleeperDeadlines == (1...5).map { start.advanced(by: .milliseconds(100 * $0)) })
        for served in 1...5 {
            clock.advance(by: .milliseconds(100))
            try await waitUntil { order.values.count == served }
            #expect(order.values == Array(0..<served))
        }
        for task in tasks { try await task.value }
    }

    @Test("a slot after the deadline throws at once and takes no token")
    func deadline() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 1, clock: clock)
        try await bucket.acquire(deadline: nil)
        await #expect(throws: PlatformAPIError.deadlineExceeded) {
            try await bucket.acquire(deadline: clock.now.advanced(by: .milliseconds(99)))
        }
        #expect(clock.sleeperDeadlines.isEmpty)
        // The refused caller took nothing: the next slot is still 100 ms away, and a deadline on it is fine.
        let next = Task { try await bucket.acquire(deadline: clock.now.advanced(by: .milliseconds(100))) }
        try await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [clock.now.advanced(by: .milliseconds(100))])
        clock.advance(by: .milliseconds(100))
        try await next.value
        // A deadline already in the past fails even with tokens available after a refill.
        clock.advance(by: .seconds(1))
        await #expect(throws: PlatformAPIError.deadlineExceeded) {
            try await bucket.acquire(deadline: clock.now.advanced(by: .zero - .milliseconds(1)))
        }
    }

    @Test("a cancelled waiter throws `cancelled` and later waiters keep their order")
    func cancellation() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 1, clock: clock)
        try await bucket.acquire(deadline: nil)
        let first = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(1)
        let second = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(2)
        first.cancel()
        await #expect(throws: PlatformAPIError.cancelled) { try await first.value }
        #expect(clock.sleeperDeadlines == [clock.now.advanced(by: .milliseconds(200))])
        clock.advance(by: .milliseconds(200))
        try await second.value
    }

    @Test("slowDown halves the rate (floor 1/s, once per second) and empties the bucket; successes recover it")
    func slowDownAndRecovery() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 5, clock: clock)
        #expect(bucket.effectiveRatePerSecond == 10)
        bucket.slowDown()
        #expect(bucket.effectiveRatePerSecond == 5)
        bucket.slowDown()  // same second: a cluster of throttling answers counts once
        #expect(bucket.effectiveRatePerSecond == 5)

        // Emptied: even with a burst of 5, the next caller waits one interval of the new rate (200 ms).
        let waiter = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [clock.now.advanced(by: .milliseconds(200))])
        clock.advance(by: .milliseconds(200))
        try await waiter.value

        for expected in [2.5, 1.25, 1, 1] as [Double] {
            clock.advance(by: .seconds(1))
            bucket.slowDown()
            #expect(bucket.effectiveRatePerSecond == expected)
        }
        // Additive increase: a tenth of the configured rate per success, capped at the configured rate.
        for expected in [2, 3, 4, 5, 6, 7, 8, 9, 10, 10] as [Double] {
            bucket.recordSuccess()
            #expect(bucket.effectiveRatePerSecond == expected)
        }
    }

    @Test("a rate below 1/s keeps its own floor")
    func slowRateFloor() {
        let bucket = TokenBucket(ratePerSecond: 0.5, burst: 1, clock: ManualClock())
        bucket.slowDown()
        #expect(bucket.effectiveRatePerSecond == 0.5)
    }

    @Test("after a slowDown, later arrivals never get a slot before earlier waiters")
    func fifoAcrossRateChange() async throws {
        let clock = ManualClock()
        let bucket = TokenBucket(ratePerSecond: 10, burst: 4, clock: clock)
        for _ in 0..<4 { try await bucket.acquire(deadline: nil) }
        let early = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(1)
        let earlySlot = try #require(clock.sleeperDeadlines.first)
        clock.advance(by: .milliseconds(50))  // the early waiter stays parked
        bucket.slowDown()
        let late = Task { try await bucket.acquire(deadline: nil) }
        try await clock.waitForSleepers(2)
        let slots = clock.sleeperDeadlines
        #expect(slots.first == earlySlot)
        #expect(slots.last! >= earlySlot)
        clock.advance(by: .seconds(2))
        try await early.value
        try await late.value
    }
}

/// Polls a condition (the woken task needs a moment to run) with a generous hang guard.
func waitUntil(_ condition: () -> Bool) async throws {
    let start = ContinuousClock.now
    while !condition() {
        // A hang guard only: the full suite can hold both cores of a loaded machine for many seconds.
        if start.duration(to: .now) > .seconds(60) { throw HangGuard(what: "a condition") }
        try await Task.sleep(for: .milliseconds(1))
    }
}

/// The order in which waiters got through, shared between tasks.
final class OrderLog: Sendable {
    private let storage = Mutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}
