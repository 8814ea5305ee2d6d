// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import PlatformAPI
import PlatformSignature
import Testing

/// Operation parameters, batching and the exact signed request.
@Suite("Request parameters and signing")
struct RequestTests {
    @Test("450 names become 200 + 200 + 50, order kept, DeviceName.N restarting at 1 in every call")
    func batching() throws {
        let names = (0..<450).map { "device-\($0)" }
        let batches = CancelOTATaskByDeviceRequest.batches(
            productKey: "a1V4kde",
            firmwareId: "fw1",
            deviceNames: names,
            jobId: "job1",
            iotInstanceId: nil
        )
        #expect(batches.map(\.deviceNames.count) == [200, 200, 50])
        #expect(batches.flatMap(\.deviceNames) == names)
        for batch in batches {
            #expect(batch.productKey == "a1V4kde" && batch.firmwareId == "fw1" && batch.jobId == "job1")
            #expect(batch.iotInstanceId == nil)
            let parameters = batch.operationParameters()
            #expect(parameters["DeviceName.1"] == batch.deviceNames.first)
            #expect(parameters["DeviceName.\(batch.deviceNames.count)"] == batch.deviceNames.last)
            #expect(parameters["DeviceName.\(batch.deviceNames.count + 1)"] == nil)
            #expect(parameters["DeviceName.0"] == nil)
        }
        #expect(batches[2].operationParameters()["DeviceName.50"] == "device-449")
    }

    @Test("batch sizes: exact multiples, a custom size, an empty list, a nonsensical size")
    func batchEdges() {
        func sizes(_ count: Int, _ max: Int) -> [Int] {
            CancelOTATaskByDeviceRequest.batches(
                productKey: "p",
                firmwareId: "f",
                deviceNames: (0..<count).map { "d\($0)xx" },
                jobId: nil,
                iotInstanceId: nil,
                maxPerCall: max
            ).map(\.deviceNames.count)
        }
        #expect(sizes(400, 200) == [200, 200])
        #expect(sizes(1, 200) == [1])
        #expect(sizes(0, 200) == [])
        #expect(sizes(7, 3) == [3, 3, 1])
        #expect(sizes(2, 0) == [1, 1])
    }

    @Test("operation parameters: exactly Action, ProductKey, FirmwareId, DeviceName.N and the set optionals")
    func operationParameters() {
        let full = CancelOTATaskByDeviceRequest(
            productKey: "pk",
            firmwareId: "fw",
            deviceNames: ["d1xx", "d2xx"],
            jobId: "job",
            iotInstanceId: "inst"
        )
        #expect(
            full.operationParameters() == [
                "Action": "CancelOTATaskByDevice", "ProductKey": "pk", "FirmwareId": "fw",
                "DeviceName.1": "d1xx", "DeviceName.2": "d2xx", "JobId": "job", "IotInstanceId": "inst",
            ]
        )
        let bare = CancelOTATaskByDeviceRequest(
            productKey: "pk",
            firmwareId: "fw",
            deviceNames: ["d1xx"],
            jobId: "",
            iotInstanceId: nil
        )
        #expect(
            bare.operationParameters() == [
                "Action": "CancelOTATaskByDevice", "ProductKey": "pk", "FirmwareId": "fw", "DeviceName.1": "d1xx",
            ]
        )
    }

    static let timestamp = Date(timeIntervalSince1970: 1_732_009_663)  // 2024-11-19T09:47:43Z

    static func fullClient(method: RPCHTTPMethod) -> PlatformAPIClient {
        var configuration = PlatformAPIConfiguration(
            endpoint: "http://127.0.0.1:9",
            accessKeyId: "testid",
            accessKeySecret: AccessKeySecret("testsecret")
        )
        configuration.method = method
        configuration.regionId = "cn-shanghai"
        configuration.iotInstanceId = "configured-instance"
        return PlatformAPIClient(configuration: configuration, logger: Logger(label: "test"))
    }

    static let fullRequest = CancelOTATaskByDeviceRequest(
        productKey: "a1V4kde",
        firmwareId: "T0F5b5tpFnHQrgfk030100",
        deviceNames: ["dev@01", "a:b.c_d-1"],
        jobId: "wahVIzGkCMuAUE2gDERM02",
        iotInstanceId: "iot-cn-0pp1n8t"
    )

    // Computed outside this code base (Python's urllib.parse.quote(safe="-_.~") and hmac/sha1), so the test
    // does not check the implementation against itself.
    static let expectedCanonical =
        "AccessKeyId=testid&Action=CancelOTATaskByDevice&DeviceName.1=dev%4001&DeviceName.2=a%3Ab.c_d-1"
        + "&FirmwareId=T0F5b5tpFnHQrgfk030100&Format=JSON&IotInstanceId=iot-cn-0pp1n8t&JobId=wahVIzGkCMuAUE2gDERM02"
        + "&ProductKey=a1V4kde&RegionId=cn-shanghai&SignatureMethod=HMAC-SHA1&SignatureNonce=nonce%201%2F~%2A"
        + "&SignatureVersion=1.0&Timestamp=2024-11-19T09%3A47%3A43Z&Version=2018-01-20"
    static let expectedStringToSignTail =
        "&%2F&AccessKeyId%3Dtestid%26Action%3DCancelOTATaskByDevice%26DeviceName.1%3Ddev%254001"
        + "%26DeviceName.2%3Da%253Ab.c_d-1%26FirmwareId%3DT0F5b5tpFnHQrgfk030100%26Format%3DJSON"
        + "%26IotInstanceId%3Diot-cn-0pp1n8t%26JobId%3DwahVIzGkCMuAUE2gDERM02%26ProductKey%3Da1V4kde"
        + "%26RegionId%3Dcn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dnonce%25201%252F~%252A"
        + "%26SignatureVersion%3D1.0%26Timestamp%3D2024-11-19T09%253A47%253A43Z%26Version%3D2018-01-20"

    @Test(
        "GET and POST: every common parameter, the request's IotInstanceId, an independently computed signature",
        arguments: [(RPCHTTPMethod.get, "DDkrIKebizxyvE4VdQ5E6m1XeXE="), (.post, "jMj45LTcYqY4o9MFKNtCi7vecdk=")]
    )
    func signedRequest(method: RPCHTTPMethod, signature: String) {
        let signed = Self.fullClient(method: method).signedRequest(
            for: Self.fullRequest,
            timestamp: Self.timestamp,
            nonce: "nonce 1/~*"
        )
        #expect(signed.method == method)
        #expect(signed.stringToSign == method.rawValue + Self.expectedStringToSignTail)
        #expect(signed.signature == signature)
        #expect(
            signed.encodedQuery == Self.expectedCanonical + "&Signature=" + RPCCanonicalization.percentEncode(signature)
        )
        #expect(signed.url(endpoint: "http://127.0.0.1:9") == "http://127.0.0.1:9/?" + signed.encodedQuery)
    }

    @Test("the configured IotInstanceId is sent when the request has none")
    func configuredInstance() {
        var request = Self.fullRequest
        request.iotInstanceId = nil
        let parameters = Self.fullClient(method: .get).parameters(for: request, timestamp: Self.timestamp, nonce: "n")
        #expect(parameters["IotInstanceId"] == "configured-instance")
    }

    @Test("reference §2.5: the tuya profile sends the seed's set (no Version/Format/SignatureVersion/RegionId)")
    func tuyaVector() {
        for (method, expected) in [
            (RPCHTTPMethod.get, "Nc8BbMr+oXPPaEK9H0nlTw6Nha4="), (.post, "3/cj14WCOds0y5s04LoPm00udoM="),
        ] {
            var configuration = PlatformAPIConfiguration(
                endpoint: "https://si-example.tuyacloud.com:8686/",
                accessKeyId: "testid",
                accessKeySecret: AccessKeySecret("testsecret")
            )
            configuration.method = method
            configuration.profile = .tuya
            // Tuya has no RegionId: the profile leaves it out even when one is configured.
            configuration.regionId = "cn-shanghai"
            let client = PlatformAPIClient(configuration: configuration, logger: Logger(label: "test"))
            let request = CancelOTATaskByDeviceRequest(
                productKey: "k1nhvylABCD",
                firmwareId: "168",
                deviceNames: ["testDevice1", "testDevice2"]
            )
            let signed = client.signedRequest(
                for: request,
                timestamp: Self.timestamp,
                nonce: "9e6189124f5a4716ad2de849467b0001"
            )
            #expect(
                Set(signed.unsignedParameters.keys) == [
                    "Action", "SignatureNonce", "AccessKeyId", "SignatureMethod", "Timestamp", "FirmwareId",
                    "ProductKey",
                    "DeviceName.1", "DeviceName.2",
                ]
            )
            #expect(signed.signature == expected)
        }
    }

    @Test("the documented defaults")
    func defaults() {
        let configuration = PlatformAPIConfiguration(
            endpoint: "http://x",
            accessKeyId: "id",
            accessKeySecret: AccessKeySecret("s")
        )
        #expect(configuration.method == .get)
        #expect(configuration.regionId == nil && configuration.iotInstanceId == nil)
        #expect(configuration.profile == .aliyun)
        #expect(configuration.timeouts.connect == .seconds(5) && configuration.timeouts.read == .seconds(10))
        #expect(configuration.retry == .default && configuration.retry.maxAttempts == 4)
        #expect(configuration.retry.ceiling(beforeRetry: 0) == .milliseconds(200))
        #expect(configuration.retry.ceiling(beforeRetry: 100) == .seconds(10))
        #expect(configuration.rateLimit.ratePerSecond == 10 && configuration.rateLimit.burst == 10)
        #expect(configuration.maxDeviceNamesPerCall == 200)
        #expect(configuration.maxResponseBodyBytes == 1 << 20)
    }

    @Test("the aliyun profile: exactly the official Python SDK's parameters, RegionId only when configured")
    func aliyunProfile() {
        var configuration = PlatformAPIConfiguration(
            endpoint: "https://iot.cn-shanghai.aliyuncs.com",
            accessKeyId: "testid",
            accessKeySecret: AccessKeySecret("testsecret")
        )
        let request = CancelOTATaskByDeviceRequest(productKey: "pk", firmwareId: "fw", deviceNames: ["dev1"])
        let operation: Set = ["Action", "ProductKey", "FirmwareId", "DeviceName.1"]
        let always: Set = ["AccessKeyId", "SignatureMethod", "SignatureNonce", "Timestamp"]
        let withoutRegion = configuration.parameters(for: request, timestamp: Self.timestamp, nonce: "n")
        #expect(Set(withoutRegion.keys) == operation.union(always).union(["Format", "Version", "SignatureVersion"]))
        #expect(withoutRegion["Format"] == "JSON" && withoutRegion["Version"] == "2018-01-20")
        #expect(withoutRegion["SignatureVersion"] == "1.0" && withoutRegion["SignatureMethod"] == "HMAC-SHA1")
        configuration.regionId = "cn-shanghai"
        #expect(
            configuration.parameters(for: request, timestamp: Self.timestamp, nonce: "n")["RegionId"] == "cn-shanghai"
        )
        configuration.regionId = ""
        #expect(configuration.parameters(for: request, timestamp: Self.timestamp, nonce: "n")["RegionId"] == nil)
        configuration.profile = .tuya
        configuration.regionId = "cn-shanghai"
        #expect(
            Set(configuration.parameters(for: request, timestamp: Self.timestamp, nonce: "n").keys)
                == operation.union(always)
        )
    }

    @Test("profiles: names, reference methods; the method stays the configuration's choice")
    func profileNames() {
        #expect(PlatformProfile(name: "aliyun") == .aliyun && PlatformProfile(name: "TUYA") == .tuya)
        #expect(PlatformProfile(name: "alibaba") == nil && PlatformProfile(name: "") == nil)
        #expect(PlatformProfile.allProfiles.map(\.name) == ["aliyun", "tuya"])
        #expect(PlatformProfile.aliyun.referenceMethod == .post && PlatformProfile.tuya.referenceMethod == .get)
        var configuration = PlatformAPIConfiguration(
            endpoint: "http://x",
            accessKeyId: "id",
            accessKeySecret: AccessKeySecret("s")
        )
        configuration.profile = .tuya
        configuration.method = .post
        let request = CancelOTATaskByDeviceRequest(productKey: "pk", firmwareId: "fw", deviceNames: ["dev1"])
        #expect(
            configuration.signedRequest(for: request, timestamp: Self.timestamp, nonce: "n").stringToSign.hasPrefix(
                "POST&%2F&"
            )
        )
    }
}
