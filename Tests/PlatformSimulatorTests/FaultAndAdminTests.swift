// SPDX-License-Identifier: Apache-2.0
import AsyncHTTPClient
import Foundation
import PlatformSignature
import PlatformSimulator
import Testing

/// Fault injection (in code and through the admin API), latency, and the admin endpoints.
@Suite("Faults and admin API")
struct FaultAndAdminTests {
    static let cancel = SignedCaller.cancelParameters(deviceNames: ["dev-queued"])

    @Test("an HTTP 503 rule with a count and retry-after applies to that many calls, then the real answer returns")
    func serviceUnavailable() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 503, count: 2, retryAfterMilliseconds: 1500))
            for _ in 0..<2 {
                let answer = try await caller.call(Self.cancel)
                #expect(answer.status == 503)
                #expect(answer.string("Code") == "ServiceUnavailable")
                #expect(answer.keys == ["Code", "HostId", "Message", "Recommend", "RequestId"])
                #expect(answer.header("x-acs-retry-after") == "1500")
            }
            #expect(status(simulator.state, "t-queued") == "QUEUED")
            let answer = try await caller.call(Self.cancel)
            #expect(answer.bool("Success") == true)
            #expect(answer.header("x-acs-retry-after") == nil)
            #expect(status(simulator.state, "t-queued") == "CANCELED")
            #expect(simulator.state.faults().isEmpty)
            let stats = simulator.state.stats()
            #expect(stats.faultsInjected == 2)
            #expect(stats.cancelCalls == 1)
            #expect(stats.errorAnswers == 2)
            #expect(stats.requests == 3)
        }
    }

    @Test("an iot.* code is a business error: HTTP 200, Success false, in the configured style")
    func businessFault() async throws {
        try await withSimulator(testConfiguration(responseStyle: .tuya)) { simulator, caller in
            simulator.state.injectFault(FaultRule(errorCode: "iot.system.SystemException", count: 1))
            let answer = try await caller.call(Self.cancel)
            #expect(answer.status == 200)
            #expect(answer.keys == ["code", "errorMessage", "requestId", "success"])
            #expect(answer.string("code") == "iot.system.SystemException")
            #expect(answer.bool("success") == false)
        }
    }

    @Test("default codes follow the status and vice versa")
    func defaults() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 500, count: 1))
            simulator.state.injectFault(FaultRule(errorCode: "Throttling.Api", count: 1))
            simulator.state.injectFault(FaultRule(httpStatus: 429, count: 1))
            let internalError = try await caller.call(Self.cancel)
            #expect(internalError.status == 500)
            #expect(internalError.string("Code") == "InternalError")
            let throttling = try await caller.call(Self.cancel)
            #expect(throttling.status == 400)
            #expect(throttling.string("Code") == "Throttling.Api")
            let tooMany = try await caller.call(Self.cancel)
            #expect(tooMany.status == 429)
            #expect(tooMany.string("Code") == "Throttling")
        }
    }

    @Test("a rule with an action applies only to that action; rules apply in order")
    func actionFilter() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 500, count: 1, action: "QueryOTAJob"))
            simulator.state.injectFault(FaultRule(httpStatus: 503, count: 1))
            let cancel = try await caller.call(Self.cancel)
            #expect(cancel.status == 503)
            let query = try await caller.call(action: "QueryOTAJob", ["JobId": "job1"])
            #expect(query.status == 500)
            #expect(try await caller.call(Self.cancel).bool("Success") == true)
        }
    }

    @Test("a dropped connection gives the client no answer; with afterOperation the cancel happened anyway")
    func droppedConnection() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(count: 1, dropConnection: true))
            await #expect(throws: (any Error).self) { try await caller.call(Self.cancel) }
            #expect(status(simulator.state, "t-queued") == "QUEUED")

            simulator.state.injectFault(FaultRule(count: 1, dropConnection: true, afterOperation: true))
            await #expect(throws: (any Error).self) {
                try await caller.call(SignedCaller.cancelParameters(deviceNames: ["dev-confirm"]))
            }
            #expect(status(simulator.state, "t-confirm") == "CANCELED")

            // The server keeps serving after both.
            let answer = try await caller.call(Self.cancel)
            #expect(answer.bool("Success") == true)
            let stats = simulator.state.stats()
            #expect(stats.connectionsDropped == 2)
            #expect(stats.faultsInjected == 2)
            #expect(stats.cancelCalls == 2)
        }
    }

    @Test("afterOperation with an error: the platform acted, the client hears a failure")
    func errorAfterOperation() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 500, count: 1, afterOperation: true))
            let answer = try await caller.call(Self.cancel)
            #expect(answer.status == 500)
            #expect(status(simulator.state, "t-queued") == "CANCELED")
            #expect(simulator.state.stats().cancelCalls == 1)
            #expect(simulator.state.stats().errorAnswers == 1)

            // The operation's own error and the fault's are one error answer, not two.
            simulator.state.injectFault(FaultRule(httpStatus: 503, count: 1, afterOperation: true))
            let both = try await caller.call(SignedCaller.cancelParameters(deviceNames: ["dev-ghost"]))
            #expect(both.status == 503)
            #expect(simulator.state.stats().errorAnswers == 2)
        }
    }

    @Test("latency: the configured one on every answer, a rule's on top of it")
    func latency() async throws {
        try await withSimulator(testConfiguration(latency: .milliseconds(200))) { simulator, caller in
            let clock = ContinuousClock()
            var start = clock.now
            #expect(try await caller.call(Self.cancel).bool("Success") == true)
            #expect(clock.now - start >= .milliseconds(200))

            simulator.state.injectFault(FaultRule(count: 1, latencyMilliseconds: 300))
            start = clock.now
            let delayed = try await caller.call(SignedCaller.cancelParameters(deviceNames: ["dev-confirm"]))
            #expect(clock.now - start >= .milliseconds(500))
            // A latency-only rule delays the real answer.
            #expect(delayed.bool("Success") == true)
            #expect(simulator.state.stats().faultsInjected == 1)
        }
    }

    @Test("admin API: stats, devices, tasks, faults, reset")
    func adminAPI() async throws {
        try await withSimulator { simulator, caller in
            #expect(try await caller.call(Self.cancel).bool("Success") == true)

            let stats = try await caller.raw("GET", "/_sim/stats")
            #expect(stats.status == 200)
            #expect(stats.int("requests") == 1)
            #expect(stats.int("cancelCalls") == 1)
            #expect(stats.int("tasksCancelled") == 1)
            #expect(stats.header("content-type")?.hasPrefix("application/json") == true)
            // The admin request itself is not counted.
            #expect(simulator.state.stats().requests == 1)

            let device = try await caller.raw("GET", "/_sim/devices/dev-twojobs")
            #expect(device.status == 200)
            #expect(device.keys == ["deviceName", "productKey", "tasks"])
            #expect(device.string("deviceName") == "dev-twojobs")
            #expect(device.string("productKey") == "pk1")
            let tasks = try #require(device.json["tasks"] as? [[String: Any]])
            #expect(tasks.map { $0["taskId"] as? String } == ["t-twojobs-1", "t-twojobs-2"])
            #expect(tasks.map { $0["status"] as? String } == ["QUEUED", "QUEUED"])
            #expect(tasks.map { $0["jobId"] as? String } == ["job1", "job2"])
            #expect(tasks.map { $0["firmwareId"] as? String } == ["fw1", "fw1"])

            let special = try await caller.raw("GET", "/_sim/devices/user%40host%3A8080")
            #expect(special.string("deviceName") == "user@host:8080")
            #expect(try await caller.raw("GET", "/_sim/devices/dev-ghost").status == 404)
            // dev-queued exists in pk1 and pk2.
            #expect(try await caller.raw("GET", "/_sim/devices/dev-queued").status == 409)
            let inProduct = try await caller.raw("GET", "/_sim/devices/dev-queued?productKey=pk2")
            #expect(inProduct.string("productKey") == "pk2")

            let setStatus = try await caller.raw("PUT", "/_sim/tasks/t-twojobs-1", body: #"{"status":"IN_PROGRESS"}"#)
            #expect(setStatus.status == 200)
            #expect(status(simulator.state, "t-twojobs-1") == "IN_PROGRESS")
            #expect(try await caller.raw("PUT", "/_sim/tasks/t-twojobs-1", body: #"{"status":"DONE"}"#).status == 400)
            #expect(try await caller.raw("PUT", "/_sim/tasks/nope", body: #"{"status":"QUEUED"}"#).status == 404)

            let added = try await caller.raw("POST", "/_sim/faults", body: #"{"httpStatus":503,"count":1}"#)
            #expect(added.status == 201)
            #expect(simulator.state.faults() == [FaultRule(httpStatus: 503, count: 1)])
            #expect(try await caller.raw("POST", "/_sim/faults", body: #"{"count":0,"httpStatus":500}"#).status == 400)
            #expect(try await caller.raw("POST", "/_sim/faults", body: #"{"count":1}"#).status == 400)
            #expect(try await caller.raw("POST", "/_sim/faults", body: "not json").status == 400)
            #expect(try await caller.raw("DELETE", "/_sim/faults").status == 200)
            #expect(simulator.state.faults().isEmpty)

            let reset = try await caller.raw("POST", "/_sim/reset")
            #expect(reset.status == 200)
            #expect(simulator.state.stats() == SimulatorStats())
            #expect(status(simulator.state, "t-queued") == "QUEUED")
            #expect(status(simulator.state, "t-twojobs-1") == "QUEUED")
        }
    }

    @Test("read-back: ListOTATaskByJob pages and filters, QueryOTAJob describes the job")
    func readBack() async throws {
        try await withSimulator { _, caller in
            #expect(try await caller.call(Self.cancel).bool("Success") == true)
            let page = try await caller.call(
                action: "ListOTATaskByJob",
                ["JobId": "job1", "PageSize": "3", "CurrentPage": "2"]
            )
            #expect(page.bool("Success") == true, "\(page.body)")
            #expect(page.int("Total") == 9)
            #expect(page.int("PageSize") == 3)
            #expect(page.int("PageCount") == 3)
            #expect(page.int("CurrentPage") == 2)
            let items = try #require(page.object("Data")?["SimpleOTATaskInfo"] as? [[String: Any]])
            #expect(items.map { $0["TaskId"] as? String } == ["t-progress", "t-succeeded", "t-failed"])
            #expect(items.first?["ProductName"] as? String == "Product one")
            #expect(items.first?["DestVersion"] as? String == "2.0.0")

            let filtered = try await caller.call(
                action: "ListOTATaskByJob",
                [
                    "JobId": "job1", "TaskStatus": "CANCELED", "DeviceNames.1": "dev-queued",
                    "DeviceNames.2": "dev-canceled",
                ]
            )
            let canceled = try #require(filtered.object("Data")?["SimpleOTATaskInfo"] as? [[String: Any]])
            #expect(canceled.map { $0["DeviceName"] as? String } == ["dev-queued", "dev-canceled"])

            let bad = try await caller.call(action: "ListOTATaskByJob", ["JobId": "job1", "PageSize": "101"])
            #expect(bad.status == 400)
            #expect(bad.string("Code") == "InvalidParameter")
            #expect(try await caller.call(action: "ListOTATaskByJob", [:]).string("Code") == "MissingParameter")

            let job = try await caller.call(action: "QueryOTAJob", ["JobId": "job2"])
            #expect(job.bool("Success") == true)
            #expect(job.object("Data")?["JobStatus"] as? String == "IN_PROGRESS")
            #expect(job.object("Data")?["FirmwareId"] as? String == "fw1")
            let missing = try await caller.call(action: "QueryOTAJob", ["JobId": "nope"])
            #expect(missing.status == 200)
            #expect(missing.string("Code") == "iot.system.IllegalRequest")
        }
    }

    @Test("read-back in Tuya style uses lower camel case throughout")
    func readBackTuya() async throws {
        try await withSimulator(testConfiguration(responseStyle: .tuya)) { _, caller in
            let page = try await caller.call(action: "ListOTATaskByJob", ["JobId": "job2"])
            #expect(
                page.keys == ["code", "currentPage", "data", "pageCount", "pageSize", "requestId", "success", "total"]
            )
            let items = try #require(page.object("data")?["simpleOTATaskInfo"] as? [[String: Any]])
            #expect(items.first?["taskId"] as? String == "t-twojobs-2")
            #expect(items.first?["iotId"] as? String == "pk1.dev-twojobs")
        }
    }

    @Test("read-back per device: ListOTAUnfinishedTaskByDevice lists one device's unfinished tasks in the states asked")
    func unfinishedTasksByDevice() async throws {
        try await withSimulator { _, caller in
            func tasks(_ parameters: [String: String]) async throws -> [String] {
                let answer = try await caller.call(action: "ListOTAUnfinishedTaskByDevice", parameters)
                #expect(answer.bool("Success") == true, "\(answer.body)")
                let items = try #require(answer.object("Data")?["SimpleOTATaskInfo"] as? [[String: Any]])
                return items.compactMap { $0["TaskId"] as? String }
            }
            let unfinished = ["CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS"]
            var all = ["ProductKey": "pk1", "DeviceName": "dev-twojobs"]
            for (offset, status) in unfinished.enumerated() { all["TaskStatusList.\(offset + 1)"] = status }
            #expect(try await tasks(all) == ["t-twojobs-1", "t-twojobs-2"])
            all["DeviceName"] = "dev-progress"
            #expect(try await tasks(all) == ["t-progress"])
            all["DeviceName"] = "dev-succeeded"
            #expect(try await tasks(all) == [], "a finished task is not listed")
            all["DeviceName"] = "dev-notask"
            #expect(try await tasks(all) == [])
            // One state, by TaskStatus; the device by its IotId; a module the tasks are not in.
            #expect(try await tasks(["ProductKey": "pk1", "DeviceName": "dev-progress", "TaskStatus": "QUEUED"]) == [])
            #expect(try await tasks(["IotId": "pk1.dev-progress", "TaskStatus": "IN_PROGRESS"]) == ["t-progress"])
            #expect(
                try await tasks(["IotId": "pk1.dev-progress", "TaskStatus": "IN_PROGRESS", "ModuleName": "ble"]) == []
            )
            // The rules: a state is required and must be unfinished; ProductKey and DeviceName go together.
            let noState = try await caller.call(
                action: "ListOTAUnfinishedTaskByDevice",
                ["ProductKey": "pk1", "DeviceName": "dev-progress"]
            )
            #expect(noState.status == 400 && noState.string("Code") == "MissingParameter", "\(noState.body)")
            let finished = try await caller.call(
                action: "ListOTAUnfinishedTaskByDevice",
                ["ProductKey": "pk1", "DeviceName": "dev-progress", "TaskStatus": "SUCCEEDED"]
            )
            #expect(finished.status == 400 && finished.string("Code") == "InvalidParameter", "\(finished.body)")
            let half = try await caller.call(
                action: "ListOTAUnfinishedTaskByDevice",
                ["ProductKey": "pk1", "TaskStatus": "QUEUED"]
            )
            #expect(half.string("Code") == "MissingParameter", "\(half.body)")
            let unknown = try await caller.call(
                action: "ListOTAUnfinishedTaskByDevice",
                ["ProductKey": "pk1", "DeviceName": "dev-nobody", "TaskStatus": "QUEUED"]
            )
            #expect(unknown.status == 200 && unknown.string("Code") == "iot.device.NotExistedDevice", "\(unknown.body)")
        }
    }

    @Test("ListOTAUnfinishedTaskByDevice in Tuya style")
    func unfinishedTasksTuya() async throws {
        try await withSimulator(testConfiguration(responseStyle: .tuya)) { _, caller in
            let answer = try await caller.call(
                action: "ListOTAUnfinishedTaskByDevice",
                ["ProductKey": "pk1", "DeviceName": "dev-twojobs", "TaskStatus": "QUEUED"]
            )
            #expect(answer.keys == ["code", "data", "requestId", "success"], "\(answer.body)")
            let items = try #require(answer.object("data")?["simpleOTATaskInfo"] as? [[String: Any]])
            #expect(items.map { $0["taskId"] as? String } == ["t-twojobs-1", "t-twojobs-2"])
            #expect(items.first?["moduleName"] as? String == "default")
        }
    }
}
