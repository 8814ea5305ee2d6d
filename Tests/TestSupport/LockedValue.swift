// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A value guarded by a pthread mutex (Foundation's `NSLock`), for state shared with helper threads.
///
/// Not `Synchronization.Mutex`: on Linux with Swift 6.3 that is a raw futex which ThreadSanitizer cannot see,
/// so the `--sanitize=thread` runs of the suites using this module would drown in false reports.
///
/// `@unchecked Sendable`: `storage` is only touched inside ``withLock(_:)``, with `lock` held.
public final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: Value

    /// Wraps `value`.
    public init(_ value: Value) {
        self.storage = value
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&storage)
    }

    /// A copy of the current value.
    public var value: Value { withLock { $0 } }
}
