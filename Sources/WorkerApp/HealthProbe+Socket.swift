// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension HealthProbe {
    /// Most bytes of an answer read: a status line, a head and the start of a body are all the verdict needs.
    static let maximumAnswerBytes = 16 * 1_024

    /// One blocking `GET` of `target` with `Connection: close`, read until the server closes (or
    /// ``maximumAnswerBytes``, or the deadline): what came back, or why nothing did.
    ///
    /// Each address the host resolves to is tried in turn until one connects. Connecting, sending and receiving
    /// share one deadline, `timeout` seconds from the start; name resolution (`getaddrinfo`) has its own
    /// (the resolver's), which only a host name rather than an address can reach.
    ///
    /// - Important: blocks the calling thread; for the `health` subcommand, which does nothing else.
    public static func probe(_ target: Target, timeout: Double) -> Observation {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64((timeout * 1_000).rounded(.up)))
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard resolved == 0, let first = list else {
            return .unreachable("cannot resolve \(target.host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(first) }

        var failure = "no address to connect to"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let address = candidate {
            candidate = address.pointee.ai_next
            switch connection(to: address.pointee, deadline: deadline, clock: clock) {
            case .failure(.timedOut):
                return .timedOut(timeout)
            case .failure(.failed(let reason)):
                failure = reason
                continue
            case .success(let descriptor):
                defer { close(descriptor) }
                return exchange(descriptor, target: target, deadline: deadline, clock: clock, timeout: timeout)
            }
        }
        return .unreachable(failure)
    }

    /// Why a step failed.
    private enum SocketFailure: Error {
        case timedOut
        case failed(String)
    }

    /// A connected, non-blocking socket to `address`, or why there is none.
    private static func connection(
        to address: addrinfo,
        deadline: ContinuousClock.Instant,
        clock: ContinuousClock
    ) -> Result<Int32, SocketFailure> {
        let descriptor = socket(address.ai_family, address.ai_socktype, address.ai_protocol)
        guard descriptor >= 0 else { return .failure(.failed("socket: \(lastError())")) }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        if connect(descriptor, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let reason = lastError()
                close(descriptor)
                return .failure(.failed(reason))
            }
            switch waitUntil(descriptor, isReadyFor: Int16(POLLOUT), deadline: deadline, clock: clock) {
            case .failure(let failure):
                close(descriptor)
                return .failure(failure)
            case .success:
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
                guard error == 0 else {
                    close(descriptor)
                    return .failure(.failed(String(cString: strerror(error))))
                }
            }
        }
        return .success(descriptor)
    }

    /// Sends the request on a connected socket and reads the answer.
    private static func exchange(
        _ descriptor: Int32,
        target: Target,
        deadline: ContinuousClock.Instant,
        clock: ContinuousClock,
        timeout: Double
    ) -> Observation {
        let head = [
            "GET \(target.path) HTTP/1.1", "Host: \(target.authority)", "User-Agent: ota-cancel-worker-health",
            "Accept: */*", "Connection: close",
        ]
        let request = Array((head.joined(separator: "\r\n") + "\r\n\r\n").utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, sendFlags) }
            if count > 0 {
                sent += count
                continue
            }
            guard count < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                return .unreachable("sending the request: \(lastError())")
            }
            if case .failure(let failure) = waitUntil(
                descriptor,
                isReadyFor: Int16(POLLOUT),
                deadline: deadline,
                clock: clock
            ) {
                return observation(failure, timeout: timeout)
            }
        }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while answer.count < maximumAnswerBytes {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                answer += buffer[..<count]
                continue
            }
            if count == 0 { break }  // the server closed: the answer is complete
            guard errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                // A reset after a complete answer still leaves the answer to judge.
                return answer.isEmpty ? .unreachable("reading the answer: \(lastError())") : .answered(answer)
            }
            if case .failure(let failure) = waitUntil(
                descriptor,
                isReadyFor: Int16(POLLIN),
                deadline: deadline,
                clock: clock
            ) {
                // At the deadline, a status line already received is judged; nothing at all is a timeout.
                return answer.isEmpty ? observation(failure, timeout: timeout) : .answered(answer)
            }
        }
        return .answered(answer)
    }

    /// Waits until `descriptor` is ready for `events`, or the deadline passes.
    private static func waitUntil(
        _ descriptor: Int32,
        isReadyFor events: Int16,
        deadline: ContinuousClock.Instant,
        clock: ContinuousClock
    ) -> Result<Void, SocketFailure> {
        while true {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { return .failure(.timedOut) }
            // Rounded up, so that a wait never ends just before the deadline and spins.
            let milliseconds = Int32(
                clamping: left.components.seconds * 1_000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            )
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return .success(()) }  // readiness, or an error the next call reports
            if ready < 0, errno != EINTR { return .failure(.failed("poll: \(lastError())")) }
        }
    }

    private static func observation(_ failure: SocketFailure, timeout: Double) -> Observation {
        switch failure {
        case .timedOut: return .timedOut(timeout)
        case .failed(let reason): return .unreachable(reason)
        }
    }

    /// `send` flags: no `SIGPIPE` when the server has closed (Linux; Darwin sets `SO_NOSIGPIPE` on the socket).
    private static var sendFlags: Int32 {
        #if canImport(Glibc) || canImport(Musl)
        Int32(MSG_NOSIGNAL)
        #else
        0
        #endif
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
