// SPDX-License-Identifier: Apache-2.0
import PlatformAPI
import Testing

/// DESIGN §3's retry classification, one row per rule.
@Suite("Error classification")
struct ClassificationTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var code: String?
        var status: Int?
        var transient: Bool
        var testDescription: String { "\(code ?? "-") / \(status.map(String.init) ?? "-")" }
    }

    @Test(
        "platform codes and HTTP statuses",
        arguments: [
            Row(code: "Throttling", status: 400, transient: true),
            Row(code: "Throttling.User", status: 400, transient: true),
            Row(code: "Throttling.Api", status: 200, transient: true),
            Row(code: "ServiceUnavailable", status: 503, transient: true),
            Row(code: "ServiceUnavailable", status: 200, transient: true),
            Row(code: "InternalError", status: 500, transient: true),
            Row(code: "iot.system.SystemException", status: 200, transient: true),
            Row(code: "Iot.system.SystemException", status: 200, transient: true),
            Row(code: "SignatureNonceUsed", status: 400, transient: true),
            Row(code: nil, status: 500, transient: true),
            Row(code: nil, status: 502, transient: true),
            Row(code: nil, status: 599, transient: true),
            Row(code: nil, status: 408, transient: true),
            Row(code: nil, status: 429, transient: true),
            Row(code: "SignatureDoesNotMatch", status: 400, transient: false),
            Row(code: "SignatureDoesNotMatch", status: 403, transient: false),
            Row(code: "InvalidAccessKeyId.NotFound", status: 404, transient: false),
            Row(code: "InvalidTimeStamp.Expired", status: 400, transient: false),
            Row(code: "MissingParameter", status: 400, transient: false),
            Row(code: "Forbidden.RAM", status: 403, transient: false),
            Row(code: "iot.device.NotExistedDevice", status: 200, transient: false),
            Row(code: "iot.ota.FirmwareNotFound", status: 200, transient: false),
            Row(code: "iot.common.QueryDeviceActionError", status: 200, transient: false),
            Row(code: "ThrottlingX", status: 400, transient: false),
            Row(code: nil, status: 400, transient: false),
            Row(code: nil, status: 404, transient: false),
            Row(code: nil, status: 200, transient: false),
        ]
    )
    func platformAndStatus(_ row: Row) {
        let code: PlatformAPIError.Code = row.code == nil ? .httpStatus : .platform
        #expect(
            PlatformAPIError.isTransient(code: code, platformCode: row.code, httpStatus: row.status) == row.transient
        )
        let error = PlatformAPIError(code: code, message: "m", platformCode: row.code, httpStatus: row.status)
        #expect(error.isTransient == row.transient)
    }

    @Test("local failures: transport, timeout, deadline, cancellation, shutdown retryable; invalid request not")
    func localCodes() {
        for code in [PlatformAPIError.Code.transport, .timeout, .deadlineExceeded, .cancelled, .shutdown] {
            #expect(PlatformAPIError(code: code, message: "m").isTransient, "\(code)")
        }
        #expect(!PlatformAPIError(code: .invalidRequest, message: "m", httpStatus: 503).isTransient)
        #expect(!PlatformAPIError(code: .invalidResponse, message: "m", httpStatus: 200).isTransient)
        #expect(PlatformAPIError(code: .invalidResponse, message: "m", httpStatus: 502).isTransient)
    }

    @Test("throttling detection drives the rate limiter")
    func throttling() {
        #expect(PlatformAPIError.isThrottling(platformCode: "Throttling.User", httpStatus: 400))
        #expect(PlatformAPIError.isThrottling(platformCode: "throttling", httpStatus: 200))
        #expect(PlatformAPIError.isThrottling(platformCode: nil, httpStatus: 429))
        #expect(!PlatformAPIError.isThrottling(platformCode: "ServiceUnavailable", httpStatus: 503))
        #expect(!PlatformAPIError.isThrottling(platformCode: nil, httpStatus: nil))
    }

    @Test("equality compares codes only; descriptions are informative and bounded")
    func equalityAndDescriptions() {
        let error = PlatformAPIError(
            code: .platform,
            message: "Request was denied.",
            platformCode: "Throttling.User",
            requestId: "R-1",
            httpStatus: 400
        )
        #expect(error == .platform)
        #expect(error != .timeout)
        #expect(Set([error, PlatformAPIError.platform]).count == 1)
        #expect(
            error.description
                == "PlatformAPIError.platform: Throttling.User (HTTP 400, RequestId R-1, transient): Request was denied."
        )
        #expect(error.shortDescription == "platform:Throttling.User")
        #expect(PlatformAPIError(code: .httpStatus, message: "", httpStatus: 503).shortDescription == "http_status:503")
        #expect(PlatformAPIError.timeout.shortDescription == "timeout")
        let weird = PlatformAPIError(code: .platform, message: "", platformCode: String(repeating: "é x", count: 100))
        #expect(weird.shortDescription.count == "platform:".count + 64)
        #expect(weird.shortDescription.allSatisfy { $0.isASCII && !$0.isWhitespace })
        #expect(error.file.hasSuffix("ClassificationTests.swift"))
    }

    @Test(
        "metric categories: a fixed vocabulary, whatever the platform answers",
        arguments: [
            (
                PlatformAPIError(code: .platform, message: "", platformCode: "Throttling.User", httpStatus: 400),
                "throttled"
            ),
            (PlatformAPIError(code: .httpStatus, message: "", httpStatus: 429), "throttled"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "SignatureDoesNotMatch"), "signature"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "InvalidAccessKeyId.NotFound"), "signature"),
            (
                PlatformAPIError(code: .platform, message: "", platformCode: "Forbidden.RAM", httpStatus: 403),
                "signature"
            ),
            (
                PlatformAPIError(code: .platform, message: "", platformCode: "iot.common.RamActionPermissionDeny"),
                "signature"
            ),
            (PlatformAPIError(code: .platform, message: "", platformCode: "iot.device.NotExistedDevice"), "not_found"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "iot.ota.FirmwareNotFound"), "not_found"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "iot.prod.NotExistedProduct"), "not_found"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "iot.system.IllegalRequest"), "invalid"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "iot.device.NullDeviceName"), "invalid"),
            (
                PlatformAPIError(code: .platform, message: "", platformCode: "MissingParameter", httpStatus: 400),
                "invalid"
            ),
            (PlatformAPIError(code: .invalidRequest, message: "too many names"), "invalid"),
            (
                PlatformAPIError(code: .platform, message: "", platformCode: "ServiceUnavailable", httpStatus: 503),
                "server_error"
            ),
            (
                PlatformAPIError(code: .platform, message: "", platformCode: "iot.system.SystemException"),
                "server_error"
            ),
            (PlatformAPIError(code: .httpStatus, message: "", httpStatus: 502), "server_error"),
            (PlatformAPIError(code: .timeout, message: ""), "timeout"),
            (PlatformAPIError(code: .deadlineExceeded, message: ""), "timeout"),
            (
                PlatformAPIError(code: .deadlineExceeded, message: "", platformCode: "ServiceUnavailable"),
                "server_error"
            ),
            (PlatformAPIError(code: .transport, message: ""), "transport"),
            (PlatformAPIError(code: .invalidResponse, message: ""), "other"),
            (PlatformAPIError(code: .cancelled, message: ""), "other"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "Some.Code.We.Never.Saw"), "other"),
            (PlatformAPIError(code: .platform, message: "", platformCode: "x\u{1B}[31m\nlabel=\"evil\""), "other"),
        ]
    )
    func categories(_ error: PlatformAPIError, _ expected: String) {
        #expect(error.category.rawValue == expected)
        #expect(PlatformAPIError.Category.allCases.map(\.rawValue).contains(error.category.rawValue))
    }
}
