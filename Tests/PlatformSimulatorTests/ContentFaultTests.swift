// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

@testable import PlatformSimulator

/// Fault rules that match by what a call carries (device name, product, firmware), the batch-size histogram a
/// benchmark reads names per call from, and the many-firmware demo catalog of `--generate-firmwares`.
@Suite("Content-matched faults and batch sizes")
struct ContentFaultTests {
    static func cancel(_ names: [String], firmwareId: String = "fw1", productKey: String = "pk1") -> [String: String] {
        SignedCaller.cancelParameters(productKey: productKey, firmwareId: firmwareId, deviceNames: names)
    }

    // MARK: Matching (pure)

    @Test("matches: deviceName looks only at DeviceName.N values of cancels; productKey and firmwareId are exact")
    func matching() {
        let parameters = [
            "ProductKey": "pk1", "FirmwareId": "fw1", "DeviceName.1": "dev-a", "DeviceName.2": "dev-b",
            "JobId": "dev-c",
        ]
        let cancel = "CancelOTATaskByDevice"
        #expect(FaultRule(httpStatus: 503, deviceName: "dev-b").matches(action: cancel, parameters: parameters))
        #expect(!FaultRule(httpStatus: 503, deviceName: "dev-x").matches(action: cancel, parameters: parameters))
        // A value equal to the name under another key is not a DeviceName.N.
        #expect(!FaultRule(httpStatus: 503, deviceName: "dev-c").matches(action: cancel, parameters: parameters))
        #expect(!FaultRule(httpStatus: 503, deviceName: "dev-").matches(action: cancel, parameters: parameters))
        // Another action never carries DeviceName.N in this sense.
        #expect(!FaultRule(httpStatus: 503, deviceName: "dev-a").matches(action: "QueryOTAJob", parameters: parameters))

        #expect(FaultRule(httpStatus: 503, productKey: "pk1").matches(action: cancel, parameters: parameters))
        #expect(!FaultRule(httpStatus: 503, productKey: "pk").matches(action: cancel, parameters: parameters))
        #expect(FaultRule(httpStatus: 503, firmwareId: "fw1").matches(action: cancel, parameters: parameters))
        #expect(!FaultRule(httpStatus: 503, firmwareId: "fw2").matches(action: cancel, parameters: parameters))
        #expect(!FaultRule(httpStatus: 503, firmwareId: "fw1").matches(action: cancel, parameters: [:]))

        // Every matcher that is set must agree.
        let all = FaultRule(
            httpStatus: 503,
            action: cancel,
            deviceName: "dev-a",
            productKey: "pk1",
            firmwareId: "fw1"
        )
        #expect(all.matches(action: cancel, parameters: parameters))
        var otherFirmware = parameters
        otherFirmware["FirmwareId"] = "fw2"
        #expect(!all.matches(action: cancel, parameters: otherFirmware))
        #expect(FaultRule(httpStatus: 503).matches(action: "QueryOTAJob", parameters: [:]))
    }

    @Test("the JSON form takes the new keys, and refuses empty matchers and deviceName with another action")
    func json() throws {
        let rule = try FaultRule.decode(
            json: Data(#"{"deviceName":"dev-a","productKey":"pk1","firmwareId":"fw1","httpStatus":503,"count":2}"#.utf8)
        )
        #expect(rule == FaultRule(httpStatus: 503, count: 2, deviceName: "dev-a", productKey: "pk1", firmwareId: "fw1"))
        for bad in [
            #"{"deviceName":"","httpStatus":503}"#, #"{"productKey":"","httpStatus":503}"#,
            #"{"firmwareId":"","httpStatus":503}"#, #"{"deviceName":"dev-a","action":"QueryOTAJob","httpStatus":503}"#,
            #"{"deviceName":"dev-a"}"#,
        ] {
            #expect(throws: SimulatorError.invalidConfiguration(""), "\(bad)") {
                try FaultRule.decode(json: Data(bad.utf8))
            }
        }
        #expect(
            FaultRule(httpStatus: 503, action: "CancelOTATaskByDevice", deviceName: "dev-a").problem() == nil
        )
    }

    // MARK: Over HTTP

    @Test("every call carrying a device fails, wherever the name sits in the batch; calls without it succeed")
    func everyCallWithDevice() async throws {
        try await withSimulator { simulator, caller in
            let added = try await caller.raw(
                "POST",
                "/_sim/faults",
                body: #"{"deviceName":"dev-queued","errorCode":"iot.system.IllegalRequest"}"#
            )
            #expect(added.status == 201)
            for names in [["dev-queued"], ["dev-confirm", "dev-queued"], ["dev-queued", "dev-notified"]] {
                let answer = try await caller.call(Self.cancel(names))
                #expect(answer.status == 200, "\(names)")
                #expect(answer.bool("Success") == false, "\(names)")
                #expect(answer.string("Code") == "iot.system.IllegalRequest", "\(names)")
            }
            // The failed calls changed nothing (the fault comes before the operation).
            #expect(status(simulator.state, "t-queued") == "QUEUED")
            #expect(status(simulator.state, "t-confirm") == "CONFIRM")
            #expect(status(simulator.state, "t-notified") == "NOTIFIED")

            let other = try await caller.call(Self.cancel(["dev-confirm", "dev-progress"]))
            #expect(other.bool("Success") == true)
            #expect(status(simulator.state, "t-confirm") == "CANCELED")
            // A read call never carries DeviceName.N, so the rule leaves it alone.
            #expect(try await caller.call(action: "QueryOTAJob", ["JobId": "job1"]).bool("Success") == true)
            // No count: still in force.
            #expect(try await caller.call(Self.cancel(["dev-queued"])).bool("Success") == false)
            #expect(simulator.state.faults().count == 1)
            #expect(simulator.state.stats().faultsInjected == 4)
        }
    }

    @Test("the first 2 calls carrying a device fail with 503; calls without it in between do not use up the count")
    func countCountsHits() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 503, count: 2, deviceName: "dev-confirm"))
            var outcomes: [String] = []
            for names in [
                ["dev-queued"], ["dev-notified", "dev-confirm"], ["dev-progress"], ["dev-confirm"], ["dev-twojobs"],
                ["dev-confirm"],
            ] {
                let answer = try await caller.call(Self.cancel(names))
                outcomes.append(answer.status == 503 ? "503" : answer.bool("Success") == true ? "ok" : "other")
            }
            #expect(outcomes == ["ok", "503", "ok", "503", "ok", "ok"])
            #expect(simulator.state.faults().isEmpty)
            #expect(status(simulator.state, "t-confirm") == "CANCELED")
            // dev-notified was in the failed batch and named in no other call.
            #expect(status(simulator.state, "t-notified") == "NOTIFIED")
        }
    }

    @Test("productKey and firmwareId rules hit only their calls; a miss goes on to the next rule")
    func productAndFirmware() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 500, firmwareId: "fw2"))
            simulator.state.injectFault(FaultRule(httpStatus: 503, productKey: "pk2"))
            let fw2 = try await caller.call(Self.cancel(["dev-queued"], firmwareId: "fw2"))
            #expect(fw2.status == 500)
            #expect(status(simulator.state, "t-queued-fw2") == "QUEUED")
            let pk2 = try await caller.call(Self.cancel(["dev-queued"], firmwareId: "fwOther", productKey: "pk2"))
            #expect(pk2.status == 503)
            #expect(status(simulator.state, "t-other") == "QUEUED")
            let fw1 = try await caller.call(Self.cancel(["dev-queued"]))
            #expect(fw1.bool("Success") == true)
            #expect(status(simulator.state, "t-queued") == "CANCELED")
            #expect(simulator.state.stats().faultsInjected == 2)

            // The rules as the admin API lists them, new keys included.
            let listed = try await caller.raw("GET", "/_sim/faults")
            let rules = try #require(try JSONSerialization.jsonObject(with: Data(listed.body.utf8)) as? [[String: Any]])
            #expect(rules.map { $0["firmwareId"] as? String } == ["fw2", nil])
            #expect(rules.map { $0["productKey"] as? String } == [nil, "pk2"])
        }
    }

    // MARK: Batch sizes

    @Test("BatchSizeHistogram: counts, totals, nearest-rank percentiles, sparse JSON both ways")
    func histogram() throws {
        var histogram = BatchSizeHistogram()
        #expect(histogram.percentile(0.5) == nil)
        for size in [1, 1, 1, 3, 200, 200] { histogram.record(size) }
        histogram.record(0)
        histogram.record(201)
        #expect(histogram[1] == 3 && histogram[3] == 1 && histogram[200] == 2 && histogram[2] == 0)
        #expect(histogram[0] == 0 && histogram[201] == 0)
        #expect(histogram.calls == 6)
        #expect(histogram.deviceNames == 3 + 3 + 400)
        #expect(histogram.percentile(0.5) == 1)
        #expect(histogram.percentile(0.51) == 3)
        #expect(histogram.percentile(0.9) == 200)
        #expect(histogram.percentile(1) == 200)
        #expect(histogram.percentile(0) == nil)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(histogram), as: UTF8.self)
        #expect(json == #"{"1":3,"200":2,"3":1}"#)
        #expect(try JSONDecoder().decode(BatchSizeHistogram.self, from: Data(json.utf8)) == histogram)
        #expect(String(decoding: try encoder.encode(BatchSizeHistogram()), as: UTF8.self) == "{}")
        for bad in [#"{"0":1}"#, #"{"201":1}"#, #"{"x":1}"#, #"{"5":-1}"#] {
            #expect(throws: DecodingError.self, "\(bad)") {
                try JSONDecoder().decode(BatchSizeHistogram.self, from: Data(bad.utf8))
            }
        }
    }

    @Test("stats count the names of every cancel that reached the operation, successful or not, and reset clears them")
    func batchSizesOverHTTP() async throws {
        try await withSimulator(testConfiguration(fixture: standardFixture, generateDevices: 201)) {
            simulator,
            caller in
            let generated = (1...201).map { String(format: "dev-%06d", $0) }
            func demo(_ names: ArraySlice<String>) -> [String: String] {
                Self.cancel(Array(names), firmwareId: "demoFirmware", productKey: "demoProduct")
            }
            #expect(try await caller.call(Self.cancel(["dev-queued"])).bool("Success") == true)
            #expect(try await caller.call(Self.cancel(["dev-confirm"])).bool("Success") == true)
            #expect(try await caller.call(demo(generated[0..<3])).bool("Success") == true)
            #expect(try await caller.call(demo(generated[0..<200])).bool("Success") == true)
            // Reached the operation and failed there: counted.
            let unknown = try await caller.call(Self.cancel(["dev-queued", "dev-notified"], firmwareId: "nope"))
            #expect(unknown.bool("Success") == false)
            // Refused before the operation: a parameter error (201 names) and a fault; not counted.
            #expect(try await caller.call(demo(generated[0..<201])).status == 400)
            simulator.state.injectFault(FaultRule(httpStatus: 503, count: 1))
            #expect(try await caller.call(Self.cancel(["dev-progress"])).status == 503)

            var expected = BatchSizeHistogram()
            for size in [1, 1, 3, 200, 2] { expected.record(size) }
            #expect(simulator.state.stats().cancelBatchSizes == expected)
            let stats = try await caller.raw("GET", "/_sim/stats")
            let sizes = try #require(stats.object("cancelBatchSizes") as? [String: Int])
            #expect(sizes == ["1": 2, "2": 1, "3": 1, "200": 1])
            #expect(simulator.state.stats().cancelBatchSizes.percentile(0.5) == 2)

            _ = try await caller.raw("POST", "/_sim/reset")
            #expect(simulator.state.stats().cancelBatchSizes == BatchSizeHistogram())
        }
    }

    // MARK: Many firmware

    @Test("generate-firmwares K: demoFirmware plus demoFirmware-2…K, each with a QUEUED task per device")
    func generatedFirmwares() async throws {
        var configuration = testConfiguration(fixture: nil, generateDevices: 3)
        configuration.generateFirmwares = 3
        try await withSimulator(configuration) { simulator, caller in
            let tasks = simulator.state.allTasks()
            #expect(tasks.count == 9)
            #expect(
                tasks.map(\.taskId) == [
                    "task-000001", "task-000002", "task-000003", "task-000001-2", "task-000002-2", "task-000003-2",
                    "task-000001-3", "task-000002-3", "task-000003-3",
                ]
            )
            #expect(
                tasks.map(\.firmwareId)
                    == ["demoFirmware", "demoFirmware-2", "demoFirmware-3"].flatMap { [$0, $0, $0] }
            )
            #expect(tasks.map(\.jobId) == ["demoJob", "demoJob-2", "demoJob-3"].flatMap { [$0, $0, $0] })
            #expect(tasks.allSatisfy { $0.status == "QUEUED" && $0.productKey == "demoProduct" })
            #expect(
                simulator.state.tasks(deviceName: "dev-000002")?.map(\.taskId)
                    == ["task-000002", "task-000002-2", "task-000002-3"]
            )

            // A cancel in one firmware (and its job) leaves the device's other tasks alone.
            var parameters = Self.cancel(["dev-000002"], firmwareId: "demoFirmware-3", productKey: "demoProduct")
            parameters["JobId"] = "demoJob-3"
            let answer = try await caller.call(parameters)
            #expect(answer.bool("Success") == true)
            #expect(
                simulator.state.tasks(deviceName: "dev-000002")?.map(\.status) == ["QUEUED", "QUEUED", "CANCELED"]
            )
        }
        // One firmware is the default and the same catalog as before.
        let single = try SimulatorState(configuration: SimulatorConfiguration(generateDevices: 2))
        #expect(single.allTasks().map(\.taskId) == ["task-000001", "task-000002"])
    }

    @Test("generate-firmwares is checked: 1…999, and at most 5,000,000 tasks")
    func generatedFirmwaresChecked() {
        for (devices, firmwares) in [(10, 0), (10, 1000), (10_000, 501)] {
            #expect(throws: SimulatorError.invalidConfiguration(""), "\(devices) × \(firmwares)") {
                try SimulatorConfiguration(generateDevices: devices, generateFirmwares: firmwares).validate()
            }
        }
        #expect(throws: Never.self) {
            try SimulatorConfiguration(generateDevices: 10_000, generateFirmwares: 500).validate()
        }
    }
}
