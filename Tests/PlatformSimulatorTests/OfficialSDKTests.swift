// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature
import PlatformSimulator
import TestSupport
import Testing

/// Alibaba Cloud's official Python SDK (`aliyun-python-sdk-core` + `aliyun-python-sdk-iot`, from PyPI, pinned)
/// against the simulator: the strongest evidence available here that the simulator verifies requests the way
/// the real platform does, and that its `SignatureDoesNotMatch` carries the platform's string-to-sign.
///
/// The SDK lives in a virtual environment next to the test binary (one per build folder, reused across runs;
/// `OTA_PYTHON_SDK_VENV` overrides the place). If it cannot be installed, the test fails and says why: it never
/// skips.
@Suite("Official Python SDK against the simulator", .timeLimit(.minutes(10)))
struct OfficialSDKTests {
    static let corePackage = "aliyun-python-sdk-core==2.16.1"
    static let iotPackage = "aliyun-python-sdk-iot==8.59.0"

    @Test("GET and POST succeed and cancel the tasks; a wrong secret gets SignatureDoesNotMatch")
    func officialSDK() async throws {
        let python = try await SDKEnvironment.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Python/official_sdk_cancel.py").path
        let configuration = SimulatorConfiguration(generateDevices: 10, qps: 0)
        try await withPlatformSimulator(configuration: configuration, logger: quietLogger) { simulator in
            let host = "127.0.0.1:\(simulator.port)"
            func sdk(_ method: String, secret: String, devices: [String]) async throws -> [String: Any] {
                var arguments = [
                    script, "--endpoint", host, "--method", method, "--access-key-id", "testid", "--secret", secret,
                    "--product", "demoProduct", "--firmware", "demoFirmware",
                ]
                for device in devices { arguments += ["--device", device] }
                let result = try await runProcess(python, arguments, timeout: .seconds(120))
                try #require(result.exitCode == 0, "the SDK script failed: \(result)")
                let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
                return try #require(
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    "\(result)"
                )
            }

            // GET (the seed's shape, with the SDK's common parameters) and POST (the SDK's own shape).
            for (method, devices) in [("GET", ["dev-000001", "dev-000002"]), ("POST", ["dev-000003", "dev-000004"])] {
                let answer = try await sdk(method, secret: "testsecret", devices: devices)
                #expect(answer["ok"] as? Bool == true, "\(method): \(answer)")
                let body = answer["body"] as? [String: Any] ?? [:]
                #expect(body["Success"] as? Bool == true, "\(method): \(body)")
                #expect(isUpperCaseUUID(body["RequestId"] as? String))
                #expect(
                    (answer["stringToSign"] as? String)?.hasPrefix(
                        method + "&%2F&AccessKeyId%3Dtestid%26Action%3DCancelOTATaskByDevice"
                    ) == true
                )
                for device in devices {
                    #expect(
                        simulator.state.tasks(deviceName: device)?.map(\.status) == ["CANCELED"],
                        "\(method) \(device)"
                    )
                }
            }
            #expect(simulator.state.tasks(deviceName: "dev-000005")?.map(\.status) == ["QUEUED"])
            var stats = simulator.state.stats()
            #expect(
                stats.cancelCalls == 2 && stats.tasksCancelled == 4 && stats.authFailures == 0
                    && stats.errorAnswers == 0
            )

            // A wrong secret: the server answers SignatureDoesNotMatch (HTTP 400) with its string-to-sign. The SDK
            // compares that with its own and, finding them equal, reports InvalidAccessKeySecret: proof that the
            // simulator canonicalised the SDK's request byte for byte as the SDK did.
            let refused = try await sdk("POST", secret: "not-the-secret", devices: ["dev-000006"])
            #expect(refused["ok"] as? Bool == false)
            let raw = refused["rawBody"] as? [String: Any] ?? [:]
            #expect(raw["Code"] as? String == "SignatureDoesNotMatch", "\(refused)")
            let message = raw["Message"] as? String ?? ""
            #expect(message.contains("string to sign is:POST&%2F&AccessKeyId%3Dtestid"))
            #expect(refused["httpStatus"] as? Int == 400)
            #expect(
                refused["code"] as? String == "InvalidAccessKeySecret",
                "the SDK's string-to-sign differs from the server's: \(refused)"
            )
            #expect(isUpperCaseUUID(refused["requestId"] as? String))
            #expect(simulator.state.tasks(deviceName: "dev-000006")?.map(\.status) == ["QUEUED"])
            stats = simulator.state.stats()
            #expect(stats.cancelCalls == 2 && stats.authFailures == 2)
        }
    }

    @Test(
        "the read-back actions: ListOTATaskByJob and ListOTAUnfinishedTaskByDevice, GET and POST; a wrong secret refused"
    )
    func officialSDKReadBack() async throws {
        let python = try await SDKEnvironment.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Python/official_sdk_read_back.py").path
        let configuration = SimulatorConfiguration(generateDevices: 10, qps: 0)
        try await withPlatformSimulator(configuration: configuration, logger: quietLogger) { simulator in
            func sdk(
                _ action: String,
                _ method: String,
                secret: String = "testsecret",
                _ extra: [String]
            ) async throws
                -> [String: Any]
            {
                let arguments =
                    [
                        script, "--action", action, "--endpoint", "127.0.0.1:\(simulator.port)", "--method", method,
                        "--access-key-id", "testid", "--secret", secret,
                    ] + extra
                let result = try await runProcess(python, arguments, timeout: .seconds(120))
                try #require(result.exitCode == 0, "the SDK script failed: \(result)")
                let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
                return try #require(
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    "\(result)"
                )
            }
            // One device cancelled first, so that the answers show two states.
            let task = try #require(simulator.state.tasks(deviceName: "dev-000002")?.first?.taskId)
            #expect(simulator.state.setTaskStatus(taskId: task, status: "CANCELED"))
            for method in ["GET", "POST"] {
                let page = try await sdk(
                    "ListOTATaskByJob",
                    method,
                    ["--job", "demoJob", "--device", "dev-000001", "--device", "dev-000002"]
                )
                #expect(page["ok"] as? Bool == true, "\(method): \(page)")
                let body = page["body"] as? [String: Any] ?? [:]
                #expect(body["Success"] as? Bool == true && body["Total"] as? Int == 2, "\(method): \(body)")
                let items = (body["Data"] as? [String: Any])?["SimpleOTATaskInfo"] as? [[String: Any]] ?? []
                let states = Dictionary(
                    uniqueKeysWithValues: items.map {
                        ($0["DeviceName"] as? String ?? "", $0["TaskStatus"] as? String ?? "")
                    }
                )
                #expect(states == ["dev-000001": "QUEUED", "dev-000002": "CANCELED"], "\(method): \(items)")
                #expect(
                    (page["stringToSign"] as? String)?.hasPrefix(
                        method
                            + "&%2F&AccessKeyId%3Dtestid%26Action%3DListOTATaskByJob%26CurrentPage%3D1%26DeviceNames.1"
                    ) == true,
                    "\(page)"
                )

                for (device, expected) in [("dev-000001", ["QUEUED"]), ("dev-000002", [])] {
                    let unfinished = try await sdk(
                        "ListOTAUnfinishedTaskByDevice",
                        method,
                        ["--product", "demoProduct", "--device", device]
                            + ["CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS"].flatMap { ["--status", $0] }
                    )
                    #expect(unfinished["ok"] as? Bool == true, "\(method) \(device): \(unfinished)")
                    let data = (unfinished["body"] as? [String: Any])?["Data"] as? [String: Any]
                    let tasks = data?["SimpleOTATaskInfo"] as? [[String: Any]] ?? []
                    #expect(tasks.compactMap { $0["TaskStatus"] as? String } == expected, "\(method) \(device)")
                }
            }

            // A wrong secret is refused as for the cancel: SignatureDoesNotMatch with the server's string-to-sign.
            for action in ["ListOTATaskByJob", "ListOTAUnfinishedTaskByDevice"] {
                let refused = try await sdk(
                    action,
                    "POST",
                    secret: "not-the-secret",
                    ["--job", "demoJob", "--product", "demoProduct", "--device", "dev-000001", "--status", "QUEUED"]
                )
                #expect(refused["ok"] as? Bool == false)
                let raw = refused["rawBody"] as? [String: Any] ?? [:]
                #expect(raw["Code"] as? String == "SignatureDoesNotMatch", "\(action): \(refused)")
                #expect(refused["httpStatus"] as? Int == 400)
            }
            let stats = simulator.state.stats()
            #expect(stats.authFailures == 4 && stats.cancelCalls == 0, "\(stats)")
        }
    }
}

/// The virtual environment holding the pinned SDK: created once per build folder, atomically (built under a
/// temporary name and renamed), so concurrent or interrupted runs never see a half-installed one.
enum SDKEnvironment {
    static let packages = [OfficialSDKTests.corePackage, OfficialSDKTests.iotPackage]

    /// Where the environment lives: `OTA_PYTHON_SDK_VENV`, else `python-sdk-venv` beside the test binary.
    static var directory: String {
        if let path = ProcessInfo.processInfo.environment["OTA_PYTHON_SDK_VENV"], !path.isEmpty { return path }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        return binary.deletingLastPathComponent().appendingPathComponent("python-sdk-venv").path
    }

    /// The environment's `python`, after making sure the pinned packages are importable in it.
    static func python() async throws -> String {
        let target = directory
        if try await isReady(target) { return target + "/bin/python" }
        guard findExecutable("python3") != nil else {
            Issue.record("python3 is required for the official SDK test: apt-get install -y python3 python3-venv")
            throw CancellationError()
        }
        let staging = target + ".tmp-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let venv = try await runProcess("python3", ["-m", "venv", staging], timeout: .seconds(180))
        guard venv.exitCode == 0 else {
            Issue.record("cannot create a virtual environment (apt-get install -y python3-venv): \(venv)")
            throw CancellationError()
        }
        let pip = try await runProcess(
            staging + "/bin/python",
            ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"] + packages,
            timeout: .seconds(600)
        )
        guard pip.exitCode == 0 else {
            let wanted = packages.joined(separator: " ")
            Issue.record(
                "pip could not install \(wanted) from PyPI (network? proxy?); the official SDK test needs them: \(pip)"
            )
            throw CancellationError()
        }
        // Another run may have finished first; either environment is complete.
        if FileManager.default.fileExists(atPath: target), !(try await isReady(target)) {
            try? FileManager.default.removeItem(atPath: target)  // an old, incomplete or outdated environment
        }
        do {
            try FileManager.default.moveItem(atPath: staging, toPath: target)
        } catch {
            if !(try await isReady(target)) {
                Issue.record("cannot move the SDK environment to \(target): \(error)")
                throw CancellationError()
            }
        }
        guard try await isReady(target) else {
            Issue.record("the SDK environment at \(target) does not import the pinned packages")
            throw CancellationError()
        }
        return target + "/bin/python"
    }

    /// Whether `path` is an environment whose python imports the SDK at the pinned versions.
    private static func isReady(_ path: String) async throws -> Bool {
        let python = path + "/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let check = try await runProcess(
            python,
            [
                "-c",
                "import aliyunsdkcore, aliyunsdkiot, importlib.metadata as m; print(m.version('aliyun-python-sdk-core'), m.version('aliyun-python-sdk-iot'))",
            ],
            timeout: .seconds(60)
        )
        let expected = packages.map { String($0.split(separator: "=").last ?? "") }.joined(separator: " ")
        return check.exitCode == 0 && check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected
    }
}
