// SPDX-License-Identifier: Apache-2.0
import Testing

@testable import PlatformSimulator

/// The quota and the nonce memory with explicit clocks: the parts of admission that the HTTP tests can
/// only check loosely in time.
@Suite("Admission (quota buckets, nonce memory)")
struct AdmissionTests {
    @Test("a bucket passes a burst of `rate`, then refills at `rate` per second, per key")
    func tokenBucket() {
        var buckets = TokenBuckets()
        let start = ContinuousClock.now
        let cancel = TokenBuckets.Key(accessKeyId: "id", action: "CancelOTATaskByDevice")
        let query = TokenBuckets.Key(accessKeyId: "id", action: "QueryOTAJob")
        let otherAccount = TokenBuckets.Key(accessKeyId: "other", action: "CancelOTATaskByDevice")

        var burst: [Bool] = []
        for _ in 0..<3 { burst.append(buckets.take(cancel, rate: 3, now: start)) }
        #expect(burst == [true, true, true])
        #expect(buckets.take(cancel, rate: 3, now: start) == false)
        #expect(buckets.take(query, rate: 3, now: start) == true)
        #expect(buckets.take(otherAccount, rate: 3, now: start) == true)

        // A third of a second gives one token back (3/s), not two.
        let later = start + .milliseconds(340)
        #expect(buckets.take(cancel, rate: 3, now: later) == true)
        #expect(buckets.take(cancel, rate: 3, now: later) == false)
        // A refused call does not take a token: 340 ms after it, one is back.
        #expect(buckets.take(cancel, rate: 3, now: later + .milliseconds(340)) == true)
        // Never more than the burst, however long the pause.
        let muchLater = start + .seconds(60)
        var refilled: [Bool] = []
        for _ in 0..<4 { refilled.append(buckets.take(cancel, rate: 3, now: muchLater)) }
        #expect(refilled == [true, true, true, false])
    }

    @Test("a nonce is refused while remembered, forgotten after its expiry or when the memory is full")
    func nonceMemory() {
        var memory = NonceMemory(capacity: 3)
        let a = NonceMemory.fingerprint(accessKeyId: "id", nonce: "a")
        let b = NonceMemory.fingerprint(accessKeyId: "id", nonce: "b")
        let c = NonceMemory.fingerprint(accessKeyId: "id", nonce: "c")
        let d = NonceMemory.fingerprint(accessKeyId: "id", nonce: "d")
        #expect(NonceMemory.fingerprint(accessKeyId: "other", nonce: "a") != a)

        #expect(memory.insert(a, expiresAt: 100, now: 0) == true)
        #expect(memory.insert(b, expiresAt: 200, now: 0) == true)
        #expect(memory.insert(a, expiresAt: 100, now: 1) == false)
        #expect(memory.count == 2)

        // Past a's expiry it is pruned and may be used again (its timestamp would fail anyway).
        #expect(memory.insert(a, expiresAt: 300, now: 150) == true)
        #expect(memory.insert(b, expiresAt: 200, now: 150) == false)

        // Full (b, a, c): d evicts the oldest, b.
        #expect(memory.insert(c, expiresAt: 400, now: 150) == true)
        #expect(memory.insert(d, expiresAt: 400, now: 150) == true)
        #expect(memory.count == 3)
        #expect(memory.insert(b, expiresAt: 400, now: 150) == true)
        #expect(memory.insert(c, expiresAt: 400, now: 150) == false)
    }
}
