// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import PlatformSignature

/// Everything the platform client needs to know: where to call, as whom, how patiently and how fast.
///
/// A plain value: build it once from flags, environment and files, log it freely (the secret prints as a
/// mask), and hand it to ``PlatformAPIClient``. Defaults follow the official SDKs and the platform's documents
/// (reference/platform-api.md §3 and §6) so that an empty configuration behaves like the platform expects.
public struct PlatformAPIConfiguration: Sendable {
    /// The API endpoint, e.g. `https://iot.cn-shanghai.aliyuncs.com` or `http://127.0.0.1:8080`.
    ///
    /// No default. A missing path becomes `/`, the path that is signed.
    public var endpoint: String
    /// The AccessKey ID, sent as `AccessKeyId`. No default.
    public var accessKeyId: String
    /// The AccessKey secret; it is only ever used as the HMAC key, never sent, logged or put in an error.
    /// No default.
    public var accessKeySecret: AccessKeySecret
    /// Which common parameters every call carries. Default ``PlatformProfile/aliyun``: `Format=JSON`,
    /// `Version=2018-01-20`, `SignatureVersion=1.0` and ``regionId`` when set (DESIGN §3's list).
    ///
    /// ``PlatformProfile/tuya`` sends only what the seed's sample request sends. A parameter the profile leaves
    /// out is neither sent nor signed.
    public var profile: PlatformProfile
    /// The HTTP method. Default `.get` (the seed document's shape), whatever the profile.
    ///
    /// `.post` is the official SDKs' shape. Either way the parameters travel in the query string and the body
    /// is empty, so the platform sees the same parameters and only the first token of the string-to-sign
    /// differs. Both platforms accept both methods for this API (its metadata says `POST|GET`).
    public var method: RPCHTTPMethod
    /// Sent as `RegionId` by the ``PlatformProfile/aliyun`` profile when set (Alibaba requires it; Tuya has no
    /// such parameter and the ``PlatformProfile/tuya`` profile never sends it). Default `nil`.
    public var regionId: String?
    /// Sent as `IotInstanceId` when set and the request has none of its own. Default `nil`.
    public var iotInstanceId: String?
    /// Connect and read timeouts of one HTTP attempt. Default: connect 5 s, read 10 s.
    public var timeouts: Timeouts
    /// How many connections calls may use at once, and how long an unused one stays open. Default: at most 64
    /// connections (the worker's default `--max-in-flight`), closed after 10 s unused.
    ///
    /// Size it to the calls made at once: over HTTP/1.1 a connection carries one call at a time, so calls beyond
    /// the limit wait for a connection, and a slow platform then costs throughput, not only latency.
    public var connectionPool: ConnectionPool
    /// How failed attempts are retried. Default ``RetryPolicy/default``: at most 4 attempts, full-jitter
    /// exponential backoff from 200 ms, capped at 10 s.
    public var retry: RetryPolicy
    /// How fast calls may go out. Default ``RateLimit/default``: 10 calls/s per account (the documented
    /// quota of `CancelOTATaskByDevice`), burst 10.
    public var rateLimit: RateLimit
    /// The most `DeviceName.N` one call may carry. Default 200 (the platform's limit).
    ///
    /// ``CancelOTATaskByDeviceRequest/batches(productKey:firmwareId:deviceNames:jobId:iotInstanceId:maxPerCall:)``
    /// splits larger lists; a request above the limit is refused with ``PlatformAPIError/Code/invalidRequest``
    /// without being sent.
    public var maxDeviceNamesPerCall: Int
    /// The largest response body accepted, in bytes. Default 1 MiB (real answers are a few hundred bytes).
    public var maxResponseBodyBytes: Int

    /// Creates a configuration with every other field at its documented default.
    public init(endpoint: String, accessKeyId: String, accessKeySecret: AccessKeySecret) {
        self.endpoint = endpoint
        self.accessKeyId = accessKeyId
        self.accessKeySecret = accessKeySecret
        self.profile = .aliyun
        self.method = .get
        self.regionId = nil
        self.iotInstanceId = nil
        self.timeouts = Timeouts()
        self.connectionPool = ConnectionPool()
        self.retry = .default
        self.rateLimit = .default
        self.maxDeviceNamesPerCall = 200
        self.maxResponseBodyBytes = 1 << 20
    }

    /// Connect and read timeouts of one HTTP attempt.
    ///
    /// The defaults are the official SDKs' (reference/platform-api.md §6). An attempt as a whole is also bounded
    /// by `connect + read`, so a server that trickles bytes cannot hold a call forever.
    public struct Timeouts: Sendable, Hashable {
        /// Time to establish the connection (TCP and TLS). Default 5 s.
        public var connect: Duration
        /// Longest silence while waiting for response bytes. Default 10 s.
        public var read: Duration

        /// Creates timeouts; defaults: connect 5 s, read 10 s.
        public init(connect: Duration = .seconds(5), read: Duration = .seconds(10)) {
            self.connect = connect
            self.read = read
        }
    }
}

extension PlatformAPIConfiguration {
    /// The HTTP connections the client keeps to the endpoint.
    ///
    /// Over HTTP/1.1 (the platform's endpoints, and the simulator) one connection carries one call at a time, so
    /// ``maxConnections`` bounds the calls in flight: with 8 connections (AsyncHTTPClient's default) and 64
    /// concurrent callers, 56 calls wait for a connection, and a 2 s platform answer makes the last of them
    /// wait 16 s. Over HTTP/2 one connection carries many calls and the limit does not apply.
    public struct ConnectionPool: Sendable, Hashable {
        /// The most connections open to the endpoint at once. Default 64 (the worker's default
        /// `--max-in-flight`, so that each command in flight has one); values below 1 count as 1.
        ///
        /// AsyncHTTPClient's per-host limit (`concurrentHTTP1ConnectionsPerHostSoftLimit`); it is only exceeded by
        /// requests bound to a particular event loop, which this client never makes.
        public var maxConnections: Int
        /// How long a connection stays open unused before the client closes it. Default 10 s.
        ///
        /// Shorter than the keep-alive limits servers and load balancers commonly use (tens of seconds), so that
        /// the client closes an idle connection before the server does and no call is sent on a connection the
        /// server is closing; long enough to keep the connections of one burst of calls for the next.
        public var idleTimeout: Duration

        /// Creates a pool configuration; defaults: 64 connections, 10 s idle timeout.
        public init(maxConnections: Int = 64, idleTimeout: Duration = .seconds(10)) {
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
        }
    }
}

extension PlatformAPIConfiguration {
    /// Every parameter a call sends and signs, except `Signature`: a pure function of the configuration, the
    /// request, the time and the nonce.
    ///
    /// `AccessKeyId`, `SignatureMethod=HMAC-SHA1`, `SignatureNonce`, `Timestamp`, then what ``profile`` adds
    /// (``PlatformProfile/aliyun``: `Format`, `Version`, `SignatureVersion`, and `RegionId` when configured;
    /// ``PlatformProfile/tuya``: nothing), then the operation parameters, with the configured `IotInstanceId`
    /// when the request has none.
    /// - Parameters:
    ///   - request: the operation parameters.
    ///   - timestamp: becomes `Timestamp` (UTC, whole seconds).
    ///   - nonce: becomes `SignatureNonce`.
    public func parameters(
        for request: some PlatformOperation,
        timestamp: Date,
        nonce: String
    ) -> [String: String] {
        var parameters = request.operationParameters()
        parameters["AccessKeyId"] = accessKeyId
        parameters["SignatureMethod"] = "HMAC-SHA1"
        parameters["SignatureNonce"] = nonce
        parameters["Timestamp"] = RPCTimestamp.string(from: timestamp)
        for common in profile.additionalCommonParameters(regionId: regionId) {
            parameters[common.name] = common.value
        }
        if parameters["IotInstanceId"] == nil, let iotInstanceId, !iotInstanceId.isEmpty {
            parameters["IotInstanceId"] = iotInstanceId
        }
        return parameters
    }

    /// The exact request a call would send with ``method``: parameters, string-to-sign and signature.
    ///
    /// Pure and deterministic (time and nonce are inputs), so a dry run, the `sign` command and the client
    /// itself produce the same bytes for the same inputs.
    public func signedRequest(
        for request: some PlatformOperation,
        timestamp: Date,
        nonce: String
    ) -> SignedRPCRequest {
        RPCSigner(accessKeyId: accessKeyId, accessKeySecret: accessKeySecret)
            .sign(method: method, parameters: parameters(for: request, timestamp: timestamp, nonce: nonce))
    }
}

/// How a failed attempt is retried.
///
/// A struct over a private enum so other strategies can be added later. The default is deliberately more
/// patient than the official SDKs (which do not retry IoT calls at all, reference/platform-api.md §6.4):
/// a lost cancel is an incident, a retried one is harmless.
public struct RetryPolicy: Sendable, Hashable, CustomStringConvertible {
    private enum Strategy: Sendable, Hashable {
        case none
        case exponentialFullJitter(maxAttempts: Int, base: Duration, cap: Duration)
    }

    private let strategy: Strategy
    private init(_ strategy: Strategy) { self.strategy = strategy }

    /// One attempt, no retry.
    public static let none = RetryPolicy(.none)

    /// At most 4 attempts; full-jitter exponential backoff from 200 ms, capped at 10 s.
    public static let `default` = exponentialBackoff(maxAttempts: 4, base: .milliseconds(200), cap: .seconds(10))

    /// Full-jitter exponential backoff: before retry `n` (0-based) wait a uniformly random time in
    /// `[0, min(cap, base * 2^n)]`.
    ///
    /// Full jitter spreads the retries of many concurrent calls that failed together, so they do not hit a
    /// recovering platform in lockstep.
    /// - Parameters:
    ///   - maxAttempts: total HTTP attempts including the first; values below 1 count as 1.
    ///   - base: the ceiling of the first wait.
    ///   - cap: the largest ceiling.
    public static func exponentialBackoff(maxAttempts: Int, base: Duration, cap: Duration) -> RetryPolicy {
        RetryPolicy(
            .exponentialFullJitter(maxAttempts: max(1, maxAttempts), base: max(.zero, base), cap: max(.zero, cap))
        )
    }

    /// Total HTTP attempts allowed for one call, including the first.
    public var maxAttempts: Int {
        switch strategy {
        case .none: 1
        case .exponentialFullJitter(let maxAttempts, _, _): maxAttempts
        }
    }

    /// The longest wait before retry `retryIndex` (0 = the wait after the first attempt): `min(cap, base * 2^n)`.
    public func ceiling(beforeRetry retryIndex: Int) -> Duration {
        switch strategy {
        case .none:
            return .zero
        case .exponentialFullJitter(_, let base, let cap):
            // Double arithmetic cannot overflow the way `base * 2^n` in integers would for a large n.
            let seconds = Self.seconds(base) * pow2(max(0, retryIndex))
            return seconds >= Self.seconds(cap) ? cap : .nanoseconds(Int64((seconds * 1e9).rounded(.down)))
        }
    }

    /// A random wait before retry `retryIndex`, uniformly in `[0, ceiling(beforeRetry:)]`.
    public func delay(beforeRetry retryIndex: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(beforeRetry: retryIndex)
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &generator))
    }

    public var description: String {
        switch strategy {
        case .none:
            "none"
        case .exponentialFullJitter(let maxAttempts, let base, let cap):
            "exponentialBackoff(maxAttempts: \(maxAttempts), base: \(base), cap: \(cap))"
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    private func pow2(_ exponent: Int) -> Double {
        exponent >= 1024 ? .infinity : Double(sign: .plus, exponent: exponent, significand: 1)
    }
}

/// How fast calls may leave this process.
///
/// The platform's quota is per account and shared by every worker using that account, so the limiter is what
/// keeps the fleet below `Throttling.User`; the platform's throttling answers slow it down further
/// (see ``TokenBucket``).
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    private enum Strategy: Sendable, Hashable {
        case unlimited
        case tokenBucket(ratePerSecond: Double, burst: Int)
    }

    private let strategy: Strategy
    private init(_ strategy: Strategy) { self.strategy = strategy }

    /// No client-side limit (the platform's throttling answers are still retried).
    public static let unlimited = RateLimit(.unlimited)

    /// 10 calls per second with a burst of 10: `CancelOTATaskByDevice`'s documented per-account quota.
    public static let `default` = perSecond(10, burst: 10)

    /// A token bucket of `ratePerSecond` tokens per second holding at most `burst` tokens.
    ///
    /// - Parameters:
    ///   - ratePerSecond: sustained calls per second; values at or below 0 mean ``unlimited``.
    ///   - burst: calls allowed back to back after a quiet period; values below 1 count as 1.
    public static func perSecond(_ ratePerSecond: Double, burst: Int) -> RateLimit {
        guard ratePerSecond > 0, ratePerSecond.isFinite else { return .unlimited }
        return RateLimit(.tokenBucket(ratePerSecond: ratePerSecond, burst: max(1, burst)))
    }

    /// The sustained rate, or `nil` when unlimited.
    public var ratePerSecond: Double? {
        if case .tokenBucket(let rate, _) = strategy { rate } else { nil }
    }

    /// The burst size, or `nil` when unlimited.
    public var burst: Int? {
        if case .tokenBucket(_, let burst) = strategy { burst } else { nil }
    }

    public var description: String {
        switch strategy {
        case .unlimited: "unlimited"
        case .tokenBucket(let rate, let burst): "\(rate)/s burst \(burst)"
        }
    }
}
