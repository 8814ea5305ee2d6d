// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Mosquitto
import Testing
import Worker

@Suite("Command intake: parse, route, validate, correlate")
struct CommandIntakeTests {
    /// The decision must be `.execute`; returns the accepted command.
    private func accepted(
        _ decision: IntakeDecision,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> AcceptedCommand {
        guard case .execute(let accepted) = decision else {
            Issue.record("expected execution, got \(decision)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return accepted
    }

    /// The decision must be `.answer`; returns the reply (checked against the result schema) and its route.
    private func answered(
        _ decision: IntakeDecision,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (CancelReply, ReplyRoute) {
        guard case .answer(let reply, let route) = decision else {
            Issue.record("expected an answer, got \(decision)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        Fixtures.expectConforms(reply, sourceLocation: sourceLocation)
        return (reply, route)
    }

    @Test("MQTT 5: Response Topic and Correlation Data route the reply")
    func mqtt5Route() throws {
        let intake = try Fixtures.intake()
        let message = Fixtures.message(
            Fixtures.validPayload,
            responseTopic: "ota/cancel/reply/app1",
            correlationData: Array("req-1".utf8)
        )
        let command = try accepted(intake.decide(message))
        #expect(
            command.route
                == ReplyRoute(
                    topic: "ota/cancel/reply/app1",
                    source: .responseTopic,
                    correlationData: Array("req-1".utf8)
                )
        )
        #expect(command.correlationId == "req-1")
        #expect(command.command.deviceNames == ["dev-000001", "dev-000002"])
        #expect(command.receivedAt == Fixtures.fixedNow)
        #expect(command.deadline == Fixtures.fixedNow.addingTimeInterval(3600), "the default deadline: one hour")
    }

    @Test("binary Correlation Data is echoed but gives no correlationId text")
    func binaryCorrelation() throws {
        let intake = try Fixtures.intake()
        let data: [UInt8] = [0xFF, 0x00, 0xC3, 0x28]
        let command = try accepted(
            intake.decide(
                Fixtures.message(Fixtures.validPayload, responseTopic: "ota/cancel/reply/x", correlationData: data)
            )
        )
        #expect(command.route.correlationData == data)
        #expect(command.correlationId == nil)
        #expect(command.route.replyProperties.correlationData == data)
        #expect(command.route.replyProperties.contentType == "application/json")
    }

    @Test("the payload's correlationId wins over Correlation Data text")
    func payloadCorrelationWins() throws {
        let intake = try Fixtures.intake()
        let payload = #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"correlationId":"from-payload"}"#
        let command = try accepted(
            intake.decide(
                Fixtures.message(payload, responseTopic: "ota/cancel/reply/x", correlationData: Array("cd".utf8))
            )
        )
        #expect(command.correlationId == "from-payload")
        #expect(command.route.correlationData == Array("cd".utf8))
    }

    @Test("MQTT 3.1.1: replyTo and correlationId in the payload")
    func payloadRoute() throws {
        let intake = try Fixtures.intake()
        let payload =
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"replyTo":"ota/cancel/reply/legacy","correlationId":"c-311"}"#
        let command = try accepted(intake.decide(Fixtures.message(payload)))
        #expect(command.route == ReplyRoute(topic: "ota/cancel/reply/legacy", source: .replyTo, correlationData: nil))
        #expect(command.correlationId == "c-311")
    }

    @Test("no reply topic anywhere: the default reply topic")
    func defaultRoute() throws {
        let intake = try Fixtures.intake()
        let payload = #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"correlationId":"c"}"#
        let command = try accepted(intake.decide(Fixtures.message(payload)))
        #expect(command.route.topic == "ota/cancel/reply")
        #expect(command.route.source == .defaultTopic)
    }

    @Test("a reply topic outside the allow-list is rejected on the default topic, not executed")
    func replyTopicNotAllowed() throws {
        let intake = try Fixtures.intake()
        let payload =
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"replyTo":"factory/valves/open","correlationId":"c"}"#
        let (reply, route) = try answered(intake.decide(Fixtures.message(payload)))
        #expect(reply.status == .rejected)
        #expect(route.topic == "ota/cancel/reply")
        #expect(reply.errors?.map(\.code) == ["ReplyTopicNotAllowed"])
        #expect(reply.errors?.first?.instanceLocation == "/replyTo")
        #expect(reply.correlationId == "c")
        #expect(reply.productKey == "p")

        let (v5Reply, v5Route) = try answered(
            intake.decide(
                Fixtures.message(Fixtures.validPayload, responseTopic: "elsewhere/x", correlationData: Array("k".utf8))
            )
        )
        #expect(v5Reply.errors?.map(\.code) == ["ReplyTopicNotAllowed"])
        #expect(
            v5Route == ReplyRoute(topic: "ota/cancel/reply", source: .defaultTopic, correlationData: Array("k".utf8))
        )
    }

    @Test("a Response Topic with wildcards cannot be published to")
    func wildcardResponseTopic() throws {
        let intake = try Fixtures.intake()
        let (reply, route) = try answered(
            intake.decide(
                Fixtures.message(
                    Fixtures.validPayload,
                    responseTopic: "ota/cancel/reply/#",
                    correlationData: Array("k".utf8)
                )
            )
        )
        #expect(reply.errors?.map(\.code) == ["InvalidReplyTopic"])
        #expect(route.topic == "ota/cancel/reply")
    }

    @Test("without Correlation Data, correlationId is required")
    func missingCorrelation() throws {
        let intake = try Fixtures.intake()
        let (reply, _) = try answered(intake.decide(Fixtures.message(Fixtures.validPayload)))
        #expect(reply.status == .rejected)
        #expect(reply.correlationId == nil)
        #expect(reply.errors?.map(\.code) == ["MissingCorrelation"])
    }

    @Test("schema errors point at the bad field")
    func schemaErrors() throws {
        let intake = try Fixtures.intake()
        let payload = #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1","ab"],"color":"red","dryRun":"yes"}"#
        let (reply, route) = try answered(
            intake.decide(Fixtures.message(payload, responseTopic: "ota/cancel/reply/x", correlationData: [1]))
        )
        #expect(reply.status == .rejected)
        #expect(route.topic == "ota/cancel/reply/x")
        let locations = Set((reply.errors ?? []).map(\.instanceLocation))
        #expect(locations.contains("/deviceNames/1"))
        #expect(locations.contains("/color"))
        #expect(locations.contains("/dryRun"))
        #expect(
            reply.errors?.allSatisfy {
                $0.code == "SchemaViolation" && !$0.message.isEmpty && $0.keywordLocation.hasPrefix("/")
            } == true
        )
        let tooShort = try #require(reply.errors?.first { $0.instanceLocation == "/deviceNames/1" })
        #expect(tooShort.keywordLocation == "/properties/deviceNames/items/minLength")
    }

    @Test("missing required fields are named")
    func missingFields() throws {
        let intake = try Fixtures.intake()
        let (reply, _) = try answered(intake.decide(Fixtures.message(#"{"correlationId":"c"}"#)))
        let messages = (reply.errors ?? []).map(\.message).joined(separator: " | ")
        for field in ["productKey", "firmwareId", "deviceNames"] {
            #expect(messages.contains(field), "no error names \(field): \(messages)")
        }
    }

    @Test("the configured device limit applies")
    func deviceLimit() throws {
        let intake = try Fixtures.intake(maxDeviceNames: 2)
        let payload =
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1","dev-2","dev-3"],"correlationId":"c"}"#
        let (reply, _) = try answered(intake.decide(Fixtures.message(payload)))
        #expect(reply.errors?.first?.instanceLocation == "/deviceNames")
        #expect(reply.errors?.first?.keywordLocation == "/properties/deviceNames/maxItems")
        _ = try accepted(
            intake.decide(
                Fixtures.message(
                    #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1","dev-2"],"correlationId":"c"}"#
                )
            )
        )
    }

    @Test("invalid JSON: rejected on the Response Topic, or dead-lettered when there is none")
    func invalidJSON() throws {
        let intake = try Fixtures.intake()
        let (reply, route) = try answered(
            intake.decide(
                Fixtures.message("{not json", responseTopic: "ota/cancel/reply/x", correlationData: Array("c1".utf8))
            )
        )
        #expect(reply.errors?.map(\.code) == ["InvalidJSON"])
        #expect(reply.correlationId == "c1")
        #expect(route.topic == "ota/cancel/reply/x")

        guard case .deadLetter(let letter) = intake.decide(Fixtures.message("{not json")) else {
            Issue.record("expected a dead letter")
            return
        }
        #expect(letter.topic == "ota/cancel/dead-letter")
        let entry = try JSONParser.parse(letter.payload)
        #expect(entry["code"]?.stringValue == "InvalidJSON")
        #expect(entry["payloadText"]?.stringValue == "{not json")
        #expect(entry["payloadBase64"]?.stringValue == Data("{not json".utf8).base64EncodedString())
        #expect(entry["topic"]?.stringValue == "ota/cancel/request")
        #expect(entry["reason"]?.stringValue?.isEmpty == false)
    }

    @Test("non-UTF-8 payloads are dead-lettered with their bytes")
    func binaryPayload() throws {
        let intake = try Fixtures.intake()
        var message = Fixtures.message("")
        message.payload = [0xC3, 0x28, 0xFF, 0x00]
        guard case .deadLetter(let letter) = intake.decide(message) else {
            Issue.record("expected a dead letter")
            return
        }
        let entry = try JSONParser.parse(letter.payload)
        #expect(entry["payloadBase64"]?.stringValue == Data([0xC3, 0x28, 0xFF, 0x00]).base64EncodedString())
        #expect(entry["payloadText"] == nil)
    }

    @Test("oversized and retained messages are not parsed")
    func notParsed() throws {
        let intake = try Fixtures.intake(CancelWorkerConfiguration(maxPayloadBytes: 64))
        let big = Fixtures.message(
            String(repeating: " ", count: 65) + Fixtures.validPayload,
            responseTopic: "ota/cancel/reply/x",
            correlationData: [7]
        )
        let (reply, _) = try answered(intake.decide(big))
        #expect(reply.errors?.map(\.code) == ["PayloadTooLarge"])

        let retained = Fixtures.message(
            Fixtures.validPayload,
            responseTopic: "ota/cancel/reply/x",
            correlationData: [7],
            retain: true
        )
        let (retainedReply, _) = try answered(try Fixtures.intake().decide(retained))
        #expect(retainedReply.errors?.map(\.code) == ["RetainedCommand"])
    }

    @Test("deadlines: the command's, the message expiry, the earlier of both")
    func deadlines() throws {
        let intake = try Fixtures.intake()
        let withoutDefault = try Fixtures.intake(CancelWorkerConfiguration(defaultDeadline: nil))
        let none = try accepted(
            withoutDefault.decide(
                Fixtures.message(Fixtures.validPayload, responseTopic: "ota/cancel/reply/x", correlationData: [1])
            )
        )
        #expect(none.deadline == nil, "no deadline anywhere and no default: none")
        let past =
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"correlationId":"c","deadline":"2020-01-01T00:00:00Z"}"#
        let (expired, _) = try answered(intake.decide(Fixtures.message(past)))
        #expect(expired.status == .expired)
        #expect(expired.deviceCount == 1)

        let future =
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"correlationId":"c","deadline":"2030-01-01T00:00:00+08:00"}"#
        let command = try accepted(withoutDefault.decide(Fixtures.message(future)))
        #expect(command.deadline == RFC3339.date(from: "2030-01-01T00:00:00+08:00"))
        // With the default (one hour), the earlier of the two applies.
        let bounded = try accepted(intake.decide(Fixtures.message(future)))
        #expect(bounded.deadline == Fixtures.fixedNow.addingTimeInterval(3600))

        let both = try accepted(withoutDefault.decide(Fixtures.message(future, expiry: 30)))
        #expect(both.deadline == Fixtures.fixedNow.addingTimeInterval(30))

        let badDeadline =
            #"{"productKey":"p","firmwareId":"f","deviceNames":["dev-1"],"correlationId":"c","deadline":"tomorrow"}"#
        let (rejected, _) = try answered(intake.decide(Fixtures.message(badDeadline)))
        #expect(rejected.errors?.first?.instanceLocation == "/deadline")
    }

    @Test("whatever the bytes, intake decides without trapping, and every answer keeps the contract")
    func arbitraryInput() throws {
        let intake = try Fixtures.intake()
        var generator = SystemRandomNumberGenerator()
        let fragments = [
            "{", "}", "[", "]", ",", ":", "\"productKey\"", "\"deviceNames\"", "\"dev-000001\"", "1e999", "-0", "true",
            "null", "\"\\ud800\"", "\"\\u0000\"", String(repeating: "[", count: 200), "\"ä\"", "\u{FEFF}", " ",
        ]
        for round in 0..<3_000 {
            var message = Fixtures.message(
                "",
                responseTopic: round.isMultiple(of: 2) ? "ota/cancel/reply/f" : nil,
                correlationData: round.isMultiple(of: 3) ? [1, 2] : nil
            )
            if round.isMultiple(of: 5) {
                message.payload = (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
            } else {
                message.payload = Array(
                    (0..<Int.random(in: 1...12, using: &generator)).map { _ in
                        fragments.randomElement(using: &generator)!
                    }.joined().utf8
                )
            }
            switch intake.decide(message) {
            case .answer(let reply, _):
                Fixtures.expectConforms(reply)
            case .deadLetter(let letter):
                #expect(letter.topic == "ota/cancel/dead-letter")
                #expect((try? JSONParser.parse(letter.payload)) != nil)
            case .execute(let command):
                #expect(!command.command.deviceNames.isEmpty)
            }
        }
    }
}
