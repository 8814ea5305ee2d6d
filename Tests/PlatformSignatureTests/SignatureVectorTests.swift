// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature
import Testing

/// Every vector of `reference/platform-api.md` §1.2 and §2, recomputed by our signer.
@Suite("RPC signature v1.0 vectors")
struct SignatureVectorTests {
    /// The classic DescribeRegions parameters (§1.2 V1/V2), with the timestamp under a given name.
    private func describeRegions(timestampName: String) -> [String: String] {
        [
            timestampName: "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
            "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
            "SignatureVersion": "1.0",
        ]
    }

    private let testSigner = RPCSigner(accessKeyId: "testid", accessKeySecret: AccessKeySecret("testsecret"))

    @Test("V1: DescribeRegions with TimeStamp")
    func v1() {
        let signed = testSigner.sign(method: .get, parameters: describeRegions(timestampName: "TimeStamp"))
        #expect(
            signed.stringToSign
                == "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        )
        #expect(signed.signature == "CT9X0VtwR86fNWSnsc6v8YGOjuE=")
        #expect(signed.encodedQuery.hasSuffix("&Signature=CT9X0VtwR86fNWSnsc6v8YGOjuE%3D"))
        // The documented URL lists the parameters in another order; as a set they must be ours.
        let documented =
            "SignatureVersion=1.0&Action=DescribeRegions&Format=XML&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&Version=2014-05-26&AccessKeyId=testid&Signature=CT9X0VtwR86fNWSnsc6v8YGOjuE%3D&SignatureMethod=HMAC-SHA1&TimeStamp=2016-02-23T12%3A46%3A24Z"
        #expect(RPCCanonicalization.parseQuery(documented) == signed.parameters)
        #expect(Set(documented.split(separator: "&")) == Set(signed.encodedQuery.split(separator: "&")))
    }

    @Test("V2: DescribeRegions with Timestamp")
    func v2() {
        let signed = testSigner.sign(method: .get, parameters: describeRegions(timestampName: "Timestamp"))
        #expect(
            signed.stringToSign
                == "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        )
        #expect(signed.signature == "OLeaidS1JvxuMvnyHOwuJ+uX5qY=")
        #expect(signed.encodedQuery.hasSuffix("&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D"))
    }

    @Test("V3: SendSms with UTF-8 and JSON values")
    func v3() {
        let signer = RPCSigner(accessKeyId: "testId", accessKeySecret: AccessKeySecret("testSecret"))
        let signed = signer.sign(
            method: .get,
            parameters: [
                "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
                "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
                "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
                "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": #"{"customer":"test"}"#,
                "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
            ]
        )
        #expect(
            signed.stringToSign
                == "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
        )
        #expect(signed.signature == "zJDF+Lrzhj/ThnlvIToysFRq6t4=")
    }

    @Test("V4: C++ SDK string-to-sign")
    func v4() {
        let stringToSign =
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26RegionId%3Dregion1%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3DNwDAxvLU6tFE0DVb%26SignatureVersion%3D1.0%26TimeStamp%3D2012-12-26T10%253A33%253A56Z%26Version%3D2013-01-10"
        #expect(
            RPCSigner.signature(stringToSign: stringToSign, accessKeySecret: AccessKeySecret("testsecret"))
                == "axE3FUHgDyfm9/+Iep0HpZXrRwE="
        )
        // And the same string from parameters, to check canonicalisation of this set too.
        let parameters = [
            "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "RegionId": "region1",
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "NwDAxvLU6tFE0DVb", "SignatureVersion": "1.0",
            "TimeStamp": "2012-12-26T10:33:56Z", "Version": "2013-01-10",
        ]
        #expect(RPCCanonicalization.stringToSign(method: .get, parameters: parameters) == stringToSign)
    }

    @Test("V5: HMAC-SHA1 primitive with a raw key")
    func v5() {
        #expect(RPCSigner.hmacSHA1Base64(key: "secret", message: "source") == "Jv4yi8SobFhg5t1C7nWLbhBSFZQ=")
        #expect(RPCSigner.hmacSHA1Base64(key: "secret", message: "中文unicode") == "szlfHs3WVaO/HgY3Cg7/uyXDaRw=")
    }

    @Test("§2.5: Tuya-sample-shaped CancelOTATaskByDevice, GET and POST")
    func cancelOTATaskByDevice() {
        let parameters = [
            "Action": "CancelOTATaskByDevice", "SignatureNonce": "9e6189124f5a4716ad2de849467b0001",
            "AccessKeyId": "testid", "SignatureMethod": "HMAC-SHA1", "Timestamp": "2024-11-19T09:47:43Z",
            "FirmwareId": "168", "ProductKey": "k1nhvylABCD", "DeviceName.1": "testDevice1",
            "DeviceName.2": "testDevice2",
        ]
        let get = testSigner.sign(method: .get, parameters: parameters)
        #expect(
            get.stringToSign
                == "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCancelOTATaskByDevice%26DeviceName.1%3DtestDevice1%26DeviceName.2%3DtestDevice2%26FirmwareId%3D168%26ProductKey%3Dk1nhvylABCD%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D9e6189124f5a4716ad2de849467b0001%26Timestamp%3D2024-11-19T09%253A47%253A43Z"
        )
        #expect(get.signature == "Nc8BbMr+oXPPaEK9H0nlTw6Nha4=")
        #expect(testSigner.sign(method: .post, parameters: parameters).signature == "3/cj14WCOds0y5s04LoPm00udoM=")
    }

    @Test(
        "§2.6: percent-encoding table",
        arguments: [
            ("dev-01_a.b", "dev-01_a.b"), ("user@host:8080", "user%40host%3A8080"), ("sp ace", "sp%20ace"),
            ("*", "%2A"), ("~", "~"), ("+", "%2B"), ("/", "%2F"), ("=", "%3D"), ("&", "%26"),
            ("!'()", "%21%27%28%29"), ("中", "%E4%B8%AD"),
        ]
    )
    func percentEncoding(raw: String, encoded: String) {
        #expect(RPCCanonicalization.percentEncode(raw) == encoded)
        #expect(RPCCanonicalization.percentDecode(encoded) == raw)
    }

    @Test("DeviceName.N sorts in byte order")
    func byteOrder() {
        let parameters = Dictionary(uniqueKeysWithValues: (1...12).map { ("DeviceName.\($0)", "d\($0)") })
        let names = RPCCanonicalization.canonicalizedQueryString(parameters).split(separator: "&").map {
            String($0.split(separator: "=")[0])
        }
        #expect(
            names == [
                "DeviceName.1", "DeviceName.10", "DeviceName.11", "DeviceName.12", "DeviceName.2", "DeviceName.3",
                "DeviceName.4", "DeviceName.5", "DeviceName.6", "DeviceName.7", "DeviceName.8", "DeviceName.9",
            ]
        )
    }

    @Test("Timestamp formatting and parsing")
    func timestamps() throws {
        let date = Date(timeIntervalSince1970: 1_732_009_663)  // 2024-11-19T09:47:43Z
        #expect(RPCTimestamp.string(from: date) == "2024-11-19T09:47:43Z")
        #expect(RPCTimestamp.date(from: "2024-11-19T09:47:43Z") == date)
        #expect(RPCTimestamp.string(from: Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
        #expect(RPCTimestamp.date(from: "2023-02-29T00:00:00Z") == nil)
        #expect(RPCTimestamp.date(from: "2024-11-19 09:47:43Z") == nil)
        #expect(RPCTimestamp.date(from: "2024-11-19T09:47:43+00:00") == nil)
        for seconds in stride(from: -86_400 * 400, to: 86_400 * 365 * 80, by: 86_400 * 7 + 3_601) {
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            #expect(RPCTimestamp.date(from: RPCTimestamp.string(from: date)) == date)
        }
    }

    @Test("The secret never shows in descriptions")
    func secretRedaction() {
        let secret = AccessKeySecret("  s3cr3t-value\n")
        #expect(!"\(secret)".contains("s3cr3t"))
        #expect(!String(reflecting: secret).contains("s3cr3t"))
        #expect(!"\(testSigner)".contains("testsecret"))
        #expect(secret == AccessKeySecret("s3cr3t-value"))
    }

    @Test("Signed URL keeps the endpoint and adds the path")
    func signedURL() {
        let signed = testSigner.sign(method: .get, parameters: ["Action": "X"])
        #expect(signed.url(endpoint: "http://127.0.0.1:8080").hasPrefix("http://127.0.0.1:8080/?Action=X&Signature="))
        #expect(
            signed.url(endpoint: "https://iot.cn-shanghai.aliyuncs.com/").hasPrefix(
                "https://iot.cn-shanghai.aliyuncs.com/?Action=X"
            )
        )
    }
}
