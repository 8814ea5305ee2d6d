// SPDX-License-Identifier: Apache-2.0
import PlatformAPI
import Testing

/// Full-jitter exponential backoff.
@Suite("RetryPolicy")
struct RetryPolicyTests {
    /// SplitMix64: a deterministic generator, so a failing draw can be reproduced.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("ceilings double from the base and stop at the cap")
    func ceilings() {
        let policy = RetryPolicy.exponentialBackoff(maxAttempts: 10, base: .milliseconds(200), cap: .seconds(10))
        let expected: [Duration] = [
            .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200),
            .milliseconds(6400), .seconds(10), .seconds(10),
        ]
        #expect((0..<8).map { policy.ceiling(beforeRetry: $0) } == expected)
        #expect(policy.ceiling(beforeRetry: 5000) == .seconds(10))
        #expect(policy.maxAttempts == 10)
    }

    @Test("every delay lies in [0, ceiling] and the draws use the whole range")
    func fullJitter() {
        let policy = RetryPolicy.default
        var generator = SplitMix(state: 42)
        for retry in 0..<8 {
            let ceiling = policy.ceiling(beforeRetry: retry)
            let draws = (0..<2000).map { _ in policy.delay(beforeRetry: retry, using: &generator) }
            #expect(draws.allSatisfy { $0 >= .zero && $0 <= ceiling })
            // Full jitter, not "equal jitter": draws reach both the bottom and the top fifth of the range.
            #expect(draws.contains { $0 < ceiling / 5 })
            #expect(draws.contains { $0 > ceiling * 4 / 5 })
        }
    }

    @Test("no retry: one attempt, no delay; attempts below 1 count as 1")
    func none() {
        var generator = SplitMix(state: 1)
        #expect(RetryPolicy.none.maxAttempts == 1)
        #expect(RetryPolicy.none.delay(beforeRetry: 3, using: &generator) == .zero)
        #expect(RetryPolicy.exponentialBackoff(maxAttempts: 0, base: .seconds(1), cap: .seconds(2)).maxAttempts == 1)
    }
}
