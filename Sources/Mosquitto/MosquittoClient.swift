// SPDX-License-Identifier: Apache-2.0
import CMosquitto
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A safe MQTT 5 / 3.1.1 client over libmosquitto.
///
/// One instance is one client id and one (re)connecting session. ``connect()`` starts a dedicated network
/// thread that connects, reconnects with backoff, re-subscribes when the broker lost the session, and keeps
/// going until ``disconnect()`` or a fatal error (reported as ``MosquittoEvent/loopExited(_:)``). Incoming
/// messages go to the `onMessage` handler *synchronously on that thread*, which is what makes at-least-once
/// processing possible: libmosquitto sends the PUBACK of a QoS 1 message only after the handler returns.
///
/// Prefer ``withMosquittoClient(configuration:logger:onMessage:_:)``, which always disconnects.
public final class MosquittoClient: Sendable {
    /// Receives every incoming message.
    ///
    /// - Important: Runs on the libmosquitto network-loop thread, synchronously. The PUBACK of a QoS 1 message is
    ///   sent only after it returns, so this is where a message must be made durable (journaled). It must be
    ///   quick (the connection is not serviced while it runs; the broker drops the client after 1.5 × keep alive)
    ///   and must not wait for anything this client does (for example `await` a ``publish(to:payload:qos:retain:properties:)``
    ///   through a semaphore): that would deadlock the loop. Starting a publish from it without waiting is fine.
    public typealias MessageHandler = @Sendable (MQTTMessage) -> Void

    let core: MosquittoCore

    /// The configuration the client was created with.
    public var configuration: MosquittoConfiguration { core.configuration }

    /// Connection supervision events (unicast, bounded, newest kept). See ``Events``.
    public let events: Events

    /// The linked libmosquitto version, e.g. `"2.0.11"`.
    public static var libraryVersion: String { MosquittoLibrary.version }

    /// Creates a client; nothing connects until ``connect()``.
    ///
    /// - Parameters:
    ///   - configuration: Broker address, client id, session and reconnect settings.
    ///   - logger: Where the client logs (metadata keys start with `mqtt.`; payloads and passwords never appear).
    ///     At `trace` level libmosquitto's own log lines are forwarded too.
    ///   - onMessage: The message handler; see ``MessageHandler`` for its threading contract.
    /// - Throws: ``MosquittoError`` when the configuration is invalid or libmosquitto cannot create the client.
    public init(
        configuration: MosquittoConfiguration,
        logger: Logger,
        onMessage: @escaping MessageHandler
    ) throws(MosquittoError) {
        try configuration.validate()
        try MosquittoLibrary.ensureInitialized()
        guard let mosq = mosquitto_new(configuration.clientID, configuration.cleanStart, nil) else {
            throw MosquittoError(.library(errno == ENOMEM ? .nomem : .inval), detail: "mosquitto_new")
        }

        func set(_ rc: Int32, _ what: String) throws(MosquittoError) {
            if rc != 0 {
                mosquitto_destroy(mosq)
                throw MosquittoError(result: rc, detail: what)
            }
        }
        let protocolLevel = configuration.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try set(mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, protocolLevel), "protocol version option")
        try set(
            mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, Int32(configuration.receiveMaximum)),
            "receive maximum option"
        )
        try set(
            mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, Int32(configuration.sendMaximum)),
            "send maximum option"
        )
        try set(
            mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, configuration.tcpNoDelay ? 1 : 0),
            "TCP_NODELAY option"
        )
        // We drive the loop from our own thread; threaded mode makes publish() from other threads only queue
        // packets (and keeps the PUBACK of a message queued until its callback returned).
        try set(mosquitto_threaded_set(mosq, true), "threaded mode")
        if let username = configuration.username {
            try set(mosquitto_username_pw_set(mosq, username, configuration.password), "username/password")
        }
        if let tls = configuration.tls {
            // Files are only checked for existence here; OpenSSL reads them on connect (a bad file then fails
            // connect() with MOSQ_ERR_TLS and OpenSSL's reason). The password callback supplies no password, so an
            // encrypted key fails instead of OpenSSL prompting on a terminal nobody watches.
            try set(
                mosquitto_tls_set(
                    mosq,
                    tls.caFile,
                    tls.caDirectory,
                    tls.certificateFile,
                    tls.keyFile,
                    mosquittoNoKeyPassword
                ),
                "TLS files"
            )
            // cert_reqs 1 = SSL_VERIFY_PEER: the broker's chain is always verified.
            try set(mosquitto_tls_opts_set(mosq, 1, tls.version?.description, tls.ciphers), "TLS options")
            try set(mosquitto_tls_insecure_set(mosq, tls.insecure), "TLS host name verification")
        }

        var logger = logger
        logger[metadataKey: "mqtt.client_id"] = "\(configuration.clientID)"
        let (stream, continuation) = AsyncStream.makeStream(
            of: MosquittoEvent.self,
            bufferingPolicy: .bufferingNewest(64)
        )
        let waker: MosquittoLoopWaker
        do {
            waker = try MosquittoLoopWaker()
        } catch {
            mosquitto_destroy(mosq)
            throw error
        }
        let core = MosquittoCore(
            handle: MosquittoHandle(pointer: mosq),
            configuration: configuration,
            logger: logger,
            onMessage: onMessage,
            eventContinuation: continuation,
            waker: waker
        )
        // libmosquitto holds one retain of the core, released by destroyHandle() after mosquitto_destroy.
        mosquitto_user_data_set(mosq, Unmanaged.passRetained(core).toOpaque())
        // TLS failures are only explained in libmosquitto's log (OpenSSL's reasons), so with TLS the log callback
        // is always on: error lines are kept for the connect error, everything else is forwarded at trace level.
        installCallbacks(on: mosq, withLog: logger.logLevel <= .trace || configuration.tls != nil)
        self.core = core
        self.events = Events(stream: stream)
    }

    deinit {
        core.ownerReleased()
    }

    /// Whether a CONNACK has accepted the current connection.
    public var isConnected: Bool {
        core.shared.withLock { $0.machine.isConnected }
    }

    /// Why the last connection attempt failed while the client keeps retrying (a broker that is down, a refused
    /// TCP connection, a timeout), or `nil` once a CONNACK accepted it. Failures that end the loop are thrown by
    /// ``connect()`` or reported as ``MosquittoEvent/loopExited(_:)`` instead.
    public var lastConnectAttemptFailure: MosquittoError? {
        core.shared.withLock { $0.lastAttemptFailure }
    }

    /// The Maximum Packet Size the broker announced in its last CONNACK (MQTT 5), or `nil` when it announced none
    /// (no limit beyond MQTT's own, or an MQTT 3.1.1 broker, which cannot announce one).
    public var brokerMaximumPacketSize: Int? {
        core.shared.withLock { $0.brokerMaximumPacketSize.map(Int.init) }
    }

    /// The largest PUBLISH this client sends now: the smaller of the broker's announced Maximum Packet Size and
    /// ``MosquittoConfiguration/maximumPacketSize``, or `nil` when neither is known.
    public var maximumPacketSize: Int? {
        switch (brokerMaximumPacketSize, configuration.maximumPacketSize) {
        case (let broker?, let configured?): min(broker, configured)
        case (let broker?, nil): broker
        case (nil, let configured?): configured
        case (nil, nil): nil
        }
    }

    /// The descriptor of the connection's socket, or `nil` when there is none (tests check that a high one works).
    package var socketDescriptor: Int32? {
        let descriptor = mosquitto_socket(core.handle.pointer)
        return descriptor < 0 ? nil : descriptor
    }

    /// How many publish/subscribe calls are suspended waiting for their acknowledgement (tests use it to know
    /// that a call is really pending before they change the broker under it).
    package var waitingForAcknowledgements: Int {
        core.shared.withLock { $0.acks.waitingCount }
    }

    /// Starts the network loop and returns after the first successful CONNACK.
    ///
    /// While the broker is unreachable it keeps retrying with the reconnect backoff until the task is
    /// cancelled (then the loop stops and `CancellationError` is thrown). A refusing CONNACK or a fatal error
    /// throws instead of retrying. Calling it while connected returns at once; after ``disconnect()`` it
    /// connects again.
    /// - Returns: The broker's session-present flag: `true` if it still had this client id's session.
    /// - Throws: ``MosquittoError`` (refused: code ``MosquittoError/Code/connectionRefused(_:)``), or
    ///   `CancellationError`.
    @discardableResult
    public func connect() async throws -> Bool {
        let id = core.makeConnectWaiterID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Bool, any Error>) in
                core.beginConnect(id: id, waiter: waiter)
            }
        } onCancel: {
            core.cancelConnect(id: id)
        }
    }

    /// Subscribes now, waits for the SUBACK, and remembers the subscriptions.
    ///
    /// After any later reconnect whose CONNACK says the session is gone, remembered subscriptions are sent
    /// again automatically (and those whose SUBACK never came are re-sent even if the session survived).
    /// A subscription stays remembered unless the broker refuses it or libmosquitto rejects its arguments; in
    /// particular, if the connection drops before the SUBACK this throws but the subscription is still sent
    /// on the next connection, so retrying is harmless. Subscribing again to a filter replaces its options.
    /// - Parameter subscriptions: The filters with their QoS and options.
    /// - Returns: The SUBACK code per filter, in order: the granted QoS (0-2).
    /// - Throws: ``MosquittoError`` with ``MosquittoError/Code/reasonCode(_:)`` for a refusal (≥ 0x80), a library
    ///   code for local failures; or `CancellationError`.
    @discardableResult
    public func subscribe(to subscriptions: [MQTTSubscribeInfo]) async throws -> [UInt8] {
        for info in subscriptions where info.topicFilter.isEmpty || info.topicFilter.utf8.contains(0) {
            throw MosquittoError.invalidArgument("topic filter must be non-empty and contain no NUL")
        }
        guard core.acceptsOperations else {
            throw MosquittoError.clientClosed("subscribe() needs a running client; call connect() first")
        }
        core.remember(subscriptions)

        var mids: [Int32] = []
        for info in subscriptions {
            var mid: Int32 = 0
            let rc = core.sendSubscribe(info, mid: &mid)
            if rc != 0 {
                let error = MosquittoError(result: rc, detail: "subscribe to \(info.topicFilter)")
                core.ignoreAcks(mids)
                if ![MosquittoError.ResultCode.noConn, .connLost].contains(MosquittoError.ResultCode(rawValue: rc)) {
                    core.forget(info)
                }
                throw error
            }
            mids.append(mid)
        }

        var granted: [UInt8] = []
        for (index, (info, mid)) in zip(subscriptions, mids).enumerated() {
            let outcome: AckOutcome
            do {
                outcome = try await core.awaitAck(mid, kind: .subscribe)
            } catch {
                core.ignoreAcks(Array(mids[(index + 1)...]))
                throw error
            }
            guard case .subscribed(let codes) = outcome, let code = codes.first else {
                core.ignoreAcks(Array(mids[(index + 1)...]))
                throw MosquittoError(.library(.protocol), detail: "SUBACK for \(info.topicFilter) carried no code")
            }
            if code >= 0x80 {
                core.ignoreAcks(Array(mids[(index + 1)...]))
                core.forget(info)
                throw MosquittoError(.reasonCode(code), detail: "SUBACK refused \(info.topicFilter)")
            }
            core.confirm(info)
            granted.append(code)
        }
        return granted
    }

    /// Publishes a message; for QoS ≥ 1 waits for the broker's acknowledgement.
    ///
    /// A QoS ≥ 1 message published while the connection is down is queued by libmosquitto and sent after the
    /// reconnect; the wait survives reconnects (note the queue is in memory: it is lost with the process). QoS 0
    /// returns once the message is queued. On an MQTT 3.1.1 connection `properties` are silently not sent. The
    /// property list is rebuilt with `mosquitto_property_add_*` on every call (never a copied list, which
    /// libmosquitto 2.0.11 would truncate to its first property).
    /// - Parameters:
    ///   - topic: The topic name (no wildcards).
    ///   - payload: The payload bytes.
    ///   - qos: The QoS.
    ///   - retain: The retain flag; default `false`.
    ///   - properties: MQTT 5 properties; default none.
    /// - Throws: ``MosquittoError``: a library code for local failures, ``MosquittoError/Code/reasonCode(_:)``
    ///   when an MQTT 5 PUBACK carries a failure reason (≥ 0x80; 0x10 "no matching subscribers" is success),
    ///   ``MosquittoError/Code/clientClosed`` if the client stops first; or `CancellationError` (the message may
    ///   still be delivered).
    public func publish(
        to topic: String,
        payload: [UInt8],
        qos: MQTTQoS,
        retain: Bool = false,
        properties: MQTTProperties = MQTTProperties()
    ) async throws {
        if topic.isEmpty || topic.utf8.contains(0) {
            throw MosquittoError.invalidArgument("topic must be non-empty and contain no NUL")
        }
        // 268 435 455 is MQTT's largest remaining length; anything larger can never be sent.
        if payload.count > 268_435_455 {
            throw MosquittoError(.library(.payloadSize), detail: "payload of \(payload.count) bytes")
        }
        guard core.acceptsOperations else {
            throw MosquittoError.clientClosed("publish() needs a running client; call connect() first")
        }
        let outgoing = configuration.protocolVersion == .v5 ? properties : MQTTProperties()
        // Checked here, counted as MQTT counts packets: libmosquitto knows only the broker's announced limit (and
        // counts it laxly); the configured one is all an MQTT 3.1.1 broker has, and a packet over it would cost the
        // connection instead of one message.
        if let limit = maximumPacketSize {
            let size = MQTTPacketSize.publish(
                topic: topic,
                payloadCount: payload.count,
                qos: qos,
                properties: outgoing,
                protocolVersion: configuration.protocolVersion
            )
            if size > limit {
                throw MosquittoError(
                    .library(.oversizePacket),
                    detail: "a PUBLISH of \(size) bytes, more than the broker's maximum packet size of \(limit)"
                )
            }
        }
        let mosq = core.handle.pointer
        var mid: Int32 = 0
        let rc = try outgoing.withPropertyList { list throws(MosquittoError) in
            payload.withUnsafeBytes { bytes in
                mosquitto_publish_v5(
                    mosq,
                    &mid,
                    topic,
                    Int32(bytes.count),
                    bytes.baseAddress,
                    Int32(qos.rawValue),
                    retain,
                    list
                )
            }
        }
        core.waker.wake()
        // For QoS ≥ 1, libmosquitto appends the message to its outgoing queue *before* trying to send it, so
        // MOSQ_ERR_NO_CONN only means "not sent yet": it goes out after the reconnect, and we wait for its ack.
        let queuedWhileOffline = qos != .atMostOnce && rc == MosquittoError.ResultCode.noConn.rawValue
        if rc != 0 && !queuedWhileOffline {
            throw MosquittoError(result: rc, detail: "publish to \(topic)")
        }
        if qos == .atMostOnce {
            core.ignoreAcks([mid])
            return
        }
        let outcome = try await core.awaitAck(mid, kind: .publish)
        if case .published(let reasonCode) = outcome, reasonCode >= 0x80 {
            throw MosquittoError(.reasonCode(UInt8(truncatingIfNeeded: reasonCode)), detail: "PUBACK for \(topic)")
        }
    }

    /// Sends a clean DISCONNECT (reason 0), stops the network thread and fails pending waits with
    /// ``MosquittoError/Code/clientClosed``. Idempotent; returns once the thread has ended.
    ///
    /// If the thread is inside a blocking TCP connect to an unreachable host, this waits for that attempt to
    /// time out.
    public func disconnect() async {
        await core.stopAndWait()
    }
}

extension MosquittoCore {
    /// Adds or replaces remembered subscriptions (unconfirmed until their SUBACK).
    func remember(_ infos: [MQTTSubscribeInfo]) {
        shared.withLock { state in
            for info in infos {
                let entry = RememberedSubscription(info: info, confirmed: false)
                if let index = state.subscriptions.firstIndex(where: { $0.info.topicFilter == info.topicFilter }) {
                    state.subscriptions[index] = entry
                } else {
                    state.subscriptions.append(entry)
                }
            }
        }
    }

    /// Drops a remembered subscription the broker or libmosquitto rejected.
    func forget(_ info: MQTTSubscribeInfo) {
        shared.withLock { state in
            state.subscriptions.removeAll { $0.info == info }
        }
    }

    /// Marks a remembered subscription as granted on the current session.
    func confirm(_ info: MQTTSubscribeInfo) {
        shared.withLock { state in
            if let index = state.subscriptions.firstIndex(where: { $0.info == info }) {
                state.subscriptions[index].confirmed = true
            }
        }
    }

    /// Nobody will wait for these ids (QoS 0, or an abandoned subscribe): drop their acknowledgements.
    func ignoreAcks(_ mids: [Int32]) {
        guard !mids.isEmpty else { return }
        shared.withLock { state in
            for mid in mids { state.acks.ignore(mid) }
        }
    }

    /// The filters currently remembered for re-subscription (for tests and diagnostics).
    var rememberedTopicFilters: [String] {
        shared.withLock { $0.subscriptions.map(\.info.topicFilter) }
    }
}

/// Creates a client, connects it, runs `body`, and always disconnects, also when `body` or the connect throws.
///
/// - Parameters:
///   - configuration: The client configuration.
///   - logger: The logger.
///   - onMessage: The message handler (see ``MosquittoClient/MessageHandler`` for its threading contract).
///   - body: The work to do with the connected client.
/// - Returns: What `body` returns.
/// - Throws: ``MosquittoError`` from creating or connecting, or whatever `body` throws.
@discardableResult
public func withMosquittoClient<R: Sendable>(
    configuration: MosquittoConfiguration,
    logger: Logger,
    onMessage: @escaping MosquittoClient.MessageHandler,
    _ body: (MosquittoClient) async throws -> R
) async throws -> R {
    let client = try MosquittoClient(configuration: configuration, logger: logger, onMessage: onMessage)
    do {
        try await client.connect()
        let result = try await body(client)
        await client.disconnect()
        return result
    } catch {
        await client.disconnect()
        throw error
    }
}
