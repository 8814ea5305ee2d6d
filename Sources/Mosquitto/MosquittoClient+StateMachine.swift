// SPDX-License-Identifier: Apache-2.0

/// The connection logic of ``MosquittoClient`` as a pure value: no I/O, no locks, no C.
///
/// The network-loop thread and the public API feed it events (CONNACK, connection lost, a libmosquitto call
/// failed, stop requested, loop ended) and execute the ``Action``s and ``LoopDecision``s it returns. Keeping the
/// decisions here means they can be unit tested without a broker, and adding automatic loop restarts later is a
/// change to this struct only.
///
/// States: `idle` → `connecting` → `connected` ⇄ `reconnecting`, any running state → `stopping` → `idle`
/// (the loop ended; a new ``start()`` may begin again).
package struct ConnectionStateMachine: Sendable {
    /// Where the connection is.
    package enum State: Sendable, Hashable {
        /// No network loop is running (never started, or it ended).
        case idle
        /// The loop runs but no CONNACK has accepted us since ``ConnectionStateMachine/start()``.
        /// `failedAttempts` counts consecutive failures (drives the backoff).
        case connecting(failedAttempts: Int)
        /// A CONNACK accepted the connection.
        case connected(sessionPresent: Bool)
        /// The loop runs, we were connected since start, and are now trying to get back.
        case reconnecting(failedAttempts: Int)
        /// ``ConnectionStateMachine/stopRequested()`` was called; the loop is winding down.
        case stopping
    }

    /// What ``ConnectionStateMachine/start()`` means for the caller of `connect()`.
    package enum StartDecision: Sendable, Hashable {
        /// Start the network-loop thread and wait for the first CONNACK.
        case startLoop
        /// A loop is already trying to connect: wait for its CONNACK.
        case wait
        /// Already connected: return at once.
        case alreadyConnected(sessionPresent: Bool)
        /// A disconnect is in progress: fail with this error.
        case fail(MosquittoError)
    }

    /// Side effects for the I/O layer to execute, in order, outside any lock.
    package enum Action: Sendable, Hashable {
        /// Yield an event on ``MosquittoClient/events``.
        case emit(MosquittoEvent)
        /// Resume every pending `connect()` with the session-present flag.
        case resumeConnectWaiters(sessionPresent: Bool)
        /// Fail every pending `connect()`.
        case failConnectWaiters(MosquittoError)
        /// Re-send remembered subscriptions: all of them when the session is gone, else only unconfirmed ones.
        case resubscribe(sessionPresent: Bool)
        /// Fail pending SUBACK waits: the SUBSCRIBE packet is not resent by libmosquitto after a reconnect.
        case failSubscribeWaiters(MosquittoError)
        /// Send DISCONNECT (reason 0) and wake the loop thread from any backoff sleep.
        case requestDisconnect
    }

    /// What the loop thread does after a libmosquitto network call failed.
    package enum LoopDecision: Sendable, Hashable {
        /// Sleep this long (interruptibly), then call `mosquitto_reconnect`.
        case reconnect(after: Duration)
        /// Leave the loop: `nil` because we were asked to stop, otherwise the fatal cause.
        case exit(MosquittoError?)
    }

    /// The current state.
    package private(set) var state: State = .idle
    /// The reconnect policy (backoff).
    package let reconnect: MosquittoConfiguration.Reconnect
    /// A refusing CONNACK seen since the last network failure; decided on when the loop call fails right after.
    private var pendingRefusal: MosquittoError?

    /// Creates an idle machine.
    /// - Parameter reconnect: The backoff policy.
    package init(reconnect: MosquittoConfiguration.Reconnect) {
        self.reconnect = reconnect
    }

    /// Whether a CONNACK has accepted the current connection.
    package var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// Whether a stop was requested and the loop should leave at its next check.
    package var isStopping: Bool { state == .stopping }

    /// `connect()` was called.
    package mutating func start() -> StartDecision {
        switch state {
        case .idle:
            state = .connecting(failedAttempts: 0)
            pendingRefusal = nil
            return .startLoop
        case .connecting, .reconnecting:
            return .wait
        case .connected(let sessionPresent):
            return .alreadyConnected(sessionPresent: sessionPresent)
        case .stopping:
            return .fail(.clientClosed("connect() called while a disconnect is in progress"))
        }
    }

    /// A CONNACK arrived (on_connect). `returnCode` 0 is success; MQTT 3.1.1 refusals are 1-5, MQTT 5 ≥ 0x80.
    package mutating func connackReceived(returnCode: Int32, sessionPresent: Bool) -> [Action] {
        switch state {
        case .idle, .stopping, .connected:
            return []
        case .connecting, .reconnecting:
            break
        }
        if returnCode == 0 {
            let first = isConnectingState
            state = .connected(sessionPresent: sessionPresent)
            pendingRefusal = nil
            var actions: [Action] = [.emit(.connected(sessionPresent: sessionPresent))]
            if first { actions.append(.resumeConnectWaiters(sessionPresent: sessionPresent)) }
            actions.append(.resubscribe(sessionPresent: sessionPresent))
            return actions
        }
        let error = MosquittoError(
            .connectionRefused(UInt8(truncatingIfNeeded: returnCode)),
            detail: "CONNACK refused the connection"
        )
        pendingRefusal = error
        return [.emit(.connectionRefused(error))]
    }

    /// The connection ended (on_disconnect). `returnCode` 0 means we asked for it.
    package mutating func connectionLost(returnCode: Int32) -> [Action] {
        switch state {
        case .connected:
            let cause: MosquittoError? = returnCode == 0 ? nil : Self.disconnectCause(returnCode)
            state = .reconnecting(failedAttempts: 0)
            let lost = cause ?? MosquittoError(.library(.connLost), detail: "connection closed")
            return [.emit(.disconnected(cause)), .failSubscribeWaiters(lost)]
        case .stopping:
            return [.emit(.disconnected(nil))]
        case .idle, .connecting, .reconnecting:
            // A refused CONNACK or a failed attempt: no connection was up, nothing to report twice.
            return []
        }
    }

    /// A libmosquitto network call failed: the network loop, `mosquitto_connect_bind_v5` or `mosquitto_reconnect`
    /// returned `returnCode` (≠ 0). Decides whether to retry after a backoff or to give up.
    /// - Parameters:
    ///   - returnCode: The `MOSQ_ERR_*` value.
    ///   - tlsFailure: Set when the failure was TLS (the I/O layer knows from libmosquitto's log, not always from
    ///     the code): before the first CONNACK it ends the loop like a refusal, since an untrusted certificate or
    ///     a rejected client certificate will not fix itself; default `nil`.
    package mutating func networkFailed(returnCode: Int32, tlsFailure: MosquittoError? = nil) -> LoopDecision {
        let refusal = pendingRefusal
        pendingRefusal = nil
        let initial: Bool
        let failed: Int
        switch state {
        case .idle, .stopping:
            return .exit(nil)
        case .connected:
            // The call failed without an on_disconnect first (e.g. poll() failed): treat as a lost connection.
            state = .reconnecting(failedAttempts: 0)
            (initial, failed) = (false, 0)
        case .connecting(let attempts):
            (initial, failed) = (true, attempts)
        case .reconnecting(let attempts):
            (initial, failed) = (false, attempts)
        }
        return decide(
            returnCode: returnCode,
            refusal: refusal,
            tlsFailure: tlsFailure,
            initial: initial,
            failedAttempts: failed
        )
    }

    /// `disconnect()` (or cancellation of `connect()`, or the owner going away) asked the loop to stop.
    /// - Returns: The actions, and whether a loop is running that the caller must wait for.
    package mutating func stopRequested() -> (actions: [Action], mustWait: Bool) {
        switch state {
        case .idle:
            return ([], false)
        case .stopping:
            return ([], true)
        case .connecting, .connected, .reconnecting:
            let wasConnecting = isConnectingState
            state = .stopping
            var actions: [Action] = [.requestDisconnect]
            if wasConnecting {
                actions.append(.failConnectWaiters(.clientClosed("disconnect() called before the first CONNACK")))
            }
            return (actions, true)
        }
    }

    /// The loop thread is about to end; `cause` is `nil` after a requested stop.
    package mutating func loopExited(cause: MosquittoError?) -> [Action] {
        let wasConnecting = isConnectingState
        state = .idle
        pendingRefusal = nil
        guard let cause else { return [] }
        var actions: [Action] = []
        if wasConnecting { actions.append(.failConnectWaiters(cause)) }
        actions.append(.emit(.loopExited(cause)))
        return actions
    }

    // MARK: - Policy

    private var isConnectingState: Bool {
        if case .connecting = state { return true }
        return false
    }

    private mutating func decide(
        returnCode: Int32,
        refusal: MosquittoError?,
        tlsFailure: MosquittoError?,
        initial: Bool,
        failedAttempts: Int
    ) -> LoopDecision {
        if let refusal {
            // Before the first CONNACK any refusal is final (bad credentials, wrong protocol, banned...), so
            // `connect()` throws instead of retrying for ever. Later, only refusals the broker marks as temporary
            // are retried.
            if initial || !Self.isTemporaryRefusal(refusal) {
                return .exit(refusal)
            }
        } else {
            let code = MosquittoError.ResultCode(rawValue: returnCode)
            // Once connected, a TLS failure is fatal only where libmosquitto's own loop gives up (MOSQ_ERR_TLS):
            // a broker killed mid-session also leaves an OpenSSL "unexpected eof" line, and must be retried.
            if let tlsFailure, initial || code.endsNetworkLoop {
                return .exit(tlsFailure)
            }
            if code.endsNetworkLoop {
                return .exit(MosquittoError(.library(code), detail: "network loop"))
            }
        }
        let delay = reconnect.delay(forAttempt: failedAttempts)
        state =
            initial
            ? .connecting(failedAttempts: failedAttempts + 1) : .reconnecting(failedAttempts: failedAttempts + 1)
        return .reconnect(after: delay)
    }

    /// Refusals that say "try again later": 3.1.1 "server unavailable" (3); MQTT 5 server unavailable (0x88),
    /// server busy (0x89), quota exceeded (0x97), connection rate exceeded (0x9F).
    package static func isTemporaryRefusal(_ error: MosquittoError) -> Bool {
        guard let code = error.code.connackCode else { return false }
        return [0x03, 0x88, 0x89, 0x97, 0x9F].contains(code)
    }

    /// Maps an on_disconnect code: libmosquitto passes `MOSQ_ERR_*` values, or the MQTT 5 reason code of a
    /// DISCONNECT the broker sent (≥ 0x80).
    package static func disconnectCause(_ returnCode: Int32) -> MosquittoError {
        if returnCode >= 0x80 && returnCode <= 0xFF {
            return MosquittoError(.reasonCode(UInt8(returnCode)), detail: "broker sent DISCONNECT")
        }
        return MosquittoError(.library(.init(rawValue: returnCode)), detail: "connection lost")
    }
}
