// SPDX-License-Identifier: Apache-2.0
import Foundation
import Mosquitto
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// libmosquitto's `mosquitto_loop` waits with `select`, which cannot watch a descriptor numbered 1,024 or more: it
/// then fails with MOSQ_ERR_INVAL for good. A worker holding many descriptors (operations connections, platform
/// connections) that reconnects to its broker gets such a socket. The client's own loop polls instead.
@Suite("Sockets numbered beyond FD_SETSIZE")
struct DescriptorTests {
    @Test(
        "with 1,100 descriptors open, a client connects on a socket numbered 1,024 or more and works: publish, receive, reconnect"
    )
    func highDescriptor() async throws {
        _ = try raiseOpenFileLimit(to: 4_096)
        // Fill the low numbers, so that the client's socket gets a high one. Other tests in this process close
        // descriptors meanwhile, which can free a low number just before the client's socket is made: then the
        // holes are filled again and the client connects anew (a few tries; each one checks the same thing).
        var placeholders: [Int32] = []
        defer { for descriptor in placeholders { close(descriptor) } }
        func fillBelow1024() throws {
            while true {
                let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
                try #require(descriptor >= 0, "open /dev/null: errno \(errno)")
                placeholders.append(descriptor)
                if descriptor >= 1_100 { return }
            }
        }
        try await withMosquittoBroker { broker in
            var lowNumbers: [Int32] = []
            var worked = false
            for _ in 0..<10 where !worked {
                try fillBelow1024()
                let received = MessageCollector()
                try await withTestClient(broker, "high-fd", onMessage: received.handler) { client in
                    let descriptor = try #require(client.socketDescriptor)
                    guard descriptor >= 1_024 else {
                        lowNumbers.append(descriptor)
                        return
                    }
                    try await client.subscribe(to: [MQTTSubscribeInfo(topicFilter: "high/#", qos: .atLeastOnce)])
                    try await client.publish(to: "high/a", payload: [1], qos: .atLeastOnce)
                    _ = try await received.waitFor(count: 1)
                    // A reconnect from that state works too (its number depends on what other tests freed meanwhile).
                    try await broker.restart()
                    // The restarted broker kept no session: wait for the client's automatic re-subscribe (the log
                    // spans both runs, so it is the second SUBSCRIBE) before publishing. Published earlier, the
                    // message can reach the broker before the subscription does and have no subscriber.
                    let id = client.configuration.clientID
                    let resubscribed = try await broker.waitForLog(timeout: .seconds(20)) {
                        occurrences(of: "Received SUBSCRIBE from \(id)", in: $0) == 2
                    }
                    try #require(resubscribed, "no automatic re-subscribe after the restart")
                    try await client.publish(to: "high/b", payload: [2], qos: .atLeastOnce)
                    let messages = try await received.waitFor(count: 2)
                    #expect(messages.map(\.topic) == ["high/a", "high/b"])
                    worked = true
                }
            }
            #expect(worked, "no try got a socket numbered 1,024 or more: \(lowNumbers)")
        }
    }
}
