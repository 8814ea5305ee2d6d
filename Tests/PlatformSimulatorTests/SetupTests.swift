// SPDX-License-Identifier: Apache-2.0
import Foundation
import NIOCore
import PlatformSignature
import PlatformSimulator
import Testing

/// Building a simulator: generated devices, fixtures, configuration errors, start-up and the listening line.
@Suite("Setup")
struct SetupTests {
    @Test("generate-devices seeds demoProduct/demoFirmware/demoJob and six-digit device names, one QUEUED task each")
    func generatedDevices() throws {
        let state = try SimulatorState(configuration: SimulatorConfiguration(generateDevices: 12))
        let tasks = state.allTasks()
        #expect(tasks.count == 12)
        #expect(
            tasks.first
                == SimulatedTask(
                    taskId: "task-000001",
                    deviceName: "dev-000001",
                    productKey: "demoProduct",
                    firmwareId: "demoFirmware",
                    jobId: "demoJob",
                    status: "QUEUED",
                    cancelCalls: 0
                )
        )
        #expect(tasks.last?.deviceName == "dev-000012")
        #expect(state.tasks(deviceName: "dev-000012")?.map(\.taskId) == ["task-000012"])
        #expect(state.tasks(deviceName: "dev-000013") == nil)
        #expect(state.tasks(deviceName: "dev-12") == nil)
    }

    @Test("a fixture file loads, with its defaults, next to generated devices")
    func fixtureFile() async throws {
        let json = """
            {
              "products": [{"productKey": "a1V4kdeABCD", "productName": "Thermostat"}],
              "firmwares": [{"firmwareId": "T0F5b5tpFnHQrgfkABCD030100", "productKey": "a1V4kdeABCD", "destVersion": "3.1.0"}],
              "jobs": [{"jobId": "wahVIzGkCMuAUE2gDERM02ABCD", "firmwareId": "T0F5b5tpFnHQrgfkABCD030100", "jobStatus": "PLANNED"}],
              "devices": [{"productKey": "a1V4kdeABCD", "deviceName": "thermo-01"}, {"productKey": "a1V4kdeABCD", "deviceName": "thermo-02", "iotId": "X1"}],
              "tasks": [
                {"deviceName": "thermo-01", "jobId": "wahVIzGkCMuAUE2gDERM02ABCD"},
                {"taskId": "custom", "deviceName": "thermo-02", "jobId": "wahVIzGkCMuAUE2gDERM02ABCD", "status": "SUCCEEDED"}
              ]
            }
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sim-fixture-\(UUID().uuidString).json"
        ).path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        var configuration = testConfiguration(fixture: nil, generateDevices: 2)
        configuration.fixturePath = path
        try await withSimulator(configuration) { simulator, caller in
            let tasks = simulator.state.allTasks()
            #expect(
                tasks.map(\.taskId) == ["wahVIzGkCMuAUE2gDERM02ABCD-thermo-01", "custom", "task-000001", "task-000002"]
            )
            #expect(tasks.map(\.status) == ["QUEUED", "SUCCEEDED", "QUEUED", "QUEUED"])
            #expect(tasks[0].firmwareId == "T0F5b5tpFnHQrgfkABCD030100")
            #expect(tasks[0].productKey == "a1V4kdeABCD")

            let answer = try await caller.call(
                SignedCaller.cancelParameters(
                    productKey: "a1V4kdeABCD",
                    firmwareId: "T0F5b5tpFnHQrgfkABCD030100",
                    deviceNames: ["thermo-01", "thermo-02"]
                )
            )
            #expect(answer.bool("Success") == true, "\(answer.body)")
            #expect(simulator.state.allTasks().prefix(2).map(\.status) == ["CANCELED", "SUCCEEDED"])

            let job = try await caller.call(action: "QueryOTAJob", ["JobId": "wahVIzGkCMuAUE2gDERM02ABCD"])
            #expect(job.object("Data")?["JobStatus"] as? String == "PLANNED")
            #expect(job.object("Data")?["DestVersion"] as? String == "3.1.0")
            #expect(job.object("Data")?["ProductName"] as? String == "Thermostat")
        }
    }

    @Test(
        "fixture errors name the file and the entry",
        arguments: [
            (#"{"product": []}"#, "fixtureUnreadable", "unknown field \"product\""),
            (
                #"{"devices": [{"productKey": "p", "deviceName": "dev1", "colour": "red"}]}"#, "fixtureUnreadable",
                "devices[0]"
            ),
            (#"{"devices": [{"productKey": "p"}]}"#, "fixtureUnreadable", "missing field \"deviceName\""),
            (#"[1, 2]"#, "fixtureUnreadable", "top level"),
            (
                #"{"devices": [{"productKey": "p", "deviceName": "dev1"}]}"#, "invalidFixture",
                "devices[0]: unknown product p"
            ),
            (
                #"{"products": [{"productKey": "p"}], "devices": [{"productKey": "p", "deviceName": "a b"}]}"#,
                "invalidFixture",
                "devices[0]: device name"
            ),
            (#"{"products": [{"productKey": "p"}, {"productKey": "p"}]}"#, "invalidFixture", "products[1]"),
            (
                #"{"products": [{"productKey": "p"}], "firmwares": [{"firmwareId": "f", "productKey": "p"}], "jobs": [{"jobId": "j", "firmwareId": "f"}], "devices": [{"productKey": "p", "deviceName": "dev1"}], "tasks": [{"deviceName": "dev1", "jobId": "j", "status": "DONE"}]}"#,
                "invalidFixture", "tasks[0]: status DONE"
            ),
            (
                #"{"products": [{"productKey": "p"}], "firmwares": [{"firmwareId": "f", "productKey": "p"}], "jobs": [{"jobId": "j", "firmwareId": "f"}], "tasks": [{"deviceName": "dev1", "jobId": "j"}]}"#,
                "invalidFixture", "tasks[0]: unknown device dev1"
            ),
        ]
    )
    func fixtureErrors(_ example: (String, String, String)) throws {
        let (json, code, fragment) = example
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sim-bad-\(UUID().uuidString).json")
            .path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try SimulatorState(configuration: SimulatorConfiguration(fixturePath: path))
            Issue.record("loaded: \(json)")
        } catch {
            #expect(error.shortDescription == code)
            #expect(error.message.contains(fragment), "\(error.message)")
            if code == "fixtureUnreadable" { #expect(error.message.hasPrefix(path)) }
        }
    }

    @Test("a missing fixture file is fixtureUnreadable")
    func missingFixture() {
        #expect(throws: SimulatorError.fixtureUnreadable("")) {
            try SimulatorState(configuration: SimulatorConfiguration(fixturePath: "/nonexistent/fixture.json"))
        }
    }

    @Test("generated names clash with a fixture that defines demoProduct")
    func generatedClash() {
        #expect(throws: SimulatorError.invalidFixture("")) {
            try SimulatorState(
                configuration: SimulatorConfiguration(
                    generateDevices: 1,
                    fixture: SimulatorFixture(products: [.init(productKey: "demoProduct")])
                )
            )
        }
    }

    @Test(
        "invalid settings are refused, naming the setting",
        arguments: [
            (SimulatorConfiguration(port: 70_000), "port"),
            (SimulatorConfiguration(accounts: [:]), "accounts"),
            (SimulatorConfiguration(accounts: ["id": AccessKeySecret("  ")]), "secret"),
            (SimulatorConfiguration(generateDevices: 1_000_000), "generateDevices"),
            (SimulatorConfiguration(qps: -1), "qps"),
            (SimulatorConfiguration(iotInstanceId: ""), "iotInstanceId"),
        ]
    )
    func invalidConfiguration(_ example: (SimulatorConfiguration, String)) {
        do {
            try example.0.validate()
            Issue.record("accepted")
        } catch {
            #expect(error == .invalidConfiguration(""))
            #expect(error.message.contains(example.1), "\(error.message)")
        }
    }

    @Test("the secret never shows in a configuration's description")
    func secretStaysHidden() {
        var configuration = SimulatorConfiguration()
        configuration.useSingleAccount(accessKeyId: "id", accessKeySecret: "hunter2-secret")
        #expect(!"\(configuration)".contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
    }

    @Test("the listening line names the endpoint with the bound port; the endpoint answers")
    func listeningLine() async throws {
        try await withSimulator { simulator, caller in
            #expect(simulator.port > 0)
            #expect(simulator.endpoint == "http://127.0.0.1:\(simulator.port)")
            #expect(simulator.listeningLine == "ota-platform-sim listening on http://127.0.0.1:\(simulator.port)")
            let stats = try await caller.raw("GET", "/_sim/stats")
            #expect(stats.status == 200)
        }
        #expect(RunningSimulator.endpoint(host: "::1", port: 8080) == "http://[::1]:8080")
    }

    @Test("a port already in use is startupFailed; the first simulator keeps running")
    func portInUse() async throws {
        try await withSimulator { simulator, caller in
            var configuration = testConfiguration()
            configuration.port = simulator.port
            await #expect(throws: SimulatorError.startupFailed("")) {
                try await withPlatformSimulator(configuration: configuration, logger: quietLogger) { _ in () }
            }
            let stats = try await caller.raw("GET", "/_sim/stats")
            #expect(stats.status == 200)
        }
    }

    @Test("the simulator stops when the body throws, and the error comes through")
    func stopsOnError() async throws {
        struct Boom: Error {}
        var port = 0
        do {
            try await withPlatformSimulator(configuration: testConfiguration(), logger: quietLogger) { running in
                port = running.port
                throw Boom()
            }
            Issue.record("the body's error was lost")
        } catch {
            #expect(error is Boom)
        }
        try #require(port > 0)
        // The server is gone: nothing answers the admin API on its port any more. (Re-binding the same port
        // is no proof: other tests running in parallel may take a freed port at any moment.)
        let caller = SignedCaller(endpoint: "http://127.0.0.1:\(port)", timeout: .seconds(3))
        let answer = try? await caller.raw("GET", "/_sim/stats")
        #expect(answer?.status != 200, "a simulator still answers on port \(port)")
    }
}
