// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import TestSupport
import Testing

/// `examples/python/request.py`, the documented way to integrate, run with paho-mqtt from PyPI against a worker, a
/// broker and the demo's simulator: it must get its correlated reply.
@Suite("Examples", .timeLimit(.minutes(10)))
struct ExampleTests {
    static let package = "paho-mqtt==2.1.0"

    static var environmentDirectory: String {
        if let path = ProcessInfo.processInfo.environment["OTA_PAHO_VENV"], !path.isEmpty { return path }
        return FileManager.default.temporaryDirectory.appendingPathComponent("ota-cancel-worker-venvs/paho-mqtt-2.1.0")
            .path
    }

    static let script = WorkerStack.repositoryRoot + "/examples/python/request.py"

    @Test("the Python requester (paho-mqtt, MQTT 5) gets its correlated reply; its exit status follows the outcome")
    func pythonRequester() async throws {
        let python = try await PythonVirtualEnvironment.python(at: Self.environmentDirectory, packages: [Self.package])
        try await withWorkerStack { stack in
            let run = try await runProcess(
                python,
                [
                    Self.script, "--port", "\(stack.broker.port)", "--product-key", "demoProduct", "--firmware-id",
                    "demoFirmware", "--job-id", "demoJob", "--reason", "example", "dev-000901", "dev-000902",
                ],
                timeout: .seconds(60)
            )
            #expect(run.exitCode == 0, "\(run)")
            let reply = try stack.reply(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["reason"]?.stringValue == "example")
            // Its Correlation Data (32 hex digits, UTF-8 text) is the reply's correlationId too.
            #expect(reply["correlationId"]?.stringValue?.wholeMatch(of: /[0-9a-f]{32}/) != nil)
            #expect(reply["devices"]?["canceled"] == .array([.string("dev-000901"), .string("dev-000902")]))
            #expect(stack.status(of: "dev-000901") == ["CANCELED"])

            // A command the worker rejects (an invalid device name): exit status 2, the reply says why.
            let rejected = try await runProcess(
                python,
                [
                    Self.script, "--port", "\(stack.broker.port)", "--product-key", "demoProduct", "--firmware-id",
                    "demoFirmware", "x",
                ],
                timeout: .seconds(60)
            )
            #expect(rejected.exitCode == 2, "\(rejected)")
            let refusal = try stack.reply(rejected.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(refusal["status"]?.stringValue == "rejected")
            #expect(refusal["errors"]?.arrayValue?.isEmpty == false)

            // Nobody listening on the port: exit status 4.
            let unreachable = try await runProcess(
                python,
                [Self.script, "--port", "1", "--product-key", "p", "--firmware-id", "f", "dev-000001"],
                timeout: .seconds(60)
            )
            #expect(unreachable.exitCode == 4, "\(unreachable)")
        }
    }
}
