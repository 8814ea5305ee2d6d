// SPDX-License-Identifier: Apache-2.0

/// Connection supervision events of a ``MosquittoClient``, for readiness checks and logging.
public enum MosquittoEvent: Sendable, Hashable {
    /// A CONNACK accepted the connection. `sessionPresent` is the broker's flag: `false` means the broker had no
    /// session for this client id, so the client re-subscribed everything it remembers.
    case connected(sessionPresent: Bool)
    /// A CONNACK refused the connection (MQTT 5 reason code ≥ 0x80, MQTT 3.1.1 return code 1-5).
    case connectionRefused(MosquittoError)
    /// The connection ended. `nil` means we asked for it (``MosquittoClient/disconnect()``); otherwise the cause.
    case disconnected(MosquittoError?)
    /// The network loop gave up for good (fatal error, non-temporary refusal): no further reconnect attempts
    /// will be made, and the client is closed. Readiness should go red and stay red.
    case loopExited(MosquittoError)
}

extension MosquittoClient {
    /// The unicast stream of ``MosquittoEvent`` values of one client.
    ///
    /// Backed by a bounded buffer that keeps the newest events (the default keeps 64): a consumer that stops
    /// reading loses old events, never blocks the network loop. Iterate it from one task only; a second
    /// iterator would share (split) the same events. It finishes when the client is deinitialised.
    public struct Events: AsyncSequence, Sendable {
        /// The element type.
        public typealias Element = MosquittoEvent
        /// The iteration never throws.
        public typealias Failure = Never

        let stream: AsyncStream<MosquittoEvent>

        /// The iterator.
        public struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncStream<MosquittoEvent>.AsyncIterator

            /// The next event, or `nil` once the client is gone.
            public mutating func next() async -> MosquittoEvent? {
                await base.next(isolation: #isolation)
            }

            /// The next event, or `nil` once the client is gone.
            public mutating func next(isolation actor: isolated (any Actor)?) async -> MosquittoEvent? {
                await base.next(isolation: actor)
            }
        }

        /// Makes the (single) iterator.
        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: stream.makeAsyncIterator())
        }
    }
}
