// SPDX-License-Identifier: Apache-2.0
import CMosquitto
import Foundation

/// Process-wide libmosquitto set-up.
///
/// `mosquitto_lib_init` is the one libmosquitto function that is not thread-safe, and it must run before any
/// client exists. A `static let` is initialised lazily exactly once under the runtime's `swift_once` lock, so
/// the first ``MosquittoClient`` to be created runs it, and concurrent first creations wait for it. We never
/// call `mosquitto_lib_cleanup`: clients may live until process exit, and the library's globals are tiny.
enum MosquittoLibrary {
    private static let initialization: Int32 = mosquitto_lib_init()

    /// Runs `mosquitto_lib_init` once per process.
    /// - Throws: ``MosquittoError`` if libmosquitto could not be initialised.
    static func ensureInitialized() throws(MosquittoError) {
        let rc = initialization
        if rc != 0 { throw MosquittoError(result: rc, detail: "mosquitto_lib_init") }
    }

    /// The linked library's version, e.g. `"2.0.11"`.
    static let version: String = {
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        _ = mosquitto_lib_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }()
}

/// A sleep that another thread can cut short; used for the reconnect backoff on the loop thread.
///
/// libmosquitto's own backoff sleep can only be interrupted through `mosquitto_loop_stop`, which we do not use
/// (we run the loop ourselves, see ``MosquittoCore``), so a `disconnect()` during a 30 s backoff would otherwise
/// wait out the 30 s.
///
/// `@unchecked Sendable`: `interrupted` is only read and written while `condition` is locked.
final class InterruptibleSleep: @unchecked Sendable {
    private let condition = NSCondition()
    private var interrupted = false

    /// Sleeps for `duration` unless interrupted.
    /// - Returns: `true` if ``interrupt()`` was called (before or during the sleep).
    func sleep(for duration: Duration) -> Bool {
        let (seconds, attoseconds) = duration.components
        let deadline = Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        while !interrupted {
            if !condition.wait(until: deadline) { break }
        }
        return interrupted
    }

    /// Wakes a current sleep and makes later sleeps return at once, until ``reset()``.
    func interrupt() {
        condition.lock()
        interrupted = true
        condition.broadcast()
        condition.unlock()
    }

    /// Re-arms the sleep for a new run of the loop.
    func reset() {
        condition.lock()
        interrupted = false
        condition.unlock()
    }
}
