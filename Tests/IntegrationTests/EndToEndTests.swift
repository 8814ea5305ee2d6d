// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

/// The whole cancel path on real parts: mosquitto, the worker, the simulator over HTTP; requests made by
/// `mosquitto_rr`, a third-party client.
@Suite("End to end", .timeLimit(.minutes(3)))
struct EndToEndTests {
    static func devices(_ range: ClosedRange<Int>) -> [String] { range.map { String(format: "dev-%06d", $0) } }

    static func command(_ devices: [String], extra: String = "") -> String {
        let names = devices.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["# + names + "]" + extra + "}"
    }

    @Test("MQTT 5: Correlation Data comes back byte for byte, the tasks are CANCELED")
    func mqtt5RoundTrip() async throws {
        try await withWorkerStack { stack in
            let fields = try await stack.request(
                Self.command(["dev-000001", "dev-000002"]),
                responseTopic: "ota/cancel/reply/e2e",
                correlationData: "X-corr-42"
            )
            #expect(fields.count == 3)
            #expect(fields[0] == "X-corr-42")
            #expect(fields[1] == "application/json")
            let reply = try stack.reply(fields[2])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["correlationId"]?.stringValue == "X-corr-42")
            #expect(
                reply["cancelledDevices"]?.arrayValue?.compactMap(\.stringValue).sorted() == [
                    "dev-000001", "dev-000002",
                ]
            )
            #expect(reply["calls"]?.numberValue?.int64Value == 1)
            #expect(stack.status(of: "dev-000001") == ["CANCELED"])
            #expect(stack.status(of: "dev-000002") == ["CANCELED"])
            #expect(stack.status(of: "dev-000003") == ["QUEUED"])
            #expect(stack.cancelCalls() == 1)
        }
    }

    @Test("MQTT 3.1.1 requester: replyTo and correlationId in the payload")
    func mqtt311Requester() async throws {
        try await withWorkerStack { stack in
            let fields = try await stack.request(
                Self.command(["dev-000010"], extra: #","replyTo":"ota/cancel/reply/legacy","correlationId":"c-311""#),
                version: "311",
                responseTopic: "ota/cancel/reply/legacy",
                format: "%p"
            )
            let reply = try stack.reply(fields[0])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["correlationId"]?.stringValue == "c-311")
            #expect(stack.status(of: "dev-000010") == ["CANCELED"])
        }
    }

    @Test("a worker connected with MQTT 3.1.1 answers through the payload's replyTo")
    func workerOnMQTT311() async throws {
        try await withWorkerStack(arguments: TestArguments(mqttVersion: "3.1.1", platformQps: 0)) { stack in
            let fields = try await stack.request(
                Self.command(["dev-000011"], extra: #","replyTo":"ota/cancel/reply/w311","correlationId":"w-311""#),
                version: "311",
                responseTopic: "ota/cancel/reply/w311",
                format: "%p"
            )
            let reply = try stack.reply(fields[0])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["correlationId"]?.stringValue == "w-311")
        }
    }

    @Test("over TLS with client certificates: the worker and mosquitto_rr reach a broker that requires them")
    func overTLS() async throws {
        let pki = try await TestPKI.make()
        let arguments = TestArguments(
            brokerTlsCaFile: pki.caFile,
            brokerTlsCertFile: pki.clientCertificate,
            brokerTlsKeyFile: pki.clientKey,
            platformQps: 0
        )
        try await withWorkerStack(
            arguments: arguments,
            brokerConfig: pki.brokerTLSConfig(requireCertificate: true),
            clientOptions: ["--cafile", pki.caFile, "--cert", pki.clientCertificate, "--key", pki.clientKey]
        ) { stack in
            let fields = try await stack.request(
                Self.command(["dev-000012"]),
                responseTopic: "ota/cancel/reply/tls",
                correlationData: "tls-1"
            )
            #expect(fields.first == "tls-1")
            let reply = try stack.reply(fields[2])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(stack.status(of: "dev-000012") == ["CANCELED"])
            // The listener speaks only TLS: a plain client gets nowhere (so the round trip above was TLS).
            let plain = try await runProcess(
                "mosquitto_pub",
                ["-h", "127.0.0.1", "-p", "\(stack.broker.port)", "-t", "x", "-m", "y"],
                timeout: .seconds(30)
            )
            #expect(plain.exitCode != 0)
        }
    }

    @Test("450 devices make exactly 3 platform calls")
    func splitsIntoCallsOf200() async throws {
        try await withWorkerStack(simulator: SimulatorConfiguration(generateDevices: 1_000)) { stack in
            let before = stack.cancelCalls()
            let fields = try await stack.request(
                Self.command(Self.devices(101...550)),
                responseTopic: "ota/cancel/reply/big",
                correlationData: "big-1",
                timeout: 60
            )
            let reply = try stack.reply(fields[2])
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["deviceCount"]?.numberValue?.int64Value == 450)
            #expect(reply["cancelledDevices"]?.arrayValue?.count == 450)
            #expect(reply["calls"]?.numberValue?.int64Value == 3)
            #expect(reply["requestIds"]?.arrayValue?.count == 3)
            #expect(stack.cancelCalls() - before == 3)
            #expect(stack.simulator.state.stats().largestCancelBatch == 200)
            #expect(stack.status(of: "dev-000101") == ["CANCELED"])
            #expect(stack.status(of: "dev-000550") == ["CANCELED"])
            #expect(stack.status(of: "dev-000551") == ["QUEUED"])
        }
    }

    @Test("an invalid command is rejected with errors that point at the bad fields, and nothing is called")
    func invalidCommand() async throws {
        try await withWorkerStack { stack in
            let fields = try await stack.request(
                Self.command(["dev-000020", "ab"], extra: #","color":"red""#),
                responseTopic: "ota/cancel/reply/bad",
                correlationData: "bad-1"
            )
            #expect(fields[0] == "bad-1")
            let reply = try stack.reply(fields[2])
            #expect(reply["status"]?.stringValue == "rejected")
            #expect(reply["correlationId"]?.stringValue == "bad-1")
            let errors = reply["errors"]?.arrayValue ?? []
            #expect(errors.contains { $0["instanceLocation"]?.stringValue == "/deviceNames/1" })
            #expect(errors.contains { $0["instanceLocation"]?.stringValue == "/color" })
            #expect(stack.cancelCalls() == 0)
            #expect(stack.status(of: "dev-000020") == ["QUEUED"])
        }
    }

    @Test("platform errors become failed groups: unknown device permanent, 503 retried, wrong secret not retried")
    func platformErrors() async throws {
        try await withWorkerStack { stack in
            // 200 known devices and one unknown: the second call fails permanently, the first succeeds.
            var names = Self.devices(301...500)
            names.append("ghost-0001")
            let partial = try stack.reply(
                try await stack.request(
                    Self.command(names),
                    responseTopic: "ota/cancel/reply/p",
                    correlationData: "p-1"
                )[2]
            )
            #expect(partial["status"]?.stringValue == "partial")
            #expect(partial["cancelledDevices"]?.arrayValue?.count == 200)
            let group = try #require(partial["failedGroups"]?.arrayValue?.first)
            #expect(group["code"]?.stringValue == "iot.device.NotExistedDevice")
            #expect(group["transient"]?.boolValue == false)
            #expect(group["attempts"]?.numberValue?.int64Value == 1)
            #expect(group["deviceNames"]?.arrayValue?.map(\.stringValue) == ["ghost-0001"])
            #expect(group["requestId"]?.stringValue?.isEmpty == false)

            // Two 503s, then the platform recovers: one call, three attempts, success.
            stack.simulator.state.injectFault(FaultRule(httpStatus: 503, errorCode: "ServiceUnavailable", count: 2))
            let retried = try stack.reply(
                try await stack.request(
                    Self.command(["dev-000600"]),
                    responseTopic: "ota/cancel/reply/r",
                    correlationData: "r-1"
                )[2]
            )
            #expect(retried["status"]?.stringValue == "succeeded")
            #expect(retried["attempts"]?.numberValue?.int64Value == 3)
            #expect(stack.status(of: "dev-000600") == ["CANCELED"])
        }
    }

    @Test("a wrong secret gets SignatureDoesNotMatch once, reported as permanent")
    func wrongSecret() async throws {
        try await withWorkerStack(secret: "not-the-secret") { stack in
            let reply = try stack.reply(
                try await stack.request(
                    Self.command(["dev-000700"]),
                    responseTopic: "ota/cancel/reply/s",
                    correlationData: "s-1"
                )[2]
            )
            #expect(reply["status"]?.stringValue == "failed")
            let group = try #require(reply["failedGroups"]?.arrayValue?.first)
            #expect(group["code"]?.stringValue == "SignatureDoesNotMatch")
            #expect(group["transient"]?.boolValue == false)
            #expect(group["attempts"]?.numberValue?.int64Value == 1)
            #expect(!(reply.serialized().contains("not-the-secret")))
            #expect(stack.status(of: "dev-000700") == ["QUEUED"])
        }
    }

    @Test("a dry run signs the planned calls and calls nothing")
    func dryRun() async throws {
        try await withWorkerStack { stack in
            let reply = try stack.reply(
                try await stack.request(
                    Self.command(Self.devices(1...250), extra: #","dryRun":true"#),
                    responseTopic: "ota/cancel/reply/d",
                    correlationData: "d-1"
                )[2]
            )
            #expect(reply["status"]?.stringValue == "succeeded")
            #expect(reply["dryRun"]?.boolValue == true)
            let planned = reply["plannedCalls"]?.arrayValue ?? []
            #expect(planned.map { $0["deviceNames"]?.arrayValue?.count } == [200, 50])
            #expect(
                planned.allSatisfy {
                    $0["stringToSign"]?.stringValue?.hasPrefix("GET&%2F&AccessKeyId%3Dtestid") == true
                }
            )
            #expect(!reply.serialized().contains("Signature%3D"))
            #expect(stack.cancelCalls() == 0)
            #expect(stack.status(of: "dev-000001") == ["QUEUED"])
        }
    }

    @Test("an expired deadline is answered without a call")
    func expiredDeadline() async throws {
        try await withWorkerStack { stack in
            let reply = try stack.reply(
                try await stack.request(
                    Self.command(["dev-000800"], extra: #","deadline":"2020-01-01T00:00:00Z""#),
                    responseTopic: "ota/cancel/reply/x",
                    correlationData: "x-1"
                )[2]
            )
            #expect(reply["status"]?.stringValue == "expired")
            #expect(stack.cancelCalls() == 0)
        }
    }
}
