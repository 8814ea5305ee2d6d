// SPDX-License-Identifier: Apache-2.0
import CMosquitto
import Foundation
import Logging

/// The `struct mosquitto *` of one client.
///
/// `@unchecked Sendable`: libmosquitto's API is thread-safe for one handle (every piece of shared state inside it
/// has its own mutex; only `mosquitto_lib_init` is not, see ``MosquittoLibrary``), and the pointer is destroyed
/// exactly once, by ``MosquittoCore/destroyHandle()``, when no loop thread runs and no owner can call in.
struct MosquittoHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// A subscription the client re-sends after a reconnect.
struct RememberedSubscription: Sendable {
    var info: MQTTSubscribeInfo
    /// A SUBACK granted it on the current session. Unconfirmed ones are re-sent even when the session survived.
    var confirmed: Bool
}

/// Everything mutable, behind one lock.
struct SharedState: Sendable {
    var machine: ConnectionStateMachine
    var acks = AckTable()
    var connectWaiters: [UInt64: CheckedContinuation<Bool, any Error>] = [:]
    var pendingConnectIDs: Set<UInt64> = []
    var cancelledConnectWaiters: Set<UInt64> = []
    var nextWaiterID: UInt64 = 0
    var stopWaiters: [CheckedContinuation<Void, Never>] = []
    var loopRunning = false
    var ownerGone = false
    var handleDestroyed = false
    var subscriptions: [RememberedSubscription] = []
    /// Message ids of SUBSCRIBE packets the loop thread sent from on_connect, by topic filter.
    var resubscribeMids: [Int32: String] = [:]
    /// libmosquitto's error-level log lines since the current connection attempt began (the last few only).
    /// OpenSSL's reasons for a failed handshake reach us only this way. Filled only while the log callback is
    /// installed (TLS configured, or trace logging).
    var attemptErrorLog: [String] = []
    /// The Maximum Packet Size of the last CONNACK (MQTT 5), `nil` when the broker announced none.
    var brokerMaximumPacketSize: UInt32?
    /// Why the last connection attempt failed, while the loop retries (cleared by a CONNACK that accepts us).
    var lastAttemptFailure: MosquittoError?
}

/// The part of a client that the C callbacks and the network-loop thread reach.
///
/// It is passed to libmosquitto as the `obj`/userdata pointer with one retain (`Unmanaged.passRetained`), which
/// ``destroyHandle()`` releases right after `mosquitto_destroy`, so a callback can never see a freed object.
///
/// Threading: we run the network loop on our own thread (`mosquitto_threaded_set(true)` plus
/// ``MosquittoNetworkLoop``, `mosquitto_loop` with `poll` instead of `select`, in a loop) instead of
/// `mosquitto_loop_start`. The PUBACK timing is the same (in threaded mode the PUBACK is
/// only queued while the message callback runs), but we learn exactly when and why the loop ends (the library's
/// thread exits silently on fatal errors) and can stop it promptly even during a backoff sleep. All blocking C
/// (connect, reconnect, poll) therefore runs on that dedicated thread, never on the Swift cooperative pool.
final class MosquittoCore: Sendable {
    let handle: MosquittoHandle
    let configuration: MosquittoConfiguration
    let logger: Logger
    let onMessage: MosquittoClient.MessageHandler
    let eventContinuation: AsyncStream<MosquittoEvent>.Continuation
    let sleeper = InterruptibleSleep()
    /// Wakes the network loop's `poll` when another thread has queued a packet.
    let waker: MosquittoLoopWaker
    let shared: LockedState<SharedState>

    init(
        handle: MosquittoHandle,
        configuration: MosquittoConfiguration,
        logger: Logger,
        onMessage: @escaping MosquittoClient.MessageHandler,
        eventContinuation: AsyncStream<MosquittoEvent>.Continuation,
        waker: MosquittoLoopWaker
    ) {
        self.waker = waker
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
        self.onMessage = onMessage
        self.eventContinuation = eventContinuation
        self.shared = LockedState(SharedState(machine: ConnectionStateMachine(reconnect: configuration.reconnect)))
    }

    // MARK: - Actions

    /// A state-machine action with the continuations it concerns already taken out of the shared state, so that
    /// it can run outside the lock without resuming a waiter that registered in the meantime.
    enum Effect {
        case emit(MosquittoEvent)
        case resumeConnect([CheckedContinuation<Bool, any Error>], sessionPresent: Bool)
        case failConnect([CheckedContinuation<Bool, any Error>], MosquittoError)
        case resubscribe(sessionPresent: Bool)
        case resumeAcks([AckTable.Resumption])
        case requestDisconnect
    }

    /// Runs `body` under the lock, turns the actions it returns into effects (still under the lock), then
    /// executes the effects outside the lock.
    func update(_ body: (inout SharedState) -> [ConnectionStateMachine.Action]) {
        let effects = shared.withLock { state in Self.effects(for: body(&state), in: &state) }
        run(effects)
    }

    static func effects(for actions: [ConnectionStateMachine.Action], in state: inout SharedState) -> [Effect] {
        actions.map { action in
            switch action {
            case .emit(let event):
                return .emit(event)
            case .resumeConnectWaiters(let sessionPresent):
                defer { state.connectWaiters.removeAll() }
                return .resumeConnect(Array(state.connectWaiters.values), sessionPresent: sessionPresent)
            case .failConnectWaiters(let error):
                defer { state.connectWaiters.removeAll() }
                return .failConnect(Array(state.connectWaiters.values), error)
            case .resubscribe(let sessionPresent):
                return .resubscribe(sessionPresent: sessionPresent)
            case .failSubscribeWaiters(let error):
                return .resumeAcks(state.acks.failAll(kind: .subscribe, with: error))
            case .requestDisconnect:
                return .requestDisconnect
            }
        }
    }

    /// Executes effects; never called with the lock held.
    func run(_ effects: [Effect]) {
        for effect in effects {
            switch effect {
            case .emit(let event):
                log(event)
                eventContinuation.yield(event)
            case .resumeConnect(let waiters, let sessionPresent):
                for waiter in waiters { waiter.resume(returning: sessionPresent) }
            case .failConnect(let waiters, let error):
                for waiter in waiters { waiter.resume(throwing: error) }
            case .resubscribe(let sessionPresent):
                resubscribe(sessionPresent: sessionPresent)
            case .resumeAcks(let resumptions):
                for resumption in resumptions { resumption.resume() }
            case .requestDisconnect:
                // Queues DISCONNECT and wakes the loop's poll(); NO_CONN just means no socket right now.
                _ = mosquitto_disconnect_v5(handle.pointer, 0, nil)
                waker.wake()
                sleeper.interrupt()
            }
        }
    }

    private func log(_ event: MosquittoEvent) {
        switch event {
        case .connected(let sessionPresent):
            // Debug: the application says what a connection means to it (ready, reconnected).
            logger.debug("MQTT connected", metadata: ["mqtt.session_present": .stringConvertible(sessionPresent)])
        case .connectionRefused(let error):
            logger.error("MQTT connection refused", metadata: ["mqtt.error": .string(Self.logText(error))])
        case .disconnected(nil):
            logger.info("MQTT disconnected")
        case .disconnected(let error?):
            logger.warning("MQTT connection lost", metadata: ["mqtt.error": .string(Self.logText(error))])
        case .loopExited(let error):
            // An error, not critical: the process goes on (the application may build a new client).
            logger.error(
                "MQTT network loop gave up; no further reconnects",
                metadata: ["mqtt.error": .string(Self.logText(error))]
            )
        }
    }

    /// An error as a log value: code and message, without the source location of its description.
    static func logText(_ error: MosquittoError) -> String { "\(error.shortDescription): \(error.message)" }

    /// A duration in whole milliseconds, for `_ms` fields.
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    // MARK: - Network loop (dedicated thread)

    /// Starts the dedicated network-loop thread. Called once per ``ConnectionStateMachine/StartDecision/startLoop``.
    func startLoopThread() {
        sleeper.reset()
        let thread = Thread { [self] in runNetworkLoop() }
        thread.name = "mosquitto loop"
        thread.start()
    }

    private var isStopping: Bool { shared.withLock { $0.machine.isStopping } }

    /// One round of the network loop at a time (``MosquittoNetworkLoop``), on the loop thread only.
    private var networkLoop: MosquittoNetworkLoop { MosquittoNetworkLoop(handle: handle, waker: waker) }

    /// The body of the loop thread: connect, pump ``MosquittoNetworkLoop``, reconnect with backoff, until told to stop
    /// or the state machine gives up.
    private func runNetworkLoop() {
        let mosq = handle.pointer
        let loop = networkLoop
        let host = configuration.host
        let port = Int32(configuration.port)
        let keepAlive = Int32(configuration.keepAlive)
        logger.debug(
            "MQTT network loop starting",
            metadata: [
                "mqtt.host": "\(host)", "mqtt.port": .stringConvertible(port),
                "mqtt.tls": "\(configuration.tls.map(\.description) ?? "off")",
            ]
        )

        beginAttempt()
        var rc = withConnectProperties(configuration) { properties in
            mosquitto_connect_bind_v5(mosq, host, port, keepAlive, nil, properties)
        }
        while true {
            if rc == 0 {
                repeat {
                    rc = loop.runOnce(timeout: 1000)
                } while rc == 0 && !isStopping
            }
            if isStopping {
                closeGracefully()
                finishLoop(cause: nil)
                return
            }
            let failure = MosquittoError(result: rc, detail: "network")  // captures strerror(errno) now
            let tlsFailure = tlsFailure(returnCode: rc)
            let decision = shared.withLock { $0.machine.networkFailed(returnCode: rc, tlsFailure: tlsFailure) }
            switch decision {
            case .exit(let cause):
                if cause == nil { closeGracefully() }
                finishLoop(cause: cause)
                return
            case .reconnect(let delay):
                // One line per attempt; the backoff bounds the rate (at most one per maximumDelay when it lasts).
                var metadata: Logger.Metadata = [
                    "mqtt.error": .string(Self.logText(failure)),
                    "mqtt.retry_in_ms": .stringConvertible(Self.milliseconds(delay)),
                ]
                if let tlsFailure { metadata["mqtt.tls_error"] = "\(tlsFailure.message)" }
                shared.withLock { $0.lastAttemptFailure = tlsFailure ?? failure }
                logger.warning("MQTT connect attempt failed; retrying", metadata: metadata)
                if sleeper.sleep(for: delay) {
                    rc = MosquittoError.ResultCode.noConn.rawValue
                    continue
                }
                beginAttempt()
                rc = mosquitto_reconnect(mosq)
            }
        }
    }

    /// Forgets the error log lines of the previous connection attempt.
    private func beginAttempt() {
        shared.withLock { $0.attemptErrorLog.removeAll() }
    }

    /// Whether the failed attempt (or lost connection) was a TLS failure, and if so the error with OpenSSL's
    /// reasons. libmosquitto 2.0.11 returns `MOSQ_ERR_TLS` only when the handshake fails on our side (untrusted
    /// chain, wrong host name); when the broker rejects us (no or wrong client certificate under TLS 1.3) the
    /// read after the handshake fails with `MOSQ_ERR_ERRNO`/`EPROTO` or `MOSQ_ERR_CONN_LOST`, and only the
    /// "OpenSSL Error" lines in its log say why. A clean close by the broker (close_notify) logs no such line.
    private func tlsFailure(returnCode rc: Int32) -> MosquittoError? {
        guard configuration.tls != nil else { return nil }
        let lines = shared.withLock { state in
            defer { state.attemptErrorLog.removeAll() }
            return state.attemptErrorLog
        }
        let code = MosquittoError.ResultCode(rawValue: rc)
        guard code == .tls || code == .tlsHandshake || lines.contains(where: { $0.hasPrefix("OpenSSL Error") }) else {
            return nil
        }
        let reasons = lines.isEmpty ? "no reason logged" : lines.joined(separator: "; ")
        return MosquittoError(
            .library(.tls),
            detail: "TLS with \(configuration.host):\(configuration.port): \(reasons)"
        )
    }

    /// Sends DISCONNECT if a socket is open and pumps the loop until it is written (bounded), so the broker sees
    /// a clean disconnect rather than a dropped connection.
    private func closeGracefully() {
        let mosq = handle.pointer
        guard mosquitto_socket(mosq) != -1 else { return }
        _ = mosquitto_disconnect_v5(mosq, 0, nil)
        let deadline = ContinuousClock.now + .seconds(2)
        while mosquitto_socket(mosq) != -1 && ContinuousClock.now < deadline {
            if networkLoop.runOnce(timeout: 100) != 0 { break }
        }
    }

    /// The loop thread's last act: update the state, fail or resume everybody waiting, maybe destroy the handle.
    private func finishLoop(cause: MosquittoError?) {
        let (effects, stopWaiters, destroy) = shared.withLock { state in
            var effects = Self.effects(for: state.machine.loopExited(cause: cause), in: &state)
            effects.append(
                .resumeAcks(
                    state.acks.failAll(
                        with: cause
                            ?? MosquittoError.clientClosed("the client disconnected before the acknowledgement came")
                    )
                )
            )
            let stopWaiters = state.stopWaiters
            state.stopWaiters.removeAll()
            state.loopRunning = false
            state.resubscribeMids.removeAll()
            for index in state.subscriptions.indices { state.subscriptions[index].confirmed = false }
            return (effects, stopWaiters, state.ownerGone)
        }
        run(effects)
        for waiter in stopWaiters { waiter.resume() }
        logger.debug("MQTT network loop ended")
        if destroy {
            eventContinuation.finish()
            destroyHandle()
        }
    }

    /// Destroys the C handle and drops libmosquitto's retain of `self`. Runs exactly once, with no loop running.
    func destroyHandle() {
        let first = shared.withLock { state in
            defer { state.handleDestroyed = true }
            return !state.handleDestroyed
        }
        guard first else { return }
        mosquitto_destroy(handle.pointer)
        Unmanaged.passUnretained(self).release()
    }

    // MARK: - Subscriptions

    /// Re-sends remembered subscriptions from on_connect (loop thread): all of them when the broker has no
    /// session for us, otherwise only those whose SUBACK never came.
    private func resubscribe(sessionPresent: Bool) {
        let pending = shared.withLock { state in
            state.subscriptions.filter { !sessionPresent || !$0.confirmed }.map(\.info)
        }
        guard !pending.isEmpty else { return }
        logger.info(
            "MQTT re-subscribing",
            metadata: [
                "mqtt.session_present": .stringConvertible(sessionPresent),
                "mqtt.subscriptions": .stringConvertible(pending.count),
            ]
        )
        for info in pending {
            var mid: Int32 = 0
            let rc = sendSubscribe(info, mid: &mid)
            if rc == 0 {
                // The SUBACK is read by this same thread after on_connect returns, so registering now is race-free.
                shared.withLock { $0.resubscribeMids[mid] = info.topicFilter }
            } else {
                logger.error(
                    "MQTT re-subscribe failed",
                    metadata: [
                        "mqtt.topic_filter": "\(info.topicFilter)",
                        "mqtt.error": .string(Self.logText(MosquittoError(result: rc))),
                    ]
                )
            }
        }
    }

    /// Calls `mosquitto_subscribe_v5` for one subscription (v5 options only on MQTT 5).
    func sendSubscribe(_ info: MQTTSubscribeInfo, mid: inout Int32) -> Int32 {
        var options: Int32 = 0
        if configuration.protocolVersion == .v5 {
            if info.noLocal { options |= Int32(MQTT_SUB_OPT_NO_LOCAL.rawValue) }
            if info.retainAsPublished { options |= Int32(MQTT_SUB_OPT_RETAIN_AS_PUBLISHED.rawValue) }
            switch info.retainHandling {
            case .sendAlways: break
            case .sendIfNew: options |= Int32(MQTT_SUB_OPT_SEND_RETAIN_NEW.rawValue)
            case .doNotSend: options |= Int32(MQTT_SUB_OPT_SEND_RETAIN_NEVER.rawValue)
            }
        }
        let rc = mosquitto_subscribe_v5(handle.pointer, &mid, info.topicFilter, Int32(info.qos.rawValue), options, nil)
        waker.wake()
        return rc
    }

    // MARK: - Callbacks (loop thread)

    func handleConnect(returnCode: Int32, flags: Int32, maximumPacketSize: UInt32?) {
        let sessionPresent = flags & 1 == 1
        update { state in
            state.brokerMaximumPacketSize = maximumPacketSize
            if returnCode == 0 { state.lastAttemptFailure = nil }
            if !sessionPresent {
                for index in state.subscriptions.indices { state.subscriptions[index].confirmed = false }
            }
            return state.machine.connackReceived(returnCode: returnCode, sessionPresent: sessionPresent)
        }
    }

    func handleDisconnect(returnCode: Int32) {
        update { state in
            state.resubscribeMids.removeAll()
            return state.machine.connectionLost(returnCode: returnCode)
        }
    }

    func handlePublishAcknowledged(mid: Int32, reasonCode: Int32) {
        let resumption = shared.withLock { $0.acks.acknowledge(mid, outcome: .published(reasonCode: reasonCode)) }
        resumption?.resume()
    }

    func handleSubscribeAcknowledged(mid: Int32, granted: [UInt8]) {
        let refused = granted.first(where: { $0 >= 0x80 })
        let (resumption, resubscribed) = shared.withLock { state -> (AckTable.Resumption?, String?) in
            guard let filter = state.resubscribeMids.removeValue(forKey: mid) else {
                return (state.acks.acknowledge(mid, outcome: .subscribed(granted: granted)), nil)
            }
            if let index = state.subscriptions.firstIndex(where: { $0.info.topicFilter == filter }) {
                if refused == nil {
                    state.subscriptions[index].confirmed = true
                } else {
                    state.subscriptions.remove(at: index)
                }
            }
            return (nil, filter)
        }
        resumption?.resume()
        if let resubscribed, let refused {
            // Nobody awaits a re-subscribe, so a refusal has to be said loudly here.
            logger.error(
                "MQTT re-subscribe refused by the broker; subscription dropped",
                metadata: [
                    "mqtt.topic_filter": "\(resubscribed)",
                    "mqtt.error": .string(Self.logText(MosquittoError(.reasonCode(refused), detail: "SUBACK"))),
                ]
            )
        }
    }

    func handleMessage(_ message: MQTTMessage) {
        if logger.logLevel <= .trace {
            logger.trace(
                "MQTT message received",
                metadata: [
                    "mqtt.topic": "\(message.topic)", "mqtt.mid": .stringConvertible(message.messageID),
                    "mqtt.qos": .stringConvertible(message.qos.rawValue),
                    "mqtt.payload_bytes": .stringConvertible(message.payload.count),
                ]
            )
        }
        onMessage(message)
    }

    func handleLog(level: Int32, text: String) {
        if level == MOSQ_LOG_ERR {
            shared.withLock { state in
                if state.attemptErrorLog.count >= 8 { state.attemptErrorLog.removeFirst() }
                state.attemptErrorLog.append(text)
            }
        }
        if logger.logLevel <= .trace {
            logger.trace("libmosquitto: \(text)", metadata: ["mqtt.log_level": "\(level)"])
        }
    }
}

// MARK: - Operations used by MosquittoClient

extension MosquittoCore {
    /// Whether the loop runs and no stop was requested: the only time a publish or subscribe can ever complete.
    var acceptsOperations: Bool {
        shared.withLock { state in
            guard state.loopRunning else { return false }
            switch state.machine.state {
            case .idle, .stopping: return false
            case .connecting, .connected, .reconnecting: return true
            }
        }
    }

    /// Waits for the PUBACK/PUBCOMP or SUBACK of `mid`; cancellable.
    func awaitAck(_ mid: Int32, kind: AckTable.Kind) async throws -> AckOutcome {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: AckTable.Waiter) in
                let resumption = shared.withLock { state -> AckTable.Resumption? in
                    guard state.loopRunning else {
                        // The loop ended between the C call and now: nothing will ever acknowledge this id.
                        state.acks.ignore(mid)
                        return AckTable.Resumption(
                            waiter: waiter,
                            result: .failure(MosquittoError.clientClosed("the network loop is not running"))
                        )
                    }
                    return state.acks.wait(for: mid, kind: kind, waiter: waiter)
                }
                resumption?.resume()
            }
        } onCancel: {
            shared.withLock { $0.acks.cancel(mid) }?.resume()
        }
    }

    /// Allocates an id for a `connect()` call, so that its cancellation can be recognised before it registers.
    func makeConnectWaiterID() -> UInt64 {
        shared.withLock { state in
            state.nextWaiterID += 1
            state.pendingConnectIDs.insert(state.nextWaiterID)
            return state.nextWaiterID
        }
    }

    /// `connect()`: registers the waiter and starts the loop thread if nothing runs yet.
    func beginConnect(id: UInt64, waiter: CheckedContinuation<Bool, any Error>) {
        enum Next {
            case startLoop
            case wait
            case finish(Result<Bool, any Error>)
        }
        let next = shared.withLock { state -> Next in
            state.pendingConnectIDs.remove(id)
            if state.cancelledConnectWaiters.remove(id) != nil { return .finish(.failure(CancellationError())) }
            if state.ownerGone || state.handleDestroyed {
                return .finish(.failure(MosquittoError.clientClosed("the client was shut down")))
            }
            switch state.machine.start() {
            case .startLoop:
                if state.loopRunning {
                    // Cannot happen (the machine turns idle and loopRunning false under one lock); never start a
                    // second thread on one handle if it somehow does.
                    state.machine = ConnectionStateMachine(reconnect: configuration.reconnect)
                    return .finish(.failure(MosquittoError.clientClosed("the previous connection is still closing")))
                }
                state.connectWaiters[id] = waiter
                state.loopRunning = true
                return .startLoop
            case .wait:
                state.connectWaiters[id] = waiter
                return .wait
            case .alreadyConnected(let sessionPresent):
                return .finish(.success(sessionPresent))
            case .fail(let error):
                return .finish(.failure(error))
            }
        }
        switch next {
        case .startLoop: startLoopThread()
        case .wait: break
        case .finish(let result): waiter.resume(with: result)
        }
    }

    /// The task of a `connect()` was cancelled: fail that call, and stop the loop if it was the last one waiting
    /// for a first connection (a connect that nobody awaits must not keep retrying in the background).
    func cancelConnect(id: UInt64) {
        let (waiter, effects) = shared.withLock { state -> (CheckedContinuation<Bool, any Error>?, [Effect]) in
            guard let waiter = state.connectWaiters.removeValue(forKey: id) else {
                // Not registered yet: tell beginConnect. (Already finished: nothing to do.)
                if state.pendingConnectIDs.remove(id) != nil { state.cancelledConnectWaiters.insert(id) }
                return (nil, [])
            }
            var effects: [Effect] = []
            if state.connectWaiters.isEmpty, case .connecting = state.machine.state {
                effects = Self.effects(for: state.machine.stopRequested().actions, in: &state)
            }
            return (waiter, effects)
        }
        waiter?.resume(throwing: CancellationError())
        run(effects)
    }

    /// `disconnect()`: asks the loop to stop and waits until it has ended.
    func stopAndWait() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let (effects, resumeNow) = shared.withLock { state -> ([Effect], Bool) in
                let (actions, mustWait) = state.machine.stopRequested()
                let effects = Self.effects(for: actions, in: &state)
                if mustWait && state.loopRunning {
                    state.stopWaiters.append(waiter)
                    return (effects, false)
                }
                return (effects, true)
            }
            run(effects)
            if resumeNow { waiter.resume() }
        }
    }

    /// The owning ``MosquittoClient`` is gone: stop the loop if it runs (its thread destroys the handle when it
    /// ends), otherwise destroy the handle now.
    func ownerReleased() {
        let (running, effects) = shared.withLock { state -> (Bool, [Effect]) in
            state.ownerGone = true
            guard state.loopRunning else { return (false, []) }
            return (true, Self.effects(for: state.machine.stopRequested().actions, in: &state))
        }
        if running {
            run(effects)
        } else {
            eventContinuation.finish()
            destroyHandle()
        }
    }
}
