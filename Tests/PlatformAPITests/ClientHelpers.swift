// SPDX-License-Identifier: Apache-2.0
import Logging
import PlatformAPI
import PlatformSignature
import Synchronization

/// A configuration for tests: fast retries, no client-side rate limit unless a test sets one.
func testConfiguration(endpoint: String, secret: String = "test-secret-value") -> PlatformAPIConfiguration {
    var configuration = PlatformAPIConfiguration(
        endpoint: endpoint,
        accessKeyId: "test-key-id",
        accessKeySecret: AccessKeySecret(secret)
    )
    configuration.retry = .exponentialBackoff(maxAttempts: 4, base: .milliseconds(5), cap: .milliseconds(20))
    configuration.rateLimit = .unlimited
    // Generous: a test that wants a timeout sets its own, and a loaded machine stalls for seconds.
    configuration.timeouts = .init(connect: .seconds(10), read: .seconds(30))
    return configuration
}

/// Runs `body` with a client whose service is running, then stops the service (cancellation) and waits for it.
func withClient<R: Sendable>(
    _ configuration: PlatformAPIConfiguration,
    logger: Logger = Logger(label: "platform-api-test"),
    _ body: (PlatformAPIClient) async throws -> R
) async throws -> R {
    let client = PlatformAPIClient(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        do {
            let result = try await body(client)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Keeps every log record in memory so tests can check what would have been logged.
struct RecordingLogHandler: LogHandler {
    final class Store: Sendable {
        let records = Mutex<[String]>([])
        var all: [String] { records.withLock { $0 } }
    }

    let store: Store
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line =
            "\(event.level) \(event.message) "
            + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        store.records.withLock { $0.append(line) }
    }
}
