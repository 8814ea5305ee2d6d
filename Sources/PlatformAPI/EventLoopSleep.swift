// SPDX-License-Identifier: Apache-2.0
import NIOCore

/// A sleep on an event loop's timer, which a cancelled task gives back at once.
///
/// `Task.sleep` on Linux keeps its timer until the deadline even when the sleeping task is cancelled: the runtime
/// creates a small wake-up task and hands it to Dispatch (`dispatch_after`); cancellation resumes the sleeper early
/// but cannot withdraw the timer, so the wake-up task and the Dispatch timer (about 750 bytes together, measured)
/// stay allocated until the deadline passes. A deadline race that is lost on every successful call (the body-read
/// limit of ``PlatformAPIClient``) would hold one of them per call for the whole `connect + read` time. A
/// cancelled event-loop task is removed from the loop's timer queue at once, and its memory is freed.
enum EventLoopSleep {
    /// Sleeps until `deadline` on `eventLoop`.
    ///
    /// - Parameters:
    ///   - deadline: when to wake up; one in the past wakes up at once.
    ///   - eventLoop: whose timer to use (any loop of the HTTP client's group).
    /// - Throws: `CancellationError` when the task is cancelled before or while sleeping (the timer is then
    ///   cancelled too); `EventLoopError.shutdown` when the loop has shut down.
    static func sleep(until deadline: NIODeadline, on eventLoop: any EventLoop) async throws {
        let scheduled = eventLoop.scheduleTask(deadline: deadline) {}
        try await withTaskCancellationHandler {
            do {
                try await scheduled.futureResult.get()
            } catch EventLoopError.cancelled {
                throw CancellationError()
            }
        } onCancel: {
            // Removes the task from the loop's timer queue and fails its future with `EventLoopError.cancelled`.
            scheduled.cancel()
        }
    }
}
