// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Testing
import Worker

@Suite("Replies")
struct CancelReplyTests {
    private func sampleCommand() -> CancelCommand {
        CancelCommand(
            productKey: "p",
            firmwareId: "f",
            deviceNames: ["dev-1", "dev-2", "dev-3"],
            jobId: "j",
            correlationId: "c",
            reason: "rollback",
            requestedBy: "monitor"
        )
    }

    @Test("a partial reply lists both sides and keeps the contract")
    func partial() throws {
        var reply = CancelReply(
            correlationId: "c",
            status: .partial,
            receivedAt: Fixtures.fixedNow,
            completedAt: Fixtures.fixedNow.addingTimeInterval(0.25)
        )
        reply.echo(sampleCommand())
        reply.cancelledDevices = ["dev-1", "dev-2"]
        reply.failedGroups = [
            .init(
                deviceNames: ["dev-3"],
                code: "iot.device.NotExistedDevice",
                message: "no such device",
                requestId: "R-1",
                httpStatus: 200,
                transient: false,
                attempts: 1
            )
        ]
        reply.calls = 2
        reply.attempts = 2
        reply.requestIds = ["R-0"]
        Fixtures.expectConforms(reply)
        let json = reply.jsonValue
        #expect(json["status"]?.stringValue == "partial")
        #expect(json["failedGroups"]?.arrayValue?.first?["code"]?.stringValue == "iot.device.NotExistedDevice")
        #expect(json["receivedAt"]?.stringValue == "2026-11-18T11:06:40.000Z")
        #expect(json["completedAt"]?.stringValue == "2026-11-18T11:06:40.250Z")
        #expect(json["reason"]?.stringValue == "rollback")
    }

    @Test("serialisation is deterministic and starts with version, correlationId, status")
    func deterministic() {
        var reply = CancelReply(
            correlationId: "c",
            status: .succeeded,
            receivedAt: Fixtures.fixedNow,
            completedAt: Fixtures.fixedNow
        )
        reply.echo(sampleCommand())
        reply.cancelledDevices = ["dev-1", "dev-2", "dev-3"]
        reply.calls = 1
        reply.attempts = 1
        let first = reply.jsonValue.serializedBytes()
        #expect(first == reply.jsonValue.serializedBytes())
        #expect(
            String(decoding: first, as: UTF8.self).hasPrefix(#"{"version":2,"correlationId":"c","status":"succeeded""#)
        )
    }

    @Test("the contract refuses what the worker must never send")
    func contractHasTeeth() throws {
        // A rejected reply without errors, or a failed one without failedGroups, breaks the schema.
        let rejected = CancelReply(
            correlationId: "c",
            status: .rejected,
            receivedAt: Fixtures.fixedNow,
            completedAt: Fixtures.fixedNow
        )
        #expect(!Fixtures.resultValidator.validate(rejected.jsonValue).isEmpty)
        var failed = CancelReply(
            correlationId: "c",
            status: .failed,
            receivedAt: Fixtures.fixedNow,
            completedAt: Fixtures.fixedNow
        )
        failed.echo(sampleCommand())
        failed.cancelledDevices = []
        failed.calls = 1
        failed.attempts = 1
        #expect(!Fixtures.resultValidator.validate(failed.jsonValue).isEmpty)
    }
}
