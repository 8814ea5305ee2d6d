// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import Logging
public import PlatformSignature
public import ServiceLifecycle
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// The outcome of one logical call, with everything a reply and an audit log need.
public struct PlatformCallResult: Sendable {
    /// The request that was (or was not) sent.
    public var request: CancelOTATaskByDeviceRequest
    /// `.success` only when the platform said `Success: true` (or its equivalent, see
    /// ``PlatformResponse/parse(httpStatus:body:)``); otherwise the error of the last attempt.
    public var result: Result<PlatformResponse, PlatformAPIError>
    /// HTTP attempts made: at least 1, unless the request was invalid, the client was shut down, the task was
    /// cancelled or the deadline passed before the first attempt.
    public var attempts: Int
    /// The `RequestId` of every attempt that returned one, in order (what support needs to trace a call).
    public var requestIds: [String]
    /// How many attempts the platform answered with a throttling error (each slowed the rate limiter down).
    public var throttledAttempts: Int

    /// Creates a result (the client makes these; tests of callers may too).
    public init(
        request: CancelOTATaskByDeviceRequest,
        result: Result<PlatformResponse, PlatformAPIError>,
        attempts: Int,
        requestIds: [String],
        throttledAttempts: Int = 0
    ) {
        self.request = request
        self.result = result
        self.attempts = attempts
        self.requestIds = requestIds
        self.throttledAttempts = throttledAttempts
    }

    /// Whether the platform accepted the cancel.
    public var succeeded: Bool {
        if case .success = result { true } else { false }
    }

    /// The error, when the call failed.
    public var error: PlatformAPIError? {
        if case .failure(let error) = result { error } else { nil }
    }
}

/// The outcome of one read call: the tasks it listed, or the error of its last attempt.
public struct PlatformReadResult: Sendable {
    public var result: Result<OTATaskPage, PlatformAPIError>
    /// HTTP attempts made, as for ``PlatformCallResult/attempts``.
    public var attempts: Int
    /// The `RequestId` of every attempt that returned one, in order.
    public var requestIds: [String]
    /// How many attempts the platform answered with a throttling error.
    public var throttledAttempts: Int

    public init(
        result: Result<OTATaskPage, PlatformAPIError>,
        attempts: Int,
        requestIds: [String],
        throttledAttempts: Int = 0
    ) {
        self.result = result
        self.attempts = attempts
        self.requestIds = requestIds
        self.throttledAttempts = throttledAttempts
    }
}

/// The client for the platform's `CancelOTATaskByDevice` RPC API.
///
/// One instance per account (the rate limit is per account). It is a `Service`: ``run()`` owns the HTTP
/// client's lifetime, so put it in the application's `ServiceGroup` before the services that call it (they
/// shut down first, and this one then waits for their in-flight calls before closing its connections).
/// Calls made before ``run()`` starts work too (the HTTP client is created on first use); calls made after it
/// ended fail with ``PlatformAPIError/Code/shutdown``.
///
/// - Important: thread-safe; ``cancelOTATaskByDevice(_:deadline:)`` is meant to be called from many tasks at
///   once. No lock is held across an `await`; the token bucket is the only shared pacing point, by design.
public final class PlatformAPIClient: Service, Sendable {
    /// The configuration the client was created with.
    public let configuration: PlatformAPIConfiguration
    private let logger: Logger
    /// One token bucket per action (the platform's quotas are per action and account), all at
    /// ``PlatformAPIConfiguration/rateLimit``; none without a rate limit.
    private let buckets: [String: TokenBucket<ContinuousClock>]
    private let lifecycle: Mutex<Lifecycle>
    /// Why the configured endpoint cannot be called, found once at creation (a configuration error is
    /// permanent: no call should burn its retries on it).
    private let endpointProblem: String?

    /// The HTTP client's life: created on first use, drained on graceful shutdown, then shut down for good.
    private struct Lifecycle: Sendable {
        enum Phase: Sendable {
            case idle
            case running(HTTPClient)
            case draining(HTTPClient)
            case shutDown
        }
        var phase: Phase = .idle
        var inFlight = 0
        var drained: CheckedContinuation<Void, Never>?
    }

    /// The longest `x-acs-retry-after` honoured (the Tea SDK's maximum retry delay): a bigger value is taken
    /// as this, so a confused server cannot park a call for hours when it has no deadline.
    static let maximumRetryAfter: Duration = .seconds(120)

    /// Creates a client. Starts nothing: no connection is made before the first call.
    ///
    /// - Parameters:
    ///   - configuration: endpoint, credentials, timeouts, retry and rate limit.
    ///   - logger: receives per-attempt `debug` records and retry `info` records, with `platform.`-prefixed
    ///     metadata; never the secret, the signature or the signed URL.
    public init(configuration: PlatformAPIConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        var buckets = [String: TokenBucket<ContinuousClock>]()
        if let rate = configuration.rateLimit.ratePerSecond, let burst = configuration.rateLimit.burst {
            let actions = [
                CancelOTATaskByDeviceRequest.action, ListOTATaskByJobRequest.action,
                ListOTAUnfinishedTaskByDeviceRequest.action,
            ]
            for action in actions {
                buckets[action] = TokenBucket(ratePerSecond: rate, burst: burst, clock: ContinuousClock())
            }
        }
        self.buckets = buckets
        self.lifecycle = Mutex(Lifecycle())
        self.endpointProblem = Self.problem(withEndpoint: configuration.endpoint)
    }

    deinit {
        // `run()` normally shuts the HTTP client down. If it never ran, do it here without blocking: the HTTP
        // client keeps itself alive until its shutdown completes.
        let client = lifecycle.withLock { state -> HTTPClient? in
            switch state.phase {
            case .running(let client), .draining(let client): client
            case .idle, .shutDown: nil
            }
        }
        client?.shutdown { _ in }
    }

    /// The rate limiter's current rate (lower than configured after throttling answers), or `nil` when unlimited.
    public var effectiveRatePerSecond: Double? { buckets[CancelOTATaskByDeviceRequest.action]?.effectiveRatePerSecond }

    // MARK: Service

    /// Holds the HTTP client until graceful shutdown or cancellation, then shuts it down.
    ///
    /// On graceful shutdown, new calls are refused (``PlatformAPIError/Code/shutdown``) and calls already in
    /// flight, retries included, finish before the connections close. On cancellation the connections close at
    /// once and in-flight calls end with an error.
    public func run() async throws {
        guard let client = checkOutForRun() else { return }
        var cancelled = false
        do {
            try await gracefulShutdown()
        } catch {
            cancelled = true
        }
        if !cancelled {
            logger.debug("platform client draining in-flight calls")
            await waitForInFlightCalls(client)
        }
        lifecycle.withLock { $0.phase = .shutDown }
        try await client.shutdown()
        logger.debug("platform client shut down")
    }

    // MARK: Calls

    /// One logical call: rate-limited (token bucket), retried on transient errors with full-jitter backoff,
    /// re-signed on every attempt (fresh `SignatureNonce` + `Timestamp`), `SignatureNonceUsed` re-signed at
    /// once, `x-acs-retry-after` (milliseconds) honoured, never sleeping past `deadline`.
    ///
    /// The server's wait (`x-acs-retry-after`, or a standard `Retry-After` in seconds) is the least delay before
    /// the next attempt, capped at 120 s; a wait that would end after `deadline` is not started.
    ///
    /// Never throws: the outcome is in the result. Task cancellation yields
    /// ``PlatformAPIError/Code/cancelled``; a deadline that stops the retries yields
    /// ``PlatformAPIError/Code/deadlineExceeded`` carrying the last attempt's platform code, request id and
    /// status; an empty or oversized request, or an unusable endpoint, yields
    /// ``PlatformAPIError/Code/invalidRequest`` without any attempt.
    /// - Parameters:
    ///   - request: at most ``PlatformAPIConfiguration/maxDeviceNamesPerCall`` device names, at least one.
    ///   - deadline: when the answer stops being useful; `nil` for no limit beyond the retry policy.
    ///   - admitted: the caller already holds a rate-limiter token for the first attempt (see
    ///     ``admit(deadline:)``); retries take their own. Default `false`.
    ///   - logMetadata: added to every record logged about this call (the worker names the commands it carries).
    ///     Default none.
    public func cancelOTATaskByDevice(
        _ request: CancelOTATaskByDeviceRequest,
        deadline: ContinuousClock.Instant?,
        admitted: Bool = false,
        logMetadata: Logger.Metadata = [:]
    ) async -> PlatformCallResult {
        var metadata = logMetadata
        metadata["platform.product_key"] = .string(request.productKey)
        metadata["platform.firmware_id"] = .string(request.firmwareId)
        let outcome: Outcome
        if request.deviceNames.isEmpty || request.deviceNames.count > configuration.maxDeviceNamesPerCall {
            outcome = Outcome(
                result: .failure(
                    PlatformAPIError(
                        code: .invalidRequest,
                        message:
                            "a call carries 1 to \(configuration.maxDeviceNamesPerCall) device names, this one has "
                            + "\(request.deviceNames.count)"
                    )
                )
            )
        } else {
            outcome = await perform(request, deadline: deadline, admitted: admitted, logMetadata: metadata)
        }
        return PlatformCallResult(
            request: request,
            result: outcome.result,
            attempts: outcome.attempts,
            requestIds: outcome.requestIds,
            throttledAttempts: outcome.throttled
        )
    }

    /// One read call (`ListOTATaskByJob`, `ListOTAUnfinishedTaskByDevice`): paced by its action's own token
    /// bucket and retried like a cancel; a successful answer whose task list cannot be read is
    /// ``PlatformAPIError/Code/invalidResponse``.
    /// - Parameters: as for ``cancelOTATaskByDevice(_:deadline:admitted:logMetadata:)``; `admitted` refers to a
    ///   token of this action's bucket (``tryAdmit(_:)``).
    public func readTasks<Operation: PlatformOperation>(
        _ request: Operation,
        deadline: ContinuousClock.Instant?,
        admitted: Bool = false,
        logMetadata: Logger.Metadata = [:]
    ) async -> PlatformReadResult {
        let outcome = await perform(request, deadline: deadline, admitted: admitted, logMetadata: logMetadata)
        let page: Result<OTATaskPage, PlatformAPIError>
        switch outcome.result {
        case .success(let response):
            do {
                page = .success(try OTATaskPage.parse(response))
            } catch {
                page = .failure(error)
            }
        case .failure(let error):
            page = .failure(error)
        }
        return PlatformReadResult(
            result: page,
            attempts: outcome.attempts,
            requestIds: outcome.requestIds,
            throttledAttempts: outcome.throttled
        )
    }

    /// What ``perform(_:deadline:admitted:logMetadata:)`` found out.
    private struct Outcome {
        var result: Result<PlatformResponse, PlatformAPIError>
        var attempts = 0
        var requestIds: [String] = []
        var throttled = 0
    }

    /// The retry loop every action shares: its action's token bucket before each attempt (but the first when
    /// `admitted`), retries of transient failures with backoff, never past `deadline`.
    private func perform<Operation: PlatformOperation>(
        _ request: Operation,
        deadline: ContinuousClock.Instant?,
        admitted: Bool,
        logMetadata: Logger.Metadata
    ) async -> Outcome {
        var outcome = Outcome(result: .failure(PlatformAPIError(code: .invalidRequest, message: "not sent")))
        func finish(_ result: Result<PlatformResponse, PlatformAPIError>) -> Outcome {
            outcome.result = result
            return outcome
        }
        if let endpointProblem {
            return finish(.failure(PlatformAPIError(code: .invalidRequest, message: endpointProblem)))
        }
        guard let http = checkOutForCall() else {
            return finish(.failure(PlatformAPIError(code: .shutdown, message: "the platform client has shut down")))
        }
        defer { checkIn() }

        var logger = self.logger
        for (key, value) in logMetadata { logger[metadataKey: key] = value }
        logger[metadataKey: "platform.action"] = .string(Operation.action)
        logger[metadataKey: "platform.device_count"] = .stringConvertible(request.deviceCount)
        let bucket = buckets[Operation.action]

        let retry = configuration.retry
        var generator = SystemRandomNumberGenerator()
        var lastError: PlatformAPIError?
        var retryIndex = 0
        while true {
            if Task.isCancelled { return finish(.failure(Self.cancelledError(last: lastError))) }
            if let deadline, ContinuousClock.now >= deadline {
                return finish(.failure(Self.deadlineError(last: lastError, attempts: outcome.attempts)))
            }
            if let bucket, !(admitted && outcome.attempts == 0) {
                do {
                    try await bucket.acquire(deadline: deadline)
                } catch let error as PlatformAPIError where error == .deadlineExceeded {
                    return finish(.failure(Self.deadlineError(last: lastError, attempts: outcome.attempts)))
                } catch {
                    return finish(.failure(Self.cancelledError(last: lastError)))
                }
            }

            outcome.attempts += 1
            logger[metadataKey: "platform.attempt"] = .stringConvertible(outcome.attempts)
            let answer = await attempt(request, http: http, deadline: deadline, logger: logger)
            if let requestId = answer.requestId { outcome.requestIds.append(requestId) }
            let error: PlatformAPIError
            switch answer.result {
            case .success(let response):
                bucket?.recordSuccess()
                return finish(.success(response))
            case .failure(let failure):
                error = failure
            }
            if PlatformAPIError.isThrottling(platformCode: error.platformCode, httpStatus: error.httpStatus) {
                outcome.throttled += 1
                bucket?.slowDown()
            }
            // Ended locally mid-request: report it with what the platform said last, if it said anything.
            if error == .deadlineExceeded {
                return finish(
                    .failure(lastError.map { Self.deadlineError(last: $0, attempts: outcome.attempts) } ?? error)
                )
            }
            if error == .cancelled {
                return finish(.failure(lastError.map { Self.cancelledError(last: $0) } ?? error))
            }
            lastError = error
            if error == .shutdown || !error.isTransient || outcome.attempts >= retry.maxAttempts {
                return finish(.failure(error))
            }

            // A reused nonce only needs a new signature, which every attempt gets anyway: no wait.
            var delay: Duration = .zero
            if error.platformCode?.lowercased() != "signaturenonceused" {
                delay = retry.delay(beforeRetry: retryIndex, using: &generator)
                retryIndex += 1
            }
            if let retryAfter = answer.retryAfter { delay = max(delay, min(retryAfter, Self.maximumRetryAfter)) }
            if let deadline, ContinuousClock.now.advanced(by: delay) >= deadline {
                return finish(.failure(Self.deadlineError(last: error, attempts: outcome.attempts)))
            }
            // A transient failure, retried: `info` (the call's final outcome is the caller's to judge).
            var retryMetadata: Logger.Metadata = [
                "platform.error": .string(error.shortDescription),
                "platform.message": .string(String(error.message.prefix(256))),
                "platform.delay_ms": .stringConvertible(Self.milliseconds(delay)),
            ]
            if let platformCode = error.platformCode {
                retryMetadata["platform.code"] = .string(String(platformCode.prefix(128)))
            }
            if let httpStatus = error.httpStatus {
                retryMetadata["platform.http_status"] = .stringConvertible(httpStatus)
            }
            if let requestId = error.requestId { retryMetadata["platform.request_id"] = .string(requestId) }
            logger.info("retrying platform call", metadata: retryMetadata)
            if delay > .zero {
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return finish(.failure(Self.cancelledError(last: lastError)))
                }
            }
        }
    }

    /// Waits for a rate-limiter token, for a caller that decides what to send only once it may send (a
    /// coalescing dispatcher: names that arrive while it waits go into the same call). Pass `admitted: true` to
    /// the call that uses the token. Returns at once when the client has no rate limit.
    ///
    /// - Throws: ``PlatformAPIError`` with code ``PlatformAPIError/Code/deadlineExceeded`` when no slot comes
    ///   before `deadline`, or ``PlatformAPIError/Code/cancelled``.
    public func admit(deadline: ContinuousClock.Instant?) async throws {
        try await admit(CancelOTATaskByDeviceRequest.self, deadline: deadline)
    }

    /// Takes a rate-limiter token if one is free now (always, without a rate limit); never waits. A caller that
    /// gets `false` waits with ``admit(deadline:)``.
    public func tryAdmit() -> Bool {
        tryAdmit(CancelOTATaskByDeviceRequest.self)
    }

    /// ``admit(deadline:)`` for another action's bucket: each action has a quota, so a bucket, of its own.
    public func admit(_ operation: (some PlatformOperation).Type, deadline: ContinuousClock.Instant?) async throws {
        try await buckets[operation.action]?.acquire(deadline: deadline)
    }

    /// ``tryAdmit()`` for another action's bucket.
    public func tryAdmit(_ operation: (some PlatformOperation).Type) -> Bool {
        buckets[operation.action]?.tryAcquire() ?? true
    }

    /// The exact request an attempt would send (for dry runs and a `sign` command): all common parameters added.
    ///
    /// The same pure function as ``PlatformAPIConfiguration/signedRequest(for:timestamp:nonce:)``.
    /// - Parameters:
    ///   - request: the operation parameters.
    ///   - timestamp: becomes `Timestamp` (UTC, whole seconds).
    ///   - nonce: becomes `SignatureNonce`.
    public func signedRequest(
        for request: some PlatformOperation,
        timestamp: Date,
        nonce: String
    ) -> SignedRPCRequest {
        configuration.signedRequest(for: request, timestamp: timestamp, nonce: nonce)
    }

    /// Every parameter an attempt sends and signs, except `Signature`; see
    /// ``PlatformAPIConfiguration/parameters(for:timestamp:nonce:)``.
    public func parameters(
        for request: some PlatformOperation,
        timestamp: Date,
        nonce: String
    ) -> [String: String] {
        configuration.parameters(for: request, timestamp: timestamp, nonce: nonce)
    }

    // MARK: One attempt

    private struct AttemptOutcome {
        var result: Result<PlatformResponse, PlatformAPIError>
        var requestId: String?
        var retryAfter: Duration?
    }

    /// Signs and sends one HTTP request and reads its answer; never throws.
    private func attempt(
        _ request: some PlatformOperation,
        http: HTTPClient,
        deadline: ContinuousClock.Instant?,
        logger: Logger
    ) async -> AttemptOutcome {
        let signed = signedRequest(for: request, timestamp: Date(), nonce: RPCNonce.make())
        var httpRequest = HTTPClientRequest(url: signed.url(endpoint: configuration.endpoint))
        httpRequest.method = signed.method == .post ? .POST : .GET
        httpRequest.headers.add(name: "Accept", value: "application/json")
        httpRequest.headers.add(name: "User-Agent", value: "ota-cancel-worker")

        // The attempt ends at connect + read, or at the caller's deadline if that comes first.
        let started = ContinuousClock.now
        var attemptEnd = started.advanced(by: configuration.timeouts.connect + configuration.timeouts.read)
        var endIsCallerDeadline = false
        if let deadline, deadline <= attemptEnd {
            attemptEnd = deadline
            endIsCallerDeadline = true
        }
        let nioDeadline = NIODeadline.now() + Self.timeAmount(started.duration(to: attemptEnd))

        logger.debug(
            "platform call attempt",
            metadata: ["platform.nonce": .string(signed.unsignedParameters["SignatureNonce"] ?? "")]
        )
        let response: HTTPClientResponse
        do {
            response = try await http.execute(httpRequest, deadline: nioDeadline)
        } catch {
            let mapped = mapTransportError(error, deadlineIsCallers: endIsCallerDeadline)
            logger.debug("platform call attempt failed", metadata: ["platform.error": .string(mapped.shortDescription)])
            return AttemptOutcome(result: .failure(mapped), requestId: nil, retryAfter: nil)
        }
        let status = Int(response.status.code)
        let retryAfter = Self.retryAfter(in: response.headers)
        let body: ByteBuffer
        do {
            body = try await Self.collect(
                response.body,
                upTo: configuration.maxResponseBodyBytes,
                until: nioDeadline,
                on: http.eventLoopGroup.any()
            )
        } catch is NIOTooManyBytesError {
            return AttemptOutcome(
                result: .failure(
                    PlatformAPIError(
                        code: .invalidResponse,
                        message: "HTTP \(status) with a body larger than \(configuration.maxResponseBodyBytes) bytes",
                        httpStatus: status
                    )
                ),
                requestId: nil,
                retryAfter: retryAfter
            )
        } catch {
            let mapped = mapTransportError(error, deadlineIsCallers: endIsCallerDeadline)
            return AttemptOutcome(result: .failure(mapped), requestId: nil, retryAfter: retryAfter)
        }

        let elapsed = started.duration(to: .now)
        let parsed: PlatformResponse
        do {
            parsed = try PlatformResponse.parse(
                httpStatus: status,
                body: Array(body.readableBytesView),
                redacting: configuration.accessKeySecret.value
            )
        } catch {
            logger.debug(
                "platform call answered with an unreadable body",
                metadata: [
                    "platform.http_status": .stringConvertible(status),
                    "platform.duration_ms": .stringConvertible(Self.milliseconds(elapsed)),
                ]
            )
            return AttemptOutcome(result: .failure(error), requestId: error.requestId, retryAfter: retryAfter)
        }
        logger.debug(
            "platform call answered",
            metadata: [
                "platform.http_status": .stringConvertible(status),
                "platform.request_id": .string(parsed.requestId ?? ""),
                "platform.code": .string(parsed.code ?? ""),
                "platform.success": .stringConvertible(parsed.success),
                "platform.duration_ms": .stringConvertible(Self.milliseconds(elapsed)),
            ]
        )
        if let error = parsed.error(redacting: configuration.accessKeySecret.value) {
            return AttemptOutcome(result: .failure(error), requestId: parsed.requestId, retryAfter: retryAfter)
        }
        return AttemptOutcome(result: .success(parsed), requestId: parsed.requestId, retryAfter: retryAfter)
    }

    /// Reads a whole body, but not past `end`: AsyncHTTPClient's deadline covers the request and the response
    /// head only, and its read timeout only a silence, so a platform that trickles its body a byte at a time
    /// would otherwise hold the attempt (and the command) for as long as it likes.
    ///
    /// The limit is a timer on one of the HTTP client's event loops (``EventLoopSleep``), not `Task.sleep`: the
    /// body nearly always wins the race, and a cancelled `Task.sleep` would keep its timer allocated until `end`,
    /// one per call for the whole `connect + read` time; the loop's timer is freed when the race is decided.
    ///
    /// - Throws: `HTTPClientError.deadlineExceeded` when `end` comes first (the request is cancelled), or what
    ///   reading the body threw.
    private static func collect(
        _ body: HTTPClientResponse.Body,
        upTo maximum: Int,
        until end: NIODeadline,
        on eventLoop: any EventLoop
    ) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await body.collect(upTo: maximum) }
            group.addTask {
                try await EventLoopSleep.sleep(until: end, on: eventLoop)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let buffer = first else {
                throw HTTPClientError.deadlineExceeded
            }
            return buffer
        }
    }

    /// Turns whatever AsyncHTTPClient or NIO threw into our error, scrubbed of the secret.
    private func mapTransportError(_ error: any Error, deadlineIsCallers: Bool) -> PlatformAPIError {
        let text = Redaction.scrub(String(describing: error), secret: configuration.accessKeySecret.value)
        if error is CancellationError {
            return PlatformAPIError(code: .cancelled, message: "cancelled during the HTTP request")
        }
        guard let httpError = error as? HTTPClientError else {
            return PlatformAPIError(code: .transport, message: text)
        }
        switch httpError {
        case .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout,
            .socksHandshakeTimeout, .httpProxyHandshakeTimeout:
            return PlatformAPIError(code: .timeout, message: text)
        case .deadlineExceeded:
            return deadlineIsCallers
                ? PlatformAPIError(code: .deadlineExceeded, message: "the deadline passed during the HTTP request")
                : PlatformAPIError(code: .timeout, message: "the attempt took longer than connect + read timeouts")
        case .cancelled:
            return Task.isCancelled
                ? PlatformAPIError(code: .cancelled, message: "cancelled during the HTTP request")
                : PlatformAPIError(code: .shutdown, message: "the HTTP client shut down during the request")
        case .alreadyShutdown:
            return PlatformAPIError(code: .shutdown, message: "the HTTP client has shut down")
        default:
            return PlatformAPIError(code: .transport, message: text)
        }
    }

    // MARK: Lifecycle bookkeeping

    private func makeHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: Self.timeAmount(self.configuration.timeouts.connect),
                read: Self.timeAmount(self.configuration.timeouts.read)
            ),
            decompression: .disabled
        )
        configuration.httpVersion = .automatic
        // Sized to the work (AsyncHTTPClient keeps 8 per host by default): see `PlatformAPIConfiguration.ConnectionPool`.
        configuration.connectionPool = .init(
            idleTimeout: Self.timeAmount(self.configuration.connectionPool.idleTimeout),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, self.configuration.connectionPool.maxConnections)
        )
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    private func checkOutForRun() -> HTTPClient? {
        lifecycle.withLock { state in
            switch state.phase {
            case .idle:
                let client = makeHTTPClient()
                state.phase = .running(client)
                return client
            case .running(let client), .draining(let client):
                return client
            case .shutDown:
                return nil
            }
        }
    }

    private func checkOutForCall() -> HTTPClient? {
        lifecycle.withLock { state in
            switch state.phase {
            case .idle:
                let client = makeHTTPClient()
                state.phase = .running(client)
                state.inFlight += 1
                return client
            case .running(let client):
                state.inFlight += 1
                return client
            case .draining, .shutDown:
                return nil
            }
        }
    }

    private func checkIn() {
        let continuation = lifecycle.withLock { state -> CheckedContinuation<Void, Never>? in
            state.inFlight -= 1
            guard state.inFlight == 0, let continuation = state.drained else { return nil }
            state.drained = nil
            return continuation
        }
        continuation?.resume()
    }

    /// Refuses new calls and waits until the in-flight ones are done (or the task is cancelled).
    private func waitForInFlightCalls(_ client: HTTPClient) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = lifecycle.withLock { state -> Bool in
                    if case .shutDown = state.phase { return true }
                    state.phase = .draining(client)
                    if state.inFlight == 0 || Task.isCancelled { return true }
                    state.drained = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = lifecycle.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.drained = nil }
                return state.drained
            }
            continuation?.resume()
        }
    }

    // MARK: Helpers

    /// The server's requested wait: `x-acs-retry-after` (milliseconds, the platform's header), else a standard
    /// `Retry-After` in whole seconds (what a proxy or load balancer in front of it sends with 429/503).
    static func retryAfter(in headers: HTTPHeaders) -> Duration? {
        func integer(_ name: String) -> Int? {
            headers.first(name: name).flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.flatMap {
                $0 > 0 ? $0 : nil
            }
        }
        if let milliseconds = integer("x-acs-retry-after") { return .milliseconds(milliseconds) }
        if let seconds = integer("Retry-After") { return .seconds(seconds) }
        return nil
    }

    /// Why `endpoint` cannot be called, or `nil` when it is an absolute `http` or `https` URL with a host and no
    /// query or fragment.
    public static func problem(withEndpoint endpoint: String) -> String? {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil
        else {
            return "the endpoint \"\(endpoint)\" is not an absolute http(s) URL with a host and no query"
        }
        return nil
    }

    private static func deadlineError(last: PlatformAPIError?, attempts: Int) -> PlatformAPIError {
        guard let last else {
            return PlatformAPIError(code: .deadlineExceeded, message: "the deadline passed before the first attempt")
        }
        return PlatformAPIError(
            code: .deadlineExceeded,
            message: "the deadline stopped retries after \(attempts) attempt(s); last error "
                + "\(last.shortDescription): \(last.message)",
            platformCode: last.platformCode,
            requestId: last.requestId,
            httpStatus: last.httpStatus
        )
    }

    private static func cancelledError(last: PlatformAPIError?) -> PlatformAPIError {
        PlatformAPIError(
            code: .cancelled,
            message: last.map { "cancelled; last error \($0.shortDescription): \($0.message)" } ?? "cancelled",
            platformCode: last?.platformCode,
            requestId: last?.requestId,
            httpStatus: last?.httpStatus
        )
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
