// SPDX-License-Identifier: Apache-2.0
//
// Running real third-party programs (mosquitto, mosquitto_pub/_sub/_rr) from tests, and free loopback ports.
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error of the test-support helpers, with a message that says what to do.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    /// What went wrong and how to fix it.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// What a finished process left behind.
public struct ProcessResult: Sendable, CustomStringConvertible {
    /// The exit status, or 128 + signal number if it was killed by a signal.
    public var exitCode: Int32
    /// Everything it wrote to standard output (UTF-8, invalid bytes repaired).
    public var stdout: String
    /// Everything it wrote to standard error.
    public var stderr: String
    /// Whether ``runProcess(_:_:timeout:environment:)`` had to kill it because the timeout passed.
    public var timedOut: Bool

    /// A one-paragraph summary for test failure messages.
    public var description: String {
        "exit \(exitCode)\(timedOut ? " (killed after timeout)" : "")\nstdout: \(stdout)\nstderr: \(stderr)"
    }
}

/// Directories searched for executables besides `PATH`: Debian installs the broker in `/usr/sbin`, which is not
/// on every user's `PATH`.
private let extraSearchDirectories = ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin", "/sbin", "/bin"]

/// Finds an executable by name in `PATH` and the sbin directories.
/// - Parameter name: A bare name (`"mosquitto_rr"`) or a path.
/// - Returns: The absolute path, or `nil` if it is not installed.
public func findExecutable(_ name: String) -> String? {
    if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + extraSearchDirectories
    for directory in directories {
        let candidate = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// The install hint for the mosquitto tools, used in every "not installed" error.
public let mosquittoInstallHint = "install it with: apt-get install -y mosquitto mosquitto-clients"

/// Runs a program to completion (or until `timeout`, then kills it) and captures its output.
///
/// Blocking work (waiting for the process, reading its pipes) runs on dedicated threads, never on the Swift
/// cooperative pool. The program starts with a clean signal mask and default signal dispositions (see
/// ``SpawnedProcess``), so timeouts such as `mosquitto_rr -W` and SIGTERM work as in a shell.
/// - Parameters:
///   - executable: A bare name (looked up like ``findExecutable(_:)``) or a path.
///   - arguments: The arguments.
///   - timeout: A hang guard: after it the process gets SIGTERM, then SIGKILL one second later.
///   - environment: Variables added to (or replacing in) the current environment; default none.
/// - Returns: Exit code and output.
/// - Throws: ``TestSupportError`` if the program is not installed or cannot be started.
public func runProcess(
    _ executable: String,
    _ arguments: [String],
    timeout: Duration = .seconds(30),
    environment: [String: String] = [:]
) async throws -> ProcessResult {
    guard let path = findExecutable(executable) else {
        throw TestSupportError("\(executable) is not installed; \(mosquittoInstallHint)")
    }
    let stdoutPipe = try makePipe()
    let stderrPipe = try makePipe()
    let process: SpawnedProcess
    do {
        process = try SpawnedProcess(
            path: path,
            arguments: arguments,
            environment: environment,
            stdout: stdoutPipe.write,
            stderr: stderrPipe.write
        )
    } catch {
        for fd in [stdoutPipe.read, stdoutPipe.write, stderrPipe.read, stderrPipe.write] { close(fd) }
        throw error
    }
    close(stdoutPipe.write)
    close(stderrPipe.write)

    async let stdoutData = onDedicatedThread { readToEnd(stdoutPipe.read) }
    async let stderrData = onDedicatedThread { readToEnd(stderrPipe.read) }

    let timedOut = LockedValue(false)
    let killer = Task {
        try await Task.sleep(for: timeout)
        timedOut.withLock { $0 = true }
        process.signal(SIGTERM)
        try await Task.sleep(for: .seconds(1))
        process.signal(SIGKILL)
    }
    let exitCode = await process.waitForExit()
    killer.cancel()
    let out = await stdoutData
    let err = await stderrData
    return ProcessResult(
        exitCode: exitCode,
        stdout: String(decoding: out, as: UTF8.self),
        stderr: String(decoding: err, as: UTF8.self),
        timedOut: timedOut.withLock { $0 }
    )
}

/// A child process started with `posix_spawn`.
///
/// Foundation's `Process` passes on the spawning thread's signal mask and ignored signals. Threads of a test
/// runner may block SIGTERM or SIGALRM, and mosquitto restores the mask it inherited while it waits for
/// events. A broker spawned that way never sees SIGTERM, and `mosquitto_rr -W` never times out. So this type
/// resets the mask and every disposition in the child, which is what a shell gives a program.
final class SpawnedProcess: Sendable {
    /// The child's process id.
    let pid: pid_t
    private let state = LockedValue(State())

    private struct State {
        var exitCode: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }

    /// Starts `path` with `arguments`; standard input is `/dev/null`, output goes to the given descriptors
    /// (or `/dev/null`).
    init(
        path: String,
        arguments: [String],
        environment: [String: String] = [:],
        stdout: Int32? = nil,
        stderr: Int32? = nil
    ) throws {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        for (target, source) in [(Int32(1), stdout), (Int32(2), stderr)] {
            if let source {
                posix_spawn_file_actions_adddup2(&fileActions, source, target)
            } else {
                posix_spawn_file_actions_addopen(&fileActions, target, "/dev/null", O_WRONLY, 0)
            }
        }
        #if canImport(Glibc)
        // Nothing else is inherited: tests run in parallel, and a child that kept a copy of another test's socket
        // (NIO accepts without close-on-exec) would keep that connection open after its owner closed it.
        if let addCloseFrom = posixSpawnAddCloseFrom { _ = addCloseFrom(&fileActions, 3) }
        #endif

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &fileActions, &attributes, argv, envp)
        guard rc == 0 else {
            throw TestSupportError("cannot start \(path): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        let thread = Thread { [self] in reap() }
        thread.start()
    }

    /// Waits (on its own thread) for the child to end and wakes everybody waiting for it.
    private func reap() {
        var status: Int32 = 0
        var result: pid_t
        repeat {
            result = waitpid(pid, &status, 0)
        } while result == -1 && errno == EINTR
        // WIFEXITED / WEXITSTATUS / WTERMSIG spelled out: the C macros are not imported into Swift.
        let signal = status & 0x7F
        let code: Int32 = signal == 0 ? (status >> 8) & 0xFF : 128 + signal
        let waiters = state.withLock { state in
            state.exitCode = code
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: code) }
    }

    /// The exit code (128 + signal if killed), once the process has ended.
    var exitCode: Int32? { state.withLock { $0.exitCode } }

    /// Sends `signal` unless the process has already been reaped (its pid may be reused after that).
    func signal(_ signal: Int32) {
        state.withLock { state in
            if state.exitCode == nil { kill(pid, signal) }
        }
    }

    /// Sends SIGTERM and waits for the process to end; SIGKILL once `grace` has passed (a hang guard).
    @discardableResult
    func terminate(grace: Duration) async -> Int32 {
        signal(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: grace)
            signal(SIGKILL)
        }
        defer { killer.cancel() }
        return await waitForExit()
    }

    /// Waits until the process has ended.
    func waitForExit() async -> Int32 {
        await withCheckedContinuation { (waiter: CheckedContinuation<Int32, Never>) in
            let code = state.withLock { state -> Int32? in
                if let code = state.exitCode { return code }
                state.waiters.append(waiter)
                return nil
            }
            if let code { waiter.resume(returning: code) }
        }
    }
}

#if canImport(Glibc)
/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), looked up at run time because the Glibc
/// module does not import it; `nil` on an older glibc.
private let posixSpawnAddCloseFrom:
    (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0),  // RTLD_DEFAULT
        "posix_spawn_file_actions_addclosefrom_np"
    ).map {
        unsafeBitCast(
            $0,
            to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self
        )
    }
#endif

/// A pipe whose descriptors are close-on-exec (the child gets only the `dup2` copies).
private func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw TestSupportError("pipe failed: errno \(errno)") }
    // Close-on-exec matters where SpawnedProcess cannot close inherited descriptors (Darwin); on Linux a child
    // spawned between pipe() and these calls does not inherit them either.
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return (fds[0], fds[1])
}

/// Reads a descriptor until end of file, then closes it.
private func readToEnd(_ fd: Int32) -> [UInt8] {
    defer { close(fd) }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 {
            data.append(contentsOf: buffer[0..<count])
        } else if count == 0 || errno != EINTR {
            return data
        }
    }
}

/// Runs blocking work on a new thread and returns its result without blocking the cooperative pool.
func onDedicatedThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.start()
    }
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picked, not listening.
private func boundLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
    #if canImport(Glibc) || canImport(Musl)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
    }
    guard bound else {
        close(fd)
        throw TestSupportError("bind(127.0.0.1:0) failed: errno \(errno)")
    }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
    }
    guard named else {
        close(fd)
        throw TestSupportError("getsockname failed: errno \(errno)")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it for a bind to port 0).
///
/// Another process can take it before we use it; ``MosquittoBroker`` retries with a new port when that happens.
/// - Throws: ``TestSupportError`` if no socket can be bound.
public func freeLoopbackPort() throws -> Int {
    let (descriptor, port) = try boundLoopbackSocket()
    close(descriptor)
    return port
}

/// A loopback port on which nothing listens and nothing can start listening while this value lives: a socket is
/// bound to it (without `listen`), so connecting is refused, and another test's server cannot take the port as it
/// could take a ``freeLoopbackPort()`` that was only free a moment ago.
public final class RefusingLoopbackPort: Sendable {
    /// The port number.
    public let port: Int
    private let descriptor: Int32

    /// - Throws: ``TestSupportError`` if no socket can be bound.
    public init() throws {
        (descriptor, port) = try boundLoopbackSocket()
    }

    deinit { close(descriptor) }
}

/// A loopback port that listens and never answers: connections complete (in the kernel's backlog) and what is sent
/// is taken, but the socket is never accepted, so nothing ever comes back: a hung server, for timeout tests.
public final class SilentLoopbackListener: Sendable {
    /// The port number.
    public let port: Int
    private let descriptor: Int32

    /// - Throws: ``TestSupportError`` if no socket can be bound or made to listen.
    public init() throws {
        (descriptor, port) = try boundLoopbackSocket()
        guard listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw TestSupportError("listen failed: errno \(errno)")
        }
    }

    deinit { close(descriptor) }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
public func loopbackPortAcceptsConnections(_ port: Int) -> Bool {
    #if canImport(Glibc) || canImport(Musl)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return connected == 0
}
