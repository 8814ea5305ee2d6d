// SPDX-License-Identifier: Apache-2.0
import Mosquitto
import Testing

/// The connection state machine, without a broker.
@Suite("ConnectionStateMachine")
struct StateMachineTests {
    let policy = MosquittoConfiguration.Reconnect(initialDelay: .seconds(1), maximumDelay: .seconds(30))

    /// MOSQ_ERR_* values used below.
    let protocolError: Int32 = 2
    let connRefused: Int32 = 5
    let connLost: Int32 = 7
    let errnoError: Int32 = 14
    let eai: Int32 = 15
    let noConn: Int32 = 4

    @Test("first CONNACK resumes connect() and asks for the subscriptions to be sent")
    func firstConnack() {
        var machine = ConnectionStateMachine(reconnect: policy)
        #expect(machine.start() == .startLoop)
        #expect(machine.state == .connecting(failedAttempts: 0))
        let actions = machine.connackReceived(returnCode: 0, sessionPresent: true)
        #expect(
            actions == [
                .emit(.connected(sessionPresent: true)), .resumeConnectWaiters(sessionPresent: true),
                .resubscribe(sessionPresent: true),
            ]
        )
        #expect(machine.isConnected)
        #expect(machine.start() == .alreadyConnected(sessionPresent: true))
    }

    @Test("an unreachable broker is retried with doubling delays up to the maximum")
    func backoffWhileUnreachable() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        var delays: [Duration] = []
        for _ in 0..<7 {
            guard case .reconnect(let delay) = machine.networkFailed(returnCode: errnoError) else {
                Issue.record("expected a reconnect decision")
                return
            }
            delays.append(delay)
        }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30].map { Duration.seconds($0) })
        #expect(machine.state == .connecting(failedAttempts: 7))
        #expect(machine.start() == .wait)
        // Success resets the count, and it is still the first connection.
        #expect(
            machine.connackReceived(returnCode: 0, sessionPresent: false).contains(
                .resumeConnectWaiters(sessionPresent: false)
            )
        )
    }

    @Test("a constant backoff when exponential is off")
    func constantBackoff() {
        let constant = MosquittoConfiguration.Reconnect(
            initialDelay: .milliseconds(250),
            maximumDelay: .seconds(5),
            exponential: false
        )
        #expect((0..<5).map { constant.delay(forAttempt: $0) } == Array(repeating: .milliseconds(250), count: 5))
        #expect(policy.delay(forAttempt: 1_000) == .seconds(30))
    }

    @Test(
        "a refusal before the first connection ends the loop and fails connect()",
        arguments: [
            (Int32(0x87), Int32(2)),  // MQTT 5: libmosquitto turns the refusal into MOSQ_ERR_PROTOCOL
            (Int32(5), Int32(5)),  // MQTT 3.1.1: MOSQ_ERR_CONN_REFUSED
            (Int32(0x89), Int32(2)),  // even "server busy": connect() must not spin silently
        ]
    )
    func refusalBeforeFirstConnection(connack: Int32, loopResult: Int32) {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        let refusal = MosquittoError(.connectionRefused(UInt8(connack)))
        #expect(
            machine.connackReceived(returnCode: connack, sessionPresent: false) == [.emit(.connectionRefused(refusal))]
        )
        #expect(machine.connectionLost(returnCode: loopResult) == [])
        #expect(machine.networkFailed(returnCode: loopResult) == .exit(refusal))
        #expect(machine.loopExited(cause: refusal) == [.failConnectWaiters(refusal), .emit(.loopExited(refusal))])
        #expect(machine.state == .idle)
        #expect(machine.start() == .startLoop)
    }

    @Test("a lost connection is reported, fails SUBACK waits, and reconnects with backoff")
    func lostConnection() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.connackReceived(returnCode: 0, sessionPresent: false)
        let lost = MosquittoError(.library(.connLost))
        #expect(
            machine.connectionLost(returnCode: connLost) == [.emit(.disconnected(lost)), .failSubscribeWaiters(lost)]
        )
        #expect(!machine.isConnected)
        #expect(machine.networkFailed(returnCode: connLost) == .reconnect(after: .seconds(1)))
        #expect(machine.networkFailed(returnCode: errnoError) == .reconnect(after: .seconds(2)))
        #expect(machine.state == .reconnecting(failedAttempts: 2))
        // A later CONNACK does not resume connect() waiters again (there are none) but re-subscribes.
        #expect(
            machine.connackReceived(returnCode: 0, sessionPresent: false) == [
                .emit(.connected(sessionPresent: false)), .resubscribe(sessionPresent: false),
            ]
        )
        #expect(machine.state == .connected(sessionPresent: false))
    }

    @Test("a DISCONNECT from the broker is reported with its MQTT 5 reason code")
    func brokerDisconnect() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.connackReceived(returnCode: 0, sessionPresent: false)
        let takenOver = MosquittoError(.reasonCode(0x8E))
        #expect(machine.connectionLost(returnCode: 0x8E).first == .emit(.disconnected(takenOver)))
    }

    @Test("after having been connected, temporary refusals are retried and permanent ones end the loop")
    func refusalAfterConnection() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.connackReceived(returnCode: 0, sessionPresent: true)
        _ = machine.connectionLost(returnCode: connLost)
        #expect(machine.networkFailed(returnCode: connLost) == .reconnect(after: .seconds(1)))

        _ = machine.connackReceived(returnCode: 0x89, sessionPresent: false)  // server busy
        #expect(machine.networkFailed(returnCode: protocolError) == .reconnect(after: .seconds(2)))
        _ = machine.connackReceived(returnCode: 3, sessionPresent: false)  // 3.1.1 server unavailable
        #expect(machine.networkFailed(returnCode: connRefused) == .reconnect(after: .seconds(4)))

        _ = machine.connackReceived(returnCode: 0x86, sessionPresent: false)  // bad user name or password
        let refusal = MosquittoError(.connectionRefused(0x86))
        #expect(machine.networkFailed(returnCode: protocolError) == .exit(refusal))
        #expect(machine.loopExited(cause: refusal) == [.emit(.loopExited(refusal))])
    }

    @Test(
        "fatal libmosquitto results end the loop; transient ones are retried",
        arguments: [
            (Int32(2), true), (Int32(3), true), (Int32(15), true), (Int32(11), true),
            (Int32(7), false), (Int32(14), false), (Int32(19), false), (Int32(4), false),
        ]
    )
    func fatalResults(code: Int32, fatal: Bool) {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.connackReceived(returnCode: 0, sessionPresent: true)
        _ = machine.connectionLost(returnCode: code)
        let decision = machine.networkFailed(returnCode: code)
        if fatal {
            #expect(decision == .exit(MosquittoError(.library(.init(rawValue: code)))))
        } else {
            #expect(decision == .reconnect(after: .seconds(1)))
        }
    }

    @Test("a TLS failure ends the loop before the first CONNACK; afterwards only where libmosquitto's own loop would")
    func tlsFailures() {
        let tls = MosquittoError(.library(.tls), detail: "OpenSSL Error[0]: certificate verify failed")
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        // A broker rejecting our certificate surfaces as a read failure (EPROTO or connection lost).
        #expect(machine.networkFailed(returnCode: errnoError, tlsFailure: tls) == .exit(tls))

        machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.connackReceived(returnCode: 0, sessionPresent: true)
        _ = machine.connectionLost(returnCode: errnoError)
        // A broker killed mid-session leaves an OpenSSL "unexpected eof" line: retried, not fatal.
        #expect(machine.networkFailed(returnCode: errnoError, tlsFailure: tls) == .reconnect(after: .seconds(1)))
        #expect(machine.networkFailed(returnCode: connLost, tlsFailure: tls) == .reconnect(after: .seconds(2)))
        // MOSQ_ERR_TLS itself stays fatal, now with the OpenSSL reasons.
        let decision = machine.networkFailed(returnCode: 8, tlsFailure: tls)
        #expect(decision == .exit(tls))
        if case .exit(let cause?) = decision { #expect(cause.message.contains("certificate verify failed")) }
    }

    @Test("stop while connecting fails connect(), sends DISCONNECT, and is idempotent")
    func stopWhileConnecting() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.networkFailed(returnCode: errnoError)
        let (actions, mustWait) = machine.stopRequested()
        #expect(mustWait)
        #expect(actions.first == .requestDisconnect)
        #expect(actions.contains(.failConnectWaiters(.clientClosed("x"))))
        #expect(machine.isStopping)
        #expect(machine.start() == .fail(.clientClosed("x")))
        #expect(machine.stopRequested().actions.isEmpty)
        #expect(machine.connackReceived(returnCode: 0, sessionPresent: true).isEmpty)
        #expect(machine.networkFailed(returnCode: noConn) == .exit(nil))
        #expect(machine.loopExited(cause: nil).isEmpty)
        #expect(machine.state == .idle)
        #expect(machine.stopRequested().mustWait == false)
    }

    @Test("stop while connected reports a clean disconnect")
    func stopWhileConnected() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        _ = machine.connackReceived(returnCode: 0, sessionPresent: false)
        #expect(machine.stopRequested().actions == [.requestDisconnect])
        #expect(machine.connectionLost(returnCode: 0) == [.emit(.disconnected(nil))])
        #expect(machine.networkFailed(returnCode: noConn) == .exit(nil))
    }

    @Test("DNS failure on the first attempt ends the loop with MOSQ_ERR_EAI")
    func lookupFailure() {
        var machine = ConnectionStateMachine(reconnect: policy)
        _ = machine.start()
        let cause = MosquittoError(.library(.eai))
        #expect(machine.networkFailed(returnCode: eai) == .exit(cause))
        #expect(machine.loopExited(cause: cause) == [.failConnectWaiters(cause), .emit(.loopExited(cause))])
    }
}
