// SPDX-License-Identifier: Apache-2.0
import Foundation
public import Hummingbird
public import Logging
import NIOCore
import PlatformSignature

/// A simulator that is up: where to reach it and its state.
public struct RunningSimulator: Sendable {
    /// The bound TCP port (the kernel's choice when the configuration asked for `0`).
    public var port: Int
    /// The base URL of both the RPC endpoint (`/`) and the admin API (`/_sim/…`), e.g. `http://127.0.0.1:41234`.
    public var endpoint: String
    /// The live state: counters, tasks, fault rules.
    public var state: SimulatorState

    /// Describes a running simulator (``withPlatformSimulator(configuration:logger:_:)`` makes these).
    public init(port: Int, endpoint: String, state: SimulatorState) {
        self.port = port
        self.endpoint = endpoint
        self.state = state
    }

    /// The one line the executable prints on stdout once it listens; scripts parse the port from it.
    public var listeningLine: String { "ota-platform-sim listening on \(endpoint)" }

    /// `http://HOST:PORT`, with an IPv6 host in brackets.
    public static func endpoint(host: String, port: Int) -> String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }
}

/// The request context of the simulator's routes: Hummingbird's basics plus the connection, so that a fault
/// rule can close it without answering.
struct SimulatorRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Builds the simulator's Hummingbird application: the RPC endpoint at `/` and the admin API under `/_sim/`.
///
/// This is the composition root the executable and ``withPlatformSimulator(configuration:logger:_:)`` share; a
/// caller that manages its own `ServiceGroup` can run the returned application as a `Service`.
///
/// - Parameters:
///   - configuration: host, port, accounts, quota, latency, response style, instance.
///   - logger: the server's logger; each refused call is logged at `debug` with its RequestId and code.
///   - state: the state the routes read and change; build it with ``SimulatorState/init(configuration:)``.
///   - onServerRunning: called once the server listens, with the bound port.
/// - Throws: ``SimulatorError`` when the configuration is invalid.
public func buildSimulatorApplication(
    configuration: SimulatorConfiguration,
    logger: Logger,
    state: SimulatorState,
    onServerRunning: @escaping @Sendable (RunningSimulator) async -> Void = { _ in }
) throws(SimulatorError) -> some ApplicationProtocol {
    try configuration.validate()
    let engine = RPCEngine(configuration: configuration, state: state, logger: logger)
    let router = Router(context: SimulatorRequestContext.self)
    SimulatorRoutes(
        engine: engine,
        state: state,
        maximumBodySize: configuration.maximumBodySize,
        defaultHost: configuration.host
    )
    .register(on: router)
    let host = configuration.host
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            await onServerRunning(
                RunningSimulator(port: port, endpoint: RunningSimulator.endpoint(host: host, port: port), state: state)
            )
        },
        logger: logger
    )
}

/// Runs a simulator on a real port for the duration of `body`, and always stops it.
///
/// Tests use this to get a platform of their own: the server starts in a child task, `body` runs once it
/// listens, and the server is shut down when `body` returns or throws.
///
/// - Parameters:
///   - configuration: the simulator to run (default: a free loopback port, account `testid`/`testsecret`).
///   - logger: the server's logger.
///   - body: runs while the simulator listens.
/// - Returns: what `body` returns.
/// - Throws: ``SimulatorError`` when the configuration is invalid or the server cannot start; whatever
///   `body` throws.
public func withPlatformSimulator<R: Sendable>(
    configuration: SimulatorConfiguration = SimulatorConfiguration(),
    logger: Logger = Logger(label: "ota-platform-sim"),
    _ body: (RunningSimulator) async throws -> R
) async throws -> R {
    let state = try SimulatorState(configuration: configuration)
    let (started, continuation) = AsyncStream<RunningSimulator>.makeStream()
    let application = try buildSimulatorApplication(
        configuration: configuration,
        logger: logger,
        state: state,
        onServerRunning: { running in
            continuation.yield(running)
            continuation.finish()
        }
    )
    return try await withThrowingTaskGroup(of: Void.self, returning: R.self) { group in
        group.addTask {
            defer { continuation.finish() }
            try await application.run()
        }
        var iterator = started.makeAsyncIterator()
        guard let running = await iterator.next() else {
            var reason = "the HTTP server stopped before it listened"
            do {
                try await group.waitForAll()
            } catch {
                reason = "the HTTP server failed to start on \(configuration.host):\(configuration.port): \(error)"
            }
            throw SimulatorError.startupFailed(reason)
        }
        do {
            let result = try await body(running)
            group.cancelAll()
            // Errors after the stop was requested (a cancelled server) are not the body's business.
            try? await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Runs a simulator until SIGTERM or SIGINT, then shuts it down gracefully: the executable's whole life.
///
/// - Parameters:
///   - configuration: the simulator to run.
///   - logger: the server's logger.
///   - onRunning: called once the server listens (the executable prints ``RunningSimulator/listeningLine``).
/// - Throws: ``SimulatorError`` when the configuration is invalid or the fixture does not load; the server's
///   error when it cannot bind.
public func servePlatformSimulator(
    configuration: SimulatorConfiguration,
    logger: Logger,
    onRunning: @escaping @Sendable (RunningSimulator) async -> Void
) async throws {
    let state = try SimulatorState(configuration: configuration)
    let application = try buildSimulatorApplication(
        configuration: configuration,
        logger: logger,
        state: state,
        onServerRunning: onRunning
    )
    try await application.runService()
}

/// The routes: `GET`/`POST /` (RPC) and the admin API.
struct SimulatorRoutes: Sendable {
    let engine: RPCEngine
    let state: SimulatorState
    let maximumBodySize: Int
    let defaultHost: String

    // `HTTPFields.Element` is swift-http-types' `HTTPField`, named through Hummingbird's re-export so this module
    // needs no direct dependency on swift-http-types.
    static let requestIdHeader = HTTPFields.Element.Name("x-acs-request-id")!
    static let retryAfterHeader = HTTPFields.Element.Name("x-acs-retry-after")!
    static let jsonContentType = "application/json;charset=utf-8"

    func register(on router: Router<SimulatorRequestContext>) {
        router.get("/") { request, context in try await rpc(request, context) }
        router.post("/") { request, context in try await rpc(request, context) }
        router.put("/") { request, context in try await rpc(request, context) }
        router.delete("/") { request, context in try await rpc(request, context) }
        router.patch("/") { request, context in try await rpc(request, context) }

        router.get("/_sim/stats") { _, _ in
            Self.json(.ok, Self.encode(state.stats()))
        }
        router.get("/_sim/tasks") { _, _ in
            Self.json(.ok, Self.encode(state.allTasks()))
        }
        router.get("/_sim/devices/:deviceName") { request, context in
            device(request, context)
        }
        router.put("/_sim/tasks/:taskId") { request, context in
            try await setTaskStatus(request, context)
        }
        router.get("/_sim/faults") { _, _ in
            Self.json(.ok, Self.encode(state.faults()))
        }
        router.post("/_sim/faults") { request, context in
            try await addFault(request, context)
        }
        router.delete("/_sim/faults") { _, _ in
            state.clearFaults()
            return Self.json(.ok, #"{"faults":0}"#)
        }
        router.post("/_sim/reset") { _, _ in
            state.reset()
            return Self.json(.ok, Self.encode(state.stats()))
        }
    }

    // MARK: RPC

    private func rpc(_ request: Request, _ context: SimulatorRequestContext) async throws -> Response {
        var form: Substring?
        if request.method == .post, let type = request.headers[.contentType],
            type.lowercased().hasPrefix("application/x-www-form-urlencoded")
        {
            do {
                let buffer = try await request.body.collect(upTo: maximumBodySize)
                form = Substring(String(buffer: buffer))
            } catch {
                // Too large or broken off: Hummingbird answers (413) or drops it; it still was a request.
                engine.recordUnprocessedRequest()
                throw error
            }
        }
        let outcome = engine.handle(
            method: request.method.rawValue,
            query: request.uri.query.map { Substring($0) },
            form: form,
            hostId: request.head.authority ?? defaultHost
        )
        switch outcome {
        case .answer(let answer, let delay):
            if delay > .zero { try? await Task.sleep(for: delay) }
            var headers: HTTPFields = [.contentType: Self.jsonContentType]
            headers[Self.requestIdHeader] = answer.requestId
            if let retryAfter = answer.retryAfterMilliseconds {
                headers[Self.retryAfterHeader] = String(retryAfter)
            }
            let body = ByteBuffer(string: answer.body)
            return Response(
                status: HTTPResponse.Status(code: answer.status),
                headers: headers,
                body: answer.slowBody.map { Self.slowBody(body, over: $0) } ?? .init(byteBuffer: body)
            )
        case .drop(let delay):
            if delay > .zero { try? await Task.sleep(for: delay) }
            // Closing the channel makes the response write below fail; Hummingbird then drops the connection
            // without having written a byte, which is what the client must experience.
            try? await context.channel.close().get()
            return Response(status: .internalServerError)
        }
    }

    /// A body written in ten pieces (fewer for a shorter body), one every tenth of `duration`: the status and
    /// headers go out at once, the last byte after about `duration`. The length is announced up front, as a
    /// slow platform behind a proxy would, so the client waits for the rest rather than taking a short body.
    static func slowBody(_ body: ByteBuffer, over duration: Duration) -> ResponseBody {
        let length = body.readableBytes
        let pieces = max(1, min(10, length))
        let pause = duration / pieces
        return ResponseBody(contentLength: length) { writer in
            var remaining = body
            for piece in 0..<pieces {
                try await Task.sleep(for: pause)
                let size = piece == pieces - 1 ? remaining.readableBytes : length / pieces
                if let slice = remaining.readSlice(length: size) { try await writer.write(slice) }
            }
            try await writer.finish(nil)
        }
    }

    // MARK: Admin API

    private struct DeviceView: Codable {
        struct Task: Codable {
            var taskId: String
            var firmwareId: String
            var jobId: String
            var status: String
            var cancelCalls: Int
        }

        var deviceName: String
        var productKey: String
        var tasks: [Task]
    }

    private func device(_ request: Request, _ context: SimulatorRequestContext) -> Response {
        guard let deviceName = Self.pathParameter("deviceName", context) else {
            return Self.adminError(.badRequest, "missing device name")
        }
        let requested = request.uri.queryParameters["productKey"].map(String.init)
        let productKeys = requested.map { [$0] } ?? state.productKeys(deviceName: deviceName)
        guard productKeys.count <= 1 else {
            return Self.adminError(
                .conflict,
                "device \(deviceName) exists in several products (\(productKeys.joined(separator: ", "))); "
                    + "add ?productKey="
            )
        }
        guard let productKey = productKeys.first,
            let tasks = state.tasks(deviceName: deviceName, productKey: productKey)
        else {
            return Self.adminError(.notFound, "unknown device \(deviceName)")
        }
        let view = DeviceView(
            deviceName: deviceName,
            productKey: productKey,
            tasks: tasks.map {
                .init(
                    taskId: $0.taskId,
                    firmwareId: $0.firmwareId,
                    jobId: $0.jobId,
                    status: $0.status,
                    cancelCalls: $0.cancelCalls
                )
            }
        )
        return Self.json(.ok, Self.encode(view))
    }

    private func setTaskStatus(_ request: Request, _ context: SimulatorRequestContext) async throws -> Response {
        struct Body: Decodable { var status: String }
        guard let taskId = Self.pathParameter("taskId", context) else {
            return Self.adminError(.badRequest, "missing task id")
        }
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)) else {
            return Self.adminError(.badRequest, #"expected {"status": "<task status>"}"#)
        }
        guard TaskStatus(rawValue: body.status) != nil else {
            return Self.adminError(
                .badRequest,
                "status must be one of " + TaskStatus.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        guard state.setTaskStatus(taskId: taskId, status: body.status) else {
            return Self.adminError(.notFound, "unknown task \(taskId)")
        }
        return Self.json(.ok, Self.encode(state.allTasks().first { $0.taskId == taskId }))
    }

    private func addFault(_ request: Request, _ context: SimulatorRequestContext) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let rule: FaultRule
        do {
            rule = try FaultRule.decode(json: Data(buffer.readableBytesView))
        } catch {
            return Self.adminError(.badRequest, error.message)
        }
        state.injectFault(rule)
        return Self.json(.created, #"{"faults":\#(state.faults().count)}"#)
    }

    // MARK: Helpers

    /// A path parameter, percent-decoded (Hummingbird hands it over raw; device names may hold `@` and `:`).
    private static func pathParameter(_ name: String, _ context: SimulatorRequestContext) -> String? {
        guard let raw = context.parameters.get(name) else { return nil }
        return RPCCanonicalization.percentDecode(raw, plusAsSpace: false) ?? raw
    }

    private static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: jsonContentType],
            body: .init(byteBuffer: ByteBuffer(string: body))
        )
    }

    private static func adminError(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var writer = JSONObjectWriter()
        writer.string("error", message)
        return json(status, writer.finished())
    }
}
