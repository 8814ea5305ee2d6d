// SPDX-License-Identifier: Apache-2.0
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tiny HTTP/1.1 server on `127.0.0.1:0` that answers with scripted responses, for the transport faults the
/// platform simulator cannot produce (garbage bodies, a secret echoed back, slow answers, huge bodies).
///
/// Each request gets the next scripted response (the last one repeats); every request line and header block is
/// recorded. Each connection is served on its own thread and closed after one answer (`Connection: close`).
final class ScriptedHTTPServer: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: [UInt8]
        var headers: [String: String] = [:]
        /// Wait this long before answering (a slow platform).
        var delay: Duration = .zero

        init(status: Int, body: String, headers: [String: String] = [:], delay: Duration = .zero) {
            self.status = status
            self.body = Array(body.utf8)
            self.headers = headers
            self.delay = delay
        }

        init(status: Int, bytes: [UInt8]) {
            self.status = status
            self.body = bytes
        }
    }

    struct Recorded: Sendable {
        var method: String
        var target: String
        var headers: [String: String]
        var body: [UInt8]

        /// The decoded query parameters of the request target.
        var query: [String: String] {
            guard let mark = target.firstIndex(of: "?") else { return [:] }
            var result = [String: String]()
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0]).removingPercentEncoding ?? ""
                result[name] = parts.count > 1 ? String(parts[1]).removingPercentEncoding ?? "" : ""
            }
            return result
        }
    }

    private struct State {
        var script: [Response]
        var served = 0
        var recorded: [Recorded] = []
        var stopped = false
        /// Requests received and not yet answered, and the most there were at once.
        var open = 0
        var peakOpen = 0
    }

    let port: Int
    private let listener: Int32
    private let state: Mutex<State>

    private init(script: [Response]) throws {
        precondition(!script.isEmpty)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXFailure(call: "socket") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw POSIXFailure(call: "bind/listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        self.listener = fd
        self.state = Mutex(State(script: script))
    }

    /// Runs `body` with a server answering `script`, and stops the server afterwards (also when `body` throws).
    static func with<R>(_ script: [Response], _ body: (ScriptedHTTPServer) async throws -> R) async throws -> R {
        let server = try ScriptedHTTPServer(script: script)
        let thread = Thread { server.acceptLoop() }
        thread.start()
        defer { server.stop() }
        return try await body(server)
    }

    /// `http://127.0.0.1:PORT`
    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Every request received so far, in arrival order.
    var requests: [Recorded] { state.withLock { $0.recorded } }

    /// The most requests that were received and not yet answered at the same time (each on its own connection,
    /// since every answer closes its connection): how many calls the client had in flight at its busiest.
    var peakConcurrentRequests: Int { state.withLock { $0.peakOpen } }

    private func stop() {
        state.withLock { $0.stopped = true }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !state.withLock({ $0.stopped }) {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 20) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            let thread = Thread { self.serve(connection) }
            thread.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            let count = recv(connection, &chunk, chunk.count, 0)
            guard count > 0 else { return }
            buffer += chunk[0..<count]
            headerEnd = buffer.firstRange(of: separator)?.upperBound
        }
        guard let headerEnd else { return }
        let head = String(decoding: buffer[0..<headerEnd], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers = [String: String]()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        let contentLength = Int(headers["content-length"] ?? "0") ?? 0
        while buffer.count - headerEnd < contentLength {
            let count = recv(connection, &chunk, chunk.count, 0)
            guard count > 0 else { break }
            buffer += chunk[0..<count]
        }
        let recorded = Recorded(
            method: requestLine.count > 0 ? String(requestLine[0]) : "",
            target: requestLine.count > 1 ? String(requestLine[1]) : "",
            headers: headers,
            body: Array(buffer[headerEnd...])
        )
        let response = state.withLock { state -> Response in
            state.recorded.append(recorded)
            let response = state.script[min(state.served, state.script.count - 1)]
            state.served += 1
            state.open += 1
            state.peakOpen = max(state.peakOpen, state.open)
            return response
        }
        if response.delay > .zero {
            let (seconds, attoseconds) = response.delay.components
            Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) * 1e-18)
        }
        // The request stops counting as open before its answer leaves: once the client has the answer it may send
        // its next request at once, and counting that one before this decrement would report one too many.
        state.withLock { $0.open -= 1 }
        var text = "HTTP/1.1 \(response.status) Scripted\r\nContent-Length: \(response.body.count)\r\n"
        text += "Content-Type: application/json\r\nConnection: close\r\n"
        for (name, value) in response.headers { text += "\(name): \(value)\r\n" }
        let bytes = Array((text + "\r\n").utf8) + response.body
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return }
            offset += sent
        }
    }

}

struct POSIXFailure: Error, CustomStringConvertible {
    var call: String
    var code = errno
    var description: String { "\(call) failed: errno \(code)" }
}
