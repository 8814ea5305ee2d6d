// SPDX-License-Identifier: Apache-2.0

/// The used `SignatureNonce`s: a set for the lookup, a FIFO ring for pruning by age and by count.
///
/// A nonce only has to be remembered while a request carrying it could still pass the timestamp check, i.e.
/// until its timestamp (or its arrival, if later) plus the tolerance. Entries are 64-bit fingerprints of
/// (AccessKeyId, nonce) rather than strings: 16 bytes each, so a million fit in about 32 MB. Two different
/// nonces collide with probability about n²/2⁶⁵ (3·10⁻⁸ for a million), which would show as a spurious
/// `SignatureNonceUsed`, an answer clients retry anyway.
///
/// - Important: Not thread-safe; lives inside ``SimulatorState``'s lock.
struct NonceMemory: Sendable {
    private var seen: Set<UInt64> = []
    private var ring: [(fingerprint: UInt64, expiresAt: Double)] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { ring.count - head }

    static func fingerprint(accessKeyId: String, nonce: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(accessKeyId)
        hasher.combine(nonce)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Records a nonce.
    ///
    /// - Parameters:
    ///   - expiresAt: seconds since 1970 after which the nonce may be forgotten.
    ///   - now: seconds since 1970.
    /// - Returns: `false` when the nonce was already used (and is not recorded again).
    mutating func insert(_ fingerprint: UInt64, expiresAt: Double, now: Double) -> Bool {
        prune(now: now)
        guard !seen.contains(fingerprint) else { return false }
        while count >= capacity { dropOldest() }
        seen.insert(fingerprint)
        ring.append((fingerprint, expiresAt))
        return true
    }

    /// Forgets every nonce (reset).
    mutating func removeAll() {
        seen.removeAll()
        ring.removeAll()
        head = 0
    }

    private mutating func prune(now: Double) {
        // The ring is in arrival order and expiries are nearly monotonic (arrival + tolerance, or a slightly
        // later timestamp), so stopping at the first live entry prunes all but a few stragglers.
        while head < ring.count, ring[head].expiresAt <= now { dropOldest() }
        if head > 4096, head * 2 > ring.count {
            ring.removeFirst(head)
            head = 0
        }
    }

    private mutating func dropOldest() {
        seen.remove(ring[head].fingerprint)
        head += 1
    }
}

/// One token bucket per (AccessKeyId, Action): the platform's quotas are per account and per API.
///
/// - Important: Not thread-safe; lives inside ``SimulatorState``'s lock.
struct TokenBuckets: Sendable {
    struct Key: Hashable, Sendable {
        var accessKeyId: String
        var action: String
    }

    private var buckets: [Key: (tokens: Double, updated: ContinuousClock.Instant)] = [:]

    /// Takes one token if there is one.
    ///
    /// - Parameter rate: tokens per second, which is also the bucket's size (the burst).
    /// - Returns: whether the call may pass.
    mutating func take(_ key: Key, rate: Int, now: ContinuousClock.Instant) -> Bool {
        let capacity = Double(rate)
        var (tokens, updated) = buckets[key] ?? (capacity, now)
        let elapsed = now - updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        tokens = min(capacity, tokens + seconds * capacity)
        guard tokens >= 1 else {
            buckets[key] = (tokens, now)
            return false
        }
        buckets[key] = (tokens - 1, now)
        return true
    }

    mutating func removeAll() {
        buckets.removeAll()
    }
}
