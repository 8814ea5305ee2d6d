// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Mosquitto
import Testing
import Worker
import WorkerApp

/// `request`'s pure parts: the message it publishes, its local check, `--deadline`, the device list, and how a
/// reply becomes a summary and an exit status.
@Suite("request: building, checking and reading a command")
struct CancelRequestTests {
    static let schema: CommandSchema = try! WorkerApp.commandSchema(path: nil, maxDeviceNames: nil)

    static func request(
        _ names: [String] = ["dev-000001", "dev-000002"],
        version: MQTTProtocolVersion = .v5
    )
        -> CancelRequest
    {
        CancelRequest(
            productKey: "demoProduct",
            firmwareId: "demoFirmware",
            deviceNames: names,
            correlationId: "c-1",
            replyTopic: "ota/cancel/reply/me",
            protocolVersion: version
        )
    }

    @Test("MQTT 5: the ids travel in Response Topic and Correlation Data, the payload holds only the command")
    func version5Message() throws {
        var request = Self.request()
        request.jobId = "job-1"
        request.reason = "bad rollout"
        request.deadline = Date(timeIntervalSince1970: 1_800_000_000)
        let message = request.message(topic: "ota/cancel/request")
        #expect(message.topic == "ota/cancel/request")
        #expect(message.qos == .atLeastOnce && !message.retain)
        #expect(message.properties.responseTopic == "ota/cancel/reply/me")
        #expect(message.properties.correlationData == Array("c-1".utf8))
        #expect(
            String(decoding: message.payload, as: UTF8.self)
                == #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000001","dev-000002"],"#
                + #""jobId":"job-1","deadline":"2027-01-15T08:00:00.000Z","reason":"bad rollout"}"#
        )
    }

    @Test("MQTT 3.1.1: no properties; correlationId and replyTo in the payload; flags only when set")
    func version311Message() throws {
        var request = Self.request(["dev-000001"], version: .v3_1_1)
        request.dryRun = true
        request.verify = false
        request.requestedBy = "rollback-bot"
        let message = request.message(topic: "ota/cancel/request")
        #expect(message.properties == MQTTProperties())
        let payload = try JSONParser.parse(message.payload)
        #expect(payload["correlationId"] == "c-1")
        #expect(payload["replyTo"] == "ota/cancel/reply/me")
        #expect(payload["dryRun"] == true)
        #expect(payload["verify"] == false)
        #expect(payload["requestedBy"] == "rollback-bot")
        // (`== nil` would compare with JSON null: JSONValue is ExpressibleByNilLiteral.)
        #expect(payload.objectValue?.keys.contains { ["jobId", "deadline", "reason"].contains($0) } == false)
    }

    @Test("a valid command is sent, on either protocol")
    func validIsSent() {
        for version in [MQTTProtocolVersion.v5, .v3_1_1] {
            guard
                case .send = Self.request(version: version).check(topic: "t", schema: Self.schema)
            else {
                Issue.record("a valid \(version) command was refused")
                continue
            }
        }
    }

    /// The local verdict's reply, or `nil` (recorded) when the command would be sent.
    func rejection(_ request: CancelRequest, schema: CommandSchema = Self.schema) -> JSONValue? {
        switch request.check(topic: "ota/cancel/request", schema: schema) {
        case .send:
            Issue.record("expected a rejection")
            return nil
        case .rejected(let reply): return reply.jsonValue
        }
    }

    @Test("the worker's own messages: a short name, a repeated name, too many names, an unusable reply topic")
    func rejections() throws {
        let short = try #require(rejection(Self.request(["dev-000001", "ab"])))
        #expect(short["status"] == "rejected")
        #expect(short["correlationId"] == "c-1")
        let error = try #require(short["errors"]?.arrayValue?.first)
        #expect(error["code"] == "SchemaViolation")
        #expect(error["instanceLocation"] == "/deviceNames/1")
        #expect(error["message"] == "deviceNames/1: 'ab' is shorter than 4 characters")

        let repeated = try #require(rejection(Self.request(["dev-000001", "dev-000001"])))
        #expect(repeated["errors"]?.arrayValue?.first?["keywordLocation"] == "/properties/deviceNames/uniqueItems")

        let many = (1...6).map { String(format: "dev-%06d", $0) }
        let five = try WorkerApp.commandSchema(path: nil, maxDeviceNames: 5)
        let tooMany = try #require(rejection(Self.request(many), schema: five))
        #expect(tooMany["errors"]?.arrayValue?.first?["keywordLocation"] == "/properties/deviceNames/maxItems")

        var wildcard = Self.request()
        wildcard.replyTopic = "ota/cancel/reply/#"
        let route = try #require(rejection(wildcard))
        #expect(route["errors"]?.arrayValue?.first?["code"] == "InvalidReplyTopic")
    }

    @Test("a deadline already past is the worker's to answer (expired, journaled), not refused here")
    func pastDeadlineIsSent() {
        var request = Self.request()
        request.deadline = Date(timeIntervalSince1970: 1_000_000_000)
        guard case .send = request.check(topic: "t", schema: Self.schema) else {
            Issue.record("a past deadline was refused locally")
            return
        }
    }

    @Test("--deadline: RFC 3339, or a positive duration in s, m, h, d or plain seconds")
    func deadlines() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(RequestDeadline.parse("2026-12-01T18:00:00Z", now: now) == RFC3339.date(from: "2026-12-01T18:00:00Z"))
        #expect(RequestDeadline.parse("90s", now: now) == now.addingTimeInterval(90))
        #expect(RequestDeadline.parse("5m", now: now) == now.addingTimeInterval(300))
        #expect(RequestDeadline.parse("2h", now: now) == now.addingTimeInterval(7_200))
        #expect(RequestDeadline.parse("1d", now: now) == now.addingTimeInterval(86_400))
        #expect(RequestDeadline.parse("1.5", now: now) == now.addingTimeInterval(1.5))
        for bad in ["", "0", "-5m", "+5m", "5x", "m", "inf", "nan", "2026-12-01"] {
            #expect(RequestDeadline.parse(bad, now: now) == nil, "'\(bad)' was accepted")
        }
    }

    @Test("device lists: one name per line, blank lines and surrounding spaces dropped, CRLF read as LF")
    func deviceLists() {
        #expect(DeviceNameList.parse("dev-1\r\n\r\n  dev-2 \n\tdev-3\n") == ["dev-1", "dev-2", "dev-3"])
        #expect(DeviceNameList.parse("") == [])
    }

    @Test("a reply is recognised by its Correlation Data (MQTT 5), else by the payload's correlationId")
    func matching() {
        let request = Self.request()
        let payload = Array(#"{"correlationId":"c-1","status":"succeeded"}"#.utf8)
        let mine = MQTTMessage(
            topic: "r",
            payload: payload,
            properties: MQTTProperties(correlationData: Array("c-1".utf8))
        )
        let other = MQTTMessage(
            topic: "r",
            payload: payload,
            properties: MQTTProperties(correlationData: Array("c-2".utf8))
        )
        #expect(CancelRequester.reply(to: request, in: mine) != nil)
        #expect(CancelRequester.reply(to: request, in: other) == Optional<JSONValue>.none)
        #expect(CancelRequester.reply(to: request, in: MQTTMessage(topic: "r", payload: payload)) != nil)
        let stranger = MQTTMessage(topic: "r", payload: Array(#"{"correlationId":"c-9"}"#.utf8))
        #expect(CancelRequester.reply(to: request, in: stranger) == Optional<JSONValue>.none)
        #expect(
            CancelRequester.reply(to: request, in: MQTTMessage(topic: "r", payload: Array("not json".utf8)))
                == Optional<JSONValue>.none
        )
    }

    @Test("every outcome has its own exit status, as documented")
    func exitStatuses() throws {
        func status(_ text: String) throws -> Int32 {
            CancelRequestOutcome.replied(try JSONParser.parse(#"{"status":"\#(text)"}"#)).exitStatus
        }
        #expect(try status("succeeded") == 0)
        #expect(try status("partial") == 1)
        #expect(try status("failed") == 2)
        #expect(try status("rejected") == 3)
        #expect(try status("expired") == 4)
        #expect(try status("something new") == 2)
        #expect(CancelRequestOutcome.rejectedLocally(try JSONParser.parse(#"{"status":"rejected"}"#)).exitStatus == 3)
        #expect(CancelRequestOutcome.noReply(correlationId: "c", timeoutSeconds: 1).exitStatus == 5)
        #expect(CancelRequestOutcome.noReply(correlationId: "c", timeoutSeconds: 1).jsonLine == nil)
    }

    @Test("the summary: counts first, then each failed group with its code, and the read-back groups")
    func summary() throws {
        let names = (1...8).map { "\"d-\($0)\"" }.joined(separator: ",")
        let reply = try JSONParser.parse(
            #"""
            {"version":2,"correlationId":"c-1","status":"partial","deviceCount":10,"cancelledDevices":["a-1","a-2"],
             "calls":3,"requestIds":["R1","R2","R3"],
             "failedGroups":[{"deviceNames":[\#(names)],"code":"iot.ota.TaskNotCancellable","message":"no",
               "requestId":"R3","transient":false,"attempts":1}],
             "devices":{"canceled":["a-1"],"alreadyUpgraded":["a-2"],"failed":[],"stillActive":[],"noTask":[],
               "unverified":[],"unverifiedReasons":[],"reads":1,"requestIds":["R4"]}}
            """#
        )
        let lines = CancelRequestOutcome.replied(reply).summary
        #expect(lines.first == "partial (correlation id c-1): 2 of 10 devices cancelled in 3 platform calls")
        #expect(lines.contains("  request ids: R1, R2, R3"))
        #expect(
            lines.contains(
                "  failed: 8 devices (d-1, d-2, d-3, d-4, d-5 and 3 more): iot.ota.TaskNotCancellable: no, request id R3"
            )
        )
        #expect(
            lines.contains(
                "  read back: 1 canceled, 1 alreadyUpgraded, 0 failed, 0 stillActive, 0 noTask, 0 unverified"
            )
        )
        #expect(lines.contains("    alreadyUpgraded: a-2"))

        let rejected = try JSONParser.parse(
            #"{"status":"rejected","correlationId":"c-1","errors":[{"code":"ConflictingDuplicate","instanceLocation":"","message":"m"}]}"#
        )
        #expect(
            CancelRequestOutcome.replied(rejected).summary == [
                "rejected by the worker (correlation id c-1):", "  ConflictingDuplicate: m",
            ]
        )
        #expect(CancelRequestOutcome.rejectedLocally(rejected).summary.first == "rejected here, nothing was published:")
        let noReply = CancelRequestOutcome.noReply(correlationId: "c-7", timeoutSeconds: 2.5).summary.joined()
        #expect(
            noReply.contains("no reply within 2.5 s (correlation id c-7)") && noReply.contains("--correlation-id c-7")
        )
    }
}
