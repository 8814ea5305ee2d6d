// SPDX-License-Identifier: Apache-2.0
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PlatformSignature
import PlatformSimulator
import Testing

/// The platform state most tests start from: one task per state, a device in two jobs, a device whose name
/// needs percent-encoding, a second product.
let standardFixture = SimulatorFixture(
    products: [
        .init(productKey: "pk1", productName: "Product one"),
        .init(productKey: "pk2"),
    ],
    firmwares: [
        .init(firmwareId: "fw1", productKey: "pk1", destVersion: "2.0.0", srcVersion: "1.0.0"),
        .init(firmwareId: "fw2", productKey: "pk1"),
        .init(firmwareId: "fwOther", productKey: "pk2"),
    ],
    jobs: [
        .init(jobId: "job1", firmwareId: "fw1"),
        .init(jobId: "job2", firmwareId: "fw1"),
        .init(jobId: "job3", firmwareId: "fw2"),
        .init(jobId: "jobOther", firmwareId: "fwOther"),
    ],
    devices: [
        "dev-confirm", "dev-queued", "dev-notified", "dev-progress", "dev-succeeded", "dev-failed", "dev-canceled",
        "dev-notask", "dev-twojobs", "user@host:8080",
    ].map { SimulatorFixture.Device(productKey: "pk1", deviceName: $0) } + [
        .init(productKey: "pk2", deviceName: "dev-queued")
    ],
    tasks: [
        .init(taskId: "t-confirm", deviceName: "dev-confirm", jobId: "job1", status: "CONFIRM"),
        .init(taskId: "t-queued", deviceName: "dev-queued", jobId: "job1", status: "QUEUED"),
        .init(taskId: "t-notified", deviceName: "dev-notified", jobId: "job1", status: "NOTIFIED"),
        .init(taskId: "t-progress", deviceName: "dev-progress", jobId: "job1", status: "IN_PROGRESS"),
        .init(taskId: "t-succeeded", deviceName: "dev-succeeded", jobId: "job1", status: "SUCCEEDED"),
        .init(taskId: "t-failed", deviceName: "dev-failed", jobId: "job1", status: "FAILED"),
        .init(taskId: "t-canceled", deviceName: "dev-canceled", jobId: "job1", status: "CANCELED"),
        .init(taskId: "t-twojobs-1", deviceName: "dev-twojobs", jobId: "job1", status: "QUEUED"),
        .init(taskId: "t-twojobs-2", deviceName: "dev-twojobs", jobId: "job2", status: "QUEUED"),
        .init(taskId: "t-queued-fw2", deviceName: "dev-queued", jobId: "job3", status: "QUEUED"),
        .init(taskId: "t-special", deviceName: "user@host:8080", jobId: "job1", status: "NOTIFIED"),
        .init(taskId: "t-other", deviceName: "dev-queued", jobId: "jobOther", status: "QUEUED"),
    ]
)

/// A test configuration: the standard fixture, no quota unless a test sets one, quiet logs.
func testConfiguration(
    qps: Int = 0,
    responseStyle: ResponseStyle = .aliyun,
    iotInstanceId: String? = nil,
    fixture: SimulatorFixture? = standardFixture,
    generateDevices: Int = 0,
    latency: Duration = .zero
) -> SimulatorConfiguration {
    SimulatorConfiguration(
        generateDevices: generateDevices,
        fixture: fixture,
        qps: qps,
        latency: latency,
        responseStyle: responseStyle,
        iotInstanceId: iotInstanceId
    )
}

let quietLogger: Logger = {
    var logger = Logger(label: "sim-test")
    logger.logLevel = .critical
    return logger
}()

/// Runs `body` against a simulator of its own.
@discardableResult
func withSimulator<R: Sendable>(
    _ configuration: SimulatorConfiguration = testConfiguration(),
    _ body: (RunningSimulator, SignedCaller) async throws -> R
) async throws -> R {
    try await withPlatformSimulator(configuration: configuration, logger: quietLogger) { running in
        try await body(running, SignedCaller(endpoint: running.endpoint))
    }
}

/// One HTTP answer, with its body parsed as a JSON object when it is one.
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] {
        guard let data = body.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object
    }

    /// The top-level keys, sorted.
    var keys: [String] { json.keys.sorted() }

    func string(_ key: String) -> String? { json[key] as? String }
    func bool(_ key: String) -> Bool? { json[key] as? Bool }
    func int(_ key: String) -> Int? { json[key] as? Int }
    func object(_ key: String) -> [String: Any]? { json[key] as? [String: Any] }
    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// How a request carries its signed parameters.
enum Placement: Sendable, CaseIterable, CustomTestStringConvertible {
    /// GET with everything in the query: the seed document's shape.
    case getQuery
    /// POST with everything in the query and an empty body: the official SDKs' shape.
    case postQuery
    /// POST with everything in an `application/x-www-form-urlencoded` body.
    case postForm

    var method: RPCHTTPMethod { self == .getQuery ? .get : .post }
    var testDescription: String { "\(self)" }
}

/// Signs and sends RPC calls the way a correct client does, with hooks to break them on purpose.
struct SignedCaller: Sendable {
    var endpoint: String
    /// How long one request may take: a hang guard (a loaded machine stalls for seconds), shorter where a test
    /// expects nothing to answer (a refused connection is retried until this passes).
    var timeout: TimeAmount = .seconds(60)
    var accessKeyId = "testid"
    var accessKeySecret = AccessKeySecret("testsecret")

    /// The common parameters of a well-formed call.
    func common(action: String, nonce: String = RPCNonce.make(), timestamp: Date = Date()) -> [String: String] {
        [
            "Action": action,
            "AccessKeyId": accessKeyId,
            "Format": "JSON",
            "Version": "2018-01-20",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce,
            "Timestamp": RPCTimestamp.string(from: timestamp),
        ]
    }

    /// `CancelOTATaskByDevice` parameters (without the common ones).
    static func cancelParameters(
        productKey: String = "pk1",
        firmwareId: String = "fw1",
        deviceNames: [String],
        jobId: String? = nil,
        iotInstanceId: String? = nil
    ) -> [String: String] {
        var parameters = ["ProductKey": productKey, "FirmwareId": firmwareId]
        for (offset, name) in deviceNames.enumerated() { parameters["DeviceName.\(offset + 1)"] = name }
        if let jobId { parameters["JobId"] = jobId }
        if let iotInstanceId { parameters["IotInstanceId"] = iotInstanceId }
        return parameters
    }

    /// Signs `parameters` (plus the common ones unless `includeCommon` is false) and sends them.
    ///
    /// - Parameters:
    ///   - afterSigning: changes the parameters after the signature was computed (to break it, or drop one).
    ///   - wire: rewrites the encoded query/body before sending (to test decoding rules).
    func call(
        action: String = "CancelOTATaskByDevice",
        _ parameters: [String: String],
        placement: Placement = .getQuery,
        nonce: String = RPCNonce.make(),
        timestamp: Date = Date(),
        secret: AccessKeySecret? = nil,
        afterSigning: (inout [String: String]) -> Void = { _ in },
        wire: (String) -> String = { $0 }
    ) async throws -> HTTPAnswer {
        let all = common(action: action, nonce: nonce, timestamp: timestamp).merging(parameters) { _, new in new }
        return try await send(all, placement: placement, secret: secret, afterSigning: afterSigning, wire: wire).answer
    }

    /// Signs exactly `parameters` and sends them; also returns the client's string-to-sign.
    func send(
        _ parameters: [String: String],
        placement: Placement = .getQuery,
        secret: AccessKeySecret? = nil,
        afterSigning: (inout [String: String]) -> Void = { _ in },
        wire: (String) -> String = { $0 }
    ) async throws -> (answer: HTTPAnswer, stringToSign: String) {
        let signer = RPCSigner(accessKeyId: accessKeyId, accessKeySecret: secret ?? accessKeySecret)
        let signed = signer.sign(method: placement.method, parameters: parameters)
        var sent = signed.parameters
        afterSigning(&sent)
        let encoded = wire(
            sent.sorted { $0.key < $1.key }
                .map { RPCCanonicalization.percentEncode($0.key) + "=" + RPCCanonicalization.percentEncode($0.value) }
                .joined(separator: "&")
        )
        var request: HTTPClientRequest
        switch placement {
        case .getQuery, .postQuery:
            request = HTTPClientRequest(url: endpoint + "/?" + encoded)
            request.method = placement == .getQuery ? .GET : .POST
        case .postForm:
            request = HTTPClientRequest(url: endpoint + "/")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: encoded))
        }
        return (try await execute(request), signed.stringToSign)
    }

    /// Sends a raw request (admin API, hand-made queries).
    func raw(
        _ method: String,
        _ path: String,
        body: String? = nil,
        contentType: String? = nil
    ) async throws
        -> HTTPAnswer
    {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = HTTPMethod(rawValue: method)
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        return try await execute(request)
    }

    private func execute(_ request: HTTPClientRequest) async throws -> HTTPAnswer {
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 8 << 20)
        return HTTPAnswer(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
    }
}

/// `8-4-4-4-12` upper-case hex, the shape of the platform's RequestIds.
func isUpperCaseUUID(_ text: String?) -> Bool {
    guard let text, let uuid = UUID(uuidString: text) else { return false }
    return uuid.uuidString == text
}

/// The status of each named task of a device (the tasks are looked up by id).
func status(_ state: SimulatorState, _ taskId: String) -> String? {
    state.allTasks().first { $0.taskId == taskId }?.status
}
