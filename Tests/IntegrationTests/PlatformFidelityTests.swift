// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import PlatformSimulator
import Testing

/// What the worker answers for each platform error and fault: status, the failed group's code, whether it is
/// transient, and the exact number of attempts. Real parts throughout: mosquitto, the worker's ServiceGroup, the
/// simulator over HTTP, and `mosquitto_rr` as the requester.
///
/// Errors the worker cannot provoke from a correct request are shown on the simulator's side only, in
/// `PlatformSimulatorTests` (`AuthenticationTests`, `CancelOperationTests`): `MissingParameter` (the worker
/// always sends every required parameter), `InvalidTimeStamp.Format` (it always formats the time correctly),
/// and `InvalidParameter` for more than 200 or duplicate names (the worker splits a command into calls of at most
/// 200, and the command schema rejects duplicates before anything is called; both are shown here).
///
/// Commands whose failures are transient would be retried by the worker until their deadline (default one hour);
/// those tests set `defaultDeadline: 0` (no deadline), so the outcome is final after the client's own attempts
/// and the count is exact.
@Suite("Platform fidelity: the worker's reply for each error and fault", .timeLimit(.minutes(5)))
struct PlatformFidelityTests {
    static func devices(_ range: ClosedRange<Int>) -> [String] { range.map { String(format: "dev-%06d", $0) } }

    /// A fixture where JobId matters: one firmware in two jobs, a device with a task in each.
    static let jobFixture = SimulatorFixture(
        products: [.init(productKey: "pk1")],
        firmwares: [.init(firmwareId: "fw1", productKey: "pk1")],
        jobs: [.init(jobId: "job1", firmwareId: "fw1"), .init(jobId: "job2", firmwareId: "fw1")],
        devices: [.init(productKey: "pk1", deviceName: "dev-two-jobs")],
        tasks: [
            .init(taskId: "t-job1", deviceName: "dev-two-jobs", jobId: "job1", status: "QUEUED"),
            .init(taskId: "t-job2", deviceName: "dev-two-jobs", jobId: "job2", status: "IN_PROGRESS"),
        ]
    )

    // MARK: Authentication

    @Test(
        "SignatureDoesNotMatch (wrong secret): failed, permanent, 1 attempt, HTTP 400, the server's string-to-sign kept"
    )
    func signatureDoesNotMatch() async throws {
        try await withWorkerStack(secret: "not-the-secret") { stack in
            let reply = try await stack.cancel(["dev-000001"])
            let group = try expectFailed(
                reply,
                code: "SignatureDoesNotMatch",
                transient: false,
                attempts: 1,
                httpStatus: 400
            )
            #expect(group["message"]?.stringValue?.contains("string to sign is:GET&%2F&AccessKeyId%3Dtestid") == true)
            #expect(!reply.serialized().contains("not-the-secret"))
            #expect(stack.status(of: "dev-000001") == ["QUEUED"])
            #expect(stack.simulator.state.stats().authFailures == 1)
        }
    }

    @Test("InvalidAccessKeyId.NotFound: failed, permanent, 1 attempt, HTTP 404")
    func unknownAccessKey() async throws {
        try await withWorkerStack(arguments: TestArguments(accessKeyId: "nobody", platformQps: 0)) { stack in
            let reply = try await stack.cancel(["dev-000001"])
            try expectFailed(reply, code: "InvalidAccessKeyId.NotFound", transient: false, attempts: 1, httpStatus: 404)
            #expect(stack.cancelCalls() == 0)
        }
    }

    @Test("InvalidTimeStamp.Expired (platform clock 20 min ahead): failed, permanent, 1 attempt, HTTP 400")
    func expiredTimestamp() async throws {
        let simulator = SimulatorConfiguration(generateDevices: 10, qps: 0, clockOffset: .seconds(20 * 60))
        try await withWorkerStack(simulator: simulator) { stack in
            let reply = try await stack.cancel(["dev-000001"])
            try expectFailed(reply, code: "InvalidTimeStamp.Expired", transient: false, attempts: 1, httpStatus: 400)
            #expect(stack.status(of: "dev-000001") == ["QUEUED"])
        }
    }

    @Test("a platform clock 10 min off is within the 15-minute tolerance: succeeded, 1 attempt")
    func toleratedSkew() async throws {
        let simulator = SimulatorConfiguration(generateDevices: 10, qps: 0, clockOffset: .seconds(-10 * 60))
        try await withWorkerStack(simulator: simulator) { stack in
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 1)
        }
    }

    @Test("SignatureNonceUsed: re-signed at once with a fresh nonce, succeeded, 2 attempts")
    func nonceUsed() async throws {
        try await withWorkerStack { stack in
            stack.simulator.state.injectFault(FaultRule(errorCode: "SignatureNonceUsed", count: 1))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["attempts"]?.numberValue?.int64Value == 2)
            #expect(stack.status(of: "dev-000001") == ["CANCELED"])
        }
    }

    // MARK: Parameters

    @Test("more than 200 names never reach the platform in one call: 201 become 200 + 1, succeeded")
    func splitAbove200() async throws {
        try await withWorkerStack { stack in
            let reply = try await stack.cancel(Self.devices(1...201))
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["calls"]?.numberValue?.int64Value == 2 && reply["attempts"]?.numberValue?.int64Value == 2)
            let stats = stack.simulator.state.stats()
            #expect(stats.largestCancelBatch == 200 && stats.cancelCalls == 2 && stats.errorAnswers == 0)
        }
    }

    @Test("duplicate names are rejected by the schema before any call (the platform would say InvalidParameter)")
    func duplicateNames() async throws {
        try await withWorkerStack { stack in
            let reply = try await stack.cancel(["dev-000001", "dev-000002", "dev-000001"])
            #expect(reply["status"]?.stringValue == "rejected")
            let errors = reply["errors"]?.arrayValue ?? []
            #expect(errors.contains { $0["instanceLocation"]?.stringValue == "/deviceNames" })
            #expect(stack.cancelCalls() == 0)
            #expect(stack.simulator.state.stats().requests == 0)
        }
    }

    @Test(
        "unknown product, firmware or device: failed, permanent, 1 attempt, HTTP 200 with the IoT code",
        arguments: [
            ("noSuchProduct", "demoFirmware", "dev-000001", "iot.prod.NotExistedProduct"),
            ("demoProduct", "noSuchFirmware", "dev-000001", "iot.ota.FirmwareNotFound"),
            ("demoProduct", "demoFirmware", "ghost-0001", "iot.device.NotExistedDevice"),
        ]
    )
    func unknownReference(product: String, firmware: String, device: String, code: String) async throws {
        try await withWorkerStack { stack in
            let reply = try await stack.cancel([device], product: product, firmware: firmware)
            try expectFailed(reply, code: code, transient: false, attempts: 1, httpStatus: 200)
            #expect(stack.status(of: "dev-000001") == ["QUEUED"])
        }
    }

    @Test("JobId: an unknown job fails permanently (iot.system.IllegalRequest); a known one cancels only its tasks")
    func jobRestriction() async throws {
        let simulator = SimulatorConfiguration(fixture: Self.jobFixture, qps: 0)
        try await withWorkerStack(simulator: simulator) { stack in
            let unknown = try await stack.cancel(
                ["dev-two-jobs"],
                product: "pk1",
                firmware: "fw1",
                extra: #","jobId":"job9""#
            )
            try expectFailed(unknown, code: "iot.system.IllegalRequest", transient: false, attempts: 1, httpStatus: 200)
            #expect(stack.status(of: "dev-two-jobs") == ["QUEUED", "IN_PROGRESS"])
            let known = try await stack.cancel(
                ["dev-two-jobs"],
                product: "pk1",
                firmware: "fw1",
                extra: #","jobId":"job2""#
            )
            #expect(known["status"]?.stringValue == "succeeded" && known["attempts"]?.numberValue?.int64Value == 1)
            #expect(stack.status(of: "dev-two-jobs") == ["QUEUED", "CANCELED"])
        }
    }

    @Test("a wrong IotInstanceId: failed, permanent, 1 attempt, iot.system.InstanceNotFound")
    func instanceNotFound() async throws {
        let simulator = SimulatorConfiguration(generateDevices: 10, qps: 0, iotInstanceId: "iot-cn-test")
        try await withWorkerStack(simulator: simulator) { stack in
            let wrong = try await stack.cancel(["dev-000001"], extra: #","iotInstanceId":"iot-cn-other""#)
            try expectFailed(wrong, code: "iot.system.InstanceNotFound", transient: false, attempts: 1, httpStatus: 200)
            let right = try await stack.cancel(["dev-000001"], extra: #","iotInstanceId":"iot-cn-test""#)
            #expect(right["status"]?.stringValue == "succeeded")
            #expect(stack.status(of: "dev-000001") == ["CANCELED"])
        }
    }

    // MARK: Quota and throttling

    @Test("Throttling.User once: retried, succeeded, 2 attempts")
    func throttledOnce() async throws {
        try await withWorkerStack { stack in
            stack.simulator.state.injectFault(FaultRule(errorCode: "Throttling.User", count: 1))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["attempts"]?.numberValue?.int64Value == 2)
        }
    }

    @Test("Throttling.User throughout: failed, transient, all 3 attempts")
    func throttledThroughout() async throws {
        let arguments = TestArguments(platformQps: 0, platformMaxAttempts: 3, defaultDeadline: 0)
        try await withWorkerStack(arguments: arguments) { stack in
            stack.simulator.state.injectFault(FaultRule(errorCode: "Throttling.User"))
            let reply = try await stack.cancel(["dev-000001"])
            try expectFailed(reply, code: "Throttling.User", transient: true, attempts: 3, httpStatus: 400)
            #expect(stack.simulator.state.stats().faultsInjected == 3)
        }
    }

    @Test(
        "the platform's real quota (2 calls/s) and the worker paced to it: 5 calls spread over 2 s, every throttle retried"
    )
    func pacedToQuota() async throws {
        let simulator = SimulatorConfiguration(generateDevices: 1_000, qps: 2)
        try await withWorkerStack(simulator: simulator, arguments: TestArguments(platformQps: 2)) { stack in
            let started = ContinuousClock.now
            let reply = try await stack.cancel(Self.devices(1...1_000), timeout: 60)
            // Paced: 5 calls at 2/s with a burst of 1 cannot leave in less than 2 s (a lower bound: load cannot
            // make it shorter). Whether a stalled machine bunched some of them into a throttle is timing; the
            // accounting is not: each throttled answer cost exactly one more attempt, and all succeeded.
            #expect(ContinuousClock.now - started >= .seconds(2))
            #expect(reply["status"]?.stringValue == "succeeded")
            let stats = stack.simulator.state.stats()
            #expect(reply["calls"]?.numberValue?.int64Value == 5)
            #expect(reply["attempts"]?.numberValue?.int64Value == 5 + Int64(stats.throttled))
            #expect(stats.cancelCalls == 5)
        }
    }

    // MARK: Server errors

    @Test("HTTP 503 twice, then the platform recovers: succeeded, 3 attempts")
    func serviceUnavailableTwice() async throws {
        try await withWorkerStack { stack in
            stack.simulator.state.injectFault(FaultRule(httpStatus: 503, count: 2))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["attempts"]?.numberValue?.int64Value == 3)
            #expect(stack.cancelCalls() == 1 && stack.status(of: "dev-000001") == ["CANCELED"])
        }
    }

    @Test("HTTP 500 throughout: failed, transient, all 4 attempts, InternalError")
    func internalErrorThroughout() async throws {
        try await withWorkerStack(arguments: TestArguments(platformQps: 0, defaultDeadline: 0)) { stack in
            stack.simulator.state.injectFault(FaultRule(httpStatus: 500))
            let reply = try await stack.cancel(["dev-000001"])
            try expectFailed(reply, code: "InternalError", transient: true, attempts: 4, httpStatus: 500)
            #expect(stack.status(of: "dev-000001") == ["QUEUED"])
        }
    }

    @Test("iot.system.SystemException (HTTP 200, Success false) once: retried, succeeded, 2 attempts")
    func systemExceptionOnce() async throws {
        try await withWorkerStack { stack in
            stack.simulator.state.injectFault(FaultRule(errorCode: "iot.system.SystemException", count: 1))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 2)
        }
    }

    @Test("x-acs-retry-after 1500 ms is honoured: the second attempt waits at least 1.5 s, succeeded, 2 attempts")
    func retryAfter() async throws {
        try await withWorkerStack { stack in
            stack.simulator.state.injectFault(FaultRule(httpStatus: 503, count: 1, retryAfterMilliseconds: 1_500))
            let started = ContinuousClock.now
            let reply = try await stack.cancel(["dev-000001"])
            #expect(ContinuousClock.now - started >= .milliseconds(1_500))
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 2)
        }
    }

    @Test("a share (30%) of answers are 503: every command succeeds, each fault costs exactly one more attempt")
    func shareOfFaults() async throws {
        let simulator = SimulatorConfiguration(
            generateDevices: 100,
            qps: 0,
            faults: [FaultRule(httpStatus: 503, probability: 0.3)],
            randomSeed: 7
        )
        try await withWorkerStack(
            simulator: simulator,
            arguments: TestArguments(platformQps: 0, platformMaxAttempts: 10)
        ) { stack in
            var attempts: Int64 = 0
            for device in Self.devices(1...20) {
                let reply = try await stack.cancel([device])
                #expect(reply["status"]?.stringValue == "succeeded", "\(device): \(reply.serialized())")
                attempts += reply["attempts"]?.numberValue?.int64Value ?? 0
            }
            let stats = stack.simulator.state.stats()
            #expect(stats.faultsInjected > 0, "a 30% share hit none of 20+ calls")
            #expect(attempts == 20 + Int64(stats.faultsInjected))
            #expect(stats.cancelCalls == 20)
        }
    }

    // MARK: Transport

    @Test("latency beyond the read timeout once: the attempt times out, the retry succeeds, 2 attempts")
    func latencyBeyondReadTimeout() async throws {
        // Timeouts of seconds, so the retry's prompt answer fits even on a loaded machine.
        let arguments = TestArguments(platformConnectTimeout: 3, platformReadTimeout: 3, platformQps: 0)
        try await withWorkerStack(arguments: arguments) { stack in
            stack.simulator.state.injectFault(FaultRule(count: 1, latencyMilliseconds: 8_000))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 2)
            // The slow attempt was applied before its answer was late: the platform acted twice, harmlessly.
            #expect(stack.cancelCalls() == 2 && stack.status(of: "dev-000001") == ["CANCELED"])
        }
    }

    @Test("latency beyond the read timeout throughout: failed, transient, 2 of 2 attempts, Timeout")
    func latencyThroughout() async throws {
        let arguments = TestArguments(
            platformConnectTimeout: 1,
            platformReadTimeout: 1,
            platformQps: 0,
            platformMaxAttempts: 2,
            defaultDeadline: 0
        )
        try await withWorkerStack(arguments: arguments) { stack in
            stack.simulator.state.injectFault(FaultRule(latencyMilliseconds: 3_000))
            let reply = try await stack.cancel(["dev-000001"])
            let group = try expectFailed(reply, code: "Timeout", transient: true, attempts: 2, httpStatus: nil)
            #expect(group["requestId"] == nil)
        }
    }

    @Test("a dropped connection once (after the platform acted): retried, succeeded, 2 attempts")
    func droppedConnection() async throws {
        try await withWorkerStack { stack in
            stack.simulator.state.injectFault(FaultRule(count: 1, dropConnection: true, afterOperation: true))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 2)
            let stats = stack.simulator.state.stats()
            #expect(stats.connectionsDropped == 1 && stats.cancelCalls == 2)
        }
    }

    @Test("connections dropped throughout: failed, transient, 2 of 2 attempts, Transport")
    func droppedThroughout() async throws {
        let arguments = TestArguments(platformQps: 0, platformMaxAttempts: 2, defaultDeadline: 0)
        try await withWorkerStack(arguments: arguments) { stack in
            stack.simulator.state.injectFault(FaultRule(dropConnection: true))
            let reply = try await stack.cancel(["dev-000001"])
            try expectFailed(reply, code: "Transport", transient: true, attempts: 2, httpStatus: nil)
            #expect(stack.simulator.state.stats().connectionsDropped == 2)
            #expect(stack.status(of: "dev-000001") == ["QUEUED"])
        }
    }

    @Test("a slow body within the timeouts is read: succeeded, 1 attempt")
    func slowBodyWithin() async throws {
        let arguments = TestArguments(platformConnectTimeout: 5, platformReadTimeout: 5, platformQps: 0)
        try await withWorkerStack(arguments: arguments) { stack in
            stack.simulator.state.injectFault(FaultRule(count: 1, slowBodyMilliseconds: 800))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 1)
        }
    }

    @Test(
        "a body trickling past connect + read (no single silence above the read timeout): timed out, retried, 2 attempts"
    )
    func slowBodyBeyond() async throws {
        let arguments = TestArguments(platformConnectTimeout: 3, platformReadTimeout: 3, platformQps: 0)
        try await withWorkerStack(arguments: arguments) { stack in
            // Ten pieces, 1.2 s apart: never 3 s of silence, but 12 s in all, past the 6 s an attempt may last.
            stack.simulator.state.injectFault(FaultRule(count: 1, slowBodyMilliseconds: 12_000))
            let reply = try await stack.cancel(["dev-000001"])
            #expect(reply["status"]?.stringValue == "succeeded" && reply["attempts"]?.numberValue?.int64Value == 2)
            #expect(stack.cancelCalls() == 2)
        }
    }

    // MARK: Profiles

    @Test(
        "both profiles and both methods reach the platform and cancel: tuya sends no Format/Version/RegionId",
        arguments: [("aliyun", "GET"), ("aliyun", "POST"), ("tuya", "GET"), ("tuya", "POST")]
    )
    func profiles(profile: String, method: String) async throws {
        let simulator = SimulatorConfiguration(
            generateDevices: 10,
            qps: 0,
            responseStyle: profile == "tuya" ? .tuya : .aliyun
        )
        let arguments = TestArguments(platformMethod: method, platformProfile: profile, platformQps: 0)
        try await withWorkerStack(simulator: simulator, arguments: arguments) { stack in
            let reply = try await stack.cancel(["dev-000001"], extra: #","dryRun":true"#)
            let planned = try #require(reply["plannedCalls"]?.arrayValue?.first?["stringToSign"]?.stringValue)
            #expect(planned.hasPrefix(method + "&%2F&"))
            #expect(planned.contains("%26Format%3DJSON") == (profile == "aliyun"))
            #expect(planned.contains("%26Version%3D2018-01-20") == (profile == "aliyun"))
            #expect(planned.contains("SignatureVersion") == (profile == "aliyun"))
            let real = try await stack.cancel(["dev-000001"])
            #expect(real["status"]?.stringValue == "succeeded" && real["attempts"]?.numberValue?.int64Value == 1)
            #expect(stack.status(of: "dev-000001") == ["CANCELED"])
        }
    }
}

extension WorkerStack {
    /// Publishes a command for `devices` with `mosquitto_rr` and returns the reply, checked against the result
    /// schema.
    func cancel(
        _ devices: [String],
        product: String = "demoProduct",
        firmware: String = "demoFirmware",
        extra: String = "",
        timeout: Int = 30
    ) async throws -> JSONValue {
        let names = devices.map { "\"\($0)\"" }.joined(separator: ",")
        let command =
            #"{"productKey":""# + product + #"","firmwareId":""# + firmware + #"","deviceNames":["# + names + "]"
            + extra + "}"
        let correlation = "fidelity-" + UUID().uuidString.prefix(8)
        let fields = try await request(
            command,
            responseTopic: "ota/cancel/reply/" + correlation,
            correlationData: String(correlation),
            timeout: timeout
        )
        try #require(fields.count == 3, "unexpected mosquitto_rr output: \(fields)")
        #expect(fields[0] == correlation)
        return try reply(fields[2])
    }
}

/// Checks a reply of one failed call and returns its failed group.
@discardableResult
func expectFailed(
    _ reply: JSONValue,
    code: String,
    transient: Bool,
    attempts: Int64,
    httpStatus: Int64?,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> JSONValue {
    #expect(reply["status"]?.stringValue == "failed", "\(reply.serialized())", sourceLocation: sourceLocation)
    let groups = reply["failedGroups"]?.arrayValue ?? []
    try #require(groups.count == 1, "\(reply.serialized())", sourceLocation: sourceLocation)
    let group = groups[0]
    #expect(group["code"]?.stringValue == code, "\(reply.serialized())", sourceLocation: sourceLocation)
    #expect(group["transient"]?.boolValue == transient, "\(reply.serialized())", sourceLocation: sourceLocation)
    #expect(
        group["attempts"]?.numberValue?.int64Value == attempts,
        "\(reply.serialized())",
        sourceLocation: sourceLocation
    )
    #expect(reply["attempts"]?.numberValue?.int64Value == attempts, sourceLocation: sourceLocation)
    #expect(
        group["httpStatus"]?.numberValue?.int64Value == httpStatus,
        "\(reply.serialized())",
        sourceLocation: sourceLocation
    )
    if httpStatus != nil {
        #expect(group["requestId"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
    }
    return group
}
