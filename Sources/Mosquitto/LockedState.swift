// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A value guarded by a pthread mutex (Foundation's `NSLock`).
///
/// Why not `Synchronization.Mutex`: on Linux with Swift 6.3 it is built on raw futex calls that
/// ThreadSanitizer cannot see, so every access through it is reported as a data race (checked with a
/// ten-line probe), which would make the `--sanitize=thread` run of this module useless. A pthread mutex is
/// intercepted by TSan, so its reports stay meaningful. The API mirrors `Mutex.withLock`.
///
/// `@unchecked Sendable`: `value` is only touched inside ``withLock(_:)``, with `lock` held.
final class LockedState<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    /// Wraps `value`.
    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    ///
    /// - Important: Never call libmosquitto or resume a continuation inside `body`; collect what to do and do it
    ///   after the lock is released (the loop thread takes this lock while libmosquitto's callback mutex is held).
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
