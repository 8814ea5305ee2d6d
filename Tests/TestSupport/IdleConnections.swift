// SPDX-License-Identifier: Apache-2.0
//
// Plain POSIX sockets for tests that attack a server's connection handling: many idle connections that each send an
// unfinished request, raw HTTP exchanges, and a process's descriptor figures from /proc.
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Raises this process's soft limit on open files to at least `needed` (up to the hard limit, which is raised too
/// when the process may, as root may).
///
/// - Returns: the soft limit now in force.
/// - Throws: ``TestSupportError`` saying which limit to raise when `needed` cannot be had.
@discardableResult
public func raiseOpenFileLimit(to needed: Int) throws -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        throw TestSupportError("getrlimit(RLIMIT_NOFILE) failed: errno \(errno)")
    }
    let wanted = rlim_t(needed)
    if limit.rlim_cur >= wanted { return Int(limit.rlim_cur) }
    var raised = limit
    raised.rlim_cur = wanted
    if raised.rlim_max < wanted { raised.rlim_max = wanted }
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else {
        throw TestSupportError(
            "this test needs \(needed) open files, but the limit is \(limit.rlim_cur) (hard \(limit.rlim_max)) and "
                + "cannot be raised (errno \(errno)); run it with `ulimit -n \(needed)` or more"
        )
    }
    return needed
}

/// Many TCP connections to a loopback port, each of which has sent `partialRequest` and then nothing, held open
/// until ``closeAll()`` (or deinit).
///
/// The descriptors are moved to numbers at or above ``descriptorFloor``, so the low numbers stay free for the other
/// tests of this process (their programs and servers; MQTT clients poll, so any number works for them). Connecting blocks (in `poll`), so it runs on a thread of its own, never
/// on the cooperative pool (the servers under test answer from that pool).
public final class IdleConnections: Sendable {
    /// The lowest descriptor number the connections use.
    public static let descriptorFloor: Int32 = 1_024

    private struct State {
        var descriptors: [Int32] = []
        var failures: [String: Int] = [:]
    }
    private let state = LockedValue(State())

    public init() {}

    deinit { closeAll() }

    /// The connections established (and sent their bytes), in the order they were opened.
    public var descriptors: [Int32] { state.withLock { $0.descriptors } }
    /// Attempts that failed, by what went wrong (`connect timed out`, `ECONNREFUSED`, ...).
    public var failures: [String: Int] { state.withLock { $0.failures } }

    /// Opens `count` connections to `127.0.0.1:port`, `batch` at a time, and sends `partialRequest` on each.
    ///
    /// - Parameters:
    ///   - connectTimeout: how long one batch may take to connect; those still connecting then are closed and
    ///     counted as failures (a server that no longer accepts leaves them in its backlog or drops them).
    ///   - afterBatch: called after each batch, on the connecting thread (to sample the server while it fills up,
    ///     or to pause).
    public func open(
        _ count: Int,
        port: Int,
        partialRequest: [UInt8],
        batch: Int = 250,
        connectTimeout: Duration = .seconds(2),
        afterBatch: @escaping @Sendable () -> Void = {}
    ) async {
        await onDedicatedThread {
            var remaining = count
            while remaining > 0 {
                let size = min(batch, remaining)
                remaining -= size
                self.openBatch(size, port: port, partialRequest: partialRequest, connectTimeout: connectTimeout)
                afterBatch()
            }
        }
    }

    /// The indices (in ``descriptors``) of the connections the server has closed: a read sees end of file or a
    /// reset.
    public func closedByPeer() -> [Int] {
        var closed: [Int] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        for (index, fd) in descriptors.enumerated() {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { closed.append(index) }
        }
        return closed
    }

    /// Closes every connection.
    public func closeAll() {
        let descriptors = state.withLock { state in
            defer { state.descriptors.removeAll() }
            return state.descriptors
        }
        for fd in descriptors { close(fd) }
    }

    private func openBatch(_ size: Int, port: Int, partialRequest: [UInt8], connectTimeout: Duration) {
        var pending: [Int32] = []
        for _ in 0..<size {
            let fd = socket(
                AF_INET,
                Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                0
            )
            guard fd >= 0 else {
                fail(errnoName(errno))
                continue
            }
            // Move it up (close-on-exec too, so spawned clients do not inherit thousands of sockets).
            let high = fcntl(fd, F_DUPFD_CLOEXEC, Self.descriptorFloor)
            close(fd)
            guard high >= 0 else {
                fail(errnoName(errno))
                continue
            }
            var address = loopback(port: port)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(high, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if rc == 0 || errno == EINPROGRESS {
                pending.append(high)
            } else {
                fail(errnoName(errno))
                close(high)
            }
        }
        let giveUp = ContinuousClock.now + connectTimeout
        while !pending.isEmpty {
            let left = giveUp - ContinuousClock.now
            guard left > .zero else { break }
            var polls = pending.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
            _ = poll(&polls, nfds_t(polls.count), pollMilliseconds(left))
            var stillPending: [Int32] = []
            for entry in polls {
                guard entry.revents != 0 else {
                    stillPending.append(entry.fd)
                    continue
                }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0
                    && send(entry.fd, partialRequest, partialRequest.count, Int32(MSG_NOSIGNAL)) == partialRequest.count
                {
                    state.withLock { $0.descriptors.append(entry.fd) }
                } else {
                    fail(error != 0 ? errnoName(error) : "send failed")
                    close(entry.fd)
                }
            }
            pending = stillPending
        }
        for fd in pending {
            fail("connect timed out")
            close(fd)
        }
    }

    private func fail(_ reason: String) { state.withLock { $0.failures[reason, default: 0] += 1 } }
}

/// One HTTP exchange on a fresh connection: sends `request` (raw bytes), then reads until the server closes or
/// `timeout` passes (on a thread of its own).
///
/// - Returns: what the server sent, and whether it closed the connection within `timeout`.
public func rawHTTPExchange(
    port: Int,
    request: [UInt8],
    timeout: Duration = .seconds(5)
) async throws -> (response: String, closed: Bool) {
    let fd = try connectedSocket(port: port)
    defer { close(fd) }
    if !request.isEmpty {
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            throw TestSupportError("send failed: \(errnoName(errno))")
        }
    }
    return await readUntilClosed(fd, timeout: timeout)
}

/// A blocking TCP connection to `127.0.0.1:port` (close-on-exec).
public func connectedSocket(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket failed: \(errnoName(errno))") }
    var address = loopback(port: port)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else {
        let error = errno
        close(fd)
        throw TestSupportError("connect to 127.0.0.1:\(port) failed: \(errnoName(error))")
    }
    return fd
}

/// Reads from `fd` until the peer closes it or `timeout` passes (on a thread of its own).
///
/// - Returns: the bytes read (as UTF-8), and whether the peer closed the connection (end of file or reset).
public func readUntilClosed(_ fd: Int32, timeout: Duration) async -> (response: String, closed: Bool) {
    await onDedicatedThread { readUntilClosedBlocking(fd, timeout: timeout) }
}

private func readUntilClosedBlocking(_ fd: Int32, timeout: Duration) -> (response: String, closed: Bool) {
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4_096)
    let giveUp = ContinuousClock.now + timeout
    while true {
        let left = giveUp - ContinuousClock.now
        guard left > .zero else { return (String(decoding: received, as: UTF8.self), false) }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, pollMilliseconds(left)) > 0 else { continue }
        let n = recv(fd, &buffer, buffer.count, 0)
        if n > 0 {
            received.append(contentsOf: buffer[0..<n])
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            return (String(decoding: received, as: UTF8.self), n == 0 || errno == ECONNRESET)
        }
    }
}

/// How many descriptors process `pid` has open (the entries of `/proc/<pid>/fd`); `nil` when it cannot be read.
public func openDescriptorCount(pid: Int32) -> Int? {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
}

/// Process `pid`'s soft and hard limits on open files, from `/proc/<pid>/limits`.
public func openFileLimits(pid: Int32) -> (soft: Int, hard: Int)? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
    else { return nil }
    let numbers = line.dropFirst("Max open files".count).split(separator: " ").compactMap { Int($0) }
    guard numbers.count >= 2 else { return nil }
    return (numbers[0], numbers[1])
}

/// A `poll` timeout: `duration` in whole milliseconds, at least 1.
private func pollMilliseconds(_ duration: Duration) -> Int32 {
    let (seconds, attoseconds) = duration.components
    return Int32(clamping: max(1, seconds * 1_000 + attoseconds / 1_000_000_000_000_000))
}

private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
    return address
}

private func errnoName(_ code: Int32) -> String {
    switch code {
    case ECONNREFUSED: "ECONNREFUSED"
    case ECONNRESET: "ECONNRESET"
    case ETIMEDOUT: "ETIMEDOUT"
    case EMFILE: "EMFILE"
    case EADDRNOTAVAIL: "EADDRNOTAVAIL"
    default: "errno \(code) (\(String(cString: strerror(code))))"
    }
}
