// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import PlatformAPI
import PlatformSignature
import PlatformSimulator
import Testing

/// The client against the in-process platform simulator over real HTTP: signature, retries, faults, pacing.
@Suite("Client against the platform simulator")
struct SimulatorIntegrationTests {
    static let request = CancelOTATaskByDeviceRequest(
        productKey: "demoProduct",
        firmwareId: "demoFirmware",
        deviceNames: ["dev-000001", "dev-000002"]
    )

    /// Runs `body` with a simulator (generated demo devices) and a client pointed at it.
    func withSimulatorAndClient<R: Sendable>(
        simulator: SimulatorConfiguration = SimulatorConfiguration(generateDevices: 50),
        configure: (inout PlatformAPIConfiguration) -> Void = { _ in },
        _ body: (RunningSimulator, PlatformAPIClient) async throws -> R
    ) async throws -> R {
        try await withPlatformSimulator(configuration: simulator, logger: Logger(label: "simulator")) { running in
            var configuration = testConfiguration(endpoint: running.endpoint, secret: "testsecret")
            configuration.accessKeyId = "testid"
            configure(&configuration)
            return try await withClient(configuration) { client in try await body(running, client) }
        }
    }

    @Test(
        "a successful call, GET and POST: tasks cancelled, one attempt, the request id kept",
        arguments: [RPCHTTPMethod.get, .post]
    )
    func success(method: RPCHTTPMethod) async throws {
        try await withSimulatorAndClient(configure: { $0.method = method }) { simulator, client in
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: .now + .seconds(30))
            let response = try result.result.get()
            #expect(response.success && response.httpStatus == 200)
            #expect(
                result.attempts == 1 && result.requestIds.count == 1 && result.requestIds.first == response.requestId
            )
            #expect(simulator.state.tasks(deviceName: "dev-000001")?.map(\.status) == ["CANCELED"])
            #expect(simulator.state.tasks(deviceName: "dev-000002")?.map(\.status) == ["CANCELED"])
            #expect(simulator.state.tasks(deviceName: "dev-000003")?.map(\.status) == ["QUEUED"])
            let stats = simulator.state.stats()
            #expect(stats.cancelCalls == 1 && stats.authFailures == 0 && stats.tasksCancelled == 2)
        }
    }

    @Test("Tuya response style and Tuya's minimal parameter set")
    func tuya() async throws {
        try await withSimulatorAndClient(
            simulator: SimulatorConfiguration(generateDevices: 5, responseStyle: .tuya),
            configure: { $0.profile = .tuya }
        ) { simulator, client in
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded && result.attempts == 1 && result.requestIds.count == 1)
            #expect(simulator.state.stats().tasksCancelled == 2)
        }
    }

    @Test("a wrong secret: SignatureDoesNotMatch, permanent, one attempt")
    func wrongSecret() async throws {
        try await withSimulatorAndClient(configure: { $0.accessKeySecret = AccessKeySecret("not-the-secret") }) {
            simulator,
            client in
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            let error = try #require(result.error)
            #expect(error == .platform && error.platformCode == "SignatureDoesNotMatch" && !error.isTransient)
            #expect(result.attempts == 1 && error.requestId != nil && !error.message.contains("not-the-secret"))
            #expect(simulator.state.stats().authFailures == 1)
            #expect(simulator.state.tasks(deviceName: "dev-000001")?.map(\.status) == ["QUEUED"])
        }
    }

    @Test("an unknown device: the platform's permanent error, reported with its code")
    func unknownDevice() async throws {
        try await withSimulatorAndClient { _, client in
            var request = Self.request
            request.productKey = "noSuchProduct"
            let result = await client.cancelOTATaskByDevice(request, deadline: nil)
            let error = try #require(result.error)
            #expect(error == .platform && error.platformCode == "iot.prod.NotExistedProduct" && !error.isTransient)
            #expect(result.attempts == 1 && error.requestId != nil && result.requestIds == [error.requestId])
        }
    }

    @Test("IotInstanceId: the configured one is sent; a request's own one wins (and a wrong one is permanent)")
    func instance() async throws {
        try await withSimulatorAndClient(
            simulator: SimulatorConfiguration(generateDevices: 5, iotInstanceId: "iot-cn-test"),
            configure: { $0.iotInstanceId = "iot-cn-test" }
        ) { simulator, client in
            let configured = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(configured.succeeded)
            var wrong = Self.request
            wrong.iotInstanceId = "iot-cn-other"
            let overridden = await client.cancelOTATaskByDevice(wrong, deadline: nil)
            let error = try #require(overridden.error)
            #expect(error == .platform && !error.isTransient && overridden.attempts == 1)
            #expect(error.platformCode?.lowercased().contains("instancenotfound") == true)
        }
    }

    @Test("503 twice, then success: three attempts, each freshly signed (no nonce refused)")
    func transientThenSuccess() async throws {
        try await withSimulatorAndClient { simulator, client in
            simulator.state.injectFault(FaultRule(httpStatus: 503, errorCode: "ServiceUnavailable", count: 2))
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded && result.attempts == 3)
            let stats = simulator.state.stats()
            #expect(stats.faultsInjected == 2 && stats.cancelCalls == 1 && stats.authFailures == 0)
        }
    }

    @Test("Throttling.User is retried and slows the rate limiter down")
    func throttling() async throws {
        try await withSimulatorAndClient(configure: { $0.rateLimit = .default }) { simulator, client in
            simulator.state.injectFault(FaultRule(httpStatus: 400, errorCode: "Throttling.User", count: 1))
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded && result.attempts == 2)
            // Halved to 5/s by the throttling answer, then one tenth of 10/s back per success.
            #expect(client.effectiveRatePerSecond == 6)
        }
    }

    @Test("x-acs-retry-after is honoured")
    func retryAfter() async throws {
        try await withSimulatorAndClient { simulator, client in
            simulator.state.injectFault(
                FaultRule(httpStatus: 400, errorCode: "Throttling.User", count: 1, retryAfterMilliseconds: 600)
            )
            let started = ContinuousClock.now
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded && result.attempts == 2)
            #expect(started.duration(to: .now) >= .milliseconds(600))
        }
    }

    @Test("the deadline stops the retries without sleeping past it")
    func deadlineStopsRetries() async throws {
        try await withSimulatorAndClient(configure: {
            $0.retry = .exponentialBackoff(maxAttempts: 1000, base: .milliseconds(50), cap: .milliseconds(200))
        }) { simulator, client in
            simulator.state.injectFault(FaultRule(httpStatus: 503, errorCode: "ServiceUnavailable"))
            let started = ContinuousClock.now
            // Seconds of room, so a loaded machine still makes several attempts before the deadline (4 s once saw a
            // single attempt while the whole suite ran in parallel on two cores).
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: started + .seconds(8))
            let error = try #require(result.error)
            #expect(error == .deadlineExceeded && error.isTransient)
            #expect(error.platformCode == "ServiceUnavailable" && error.httpStatus == 503)
            #expect(result.attempts >= 2 && result.attempts < 1000)
            #expect(started.duration(to: .now) < .seconds(30))  // hang guard
            #expect(simulator.state.stats().cancelCalls == 0)
        }
    }

    @Test("simulator latency beyond the read timeout: timeout, transient")
    func readTimeout() async throws {
        try await withSimulatorAndClient(configure: {
            $0.timeouts = .init(connect: .seconds(2), read: .milliseconds(300))
            $0.retry = .none
        }) { simulator, client in
            simulator.state.injectFault(FaultRule(count: 1, latencyMilliseconds: 3000))
            let started = ContinuousClock.now
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            let error = try #require(result.error)
            // A timeout (not the success the simulator sends after 3 s) shows the answer was not awaited.
            #expect(error == .timeout && error.isTransient && result.attempts == 1)
            #expect(started.duration(to: .now) < .seconds(30))  // hang guard
        }
    }

    @Test("a read timeout is retried, and the retry succeeds")
    func readTimeoutRetried() async throws {
        // A read timeout of seconds: the retry's answer must arrive within it even on a loaded machine.
        try await withSimulatorAndClient(configure: {
            $0.timeouts = .init(connect: .seconds(2), read: .seconds(2))
        }) { simulator, client in
            simulator.state.injectFault(FaultRule(count: 1, latencyMilliseconds: 6000))
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded && result.attempts == 2)
        }
    }

    @Test("a body that trickles past connect + read is a timeout even though no silence reaches the read timeout")
    func slowBody() async throws {
        try await withSimulatorAndClient(configure: {
            // Generous enough that a loaded CI machine still connects and delivers the request in time (with
            // 500 ms each, a busy run once timed out before the request reached the simulator).
            $0.timeouts = .init(connect: .seconds(2), read: .milliseconds(1_500))
            $0.retry = .none
        }) { simulator, client in
            // Ten pieces 900 ms apart: never 1.5 s of silence, 9 s in all, past the 3.5 s an attempt may last.
            simulator.state.injectFault(FaultRule(count: 1, slowBodyMilliseconds: 9_000))
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            let error = try #require(result.error)
            #expect(error == .timeout && error.isTransient && result.attempts == 1)
            // The slow answer was the real one: the platform acted, the client could not know.
            #expect(simulator.state.tasks(deviceName: "dev-000001")?.map(\.status) == ["CANCELED"])
        }
    }

    @Test("a slow body within the attempt's time is read whole")
    func slowBodyWithin() async throws {
        try await withSimulatorAndClient(configure: {
            $0.timeouts = .init(connect: .seconds(5), read: .seconds(5))
            $0.retry = .none
        }) { simulator, client in
            simulator.state.injectFault(FaultRule(count: 1, slowBodyMilliseconds: 500))
            let started = ContinuousClock.now
            let result = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded && result.attempts == 1)
            #expect(started.duration(to: .now) >= .milliseconds(450))
        }
    }

    @Test("a caller cancelled while the body trickles in gets `cancelled` at once, not at the attempt's end")
    func cancelledDuringSlowBody() async throws {
        try await withSimulatorAndClient(configure: {
            $0.timeouts = .init(connect: .seconds(10), read: .seconds(30))
            $0.retry = .none
        }) { simulator, client in
            // The head comes at once, the body over 20 s: the call is reading the body when it is cancelled.
            simulator.state.injectFault(FaultRule(count: 1, slowBodyMilliseconds: 20_000))
            let call = Task { await client.cancelOTATaskByDevice(Self.request, deadline: nil) }
            try await waitUntil { simulator.state.stats().cancelCalls == 1 }
            try await Task.sleep(for: .milliseconds(300))
            let cancelled = ContinuousClock.now
            call.cancel()
            let result = await call.value
            #expect(result.error == .cancelled && result.attempts == 1)
            // Hang guard: neither the 20 s body nor the 40 s attempt limit was waited for.
            #expect(cancelled.duration(to: .now) < .seconds(10))
        }
    }

    @Test("25 calls at the default 10 calls/s (burst 10) take at least 1.4 s and all succeed")
    func pacing() async throws {
        try await withSimulatorAndClient(configure: { $0.rateLimit = .default }) { simulator, client in
            let started = ContinuousClock.now
            let results = await withTaskGroup(of: PlatformCallResult.self) { group in
                for index in 0..<25 {
                    let request = CancelOTATaskByDeviceRequest(
                        productKey: "demoProduct",
                        firmwareId: "demoFirmware",
                        deviceNames: [String(format: "dev-%06d", index + 10)]
                    )
                    group.addTask { await client.cancelOTATaskByDevice(request, deadline: nil) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(started.duration(to: .now) >= .milliseconds(1400))
            #expect(results.count == 25 && results.allSatisfy(\.succeeded))
            #expect(simulator.state.stats().cancelCalls == 25)
        }
    }
}
