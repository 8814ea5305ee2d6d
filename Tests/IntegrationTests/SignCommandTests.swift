// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import PlatformAPI
import PlatformSignature
import PlatformSimulator
import TestSupport
import Testing
import Worker
import WorkerApp

/// `ota-cancel-worker sign`: the library function against the reference vectors, the simulator and a forged
/// server string-to-sign; and the built binary once, end to end.
@Suite("sign command", .timeLimit(.minutes(3)))
struct SignCommandTests {
    struct Arguments: SignArguments {
        var commandFile: String
        var method: String?
        var platformProfile: String?
        var timestamp: String?
        var nonce: String?
        var compare: String?
        var platformEndpoint: String?
        var accessKeyId: String? = "testid"
        var accessKeySecretFile: String?
        var regionId: String?
        var iotInstanceId: String?
        var schemaDir: String? = WorkerStack.repositoryRoot + "/schemas"
    }

    static let environment = ["OTA_CANCEL_ACCESS_KEY_SECRET": "testsecret"]

    /// Reference §2.5: the seed-shaped request (tuya profile) with the documented time and nonce.
    static let vectorCommand =
        #"{"productKey":"k1nhvylABCD","firmwareId":"168","deviceNames":["testDevice1","testDevice2"]}"#
    static let vectorStringToSign =
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCancelOTATaskByDevice%26DeviceName.1%3DtestDevice1%26DeviceName.2%3DtestDevice2%26FirmwareId%3D168%26ProductKey%3Dk1nhvylABCD%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D9e6189124f5a4716ad2de849467b0001%26Timestamp%3D2024-11-19T09%253A47%253A43Z"

    /// Writes `text` to a fresh file and returns its path.
    static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sign-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func vectorArguments(method: String) throws -> Arguments {
        Arguments(
            commandFile: try file(vectorCommand),
            method: method,
            platformProfile: "tuya",
            timestamp: "2024-11-19T09:47:43Z",
            nonce: "9e6189124f5a4716ad2de849467b0001"
        )
    }

    @Test(
        "reference §2.5 through sign: GET and POST signatures, URL, JSON",
        arguments: [("GET", "Nc8BbMr+oXPPaEK9H0nlTw6Nha4="), ("POST", "3/cj14WCOds0y5s04LoPm00udoM=")]
    )
    func vector(method: String, signature: String) throws {
        let output = try SignCommand.run(try Self.vectorArguments(method: method), environment: Self.environment)
        let call = try #require(output.calls.first)
        #expect(output.calls.count == 1)
        #expect(call.request.stringToSign == method + Self.vectorStringToSign.dropFirst(3))
        #expect(call.request.signature == signature)
        #expect(
            call.url.hasPrefix(SignCommand.placeholderEndpoint + "/?AccessKeyId=testid&Action=CancelOTATaskByDevice&")
        )
        #expect(call.url.hasSuffix("&Signature=" + RPCCanonicalization.percentEncode(signature)))
        #expect(output.endpointNote != nil)
        #expect(
            output.text.contains(call.request.stringToSign) && output.text.contains(signature)
                && output.text.contains(call.url)
        )
        #expect(!output.text.contains("testsecret") && !output.jsonLines.contains("testsecret"))

        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.jsonLines.utf8)) as? [String: Any])
        #expect(json["method"] as? String == method)
        #expect(json["stringToSign"] as? String == call.request.stringToSign)
        #expect(json["signature"] as? String == signature)
        #expect(json["url"] as? String == call.url)
    }

    @Test(
        "the aliyun profile (default) adds Format, Version, SignatureVersion, RegionId; the endpoint follows the region"
    )
    func aliyunProfile() throws {
        var arguments = try Self.vectorArguments(method: "POST")
        arguments.platformProfile = nil
        arguments.regionId = "cn-shanghai"
        let output = try SignCommand.run(arguments, environment: Self.environment)
        let call = try #require(output.calls.first)
        let parameters = call.request.unsignedParameters
        #expect(parameters["Format"] == "JSON" && parameters["Version"] == "2018-01-20")
        #expect(parameters["SignatureVersion"] == "1.0" && parameters["RegionId"] == "cn-shanghai")
        #expect(call.url.hasPrefix("https://iot.cn-shanghai.aliyuncs.com/?"))
        #expect(output.profile == .aliyun)
    }

    @Test("OTA_CANCEL_* variables give what flags do not: the worker's environment signs what the worker sends")
    func environmentFallback() throws {
        var arguments = try Self.vectorArguments(method: "GET")
        arguments.method = nil
        arguments.platformProfile = nil
        arguments.accessKeyId = nil
        let environment = Self.environment.merging([
            "OTA_CANCEL_ACCESS_KEY_ID": "testid",
            "OTA_CANCEL_PLATFORM_PROFILE": "tuya",
            "OTA_CANCEL_PLATFORM_METHOD": "post",
            "OTA_CANCEL_PLATFORM_ENDPOINT": "http://127.0.0.1:9",
        ]) { $1 }
        let output = try SignCommand.run(arguments, environment: environment)
        let call = try #require(output.calls.first)
        #expect(call.request.signature == "3/cj14WCOds0y5s04LoPm00udoM=")
        #expect(call.url.hasPrefix("http://127.0.0.1:9/?") && output.endpointNote == nil)
    }

    @Test("more than 200 devices: one signed call per 200, one JSON line each")
    func batches() throws {
        let names = (1...450).map { "\"dev-\(String(format: "%06d", $0))\"" }.joined(separator: ",")
        let command = #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["# + names + "]}"
        let output = try SignCommand.run(Arguments(commandFile: try Self.file(command)), environment: Self.environment)
        #expect(output.calls.map(\.deviceNames.count) == [200, 200, 50])
        #expect(output.calls.map(\.index) == [1, 2, 3] && output.calls.allSatisfy { $0.count == 3 })
        #expect(output.jsonLines.split(separator: "\n").count == 3)
        #expect(output.calls[2].request.unsignedParameters["DeviceName.1"] == "dev-000401")
    }

    @Test("bad settings and bad commands are named")
    func errors() throws {
        func message(_ arguments: Arguments, environment: [String: String] = Self.environment) -> String {
            do {
                _ = try SignCommand.run(arguments, environment: environment)
                return "no error"
            } catch {
                return error.message
            }
        }
        let good = try Self.vectorArguments(method: "GET")
        var noKey = good
        noKey.accessKeyId = nil
        #expect(message(noKey).contains("access-key-id is required"))
        #expect(message(good, environment: [:]).contains("AccessKey secret is required"))
        var profile = good
        profile.platformProfile = "alibaba"
        #expect(message(profile).contains("platform-profile must be aliyun or tuya"))
        var region = good
        region.regionId = "cn-shanghai"
        #expect(message(region).contains("region-id is not sent with platform-profile tuya"))
        var method = good
        method.method = "PUT"
        #expect(message(method).contains("method must be GET or POST"))
        var timestamp = good
        timestamp.timestamp = "2024-11-19 09:47:43"
        #expect(message(timestamp).contains("timestamp must be yyyy-MM-ddTHH:mm:ssZ"))
        var duplicate = good
        duplicate.commandFile = try Self.file(#"{"productKey":"pk","firmwareId":"fw","deviceNames":["dev1","dev1"]}"#)
        #expect(message(duplicate).contains("/deviceNames"))
        var missing = good
        missing.commandFile = "/nonexistent/command.json"
        #expect(message(missing).contains("cannot read"))
        var compare = good
        compare.compare = "not a string to sign"
        #expect(message(compare).contains("not a string-to-sign"))
    }

    // MARK: --compare

    @Test(
        "compare with the platform's real SignatureDoesNotMatch: the secret differs (and the time and nonce come from it)"
    )
    func compareWrongSecret() async throws {
        let command = #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000001"]}"#
        try await withPlatformSimulator(
            configuration: SimulatorConfiguration(generateDevices: 5, qps: 0),
            logger: Logger(label: "sign-test")
        ) { simulator in
            // Sign with the wrong secret, send the URL, read the platform's answer.
            var arguments = Arguments(commandFile: try Self.file(command), platformEndpoint: simulator.endpoint)
            let wrong = ["OTA_CANCEL_ACCESS_KEY_SECRET": "not-the-secret"]
            let signed = try #require(try SignCommand.run(arguments, environment: wrong).calls.first)
            let answer = try await Self.fetch(signed.url, method: signed.request.method)
            #expect(answer.status == 400)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
            #expect(body["Code"] as? String == "SignatureDoesNotMatch")

            // Paste the whole error body: same settings, time and nonce taken from it, so the strings agree.
            arguments.compare = answer.body
            let output = try SignCommand.run(arguments, environment: wrong)
            let comparison = try #require(output.calls.first?.comparison)
            #expect(comparison.secretDiffers && comparison.differences.isEmpty)
            #expect(comparison.server == signed.request.stringToSign)
            #expect(output.text.contains("InvalidAccessKeySecret"))
            let json = try #require(
                try JSONSerialization.jsonObject(with: Data(output.jsonLines.utf8)) as? [String: Any]
            )
            #expect((json["comparison"] as? [String: Any])?["secretDiffers"] as? Bool == true)

            // And with the right secret the printed URL is a request the platform accepts.
            let right = try #require(
                try SignCommand.run(
                    Arguments(commandFile: try Self.file(command), platformEndpoint: simulator.endpoint),
                    environment: Self.environment
                ).calls.first
            )
            let accepted = try await Self.fetch(right.url, method: right.request.method)
            #expect(accepted.status == 200 && accepted.body.contains(#""Success":true"#))
            #expect(simulator.state.tasks(deviceName: "dev-000001")?.map(\.status) == ["CANCELED"])
        }
    }

    @Test("compare with a differently canonicalised string: method, extra and missing parameters, values, encoding")
    func compareCanonicalisation() throws {
        let arguments = try Self.vectorArguments(method: "GET")
        let ours = try #require(try SignCommand.run(arguments, environment: Self.environment).calls.first).request

        // The platform received POST, an extra Format, no DeviceName.2, another FirmwareId.
        var theirs = ours.unsignedParameters
        theirs["Format"] = "JSON"
        theirs["DeviceName.2"] = nil
        theirs["FirmwareId"] = "169"
        let server = RPCCanonicalization.stringToSign(method: .post, parameters: theirs)
        var comparing = arguments
        comparing.compare =
            "Specified signature is not matched with our calculation. server string to sign is:" + server
        let comparison = try #require(
            try SignCommand.run(comparing, environment: Self.environment).calls.first?.comparison
        )
        #expect(!comparison.secretDiffers)
        let text = comparison.differences.joined(separator: "\n")
        #expect(text.contains("method: we signed GET, the platform received POST"))
        #expect(text.contains("only the platform has Format=\"JSON\""))
        #expect(text.contains("only we signed DeviceName.2=\"testDevice2\""))
        #expect(text.contains("FirmwareId: we signed \"168\", the platform received \"169\""))

        // Same parameters, but lower-case hex in the server's encoding: only the encoding differs.
        let lowered = ours.stringToSign.replacingOccurrences(of: "%253A", with: "%253a")
        let encoding = StringToSignComparison(ours: ours.stringToSign, server: lowered)
        #expect(!encoding.secretDiffers && encoding.differences.count == 1)
        #expect(encoding.differences.first?.contains("encoded differently from byte") == true)
    }

    // MARK: The binary

    @Test("the built binary: sign --json prints the vector's object; a bad flag exits non-zero")
    func binary() async throws {
        let binary = Self.workerBinary
        try #require(
            FileManager.default.isExecutableFile(atPath: binary),
            "no ota-cancel-worker at \(binary): build it or set OTA_CANCEL_WORKER_BINARY"
        )
        let commandFile = try Self.file(Self.vectorCommand)
        let result = try await runProcess(
            binary,
            [
                "sign", "--command", commandFile, "--method", "GET", "--platform-profile", "tuya",
                "--timestamp", "2024-11-19T09:47:43Z", "--nonce", "9e6189124f5a4716ad2de849467b0001", "--json",
                "--access-key-id", "testid", "--schema-dir", WorkerStack.repositoryRoot + "/schemas",
            ],
            timeout: .seconds(60),
            environment: Self.environment
        )
        #expect(result.exitCode == 0, "\(result)")
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            "\(result)"
        )
        #expect(json["signature"] as? String == "Nc8BbMr+oXPPaEK9H0nlTw6Nha4=")
        #expect(json["stringToSign"] as? String == Self.vectorStringToSign)
        #expect(json["method"] as? String == "GET")
        #expect((json["url"] as? String)?.hasSuffix("&Signature=Nc8BbMr%2BoXPPaEK9H0nlTw6Nha4%3D") == true)

        let refused = try await runProcess(
            binary,
            ["sign", "--command", commandFile, "--platform-profile", "nope", "--access-key-id", "testid"],
            timeout: .seconds(60),
            environment: Self.environment
        )
        // A setting it refuses: configuration (78), one Error: line, and no usage text after it.
        #expect(
            refused.exitCode == 78 && refused.stderr.contains("platform-profile must be aliyun or tuya"),
            "\(refused)"
        )
        #expect(!refused.stderr.contains("USAGE") && refused.stderr.hasPrefix("Error: "), "\(refused)")
    }

    /// `ota-cancel-worker` next to the test bundle, or `OTA_CANCEL_WORKER_BINARY`.
    static var workerBinary: String {
        if let path = ProcessInfo.processInfo.environment["OTA_CANCEL_WORKER_BINARY"], !path.isEmpty { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.deletingLastPathComponent()
            .appendingPathComponent("ota-cancel-worker").path
    }

    /// Sends a signed URL as printed, with curl (a third-party client), and returns the status and body.
    static func fetch(_ url: String, method: RPCHTTPMethod) async throws -> (status: Int, body: String) {
        let result = try await runProcess(
            "curl",
            ["-sS", "--globoff", "-X", method.rawValue, "-o", "-", "-w", "\n%{http_code}", url],
            timeout: .seconds(30)
        )
        try #require(result.exitCode == 0, "curl failed: \(result)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }
}
