// SPDX-License-Identifier: Apache-2.0
import PlatformAPI
import Testing

/// The tolerant response parser: Alibaba, gateway and Tuya shapes, failures and garbage.
@Suite("Response parsing")
struct ResponseParsingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var status: Int
        var body: String
        var expected: PlatformResponse
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "Alibaba success",
            status: 200,
            body: #"{"RequestId":"A01829CE-75A1-4920-B775-921146A1AB79","Success":true}"#,
            expected: PlatformResponse(
                httpStatus: 200,
                success: true,
                requestId: "A01829CE-75A1-4920-B775-921146A1AB79"
            )
        ),
        Case(
            name: "Tuya success with empty code",
            status: 200,
            body: #"{"code":"","requestId":"d2fce065-8238-4ee2-a793-0226f69b0542","success":true}"#,
            expected: PlatformResponse(
                httpStatus: 200,
                success: true,
                requestId: "d2fce065-8238-4ee2-a793-0226f69b0542"
            )
        ),
        Case(
            name: "HTTP 200 with Success false is a failure",
            status: 200,
            body:
                #"{"RequestId":"r1","Success":false,"Code":"iot.device.NotExistedDevice","ErrorMessage":"The device does not exist."}"#,
            expected: PlatformResponse(
                httpStatus: 200,
                success: false,
                code: "iot.device.NotExistedDevice",
                message: "The device does not exist.",
                requestId: "r1"
            )
        ),
        Case(
            name: "Success as strings",
            status: 200,
            body: #"{"Success":"TRUE","RequestID":"r2"}"#,
            expected: PlatformResponse(httpStatus: 200, success: true, requestId: "r2")
        ),
        Case(
            name: "Success false as a string",
            status: 200,
            body: #"{"success":"false","code":"iot.system.SystemException","errorMessage":"System Exception"}"#,
            expected: PlatformResponse(
                httpStatus: 200,
                success: false,
                code: "iot.system.SystemException",
                message: "System Exception"
            )
        ),
        Case(
            name: "no Success key, 2xx, no code: success",
            status: 200,
            body: #"{"RequestId":"r3"}"#,
            expected: PlatformResponse(httpStatus: 200, success: true, requestId: "r3")
        ),
        Case(
            name: "no Success key, 2xx, a code: failure",
            status: 200,
            body:
                #"{"RequestId":"r4","Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
            expected: PlatformResponse(
                httpStatus: 200,
                success: false,
                code: "Throttling.User",
                message: "Request was denied due to user flow control.",
                requestId: "r4"
            )
        ),
        Case(
            name: "gateway error (Code/Message/HostId/Recommend)",
            status: 400,
            body:
                #"{"RequestId":"r5","HostId":"iot.cn-shanghai.aliyuncs.com","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:GET&%2F&...","Recommend":"https://example"}"#,
            expected: PlatformResponse(
                httpStatus: 400,
                success: false,
                code: "SignatureDoesNotMatch",
                message:
                    "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&...",
                requestId: "r5"
            )
        ),
        Case(
            name: "Success true on a 5xx is not a success",
            status: 503,
            body: #"{"Success":true,"RequestId":"r6"}"#,
            expected: PlatformResponse(httpStatus: 503, success: false, requestId: "r6")
        ),
        Case(
            name: "5xx JSON without code",
            status: 502,
            body: #"{"RequestId":"r7"}"#,
            expected: PlatformResponse(httpStatus: 502, success: false, requestId: "r7")
        ),
        Case(
            name: "ErrorMessage preferred over Message; null and empty values ignored; extra nested values tolerated",
            status: 200,
            body:
                #"{"Success":false,"Code":null,"ErrorMessage":"specific","Message":"generic","RequestId":"","Data":{"x":[1,2]}}"#,
            expected: PlatformResponse(httpStatus: 200, success: false, message: "specific")
        ),
        Case(
            name: "PascalCase wins over lower camel case when both are present",
            status: 200,
            body: #"{"Code":"A.B","code":"","Success":false}"#,
            expected: PlatformResponse(httpStatus: 200, success: false, code: "A.B")
        ),
        Case(
            name: "numeric code read as text",
            status: 500,
            body: #"{"code":500,"success":false}"#,
            expected: PlatformResponse(httpStatus: 500, success: false, code: "500")
        ),
    ]

    @Test("table", arguments: cases)
    func table(_ testCase: Case) throws {
        let body = Array(testCase.body.utf8)
        let parsed = try PlatformResponse.parse(httpStatus: testCase.status, body: body)
        var expected = testCase.expected
        // The body is kept as received, for the answers that carry data.
        expected.body = body
        #expect(parsed == expected)
    }

    struct Garbage: Sendable, CustomTestStringConvertible {
        var status: Int
        var body: String
        var transient: Bool
        var testDescription: String { "HTTP \(status): \(body.prefix(20))" }
    }

    @Test(
        "bodies that are not a JSON object are invalidResponse, transient only for 5xx/408/429",
        arguments: [
            Garbage(status: 200, body: "", transient: false),
            Garbage(status: 200, body: "<html>ok</html>", transient: false),
            Garbage(status: 200, body: "[1,2]", transient: false),
            Garbage(status: 200, body: "\"Success\"", transient: false),
            Garbage(status: 200, body: #"{"Success":true"#, transient: false),
            Garbage(status: 502, body: "<html><body>Bad Gateway</body></html>", transient: true),
            Garbage(status: 504, body: "", transient: true),
            Garbage(status: 429, body: "slow down", transient: true),
            Garbage(status: 404, body: "not found", transient: false),
            Garbage(status: 200, body: #"{"Success":"yes"}"#, transient: false),
            Garbage(status: 200, body: #"{"Success":1}"#, transient: false),
        ]
    )
    func garbage(_ garbage: Garbage) {
        #expect {
            _ = try PlatformResponse.parse(httpStatus: garbage.status, body: Array(garbage.body.utf8))
        } throws: { error in
            guard let error = error as? PlatformAPIError else { return false }
            return error == .invalidResponse && error.isTransient == garbage.transient
                && error.httpStatus == garbage.status
        }
    }

    @Test("an unreadable body is quoted in the message, but never any part of the secret")
    func garbageQuotedWithoutSecret() {
        let secret = "0123456789abcdefSECRET"
        // The secret straddles the 64-character cut: scrubbing after cutting would leave its prefix.
        let body = String(repeating: "x", count: 55) + secret + "</html>"
        #expect {
            _ = try PlatformResponse.parse(httpStatus: 502, body: Array(body.utf8), redacting: secret)
        } throws: { error in
            guard let error = error as? PlatformAPIError else { return false }
            return error == .invalidResponse && error.message.contains("xxxxx<redact")
                && !error.message.contains("0123456789")
        }
        #expect {
            _ = try PlatformResponse.parse(httpStatus: 502, body: Array("<html>Bad Gateway</html>".utf8))
        } throws: { error in
            (error as? PlatformAPIError)?.message.contains("\"<html>Bad Gateway</html>\"") == true
        }
    }

    @Test("a failed response becomes the matching error; a success none")
    func responseToError() throws {
        let success = PlatformResponse(httpStatus: 200, success: true, requestId: "r")
        #expect(success.error() == nil)

        let platform = try #require(
            PlatformResponse(
                httpStatus: 200,
                success: false,
                code: "iot.ota.FirmwareNotFound",
                message: "gone",
                requestId: "r1"
            ).error()
        )
        #expect(platform == .platform)
        #expect(platform.platformCode == "iot.ota.FirmwareNotFound" && platform.message == "gone")
        #expect(platform.requestId == "r1" && platform.httpStatus == 200 && !platform.isTransient)

        let status = try #require(PlatformResponse(httpStatus: 503, success: false, requestId: "r2").error())
        #expect(status == .httpStatus && status.isTransient && status.message == "HTTP 503")

        let bare = try #require(PlatformResponse(httpStatus: 200, success: false).error())
        #expect(bare == .platform && bare.platformCode == nil && !bare.isTransient)
    }
}
