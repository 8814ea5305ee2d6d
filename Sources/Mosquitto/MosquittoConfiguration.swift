// SPDX-License-Identifier: Apache-2.0

/// Everything a ``MosquittoClient`` needs to connect, as a plain value.
///
/// The defaults are the ones a command consumer wants: MQTT 5, a persistent session (clean start off and a
/// one-day session expiry) so that commands published while the worker is down are delivered when it comes
/// back, TCP_NODELAY on (without it every request/response round trip can cost ~40 ms of Nagle delay), and an
/// exponential reconnect backoff instead of libmosquitto's fixed 1 s retry.
public struct MosquittoConfiguration: Sendable {
    /// How the client retries after the connection is lost (or while the broker is unreachable).
    ///
    /// The n-th consecutive failed attempt waits `initialDelay * 2^n` when `exponential` is set, otherwise
    /// `initialDelay`, never more than `maximumDelay`. A successful CONNACK resets the count.
    public struct Reconnect: Sendable, Hashable {
        /// The first delay. Default 1 second.
        public var initialDelay: Duration
        /// The upper bound of any delay. Default 30 seconds.
        public var maximumDelay: Duration
        /// Whether the delay doubles after each failed attempt. Default `true`.
        public var exponential: Bool

        /// Creates a reconnect policy.
        /// - Parameters:
        ///   - initialDelay: The first delay; default 1 s.
        ///   - maximumDelay: The cap; default 30 s.
        ///   - exponential: Double the delay per failed attempt; default `true`.
        public init(
            initialDelay: Duration = .seconds(1),
            maximumDelay: Duration = .seconds(30),
            exponential: Bool = true
        ) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
            self.exponential = exponential
        }

        /// The delay before reconnect attempt number `attempt` (0-based: 0 is the first retry).
        /// - Parameter attempt: How many attempts already failed in a row.
        /// - Returns: The delay, capped at ``maximumDelay``.
        public func delay(forAttempt attempt: Int) -> Duration {
            let initial = max(initialDelay, .zero)
            let cap = max(maximumDelay, initial)
            guard exponential else { return min(initial, cap) }
            var delay = initial
            var remaining = max(attempt, 0)
            while remaining > 0, delay < cap {
                delay = delay * 2
                remaining -= 1
            }
            return min(delay, cap)
        }
    }

    /// Broker host name or address. Default `"127.0.0.1"`.
    public var host: String
    /// Broker TCP port. Default 1883.
    public var port: Int
    /// Client identifier. Required, no default: it must be fixed per worker instance (a persistent session is
    /// found by it) and unique across instances (two processes sharing one knock each other off in a loop).
    public var clientID: String
    /// Protocol version. Default ``MQTTProtocolVersion/v5``.
    public var protocolVersion: MQTTProtocolVersion
    /// Keep alive in seconds: 0 (off) or 5 to 65535. Default 30. The broker drops the client after 1.5 times this
    /// without traffic, which includes time spent inside the message handler.
    public var keepAlive: Int
    /// Clean start (MQTT 5) / clean session (3.1.1). Default `false`, so the broker keeps the session and queues
    /// QoS ≥ 1 messages while the client is away.
    public var cleanStart: Bool
    /// MQTT 5 Session Expiry Interval in seconds, sent in CONNECT. Default 86 400 (one day). Without it an
    /// MQTT 5 broker ends the session at disconnect even when clean start is off. `UInt32.max` never expires.
    /// Ignored on 3.1.1, where a non-clean session never expires.
    public var sessionExpiryInterval: UInt32
    /// MQTT 5 Receive Maximum: how many incoming QoS ≥ 1 messages may be unacknowledged at once (backpressure).
    /// 1 to 65535. Default 64.
    public var receiveMaximum: Int
    /// How many outgoing QoS ≥ 1 messages may be in flight at once (the broker's own Receive Maximum wins if
    /// lower). 1 to 65535. Default 64.
    public var sendMaximum: Int
    /// Reconnect backoff. Default ``Reconnect/init(initialDelay:maximumDelay:exponential:)`` (1 s, 30 s, doubling).
    public var reconnect: Reconnect
    /// Set TCP_NODELAY on the socket. Default `true`.
    public var tcpNoDelay: Bool
    /// User name for the broker. Default `nil` (anonymous).
    public var username: String?
    /// Password for the broker. Default `nil`. Never logged, never part of an error or a description.
    public var password: String?
    /// TLS to the broker (CA, optional client certificate). Default `nil`: plain TCP, as on a loopback or private
    /// network; set it whenever commands and credentials cross a network someone else can read. The broker's port
    /// is usually different for TLS (8883 by convention), so set ``port`` too.
    public var tls: TLS?
    /// The largest packet the broker accepts, in bytes, when it cannot say so itself. Default `nil`: only the
    /// Maximum Packet Size an MQTT 5 broker announces in its CONNACK applies (with both, the smaller one).
    ///
    /// An MQTT 3.1.1 broker has no way to announce its limit and closes the connection on a larger packet, so a
    /// message that can never fit would cost a reconnect at every attempt; with this set, ``MosquittoClient``
    /// refuses such a publication at once with `MOSQ_ERR_OVERSIZE_PACKET`. Set it to the broker's
    /// `max_packet_size` (mosquitto) or equivalent.
    public var maximumPacketSize: Int?

    /// Creates a configuration; every argument except `clientID` has the default documented on its property.
    public init(
        host: String = "127.0.0.1",
        port: Int = 1883,
        clientID: String,
        protocolVersion: MQTTProtocolVersion = .v5,
        keepAlive: Int = 30,
        cleanStart: Bool = false,
        sessionExpiryInterval: UInt32 = 86_400,
        receiveMaximum: Int = 64,
        sendMaximum: Int = 64,
        reconnect: Reconnect = Reconnect(),
        tcpNoDelay: Bool = true,
        username: String? = nil,
        password: String? = nil,
        tls: TLS? = nil,
        maximumPacketSize: Int? = nil
    ) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.protocolVersion = protocolVersion
        self.keepAlive = keepAlive
        self.cleanStart = cleanStart
        self.sessionExpiryInterval = sessionExpiryInterval
        self.receiveMaximum = receiveMaximum
        self.sendMaximum = sendMaximum
        self.reconnect = reconnect
        self.tcpNoDelay = tcpNoDelay
        self.username = username
        self.password = password
        self.tls = tls
        self.maximumPacketSize = maximumPacketSize
    }

    /// Checks the values libmosquitto would otherwise reject later with a bare `MOSQ_ERR_INVAL`.
    /// - Throws: ``MosquittoError`` with code ``MosquittoError/Code/invalidConfiguration`` naming the setting.
    public func validate() throws(MosquittoError) {
        if host.isEmpty { throw .invalidConfiguration("host must not be empty") }
        if !(1...65535).contains(port) { throw .invalidConfiguration("port must be 1...65535, got \(port)") }
        if clientID.isEmpty || clientID.utf8.count > 65535 {
            throw .invalidConfiguration("clientID must be 1...65535 bytes of UTF-8")
        }
        if keepAlive != 0 && !(5...65535).contains(keepAlive) {
            throw .invalidConfiguration("keepAlive must be 0 or 5...65535 seconds, got \(keepAlive)")
        }
        if !(1...65535).contains(receiveMaximum) {
            throw .invalidConfiguration("receiveMaximum must be 1...65535, got \(receiveMaximum)")
        }
        if !(1...65535).contains(sendMaximum) {
            throw .invalidConfiguration("sendMaximum must be 1...65535, got \(sendMaximum)")
        }
        if reconnect.initialDelay <= .zero || reconnect.maximumDelay < reconnect.initialDelay {
            throw .invalidConfiguration("reconnect delays must satisfy 0 < initialDelay <= maximumDelay")
        }
        if let maximumPacketSize, !(20...268_435_460).contains(maximumPacketSize) {
            throw .invalidConfiguration("maximumPacketSize must be 20...268435460 bytes, got \(maximumPacketSize)")
        }
        if password != nil && username == nil {
            throw .invalidConfiguration("password is set but username is not")
        }
        try tls?.validate()
    }
}

extension MosquittoConfiguration: CustomStringConvertible {
    /// A log-safe summary: the password appears only as "set"/"unset"; TLS as "off" or its file paths.
    public var description: String {
        "MosquittoConfiguration(host: \(host), port: \(port), clientID: \(clientID), protocol: \(protocolVersion), "
            + "keepAlive: \(keepAlive), cleanStart: \(cleanStart), sessionExpiry: \(sessionExpiryInterval), "
            + "receiveMaximum: \(receiveMaximum), sendMaximum: \(sendMaximum), username: \(username ?? "-"), "
            + "password: \(password == nil ? "unset" : "set"), tls: \(tls.map(\.description) ?? "off"), "
            + "maximumPacketSize: \(maximumPacketSize.map(String.init) ?? "-"))"
    }
}

extension MosquittoConfiguration: CustomReflectable {
    /// A mirror without the password, so `dump(configuration)` cannot leak it either.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "clientID": clientID, "protocolVersion": protocolVersion,
                "keepAlive": keepAlive, "cleanStart": cleanStart, "sessionExpiryInterval": sessionExpiryInterval,
                "receiveMaximum": receiveMaximum, "sendMaximum": sendMaximum, "reconnect": reconnect,
                "tcpNoDelay": tcpNoDelay, "username": username as Any, "password": password == nil ? "unset" : "set",
                "tls": tls.map(\.description) ?? "off", "maximumPacketSize": maximumPacketSize as Any,
            ],
            displayStyle: .struct
        )
    }
}
