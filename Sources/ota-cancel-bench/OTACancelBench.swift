// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Logging
import Mosquitto
import Synchronization

/// `ota-cancel-bench`: measures the worker.
///
/// `mqtt` (the default, so `ota-cancel-bench --broker-port ...` keeps working) loads a running worker over MQTT;
/// `schema` measures the JSON parser and the command schema's validator alone, in this process.
@main
struct OTACancelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ota-cancel-bench",
        abstract:
            "Measure ota-cancel-worker: a running worker over MQTT (default), or the JSON Schema validator alone.",
        subcommands: [MQTTBench.self, SchemaBench.self],
        defaultSubcommand: MQTTBench.self
    )
}

/// `ota-cancel-bench mqtt`: a load generator for a running worker.
///
/// Publishes cancel commands over MQTT 5 (Response Topic + Correlation Data), keeps a bounded number of them
/// outstanding, and measures the round trip of each until its reply arrives: throughput and latency
/// percentiles, the way a rollback trigger experiences the worker.
struct MQTTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt",
        abstract: "Measure a running ota-cancel-worker: commands per second and round-trip latency."
    )

    @Option(help: "MQTT broker host.")
    var brokerHost = "127.0.0.1"

    @Option(help: "MQTT broker port.")
    var brokerPort = 1883

    @Option(help: "Commands to send.")
    var count = 1_000

    @Option(help: "Commands outstanding at once (1 measures the latency of one command alone).")
    var concurrency = 64

    @Option(help: "Devices per command.")
    var devicesPerCommand = 1

    @Option(help: "Number of distinct devices to cycle through (dev-000001 ...).")
    var deviceRange = 1_000

    @Option(help: "productKey of the commands.")
    var productKey = "demoProduct"

    @Option(help: "firmwareId of the commands.")
    var firmwareId = "demoFirmware"

    @Option(
        help: """
            Spread the commands round-robin over these firmwareIds (comma-separated; command i gets the (i mod K)-th), \
            instead of --firmware-id for all.
            """
    )
    var firmwareIds: String?

    @Option(
        help: """
            First publish one command naming this many devices (dev-000001 ...) for --lead-firmware-id, then the \
            --count others at once; the others' latency is reported apart from the lead command's. (default: none)
            """
    )
    var leadDevices: Int?

    @Option(help: "jobId of the commands (a worker at --verify auto then reads them back). Default: none.")
    var jobId: String?

    @Option(help: "firmwareId of the --lead-devices command.")
    var leadFirmwareId = "demoFirmware"

    @Option(help: "Seconds to wait for the last reply before reporting what arrived (and exiting with status 1).")
    var timeout: Double = 600

    @Option(help: "The worker's command topic.")
    var commandTopic = "ota/cancel/request"

    @Option(help: "A label printed with the results.")
    var label = "run"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Also report how many replies arrived within this many seconds of the first publication.")
    var window: Double = 5

    @Flag(
        help:
            "Receive the replies on a second MQTT connection (as a requester with its own reply subscriber does), not on the one that publishes the commands."
    )
    var separateReplyConnection = false

    func run() async throws {
        guard count > 0, concurrency > 0, devicesPerCommand > 0, deviceRange > 0, timeout > 0 else {
            throw ValidationError("count, concurrency, devices-per-command, device-range and timeout must be positive")
        }
        let firmwares = firmwareIds.map { $0.split(separator: ",").map(String.init) } ?? [firmwareId]
        guard !firmwares.isEmpty, firmwares.allSatisfy({ !$0.isEmpty }) else {
            throw ValidationError("--firmware-ids must list at least one non-empty firmwareId")
        }
        if let leadDevices, leadDevices < 1 { throw ValidationError("--lead-devices must be positive") }
        var logger = Logger(label: "ota-cancel-bench")
        logger.logLevel = .warning
        let run = UUID().uuidString.prefix(8).lowercased()
        let replyTopic = "ota/cancel/reply/bench-\(run)"
        let tracker = Tracker(
            count: count,
            hasLead: leadDevices != nil,
            window: .milliseconds(Int64(window * 1000))
        )

        var configuration = MosquittoConfiguration(clientID: "ota-cancel-bench-\(run)")
        configuration.host = brokerHost
        configuration.port = brokerPort
        configuration.cleanStart = true
        configuration.sessionExpiryInterval = 0
        configuration.receiveMaximum = 65_535
        configuration.sendMaximum = 65_535
        let client = try MosquittoClient(configuration: configuration, logger: logger) { message in
            tracker.replied(message)
        }
        try await client.connect()
        // One connection for both, or a subscriber of its own: a connection that publishes a flood of QoS 1
        // messages gets its own replies late (mosquitto delivers them mostly after the flood has been read).
        var subscriberConfiguration = configuration
        subscriberConfiguration.clientID += "-replies"
        let subscriber =
            separateReplyConnection
            ? try MosquittoClient(configuration: subscriberConfiguration, logger: logger) { tracker.replied($0) }
            : client
        if separateReplyConnection { try await subscriber.connect() }
        try await subscriber.subscribe(to: [MQTTSubscribeInfo(topicFilter: replyTopic, qos: .atLeastOnce)])

        func payload(firmwareId: String, names: [String]) -> [UInt8] {
            Array(
                (#"{"productKey":""# + productKey + #"","firmwareId":""# + firmwareId + #"","deviceNames":["#
                    + names.joined(separator: ",") + "]" + (jobId.map { #","jobId":""# + $0 + #"""# } ?? "") + "}").utf8
            )
        }
        let payloads = (0..<count).map { index in
            let names = (0..<devicesPerCommand).map { offset in
                String(format: "\"dev-%06d\"", (index * devicesPerCommand + offset) % deviceRange + 1)
            }
            return payload(firmwareId: firmwares[index % firmwares.count], names: names)
        }
        let lead = leadDevices.map { devices in
            payload(firmwareId: leadFirmwareId, names: (1...devices).map { String(format: "\"dev-%06d\"", $0) })
        }
        let started = ContinuousClock.now
        tracker.start(at: started)
        if let lead {
            // Acknowledged before the others go out, so the worker surely has it first (the PUBACK follows the
            // journal write): the others measure how long small commands wait behind a big one.
            tracker.sent(Tracker.leadIndex(count: count))
            try await client.publish(
                to: commandTopic,
                payload: lead,
                qos: .atLeastOnce,
                properties: MQTTProperties(responseTopic: replyTopic, correlationData: Array("lead".utf8))
            )
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                if index >= concurrency { try await tracker.waitForSlot(outstanding: concurrency) }
                tracker.sent(index)
                group.addTask {
                    try await client.publish(
                        to: commandTopic,
                        payload: payloads[index],
                        qos: .atLeastOnce,
                        properties: MQTTProperties(responseTopic: replyTopic, correlationData: Array("\(index)".utf8))
                    )
                }
            }
            try await group.waitForAll()
        }
        tracker.allPublished()
        let complete = try await tracker.waitForAll(timeout: .milliseconds(Int64(timeout * 1000)))
        let elapsed = started.duration(to: .now)
        await client.disconnect()
        if separateReplyConnection { await subscriber.disconnect() }
        print(
            tracker.report(
                label: label,
                elapsed: elapsed,
                devicesPerCommand: devicesPerCommand,
                concurrency: concurrency,
                json: json
            )
        )
        if !complete { throw ExitCode(1) }
    }
}

/// Send times, reply times and statuses, shared between the publishing task and the MQTT loop thread.
final class Tracker: Sendable {
    private struct State {
        /// One slot per command, the lead command (if any) last.
        var sentAt: [ContinuousClock.Instant?]
        /// The latencies of the commands other than the lead command.
        var latencies: [Duration] = []
        var leadLatency: Duration?
        var lastReply: ContinuousClock.Instant?
        var statuses: [String: Int] = [:]
        var outstanding = 0
        var unexpected = 0
        var started: ContinuousClock.Instant?
        /// Replies that arrived within `window` of `started`.
        var early = 0
        var lastPublished: ContinuousClock.Instant?
    }

    private let state: Mutex<State>
    let count: Int
    let hasLead: Bool
    let window: Duration

    /// - Parameters:
    ///   - count: the commands besides the lead command.
    ///   - hasLead: whether a lead command is sent too (correlation data `lead`, slot ``leadIndex(count:)``).
    init(count: Int, hasLead: Bool = false, window: Duration) {
        self.count = count
        self.hasLead = hasLead
        self.window = window
        state = Mutex(State(sentAt: Array(repeating: nil, count: count + (hasLead ? 1 : 0))))
    }

    /// The lead command's slot: after the others, so their correlation data stays their index.
    static func leadIndex(count: Int) -> Int { count }

    func start(at instant: ContinuousClock.Instant) {
        state.withLock { $0.started = instant }
    }

    /// Every publication has been acknowledged by the broker.
    func allPublished() {
        state.withLock { $0.lastPublished = .now }
    }

    func sent(_ index: Int) {
        state.withLock {
            $0.sentAt[index] = .now
            $0.outstanding += 1
        }
    }

    /// Called on the MQTT loop thread for every reply.
    func replied(_ message: MQTTMessage) {
        let now = ContinuousClock.now
        let correlation = String(decoding: message.properties.correlationData ?? [], as: UTF8.self)
        let index = correlation == "lead" && hasLead ? Self.leadIndex(count: count) : Int(correlation) ?? -1
        let status = Self.status(in: message.payload)
        state.withLock { state in
            guard index >= 0, index < state.sentAt.count, let sentAt = state.sentAt[index] else {
                state.unexpected += 1
                return
            }
            state.sentAt[index] = nil
            state.lastReply = now
            if index == Self.leadIndex(count: count) {
                state.leadLatency = sentAt.duration(to: now)
            } else {
                state.latencies.append(sentAt.duration(to: now))
            }
            if let started = state.started, started.duration(to: now) <= window { state.early += 1 }
            state.statuses[status, default: 0] += 1
            state.outstanding -= 1
        }
    }

    func waitForSlot(outstanding limit: Int) async throws {
        while state.withLock({ $0.outstanding }) >= limit { try await Task.sleep(for: .microseconds(200)) }
    }

    /// Waits until every command (the lead one included) is answered, or `timeout` passes.
    ///
    /// - Returns: `false` when the timeout passed first: the report then covers the replies that arrived.
    func waitForAll(timeout: Duration) async throws -> Bool {
        let giveUp = ContinuousClock.now + timeout
        while !state.withLock({ $0.latencies.count == count && ($0.leadLatency != nil || !hasLead) }) {
            guard ContinuousClock.now < giveUp else { return false }
            try await Task.sleep(for: .milliseconds(1))
        }
        return true
    }

    /// The `status` of a reply without a JSON parser: it is the third key the worker writes.
    private static func status(in payload: [UInt8]) -> String {
        let text = String(decoding: payload.prefix(200), as: UTF8.self)
        guard let range = text.range(of: #""status":""#) else { return "unknown" }
        return String(text[range.upperBound...].prefix { $0 != "\"" })
    }

    func report(label: String, elapsed: Duration, devicesPerCommand: Int, concurrency: Int, json: Bool) -> String {
        state.withLock { state in
            let sorted = state.latencies.sorted()
            func percentile(_ p: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
                return milliseconds(sorted[max(0, index)])
            }
            let seconds = milliseconds(elapsed) / 1000
            let rate = Double(sorted.count) / seconds
            let statuses = state.statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                separator: " "
            )
            func f(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
            let windowSeconds = milliseconds(window) / 1000
            var publishing = 0.0
            if let started = state.started, let last = state.lastPublished {
                publishing = milliseconds(started.duration(to: last)) / 1000
            }
            // From the first publication to the last reply: what a storm costs, without the polling of waitForAll.
            var wall = 0.0
            if let started = state.started, let last = state.lastReply {
                wall = milliseconds(started.duration(to: last)) / 1000
            }
            let missing = state.sentAt.count - sorted.count - (state.leadLatency == nil ? 0 : 1)
            let leadJSON = state.leadLatency.map { f(milliseconds($0)) } ?? "null"
            if json {
                return
                    "{\"label\":\"\(label)\",\"commands\":\(sorted.count),\"devicesPerCommand\":\(devicesPerCommand),"
                    + "\"concurrency\":\(concurrency),\"seconds\":\(f(seconds, 3)),\"commandsPerSecond\":\(f(rate, 1)),"
                    + "\"p50ms\":\(f(percentile(0.5))),\"p90ms\":\(f(percentile(0.9))),\"p99ms\":\(f(percentile(0.99))),"
                    + "\"maxms\":\(f(percentile(1))),\"statuses\":\"\(statuses)\",\"unexpected\":\(state.unexpected),"
                    + "\"windowSeconds\":\(f(windowSeconds, 1)),\"repliesInWindow\":\(state.early),"
                    + "\"publishSeconds\":\(f(publishing, 3)),\"wallSeconds\":\(f(wall, 3)),\"leadms\":\(leadJSON),"
                    + "\"missing\":\(missing)}"
            }
            return
                "\(label): \(sorted.count) commands (\(devicesPerCommand) devices each, \(concurrency) outstanding) in "
                + "\(f(seconds)) s = \(f(rate, 0)) commands/s; latency p50 \(f(percentile(0.5))) ms, "
                + "p90 \(f(percentile(0.9))) ms, p99 \(f(percentile(0.99))) ms, max \(f(percentile(1))) ms; \(statuses); "
                + "\(state.early) replies in the first \(f(windowSeconds, 0)) s; all published in \(f(publishing)) s"
                + (state.unexpected > 0 ? "; \(state.unexpected) unexpected (duplicate or unknown) replies" : "")
                + (hasLead ? "; lead command \(leadJSON) ms" : "")
                + (missing > 0 ? "; \(missing) commands NOT answered before the timeout" : "")
        }
    }

    private func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
