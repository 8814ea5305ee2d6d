// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import PlatformAPI
import PlatformSignature
import TestSupport
import Testing

/// The client over real HTTP against a scripted loopback server: transport faults, parsing on the wire,
/// retry mechanics and secret hygiene.
@Suite("Client over scripted HTTP")
struct ClientTransportTests {
    static let request = CancelOTATaskByDeviceRequest(
        productKey: "a1V4kde",
        firmwareId: "fw-1",
        deviceNames: ["dev-01", "dev@02"],
        jobId: "job-1"
    )
    static let ok = ScriptedHTTPServer.Response(status: 200, body: #"{"RequestId":"ok-1","Success":true}"#)

    @Test(
        "GET and POST carry the same signed parameters in the query; POST has an empty body",
        arguments: [RPCHTTPMethod.get, .post]
    )
    func wireShape(method: RPCHTTPMethod) async throws {
        try await ScriptedHTTPServer.with([Self.ok]) { server in
            var configuration = testConfiguration(endpoint: server.endpoint)
            configuration.method = method
            let result = try await withClient(configuration) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            #expect(result.succeeded && result.attempts == 1 && result.requestIds == ["ok-1"])
            let recorded = try #require(server.requests.first)
            #expect(recorded.method == method.rawValue)
            #expect(recorded.target.hasPrefix("/?"))
            #expect(recorded.body.isEmpty)
            if method == .post { #expect(recorded.headers["content-length"] == "0") }
            var query = recorded.query
            let removed = query.removeValue(forKey: "Signature")
            let signature = try #require(removed)
            #expect(query["DeviceName.2"] == "dev@02" && query["JobId"] == "job-1" && query["Version"] == "2018-01-20")
            // The server-side check: recompute the signature from what arrived.
            let expected = RPCSigner.signature(
                stringToSign: RPCCanonicalization.stringToSign(method: method, parameters: query),
                accessKeySecret: AccessKeySecret("test-secret-value")
            )
            #expect(signature == expected)
        }
    }

    @Test("connection refused: transport error, transient, retried up to maxAttempts")
    func connectionRefused() async throws {
        // Bound but not listening for the whole test (a port closed a moment ago may become another test's server).
        let refusing = try RefusingLoopbackPort()
        var configuration = testConfiguration(endpoint: "http://127.0.0.1:\(refusing.port)")
        // AsyncHTTPClient keeps re-trying a refused connection until the connect timeout: keep it short.
        configuration.timeouts.connect = .milliseconds(300)
        let result = try await withClient(configuration) {
            await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
        }
        let error = try #require(result.error)
        #expect(error == .transport && error.isTransient)
        #expect(result.attempts == 4 && result.requestIds.isEmpty)
        withExtendedLifetime(refusing) {}
    }

    @Test("garbage body on HTTP 200: invalidResponse, permanent, one attempt")
    func garbage200() async throws {
        try await ScriptedHTTPServer.with([.init(status: 200, body: "<html>hello</html>")]) { server in
            let result = try await withClient(testConfiguration(endpoint: server.endpoint)) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            let error = try #require(result.error)
            #expect(error == .invalidResponse && !error.isTransient && error.httpStatus == 200)
            #expect(result.attempts == 1 && server.requests.count == 1)
        }
    }

    @Test("an HTML 502 from a proxy is retried; the next success wins; every attempt is signed anew")
    func proxyErrorThenSuccess() async throws {
        let script: [ScriptedHTTPServer.Response] = [.init(status: 502, body: "<html>Bad Gateway</html>"), Self.ok]
        try await ScriptedHTTPServer.with(script) { server in
            let result = try await withClient(testConfiguration(endpoint: server.endpoint)) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            #expect(result.succeeded && result.attempts == 2 && result.requestIds == ["ok-1"])
            let nonces = server.requests.map { $0.query["SignatureNonce"] }
            let signatures = server.requests.map { $0.query["Signature"] }
            #expect(nonces.count == 2 && nonces[0] != nonces[1] && signatures[0] != signatures[1])
        }
    }

    @Test("a body above the limit is invalidResponse")
    func oversizedBody() async throws {
        let huge = ScriptedHTTPServer.Response(
            status: 200,
            bytes: Array(repeating: UInt8(ascii: " "), count: 2048) + Array(#"{"Success":true}"#.utf8)
        )
        try await ScriptedHTTPServer.with([huge]) { server in
            var configuration = testConfiguration(endpoint: server.endpoint)
            configuration.maxResponseBodyBytes = 1024
            let result = try await withClient(configuration) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            #expect(result.error == .invalidResponse && result.attempts == 1)
        }
    }

    @Test("a slow answer hits the read timeout: timeout, transient")
    func readTimeout() async throws {
        let slow = ScriptedHTTPServer.Response(status: 200, body: #"{"Success":true}"#, delay: .seconds(60))
        try await ScriptedHTTPServer.with([slow]) { server in
            var configuration = testConfiguration(endpoint: server.endpoint)
            configuration.timeouts = .init(connect: .seconds(2), read: .milliseconds(300))
            configuration.retry = .none
            let started = ContinuousClock.now
            let result = try await withClient(configuration) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            let error = try #require(result.error)
            #expect(error == .timeout && error.isTransient && result.attempts == 1)
            #expect(started.duration(to: .now) < .seconds(30))  // hang guard: it did not wait for the 60 s answer
        }
    }

    @Test("SignatureNonceUsed is re-signed at once, without the backoff wait")
    func nonceReused() async throws {
        let script: [ScriptedHTTPServer.Response] = [
            .init(
                status: 400,
                body:
                    #"{"Code":"SignatureNonceUsed","Message":"The request signature nonce has been used.","RequestId":"n-1"}"#
            ),
            Self.ok,
        ]
        try await ScriptedHTTPServer.with(script) { server in
            var configuration = testConfiguration(endpoint: server.endpoint)
            configuration.retry = .exponentialBackoff(maxAttempts: 3, base: .seconds(120), cap: .seconds(120))
            let store = RecordingLogHandler.Store()
            let logger = Logger(label: "nonce") { _ in RecordingLogHandler(store: store) }
            let started = ContinuousClock.now
            let result = try await withClient(configuration, logger: logger) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            #expect(result.succeeded && result.attempts == 2 && result.requestIds == ["n-1", "ok-1"])
            // The decision itself, independent of the machine's speed: the retry was scheduled with no delay.
            let retries = store.all.filter { $0.contains("retrying platform call") }
            #expect(retries.count == 1 && retries.first?.contains("platform.delay_ms=0 ") == true, "\(retries)")
            #expect(started.duration(to: .now) < .seconds(60))  // hang guard, far below the 120 s backoff ceiling
            let nonces = server.requests.map { $0.query["SignatureNonce"] }
            #expect(nonces[0] != nonces[1])
        }
    }

    @Test("x-acs-retry-after (ms) is honoured as the least wait")
    func retryAfter() async throws {
        let script: [ScriptedHTTPServer.Response] = [
            .init(
                status: 400,
                body: #"{"Code":"Throttling.User","Message":"slow down","RequestId":"t-1"}"#,
                headers: ["x-acs-retry-after": "400"]
            ),
            Self.ok,
        ]
        try await ScriptedHTTPServer.with(script) { server in
            let started = ContinuousClock.now
            let result = try await withClient(testConfiguration(endpoint: server.endpoint)) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            #expect(result.succeeded && result.attempts == 2 && result.requestIds == ["t-1", "ok-1"])
            #expect(started.duration(to: .now) >= .milliseconds(400))
        }
    }

    @Test("a proxy's standard Retry-After (seconds) on a 503 is honoured too")
    func standardRetryAfter() async throws {
        let script: [ScriptedHTTPServer.Response] = [
            .init(status: 503, body: "<html>busy</html>", headers: ["Retry-After": "1"]),
            Self.ok,
        ]
        try await ScriptedHTTPServer.with(script) { server in
            let started = ContinuousClock.now
            let result = try await withClient(testConfiguration(endpoint: server.endpoint)) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            #expect(result.succeeded && result.attempts == 2)
            #expect(started.duration(to: .now) >= .seconds(1))
        }
    }

    @Test("a retry-after beyond the deadline ends the call at once with deadlineExceeded and the platform's details")
    func retryAfterBeyondDeadline() async throws {
        let throttled = ScriptedHTTPServer.Response(
            status: 400,
            body: #"{"Code":"Throttling.User","Message":"slow down","RequestId":"t-9"}"#,
            headers: ["x-acs-retry-after": "120000"]
        )
        try await ScriptedHTTPServer.with([throttled]) { server in
            let started = ContinuousClock.now
            let result = try await withClient(testConfiguration(endpoint: server.endpoint)) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: .now + .seconds(100))
            }
            let error = try #require(result.error)
            #expect(error == .deadlineExceeded && error.isTransient)
            #expect(error.platformCode == "Throttling.User" && error.requestId == "t-9" && error.httpStatus == 400)
            #expect(result.attempts == 1 && server.requests.count == 1)
            #expect(started.duration(to: .now) < .seconds(60))  // it did not sleep until the 100 s deadline
        }
    }

    @Test("a deadline that passes during an attempt keeps the previous attempt's platform details")
    func deadlineDuringAttempt() async throws {
        let script: [ScriptedHTTPServer.Response] = [
            .init(status: 503, body: #"{"Code":"ServiceUnavailable","Message":"busy","RequestId":"u-1"}"#),
            .init(status: 200, body: #"{"Success":true}"#, delay: .seconds(90)),
        ]
        // The deadline must pass during the second attempt (the 90 s answer is what it cuts short). A machine
        // that stalls for longer than the deadline lets it pass before the second attempt starts; such a round
        // proves nothing, so it is run again, up to four times, rather than judged.
        var rounds = 0
        var judged = false
        while !judged && rounds < 4 {
            rounds += 1
            try await ScriptedHTTPServer.with(script) { server in
                let started = ContinuousClock.now
                var configuration = testConfiguration(endpoint: server.endpoint)
                configuration.timeouts.read = .seconds(80)  // the deadline, not the read timeout, ends the attempt
                let result = try await withClient(configuration) {
                    await $0.cancelOTATaskByDevice(Self.request, deadline: .now + .seconds(8))
                }
                #expect(started.duration(to: .now) < .seconds(70))  // hang guard: the 90 s answer was not awaited
                guard server.requests.count == 2 else { return }
                judged = true
                let error = try #require(result.error)
                #expect(error == .deadlineExceeded && error.isTransient)
                #expect(
                    error.platformCode == "ServiceUnavailable" && error.requestId == "u-1" && error.httpStatus == 503
                )
                #expect(result.attempts == 2 && result.requestIds == ["u-1"])
            }
        }
        #expect(judged, "in four rounds the machine never reached the second attempt within 8 s")
    }

    @Test("a deadline already past: no attempt at all")
    func deadlinePast() async throws {
        try await ScriptedHTTPServer.with([Self.ok]) { server in
            let result = try await withClient(testConfiguration(endpoint: server.endpoint)) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: .now - .milliseconds(1))
            }
            #expect(result.error == .deadlineExceeded && result.attempts == 0 && server.requests.isEmpty)
        }
    }

    @Test("invalid requests are refused before sending")
    func invalidRequest() async throws {
        try await ScriptedHTTPServer.with([Self.ok]) { server in
            var configuration = testConfiguration(endpoint: server.endpoint)
            configuration.maxDeviceNamesPerCall = 2
            try await withClient(configuration) { client in
                var request = Self.request
                request.deviceNames = []
                let empty = await client.cancelOTATaskByDevice(request, deadline: nil)
                request.deviceNames = ["a1xx", "b2xx", "c3xx"]
                let tooMany = await client.cancelOTATaskByDevice(request, deadline: nil)
                for result in [empty, tooMany] {
                    let error = try #require(result.error)
                    #expect(error == .invalidRequest && !error.isTransient && result.attempts == 0)
                }
            }
            #expect(server.requests.isEmpty)
        }
    }

    @Test(
        "an unusable endpoint is a permanent configuration error, not four transport failures",
        arguments: ["ftp://127.0.0.1:21", "127.0.0.1:8080", "not a url", "http://", "http://h/?Action=X"]
    )
    func invalidEndpoint(endpoint: String) async throws {
        let result = try await withClient(testConfiguration(endpoint: endpoint)) {
            await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
        }
        let error = try #require(result.error)
        #expect(error == .invalidRequest && !error.isTransient && result.attempts == 0)
        #expect(error.message.contains(endpoint))
    }

    @Test("a cancelled task gets `cancelled`")
    func cancellation() async throws {
        let slow = ScriptedHTTPServer.Response(status: 200, body: #"{"Success":true}"#, delay: .seconds(60))
        try await ScriptedHTTPServer.with([slow]) { server in
            try await withClient(testConfiguration(endpoint: server.endpoint)) { client in
                let call = Task { await client.cancelOTATaskByDevice(Self.request, deadline: nil) }
                try await waitUntil { server.requests.count == 1 }
                call.cancel()
                let result = await call.value
                #expect(result.error == .cancelled && result.attempts == 1)
            }
        }
    }

    @Test("the secret never reaches errors, descriptions or logs, even when the server echoes it")
    func secretHygiene() async throws {
        let secret = "Sup3r-Secret/Value+1"
        let echo = ScriptedHTTPServer.Response(
            status: 400,
            body:
                #"{"Code":"InvalidAccessKeyId.Inactive","Message":"key Sup3r-Secret/Value+1 (Sup3r-Secret%2FValue%2B1) is off","RequestId":"s-1"}"#
        )
        try await ScriptedHTTPServer.with([echo]) { server in
            let store = RecordingLogHandler.Store()
            let logger = Logger(label: "secret-test") { _ in RecordingLogHandler(store: store) }
            let configuration = testConfiguration(endpoint: server.endpoint, secret: secret)
            #expect(!"\(configuration)".contains(secret))
            let result = try await withClient(configuration, logger: logger) {
                await $0.cancelOTATaskByDevice(Self.request, deadline: nil)
            }
            let error = try #require(result.error)
            #expect(error.platformCode == "InvalidAccessKeyId.Inactive" && !error.isTransient && result.attempts == 1)
            #expect(error.message == "key <redacted> (<redacted>) is off")
            let signature = try #require(server.requests.first?.query["Signature"])
            for text in ["\(error)", error.message, error.shortDescription, String(reflecting: error), "\(result)"]
                + store.all
            {
                #expect(!text.contains(secret) && !text.contains("Sup3r-Secret%2F"))
                #expect(!text.contains(signature))
            }
            #expect(!store.all.isEmpty)
            #expect(
                store.all.allSatisfy { line in
                    line.split(separator: " ").filter { $0.contains("=") }.allSatisfy { $0.hasPrefix("platform.") }
                }
            )
        }
    }
}
