// SPDX-License-Identifier: Apache-2.0
import Logging
import PlatformAPI
import ServiceLifecycle
import Testing

/// The client as a `Service`: graceful shutdown drains in-flight calls, then refuses new ones.
@Suite("Client lifecycle")
struct LifecycleTests {
    static let request = CancelOTATaskByDeviceRequest(productKey: "pk", firmwareId: "fw", deviceNames: ["dev-01"])

    @Test("graceful shutdown lets the in-flight call finish, then new calls get `shutdown`")
    func gracefulDrain() async throws {
        let slow = ScriptedHTTPServer.Response(
            status: 200,
            body: #"{"Success":true,"RequestId":"late"}"#,
            delay: .milliseconds(500)
        )
        try await ScriptedHTTPServer.with([slow]) { server in
            let logger = Logger(label: "lifecycle-test")
            let client = PlatformAPIClient(configuration: testConfiguration(endpoint: server.endpoint), logger: logger)
            let group = ServiceGroup(services: [client], logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let call = Task { await client.cancelOTATaskByDevice(Self.request, deadline: nil) }
                try await waitUntil { server.requests.count == 1 }
                await group.triggerGracefulShutdown()
                let result = await call.value
                #expect(result.succeeded && result.requestIds == ["late"])
                try await tasks.waitForAll()
            }
            let after = await client.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(after.error == .shutdown && after.attempts == 0)
            #expect(server.requests.count == 1)
        }
    }

    @Test("a client that made calls without ever running can simply be dropped")
    func droppedWithoutRun() async throws {
        try await ScriptedHTTPServer.with([.init(status: 200, body: #"{"Success":true}"#)]) { server in
            var client: PlatformAPIClient? = PlatformAPIClient(
                configuration: testConfiguration(endpoint: server.endpoint),
                logger: Logger(label: "t")
            )
            let result = await client!.cancelOTATaskByDevice(Self.request, deadline: nil)
            #expect(result.succeeded)
            client = nil  // deinit shuts the HTTP client down (a debug build would trap on a leak)
            #expect(client == nil)
        }
    }
}
