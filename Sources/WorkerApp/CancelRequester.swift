// SPDX-License-Identifier: Apache-2.0
public import Logging
public import Mosquitto
import Foundation
public import JSONSchema
import Synchronization
import Worker

/// Sends one ``CancelRequest`` over MQTT and waits for its correlated reply: the I/O half of `request`.
///
/// The reply topic is subscribed to (and the SUBACK awaited) before the command is published, so a worker that
/// answers at once cannot answer into the void. The requester's session is clean and ends with the process: a
/// requester that gives up has nothing for the broker to keep.
public enum CancelRequester {
    /// Why nothing could be asked: the broker could not be reached, refused us, or refused the command.
    public struct Failure: Error, Sendable {
        public var message: String
        /// 69 (sysexits `EX_UNAVAILABLE`): the broker, not the command, is the problem.
        public var exitStatus: Int32 { WorkerApp.ExitStatus.unavailable }
    }

    /// Publishes `request` to `topic` and returns the reply (or ``CancelRequestOutcome/noReply(correlationId:timeoutSeconds:)``).
    ///
    /// - Parameters:
    ///   - mqtt: the connection (client id, TLS, credentials); its session settings are replaced by a clean one.
    ///   - connectTimeout: how long the broker may take to accept the connection (libmosquitto retries meanwhile).
    ///   - replyTimeout: how long to wait for the reply once the broker has the command.
    public static func send(
        _ request: CancelRequest,
        topic: String,
        mqtt: MosquittoConfiguration,
        connectTimeout: Duration,
        replyTimeout: Duration,
        logger: Logger
    ) async throws(Failure) -> CancelRequestOutcome {
        var configuration = mqtt
        configuration.cleanStart = true
        configuration.sessionExpiryInterval = 0
        let (replies, sink) = AsyncStream.makeStream(of: MQTTMessage.self, bufferingPolicy: .unbounded)
        let client: MosquittoClient
        do {
            client = try MosquittoClient(configuration: configuration, logger: logger) { sink.yield($0) }
        } catch {
            throw Failure(message: "cannot create the MQTT client: \(error)")
        }
        let broker = (host: configuration.host, port: configuration.port, tls: configuration.tls != nil)
        // The last reason a connection attempt failed: libmosquitto retries quietly, and "timed out" alone would
        // not say that the host does not resolve or the certificate is wrong.
        let lastFailure = Mutex<MosquittoError?>(nil)
        let watcher = Task {
            for await event in client.events {
                switch event {
                case .disconnected(let error?), .connectionRefused(let error), .loopExited(let error):
                    lastFailure.withLock { $0 = error }
                default: break
                }
            }
        }
        defer { watcher.cancel() }
        func describe(_ error: MosquittoError) -> String {
            MQTTFailureHint.describe(error, host: broker.host, port: broker.port, tls: broker.tls)
        }

        let connected: Bool?
        do {
            connected = try await within(connectTimeout) { try await client.connect() }
        } catch let error as MosquittoError {
            throw Failure(message: describe(error))
        } catch {
            throw Failure(message: "the MQTT connection failed: \(error)")
        }
        guard connected != nil else {
            let seconds = Double(connectTimeout.components.seconds)
            throw Failure(
                message: "no connection to the MQTT broker at \(broker.host):\(broker.port) within \(seconds) s"
                    + (lastFailure.withLock { $0 }.map { ": " + describe($0) } ?? "")
            )
        }
        do {
            // A refusal (SUBACK ≥ 0x80) throws: nothing is published that could not be answered.
            try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: request.replyTopic, qos: .atLeastOnce)])
        } catch {
            await client.disconnect()
            throw Failure(
                message: "the broker refused the subscription to the reply topic '\(request.replyTopic)': \(error) "
                    + "(check the broker's ACL, or choose another --reply-topic)"
            )
        }
        do {
            let message = request.message(topic: topic)
            try await client.publish(
                to: topic,
                payload: message.payload,
                qos: .atLeastOnce,
                properties: message.properties
            )
        } catch {
            await client.disconnect()
            throw Failure(message: "the broker did not take the command on '\(topic)': \(error)")
        }
        let reply = try? await within(replyTimeout) { () async -> JSONValue? in
            for await message in replies {
                if let reply = Self.reply(to: request, in: message) { return reply }
            }
            return nil
        }
        await client.disconnect()
        sink.finish()
        guard let reply = reply ?? nil else {
            return .noReply(
                correlationId: request.correlationId,
                timeoutSeconds: Double(replyTimeout.components.seconds)
                    + Double(replyTimeout.components.attoseconds) / 1e18
            )
        }
        return .replied(reply)
    }

    /// The reply in `message` if it answers `request`: by its MQTT 5 Correlation Data, else (3.1.1, or a reply
    /// topic shared with other requesters) by the payload's `correlationId`.
    public static func reply(to request: CancelRequest, in message: MQTTMessage) -> JSONValue? {
        guard let reply = try? JSONParser.parse(message.payload) else { return nil }
        // (Not `condition ? reply : nil`: JSONValue takes `nil` as JSON null, so that would answer every message.)
        let matches =
            message.properties.correlationData.map { $0 == Array(request.correlationId.utf8) }
            ?? (reply["correlationId"]?.stringValue == request.correlationId)
        guard matches else { return nil }
        return reply
    }

    /// The operation's result, or `nil` when `limit` passed first (the operation is then cancelled).
    static func within<T: Sendable>(
        _ limit: Duration,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
