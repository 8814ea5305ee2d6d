// SPDX-License-Identifier: Apache-2.0
import CMosquitto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One round of libmosquitto's network loop, waiting with `poll(2)` where `mosquitto_loop` waits with `select(2)`.
///
/// `select` can only watch descriptors below `FD_SETSIZE` (1,024), and libmosquitto 2.0.11's `mosquitto_loop`
/// refuses a socket numbered 1,024 or more with `MOSQ_ERR_INVAL`, which ends the loop for good. A process that
/// holds many descriptors (the worker's operations connections and its platform connection pool, or a test
/// process running many tests) gets such a socket whenever it connects to the broker while they are open, and
/// could then never reconnect. This does what `mosquitto_loop` does, through libmosquitto's external-loop API
/// (`mosquitto_socket`, `mosquitto_want_write`, `mosquitto_loop_read`, `mosquitto_loop_write`,
/// `mosquitto_loop_misc`), and `poll` has no such limit.
///
/// In threaded mode libmosquitto wakes its own `select` through a private socket pair when another thread queues a
/// packet; that pair is out of reach here, so the client wakes this loop through ``MosquittoLoopWaker`` instead
/// after every publish, subscribe and disconnect it queues.
struct MosquittoNetworkLoop {
    let handle: MosquittoHandle
    let waker: MosquittoLoopWaker

    /// Waits up to `timeout` milliseconds for the socket (or a wake-up), then reads, writes and keeps the
    /// connection alive as `mosquitto_loop` would.
    /// - Returns: a `MOSQ_ERR_*` code, `MOSQ_ERR_SUCCESS` when the connection is fine.
    func runOnce(timeout: Int32) -> Int32 {
        let mosq = handle.pointer
        let socket = mosquitto_socket(mosq)
        guard socket >= 0 else { return MOSQ_ERR_NO_CONN.rawValue }
        let wantWrite = mosquitto_want_write(mosq)
        var descriptors = [
            pollfd(fd: socket, events: Int16(POLLIN) | (wantWrite ? Int16(POLLOUT) : 0), revents: 0),
            pollfd(fd: waker.readDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
        if ready < 0 {
            return errno == EINTR ? MOSQ_ERR_SUCCESS.rawValue : MOSQ_ERR_ERRNO.rawValue
        }
        if descriptors[1].revents != 0 { waker.drain() }
        let readable = descriptors[0].revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0
        if readable {
            let rc = mosquitto_loop_read(mosq, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue || mosquitto_socket(mosq) < 0 { return rc }
        }
        // A packet queued by another thread since the poll began, or one the socket now has room for.
        if mosquitto_want_write(mosq) {
            let rc = mosquitto_loop_write(mosq, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue || mosquitto_socket(mosq) < 0 { return rc }
        }
        return mosquitto_loop_misc(mosq)
    }
}

/// A pipe that wakes ``MosquittoNetworkLoop`` from its `poll`: written by any thread that queued a packet.
///
/// `@unchecked Sendable`: the two descriptors are set once in `init` and closed once in `deinit`; writing and
/// reading a pipe are thread-safe system calls.
final class MosquittoLoopWaker: @unchecked Sendable {
    let readDescriptor: Int32
    private let writeDescriptor: Int32

    /// - Throws: ``MosquittoError`` (`MOSQ_ERR_ERRNO`) when no pipe can be made.
    init() throws(MosquittoError) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw MosquittoError(result: MOSQ_ERR_ERRNO.rawValue, detail: "pipe for the network loop")
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        readDescriptor = descriptors[0]
        writeDescriptor = descriptors[1]
    }

    deinit {
        close(readDescriptor)
        close(writeDescriptor)
    }

    /// Makes the next (or current) `poll` return. A full pipe already holds a wake-up, so a failed write is fine.
    func wake() {
        var byte: UInt8 = 1
        _ = write(writeDescriptor, &byte, 1)
    }

    /// Empties the pipe (non-blocking).
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while buffer.withUnsafeMutableBytes({ read(readDescriptor, $0.baseAddress, $0.count) }) > 0 {}
    }
}
