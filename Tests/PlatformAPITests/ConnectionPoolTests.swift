// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformAPI
import Testing

/// How many calls go out at once over HTTP/1.1, where each connection carries one call at a time: the pool is
/// what turns a slow platform into latency (calls overlap) or into lost throughput (calls queue).
@Suite("Connection pool")
struct ConnectionPoolTests {
    /// `count` calls started together against a server that answers each one after `latency`; returns the
    /// results, the time they took and the most requests the server had open at once.
    func concurrentCalls(
        _ count: Int,
        latency: Duration,
        configure: (inout PlatformAPIConfiguration) -> Void = { _ in }
    ) async throws -> (results: [PlatformCallResult], elapsed: Duration, peak: Int) {
        let slow = ScriptedHTTPServer.Response(status: 200, body: #"{"RequestId":"r","Success":true}"#, delay: latency)
        return try await ScriptedHTTPServer.with([slow]) { server in
            var configuration = testConfiguration(endpoint: server.endpoint)
            configuration.retry = .none
            configure(&configuration)
            let (results, elapsed) = try await withClient(configuration) { client in
                let started = ContinuousClock.now
                let results = await withTaskGroup(of: PlatformCallResult.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            let request = CancelOTATaskByDeviceRequest(
                                productKey: "a1V4kde",
                                firmwareId: "fw-1",
                                deviceNames: [String(format: "dev-%04d", index)]
                            )
                            return await client.cancelOTATaskByDevice(request, deadline: nil)
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                return (results, started.duration(to: .now))
            }
            return (results, elapsed, server.peakConcurrentRequests)
        }
    }

    @Test("by default 64 calls to a slow platform are in flight together (AsyncHTTPClient alone keeps 8)")
    func defaultPoolCarriesSixtyFourCalls() async throws {
        let latency = Duration.milliseconds(1_500)
        let (results, elapsed, peak) = try await concurrentCalls(64, latency: latency)
        print("64 concurrent calls, \(latency) each, default pool: \(elapsed), at most \(peak) at once")
        #expect(
            results.count == 64 && results.allSatisfy(\.succeeded),
            "errors: \(results.compactMap { $0.error.map { "\($0.shortDescription): \($0.message)" } })"
        )
        // Eight connections would hold 8 at a time and take eight latencies (12 s).
        #expect(peak == 64, "the server saw at most \(peak) requests at once")
        // The peak is the proof; this only checks it was not eight rounds (a loaded machine stretches one round).
        #expect(elapsed < latency * 8, "64 calls took \(elapsed)")
    }

    @Test("maxConnections bounds the calls in flight: 12 calls over 4 connections go 4 at a time")
    func configuredLimitIsApplied() async throws {
        let latency = Duration.milliseconds(500)
        let (results, elapsed, peak) = try await concurrentCalls(12, latency: latency) {
            $0.connectionPool.maxConnections = 4
        }
        print("12 concurrent calls, \(latency) each, 4 connections: \(elapsed), at most \(peak) at once")
        #expect(results.count == 12 && results.allSatisfy(\.succeeded))
        #expect(peak == 4, "the server saw at most \(peak) requests at once")
        // Three rounds of one latency each, at least.
        #expect(elapsed >= latency * 3, "12 calls took \(elapsed)")
    }
}
