// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature
import PlatformSimulator
import Testing

/// The gateway's checks, each on its own and in the platform's order.
@Suite("Authentication and quota")
struct AuthenticationTests {
    static let cancel = SignedCaller.cancelParameters(deviceNames: ["dev-queued"])

    /// Checks the gateway error shape and returns the answer for more checks.
    @discardableResult
    static func expectGatewayError(
        _ answer: HTTPAnswer,
        status: Int,
        code: String,
        sourceLocation: SourceLocation = #_sourceLocation
    )
        -> HTTPAnswer
    {
        #expect(answer.status == status, "\(answer.body)", sourceLocation: sourceLocation)
        #expect(answer.string("Code") == code, "\(answer.body)", sourceLocation: sourceLocation)
        #expect(answer.keys == ["Code", "HostId", "Message", "Recommend", "RequestId"], sourceLocation: sourceLocation)
        #expect(isUpperCaseUUID(answer.string("RequestId")), sourceLocation: sourceLocation)
        #expect(answer.header("x-acs-request-id") == answer.string("RequestId"), sourceLocation: sourceLocation)
        return answer
    }

    @Test(
        "a missing common parameter is MissingParameter, naming it",
        arguments: ["AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod", "Action"]
    )
    func missingCommonParameter(name: String) async throws {
        try await withSimulator { simulator, caller in
            let answer = try await caller.call(Self.cancel) { $0.removeValue(forKey: name) }
            Self.expectGatewayError(answer, status: 400, code: "MissingParameter")
            #expect(answer.string("Message")?.contains("\"\(name)\"") == true, "\(answer.body)")
            #expect(status(simulator.state, "t-queued") == "QUEUED")
            let stats = simulator.state.stats()
            #expect(stats.requests == 1)
            #expect(stats.authFailures == 1)
            #expect(stats.cancelCalls == 0)
        }
    }

    @Test("missing parameters are reported in the platform's order")
    func missingOrder() async throws {
        try await withSimulator { _, caller in
            // Both AccessKeyId and Timestamp missing: AccessKeyId is named.
            let answer = try await caller.call(Self.cancel) {
                $0.removeValue(forKey: "Timestamp")
                $0.removeValue(forKey: "AccessKeyId")
            }
            #expect(answer.string("Message")?.contains("\"AccessKeyId\"") == true)
        }
    }

    @Test("an unknown AccessKeyId is InvalidAccessKeyId.NotFound (404)")
    func unknownAccessKey() async throws {
        try await withSimulator { _, caller in
            var stranger = caller
            stranger.accessKeyId = "someone-else"
            let answer = try await stranger.call(Self.cancel)
            Self.expectGatewayError(answer, status: 404, code: "InvalidAccessKeyId.NotFound")
        }
    }

    @Test("a signature method other than HMAC-SHA1 is InvalidSignatureMethod")
    func badSignatureMethod() async throws {
        try await withSimulator { _, caller in
            var parameters = Self.cancel
            parameters["SignatureMethod"] = "HMAC-SHA256"
            Self.expectGatewayError(try await caller.call(parameters), status: 400, code: "InvalidSignatureMethod")
        }
    }

    @Test(
        "a malformed Timestamp is InvalidTimeStamp.Format",
        arguments: [
            "2024-11-19 09:47:43", "2024-11-19T09:47:43", "2024-11-19T09:47:43+08:00", "1732009663",
            "2024-13-01T00:00:00Z",
        ]
    )
    func malformedTimestamp(timestamp: String) async throws {
        try await withSimulator { _, caller in
            var parameters = Self.cancel
            parameters["Timestamp"] = timestamp
            Self.expectGatewayError(try await caller.call(parameters), status: 400, code: "InvalidTimeStamp.Format")
        }
    }

    @Test("a Timestamp more than 15 minutes off either way is InvalidTimeStamp.Expired")
    func staleTimestamp() async throws {
        try await withSimulator { simulator, caller in
            for offset in [-16.0 * 60, 16.0 * 60] {
                let answer = try await caller.call(Self.cancel, timestamp: Date().addingTimeInterval(offset))
                Self.expectGatewayError(answer, status: 400, code: "InvalidTimeStamp.Expired")
            }
            for offset in [-14.0 * 60, 14.0 * 60] {
                let answer = try await caller.call(Self.cancel, timestamp: Date().addingTimeInterval(offset))
                #expect(answer.bool("Success") == true, "\(answer.body)")
            }
            #expect(simulator.state.stats().authFailures == 2)
        }
    }

    @Test("a wrong secret is SignatureDoesNotMatch with the server's string-to-sign, equal to the client's")
    func wrongSecret() async throws {
        try await withSimulator { simulator, caller in
            let parameters = caller.common(action: "CancelOTATaskByDevice").merging(Self.cancel) { _, new in new }
            for placement in Placement.allCases {
                let (answer, stringToSign) = try await caller.send(
                    parameters.merging(["SignatureNonce": RPCNonce.make()]) { _, new in new },
                    placement: placement,
                    secret: AccessKeySecret("not-the-secret")
                )
                Self.expectGatewayError(answer, status: 400, code: "SignatureDoesNotMatch")
                #expect(
                    answer.string("Message")
                        == "Specified signature is not matched with our calculation. server string to sign is:"
                        + stringToSign
                )
                #expect(stringToSign.hasPrefix(placement.method.rawValue + "&%2F&"))
            }
            #expect(status(simulator.state, "t-queued") == "QUEUED")
        }
    }

    @Test("a parameter changed after signing: the server's string-to-sign shows the change")
    func tamperedParameter() async throws {
        try await withSimulator { _, caller in
            let parameters = caller.common(action: "CancelOTATaskByDevice").merging(Self.cancel) { _, new in new }
            let (answer, clientStringToSign) = try await caller.send(parameters) { $0["DeviceName.1"] = "dev-confirm" }
            Self.expectGatewayError(answer, status: 400, code: "SignatureDoesNotMatch")
            let message = try #require(answer.string("Message"))
            let serverStringToSign = try #require(message.split(separator: ":", maxSplits: 1).last.map(String.init))
            #expect(serverStringToSign != clientStringToSign)
            #expect(serverStringToSign.contains("DeviceName.1%3Ddev-confirm"))
            #expect(clientStringToSign.contains("DeviceName.1%3Ddev-queued"))
        }
    }

    @Test("a Signature sent with a raw + (not %2B) is decoded as a space and fails")
    func rawPlusInSignature() async throws {
        try await withSimulator { _, caller in
            // Find a nonce whose signature contains '+', then send that '+' unencoded.
            var attempts = 0
            while attempts < 200 {
                attempts += 1
                let nonce = RPCNonce.make()
                let parameters = caller.common(action: "CancelOTATaskByDevice", nonce: nonce).merging(Self.cancel) {
                    _,
                    new in new
                }
                let signature = RPCSigner(accessKeyId: "testid", accessKeySecret: AccessKeySecret("testsecret"))
                    .sign(method: .get, parameters: parameters).signature
                guard signature.contains("+") else { continue }
                let (answer, _) = try await caller.send(
                    parameters,
                    wire: { $0.replacingOccurrences(of: "%2B", with: "+") }
                )
                Self.expectGatewayError(answer, status: 400, code: "SignatureDoesNotMatch")
                return
            }
            Issue.record("no signature with '+' in 200 nonces")
        }
    }

    @Test("a reused nonce is SignatureNonceUsed; a nonce of a refused request is not spent")
    func nonceReuse() async throws {
        try await withSimulator { simulator, caller in
            let nonce = RPCNonce.make()
            // Refused before the nonce check (bad signature): the nonce stays unused.
            let refused = try await caller.call(Self.cancel, nonce: nonce, secret: AccessKeySecret("wrong"))
            #expect(refused.string("Code") == "SignatureDoesNotMatch")
            let first = try await caller.call(Self.cancel, nonce: nonce)
            #expect(first.bool("Success") == true, "\(first.body)")
            // Same nonce, new timestamp and signature: still refused.
            let second = try await caller.call(
                Self.cancel,
                placement: .postForm,
                nonce: nonce,
                timestamp: Date().addingTimeInterval(1)
            )
            Self.expectGatewayError(second, status: 400, code: "SignatureNonceUsed")
            let stats = simulator.state.stats()
            #expect(stats.authFailures == 2)
            #expect(stats.cancelCalls == 1)
        }
    }

    @Test("the quota answers Throttling.User past the burst, per AccessKeyId and Action")
    func quota() async throws {
        try await withSimulator(testConfiguration(qps: 1)) { simulator, caller in
            // Open the connection first (admin requests are not subject to the quota), so the timed calls
            // pay no connection setup.
            _ = try await caller.raw("GET", "/_sim/stats")
            let clock = ContinuousClock()
            // One token per second: the second call is only refused if it came within the second. A loaded
            // machine can stall for longer than that; such a round proves nothing, so it is repeated (from a
            // reset state) rather than judged, for up to a minute (the full suite runs heavy process tests beside
            // this one on two cores).
            var fast = false
            var first: HTTPAnswer
            var second: HTTPAnswer
            var other: HTTPAnswer
            var rounds = 0
            let giveUp = clock.now + .seconds(60)
            repeat {
                rounds += 1
                simulator.state.reset()
                let start = clock.now
                first = try await caller.call(Self.cancel)
                second = try await caller.call(Self.cancel)
                other = try await caller.call(action: "QueryOTAJob", ["JobId": "job1"])
                fast = clock.now - start < .seconds(1)
            } while !fast && clock.now - giveUp < .zero
            try #require(
                fast,
                "\(rounds) rounds in a row took over a second each: the machine is too slow for this timing"
            )
            #expect(first.bool("Success") == true)
            Self.expectGatewayError(second, status: 400, code: "Throttling.User")
            #expect(other.bool("Success") == true, "\(other.body)")
            let stats = simulator.state.stats()
            #expect(stats.throttled == 1)
            #expect(stats.cancelCalls == 1)
            #expect(stats.readCalls == 1)

            // A second later the bucket holds a token again.
            try await Task.sleep(for: .milliseconds(1100))
            let later = try await caller.call(Self.cancel)
            #expect(later.bool("Success") == true)
        }
    }

    @Test("qps 0 means no quota")
    func noQuota() async throws {
        try await withSimulator(testConfiguration(qps: 0)) { simulator, caller in
            for _ in 0..<30 {
                let answer = try await caller.call(Self.cancel)
                #expect(answer.bool("Success") == true)
            }
            #expect(simulator.state.stats().throttled == 0)
        }
    }

    @Test("unknown Action is InvalidApi.NotFound (404); wrong Version and non-JSON Format are refused")
    func actionVersionFormat() async throws {
        try await withSimulator { _, caller in
            Self.expectGatewayError(
                try await caller.call(action: "DeleteEverything", Self.cancel),
                status: 404,
                code: "InvalidApi.NotFound"
            )
            Self.expectGatewayError(
                try await caller.call(Self.cancel.merging(["Version": "2017-04-20"]) { _, new in new }),
                status: 400,
                code: "InvalidVersion"
            )
            Self.expectGatewayError(
                try await caller.call(Self.cancel.merging(["Format": "XML"]) { _, new in new }),
                status: 400,
                code: "InvalidParameter.Format"
            )
            // Tuya's samples send neither Version nor Format; the Tea SDK sends `json`.
            let tuyaShaped = try await caller.call(Self.cancel) {
                $0.removeValue(forKey: "Version")
                $0.removeValue(forKey: "Format")
                $0.removeValue(forKey: "SignatureVersion")
            }
            // Removing them after signing breaks the signature; sign without them instead.
            #expect(tuyaShaped.string("Code") == "SignatureDoesNotMatch")
            var minimal = caller.common(action: "CancelOTATaskByDevice").merging(Self.cancel) { _, new in new }
            minimal.removeValue(forKey: "Version")
            minimal["Format"] = "json"
            minimal.removeValue(forKey: "SignatureVersion")
            #expect(try await caller.send(minimal).answer.bool("Success") == true)
        }
    }

    @Test("methods other than GET and POST are UnsupportedHTTPMethod")
    func otherMethods() async throws {
        try await withSimulator { _, caller in
            Self.expectGatewayError(
                try await caller.raw("PUT", "/?Action=CancelOTATaskByDevice"),
                status: 400,
                code: "UnsupportedHTTPMethod"
            )
        }
    }

    @Test("a malformed percent escape is InvalidParameter")
    func malformedEscape() async throws {
        try await withSimulator { _, caller in
            // In a form body: a URL with a bad escape would be re-encoded by the HTTP client before sending.
            let answer = try await caller.raw(
                "POST",
                "/",
                body: "Action=%ZZ",
                contentType: "application/x-www-form-urlencoded"
            )
            Self.expectGatewayError(answer, status: 400, code: "InvalidParameter")
            #expect(answer.string("Message")?.contains("Action") == true)
        }
    }

    @Test("a form body over the size limit is refused with 413 and counted")
    func oversizedBody() async throws {
        var configuration = testConfiguration()
        configuration.maximumBodySize = 1024
        try await withSimulator(configuration) { simulator, caller in
            let answer = try await caller.raw(
                "POST",
                "/",
                body: "Note=" + String(repeating: "x", count: 2048),
                contentType: "application/x-www-form-urlencoded"
            )
            #expect(answer.status == 413)
            let stats = simulator.state.stats()
            #expect(stats.requests == 1)
            #expect(stats.errorAnswers == 1)
        }
    }

    @Test("the seed document's minimal parameter set (test vector 2.5) passes once its Timestamp is current")
    func seedShapedRequest() async throws {
        try await withSimulator(
            testConfiguration(
                fixture: SimulatorFixture(
                    products: [.init(productKey: "k1nhvylABCD")],
                    firmwares: [.init(firmwareId: "168", productKey: "k1nhvylABCD")],
                    jobs: [.init(jobId: "1836340779212660001", firmwareId: "168")],
                    devices: [
                        .init(productKey: "k1nhvylABCD", deviceName: "testDevice1"),
                        .init(productKey: "k1nhvylABCD", deviceName: "testDevice2"),
                    ],
                    tasks: [
                        .init(deviceName: "testDevice1", jobId: "1836340779212660001"),
                        .init(deviceName: "testDevice2", jobId: "1836340779212660001", status: "IN_PROGRESS"),
                    ]
                )
            )
        ) { simulator, caller in
            let parameters = [
                "Action": "CancelOTATaskByDevice", "SignatureNonce": RPCNonce.make(), "AccessKeyId": "testid",
                "SignatureMethod": "HMAC-SHA1", "Timestamp": RPCTimestamp.string(from: Date()), "FirmwareId": "168",
                "ProductKey": "k1nhvylABCD", "DeviceName.1": "testDevice1", "DeviceName.2": "testDevice2",
            ]
            let answer = try await caller.send(parameters).answer
            #expect(answer.bool("Success") == true, "\(answer.body)")
            #expect(simulator.state.tasks(deviceName: "testDevice2")?.map(\.status) == ["CANCELED"])
        }
    }
}
