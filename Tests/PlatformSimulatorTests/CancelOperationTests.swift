// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature
import PlatformSimulator
import Testing

/// `CancelOTATaskByDevice` over real HTTP: state changes, answers, and every operation error.
@Suite("CancelOTATaskByDevice")
struct CancelOperationTests {
    static let everyState = [
        "dev-confirm", "dev-queued", "dev-notified", "dev-progress", "dev-succeeded", "dev-failed", "dev-canceled",
    ]

    @Test("cancellable tasks become CANCELED, final ones stay, other firmware untouched", arguments: Placement.allCases)
    func cancelsCancellableTasks(placement: Placement) async throws {
        try await withSimulator { simulator, caller in
            let answer = try await caller.call(
                SignedCaller.cancelParameters(deviceNames: Self.everyState),
                placement: placement
            )
            #expect(answer.status == 200)
            #expect(answer.keys == ["RequestId", "Success"])
            #expect(answer.bool("Success") == true)
            #expect(isUpperCaseUUID(answer.string("RequestId")))
            #expect(answer.header("x-acs-request-id") == answer.string("RequestId"))
            #expect(answer.body == #"{"RequestId":"\#(answer.string("RequestId") ?? "")","Success":true}"#)

            let state = simulator.state
            for taskId in ["t-confirm", "t-queued", "t-notified", "t-progress"] {
                #expect(status(state, taskId) == "CANCELED", "\(taskId)")
            }
            #expect(status(state, "t-succeeded") == "SUCCEEDED")
            #expect(status(state, "t-failed") == "FAILED")
            #expect(status(state, "t-canceled") == "CANCELED")
            // Same device, other firmware (fw2) and other product (pk2): untouched.
            #expect(status(state, "t-queued-fw2") == "QUEUED")
            #expect(status(state, "t-other") == "QUEUED")
            // Every matching task counts the call, whatever its state.
            #expect(state.allTasks().first { $0.taskId == "t-succeeded" }?.cancelCalls == 1)
            #expect(state.allTasks().first { $0.taskId == "t-queued-fw2" }?.cancelCalls == 0)

            let stats = state.stats()
            #expect(stats.requests == 1)
            #expect(stats.cancelCalls == 1)
            #expect(stats.tasksCancelled == 4)
            #expect(stats.devicesCancelled == 4)
            #expect(stats.deviceNamesRequested == 7)
            #expect(stats.largestCancelBatch == 7)
            #expect(stats.errorAnswers == 0)
        }
    }

    @Test("Tuya cancels pending confirmation, pending push and pushed tasks only: one in upgrade runs on")
    func tuyaLeavesTasksInUpgrade() async throws {
        try await withSimulator(testConfiguration(responseStyle: .tuya)) { simulator, caller in
            let answer = try await caller.call(SignedCaller.cancelParameters(deviceNames: Self.everyState))
            #expect(answer.status == 200 && answer.bool("success") == true, "\(answer.body)")
            let state = simulator.state
            for taskId in ["t-confirm", "t-queued", "t-notified"] {
                #expect(status(state, taskId) == "CANCELED", "\(taskId)")
            }
            #expect(status(state, "t-progress") == "IN_PROGRESS")
            #expect(status(state, "t-succeeded") == "SUCCEEDED" && status(state, "t-failed") == "FAILED")
            #expect(state.stats().tasksCancelled == 3)
        }
    }

    @Test("a second cancel of the same devices succeeds and changes nothing")
    func cancelIsIdempotent() async throws {
        try await withSimulator { simulator, caller in
            let parameters = SignedCaller.cancelParameters(deviceNames: ["dev-queued", "dev-notask"])
            let first = try await caller.call(parameters)
            let second = try await caller.call(parameters)
            #expect(first.bool("Success") == true)
            #expect(second.bool("Success") == true)
            #expect(first.string("RequestId") != second.string("RequestId"))
            #expect(status(simulator.state, "t-queued") == "CANCELED")
            #expect(simulator.state.allTasks().first { $0.taskId == "t-queued" }?.cancelCalls == 2)
            let stats = simulator.state.stats()
            #expect(stats.cancelCalls == 2)
            #expect(stats.tasksCancelled == 1)
        }
    }

    @Test("names needing percent-encoding (@ :) and form-style + for spaces are decoded before verifying")
    func decodingRules() async throws {
        try await withSimulator { simulator, caller in
            // `Note` is not an operation parameter; it is signed like any other. On the wire its space travels
            // as `+` (form style, as the Tea SDK sends it), while the signature covers `%20`.
            var parameters = SignedCaller.cancelParameters(deviceNames: ["user@host:8080"])
            parameters["Note"] = "rollback now"
            var sentOnWire = ""
            let answer = try await caller.call(
                parameters,
                placement: .postForm,
                wire: { encoded in
                    sentOnWire = encoded.replacingOccurrences(of: "rollback%20now", with: "rollback+now")
                    return sentOnWire
                }
            )
            #expect(sentOnWire.contains("user%40host%3A8080"))
            #expect(sentOnWire.contains("Note=rollback+now"))
            #expect(answer.bool("Success") == true, "\(answer.body)")
            #expect(status(simulator.state, "t-special") == "CANCELED")
        }
    }

    @Test("parameters split between query and form body are signed together")
    func queryAndBodyMerge() async throws {
        try await withSimulator { simulator, caller in
            let parameters = caller.common(action: "CancelOTATaskByDevice").merging(
                SignedCaller.cancelParameters(deviceNames: ["dev-queued"])
            ) { _, new in new }
            let signed = RPCSigner(accessKeyId: "testid", accessKeySecret: AccessKeySecret("testsecret"))
                .sign(method: .post, parameters: parameters)
            let all = signed.parameters.sorted { $0.key < $1.key }
            let encode = { (pairs: ArraySlice<(key: String, value: String)>) in
                pairs.map {
                    RPCCanonicalization.percentEncode($0.key) + "=" + RPCCanonicalization.percentEncode($0.value)
                }
                .joined(separator: "&")
            }
            let query = encode(all[..<5])
            let body = encode(all[5...])
            let answer = try await caller.raw(
                "POST",
                "/?" + query,
                body: body,
                contentType: "application/x-www-form-urlencoded; charset=utf-8"
            )
            #expect(answer.bool("Success") == true, "\(answer.body)")
            #expect(status(simulator.state, "t-queued") == "CANCELED")

            // The same name in both halves is refused: it has no defined meaning in a signed request.
            let doubled = try await caller.raw(
                "POST",
                "/?" + query,
                body: encode(all[...]),
                contentType: "application/x-www-form-urlencoded"
            )
            #expect(doubled.status == 400)
            #expect(doubled.string("Code") == "InvalidParameter")
        }
    }

    @Test("JobId restricts the cancel to that batch")
    func jobIdRestriction() async throws {
        try await withSimulator { simulator, caller in
            let answer = try await caller.call(
                SignedCaller.cancelParameters(deviceNames: ["dev-twojobs"], jobId: "job2")
            )
            #expect(answer.bool("Success") == true)
            #expect(status(simulator.state, "t-twojobs-2") == "CANCELED")
            #expect(status(simulator.state, "t-twojobs-1") == "QUEUED")

            // A job of another firmware, or an unknown one, is refused and changes nothing.
            for jobId in ["job3", "no-such-job"] {
                let refused = try await caller.call(
                    SignedCaller.cancelParameters(deviceNames: ["dev-twojobs"], jobId: jobId)
                )
                #expect(refused.status == 200)
                #expect(refused.bool("Success") == false)
                #expect(refused.string("Code") == "iot.system.IllegalRequest")
            }
            #expect(status(simulator.state, "t-twojobs-1") == "QUEUED")
        }
    }

    @Test("a configured instance must be named exactly; without one, none may be named")
    func iotInstanceId() async throws {
        try await withSimulator(testConfiguration(iotInstanceId: "iot-cn-test")) { simulator, caller in
            for given in [nil, "iot-cn-other"] as [String?] {
                let answer = try await caller.call(
                    SignedCaller.cancelParameters(deviceNames: ["dev-queued"], iotInstanceId: given)
                )
                #expect(answer.status == 200)
                #expect(answer.bool("Success") == false)
                #expect(answer.string("Code") == "iot.system.InstanceNotFound")
            }
            #expect(status(simulator.state, "t-queued") == "QUEUED")
            let answer = try await caller.call(
                SignedCaller.cancelParameters(deviceNames: ["dev-queued"], iotInstanceId: "iot-cn-test")
            )
            #expect(answer.bool("Success") == true)
            #expect(status(simulator.state, "t-queued") == "CANCELED")
        }
        try await withSimulator { _, caller in
            let answer = try await caller.call(
                SignedCaller.cancelParameters(deviceNames: ["dev-queued"], iotInstanceId: "iot-cn-test")
            )
            #expect(answer.string("Code") == "iot.system.InstanceNotFound")
        }
    }

    /// Operation errors: (parameters, HTTP status, code, a fragment of the message).
    static let operationErrors: [(String, [String: String], Int, String, String)] = [
        ("no ProductKey", ["FirmwareId": "fw1", "DeviceName.1": "dev-queued"], 400, "MissingParameter", "ProductKey"),
        ("no FirmwareId", ["ProductKey": "pk1", "DeviceName.1": "dev-queued"], 400, "MissingParameter", "FirmwareId"),
        (
            "FirmwareID spelling", ["ProductKey": "pk1", "FirmwareID": "fw1", "DeviceName.1": "dev-queued"], 400,
            "MissingParameter", "FirmwareId"
        ),
        ("no DeviceName", ["ProductKey": "pk1", "FirmwareId": "fw1"], 200, "iot.device.NullDeviceName", "empty"),
        (
            "empty DeviceName", ["ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.1": ""], 200,
            "iot.device.NullDeviceName", "empty"
        ),
        (
            "gap in DeviceName.N",
            [
                "ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.1": "dev-queued",
                "DeviceName.3": "dev-confirm",
            ], 400, "InvalidParameter", "DeviceName.2"
        ),
        (
            "DeviceName.0", ["ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.0": "dev-queued"], 400,
            "InvalidParameter", "DeviceName.0"
        ),
        (
            "duplicate names",
            [
                "ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.1": "dev-queued",
                "DeviceName.2": "dev-confirm", "DeviceName.3": "dev-queued",
            ], 400, "InvalidParameter",
            "DeviceName.3 repeats DeviceName.1"
        ),
        (
            "badly formed name", ["ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.1": "a b"], 200,
            "iot.device.InvalidFormattedDeviceName", "a b"
        ),
        (
            "empty ProductKey", ["ProductKey": "", "FirmwareId": "fw1", "DeviceName.1": "dev-queued"], 200,
            "iot.prod.NullProductKey", "ProductKey"
        ),
        (
            "unknown product", ["ProductKey": "nope", "FirmwareId": "fw1", "DeviceName.1": "dev-queued"], 200,
            "iot.prod.NotExistedProduct", "product"
        ),
        (
            "unknown firmware", ["ProductKey": "pk1", "FirmwareId": "nope", "DeviceName.1": "dev-queued"], 200,
            "iot.ota.FirmwareNotFound", "firmware"
        ),
        (
            "firmware of another product",
            ["ProductKey": "pk1", "FirmwareId": "fwOther", "DeviceName.1": "dev-queued"],
            200, "iot.ota.FirmwareNotFound", "firmware"
        ),
        (
            "unknown device",
            [
                "ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.1": "dev-queued",
                "DeviceName.2": "dev-ghost",
            ], 200, "iot.device.NotExistedDevice", "dev-ghost"
        ),
    ]

    @Test("operation errors: code, status, message; nothing changes", arguments: operationErrors)
    func operationError(_ error: (String, [String: String], Int, String, String)) async throws {
        let (_, parameters, httpStatus, code, fragment) = error
        try await withSimulator { simulator, caller in
            let before = simulator.state.allTasks()
            let answer = try await caller.call(parameters)
            #expect(answer.status == httpStatus, "\(answer.body)")
            #expect(answer.string("Code") == code, "\(answer.body)")
            if httpStatus == 200 {
                #expect(answer.keys == ["Code", "ErrorMessage", "RequestId", "Success"])
                #expect(answer.bool("Success") == false)
                #expect(answer.string("ErrorMessage")?.contains(fragment) == true, "\(answer.body)")
            } else {
                #expect(answer.keys == ["Code", "HostId", "Message", "Recommend", "RequestId"])
                #expect(answer.string("Message")?.contains(fragment) == true, "\(answer.body)")
            }
            #expect(isUpperCaseUUID(answer.string("RequestId")))
            #expect(simulator.state.allTasks() == before)
            let stats = simulator.state.stats()
            #expect(stats.cancelCalls == 1)
            #expect(stats.errorAnswers == 1)
            #expect(stats.tasksCancelled == 0)
        }
    }

    @Test("200 names pass, 201 are refused")
    func deviceNameLimit() async throws {
        try await withSimulator(testConfiguration(fixture: nil, generateDevices: 201)) { simulator, caller in
            let names = (1...201).map { String(format: "dev-%06d", $0) }
            let tooMany = try await caller.call(
                SignedCaller.cancelParameters(productKey: "demoProduct", firmwareId: "demoFirmware", deviceNames: names)
            )
            #expect(tooMany.status == 400)
            #expect(tooMany.string("Code") == "InvalidParameter")
            #expect(tooMany.string("Message")?.contains("201") == true)
            #expect(simulator.state.stats().tasksCancelled == 0)

            let answer = try await caller.call(
                SignedCaller.cancelParameters(
                    productKey: "demoProduct",
                    firmwareId: "demoFirmware",
                    deviceNames: Array(names.prefix(200))
                ),
                placement: .postForm
            )
            #expect(answer.bool("Success") == true, "\(answer.body)")
            let stats = simulator.state.stats()
            #expect(stats.tasksCancelled == 200)
            #expect(stats.largestCancelBatch == 200)
            #expect(simulator.state.tasks(deviceName: "dev-000200")?.first?.status == "CANCELED")
            #expect(simulator.state.tasks(deviceName: "dev-000201")?.first?.status == "QUEUED")
        }
    }

    @Test("Tuya style: lower camel case, empty code on success")
    func tuyaStyle() async throws {
        try await withSimulator(testConfiguration(responseStyle: .tuya)) { simulator, caller in
            let answer = try await caller.call(SignedCaller.cancelParameters(deviceNames: ["dev-queued"]))
            let requestId = try #require(answer.string("requestId"))
            #expect(answer.body == #"{"code":"","requestId":"\#(requestId)","success":true}"#)
            #expect(isUpperCaseUUID(requestId))
            #expect(status(simulator.state, "t-queued") == "CANCELED")

            let refused = try await caller.call(SignedCaller.cancelParameters(deviceNames: ["dev-ghost"]))
            #expect(refused.status == 200)
            #expect(refused.keys == ["code", "errorMessage", "requestId", "success"])
            #expect(refused.string("code") == "iot.device.NotExistedDevice")
            #expect(refused.bool("success") == false)

            // Gateway errors keep the Alibaba shape in both styles.
            let gateway = try await caller.call(["ProductKey": "pk1", "DeviceName.1": "dev-queued"])
            #expect(gateway.status == 400)
            #expect(gateway.keys == ["Code", "HostId", "Message", "Recommend", "RequestId"])
        }
    }
}
