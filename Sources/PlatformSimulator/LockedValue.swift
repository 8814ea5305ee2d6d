// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A value guarded by a pthread mutex (Foundation's `NSLock`), with `Mutex.withLock`'s shape.
///
/// Not `Synchronization.Mutex`: on Linux with Swift 6.3 that is a raw futex ThreadSanitizer cannot see, so
/// every test that runs the simulator under `--sanitize=thread` (the integration tests do) would report false
/// races in it. A pthread mutex is intercepted by TSan, and uncontended it costs the same few nanoseconds.
///
/// `@unchecked Sendable`: `value` is only touched inside ``withLock(_:)``, with `lock` held.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    ///
    /// - Important: `body` must not block or await; it runs on an HTTP handler's path.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
