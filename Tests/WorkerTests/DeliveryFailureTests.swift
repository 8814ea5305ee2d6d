// SPDX-License-Identifier: Apache-2.0
import Mosquitto
import Testing
import Worker

/// Which publication failures are the message's (never retried) and which the connection's (retried).
@Suite("Delivery failure classification")
struct DeliveryFailureClassificationTests {
    @Test(
        "libmosquitto refusing the message itself: undeliverable",
        arguments: [
            MosquittoError.ResultCode.malformedUTF8, .inval, .oversizePacket, .payloadSize, .qosNotSupported,
            .retainNotSupported, .duplicateProperty, .notSupported,
        ]
    )
    func messageCodes(code: MosquittoError.ResultCode) {
        guard case .message(let reason) = DeliveryFailure(MosquittoError(.library(code), detail: "publish")) else {
            Issue.record("\(code) should end the delivery")
            return
        }
        #expect(reason.contains(code.name))
    }

    @Test(
        "the connection's trouble: retried",
        arguments: [MosquittoError.ResultCode.noConn, .connLost, .keepalive, .errno, .tls, .nomem, .protocol]
    )
    func connectionCodes(code: MosquittoError.ResultCode) {
        #expect(DeliveryFailure(MosquittoError(.library(code))) == .connection)
    }

    @Test("a client being rebuilt, the worker closing, cancellation: retried (or left in the journal)")
    func notTheMessage() {
        #expect(DeliveryFailure(MosquittoError.clientClosed("rebuilt")) == .connection)
        #expect(DeliveryFailure(WorkerError.mqtt("the MQTT connection is closing")) == .connection)
        #expect(DeliveryFailure(CancellationError()) == .connection)
    }

    @Test("a NUL in the topic (our own check) ends the delivery")
    func invalidArgument() {
        guard case .message = DeliveryFailure(MosquittoError.invalidArgument("topic contains NUL")) else {
            Issue.record("an invalid topic should end the delivery")
            return
        }
    }

    @Test(
        "PUBACK reason codes: a refusal of the message ends it; quota, unspecified and implementation errors are retried a few times",
        arguments: [
            (UInt8(0x87), false), (0x90, false), (0x95, false), (0x99, false), (0x80, true), (0x83, true),
            (0x91, true), (0x97, true),
        ]
    )
    func reasonCodes(code: UInt8, retried: Bool) {
        let failure = DeliveryFailure(MosquittoError(.reasonCode(code), detail: "PUBACK"))
        switch failure {
        case .refused(let reason): #expect(retried, "\(reason)")
        case .message(let reason): #expect(!retried, "\(reason)")
        case .connection: Issue.record("a PUBACK refusal is about the message, not the connection")
        }
        #expect(DeliveryFailure.maximumRefusals > 1)
    }
}
