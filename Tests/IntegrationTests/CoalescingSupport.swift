// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker

// MARK: Random cases

/// The worker's own SplitMix64: a small, reproducible generator, so a failing property case can be replayed from
/// its seed.
typealias PropertyRandom = SplitMix64

extension SplitMix64 {
    /// `true` with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

/// The platform the property cases run against: three products with two firmwares each, one job per firmware,
/// 300 devices per product with a `QUEUED` task in both jobs. Cases also name things it does not hold (a fourth
/// product, a third firmware, a second job, an instance, devices), which the platform refuses.
enum PropertyUniverse {
    static let products = ["propP1", "propP2", "propP3"]
    static let unknownProduct = "propPX"
    static let unknownInstance = "iot-missing-instance"
    static let devicesPerProduct = 300

    static func firmwares(of product: String) -> [String] { ["\(product)-fw1", "\(product)-fw2"] }
    static func unknownFirmware(of product: String) -> String { "\(product)-fwX" }
    static func job(of firmware: String) -> String { "\(firmware)-job1" }
    static func unknownJob(of firmware: String) -> String { "\(firmware)-jobX" }
    static func device(_ product: String, _ number: Int) -> String { String(format: "%@-d%03d", product, number) }

    static let fixture: SimulatorFixture = {
        var fixture = SimulatorFixture()
        for product in products {
            fixture.products.append(.init(productKey: product))
            for firmware in firmwares(of: product) {
                fixture.firmwares.append(.init(firmwareId: firmware, productKey: product))
                fixture.jobs.append(.init(jobId: job(of: firmware), firmwareId: firmware))
            }
            for number in 0..<devicesPerProduct {
                let name = device(product, number)
                fixture.devices.append(.init(productKey: product, deviceName: name))
                for firmware in firmwares(of: product) {
                    fixture.tasks.append(.init(deviceName: name, jobId: job(of: firmware)))
                }
            }
        }
        return fixture
    }()
}

/// What a batch of platform calls shares: the worker coalesces only commands of one key (the account is the
/// same for every command of a lane).
struct PropertyKey: Hashable, Sendable, CustomStringConvertible {
    var productKey: String
    var firmwareId: String
    var jobId: String?
    var iotInstanceId: String?

    var description: String {
        [productKey, firmwareId, jobId ?? "-", iotInstanceId ?? "-"].joined(separator: "/")
    }
}

/// One command of a case.
struct PropertyCommand: Equatable, Sendable, CustomStringConvertible {
    var key: PropertyKey
    var deviceNames: [String]

    /// The command's JSON; the deadline is generous so that transient faults are retried to success.
    func payload(deadline: Date) -> String {
        var fields = [
            #""productKey":"\#(key.productKey)""#, #""firmwareId":"\#(key.firmwareId)""#,
            #""deviceNames":[\#(deviceNames.map { "\"\($0)\"" }.joined(separator: ","))]"#,
            #""deadline":"\#(RFC3339.string(from: deadline))""#,
        ]
        if let jobId = key.jobId { fields.append(#""jobId":"\#(jobId)""#) }
        if let instance = key.iotInstanceId { fields.append(#""iotInstanceId":"\#(instance)""#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    var description: String {
        let names = deviceNames.count <= 8 ? deviceNames.joined(separator: ",") : "\(deviceNames.count) names"
        return "\(key) [\(names)]"
    }
}

/// One property case: commands over a few keys with overlapping device names, and the fault rules in force.
struct PropertyCase: Sendable, CustomStringConvertible {
    var seed: UInt64
    var index: Int
    var commands: [PropertyCommand]
    var faults: [FaultRule]

    /// The generator of case `index` of `seed`: every case has its own, so one case can be replayed alone.
    static func random(seed: UInt64, index: Int) -> PropertyCase {
        var random = PropertyRandom(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
        let keyCount = Int.random(in: 1...4, using: &random)
        var keys: [PropertyKey] = []
        var pools: [PropertyKey: [String]] = [:]
        var bigPools: [PropertyKey: [String]] = [:]
        // Faults hit calls by what they carry (a device, a product and firmware), never by their order, so that a
        // command meets the same faults alone and together.
        var faults: [FaultRule] = []
        while keys.count < keyCount {
            let key = randomKey(&random)
            guard pools[key] == nil else { continue }
            keys.append(key)
            // Devices come from the product's names (from propP1's for the unknown product, which has none).
            let product = PropertyUniverse.products.contains(key.productKey) ? key.productKey : "propP1"
            let all = (0..<PropertyUniverse.devicesPerProduct).map { PropertyUniverse.device(product, $0) }
            // Unknown names: the platform fails a whole call that names one (iot.device.NotExistedDevice).
            let ghosts =
                random.chance(0.25)
                ? (0..<Int.random(in: 1...2, using: &random)).map { "ghost-\(keys.count)-\($0)" } : []
            // A small pool, so that commands of one key overlap.
            let pool = Array(all.shuffled(using: &random).prefix(Int.random(in: 6...16, using: &random))) + ghosts
            pools[key] = pool
            bigPools[key] = all + ghosts
            faults += contentFaults(for: key, pool: pool, &random)
        }
        // Mostly small cases, some with many commands: the whole property run stays within a few minutes even
        // against a worker that makes one call per command at 10 calls/s.
        let commandCount: Int
        switch Double.random(in: 0..<1, using: &random) {
        case ..<0.5: commandCount = Int.random(in: 1...5, using: &random)
        case ..<0.8: commandCount = Int.random(in: 6...12, using: &random)
        default: commandCount = Int.random(in: 13...30, using: &random)
        }
        var commands: [PropertyCommand] = []
        for _ in 0..<commandCount {
            let key = keys.randomElement(using: &random)!
            let names: [String]
            if random.chance(0.05) {
                // More than 200 names: the command alone needs two calls.
                let big = bigPools[key]!.shuffled(using: &random)
                names = Array(big.prefix(Int.random(in: 201...250, using: &random)))
            } else {
                let pool = pools[key]!.shuffled(using: &random)
                names = Array(pool.prefix(Int.random(in: 1...min(5, pool.count), using: &random)))
            }
            commands.append(PropertyCommand(key: key, deviceNames: names))
        }
        if random.chance(0.15) {
            // The one rule that hits calls by order: transient and retried to success, so which calls it hits
            // changes attempts, never an outcome. First in the list, so it is tried before the content rules.
            faults.insert(
                FaultRule(
                    httpStatus: 503,
                    errorCode: "ServiceUnavailable",
                    count: Int.random(in: 1...2, using: &random),
                    action: "CancelOTATaskByDevice"
                ),
                at: 0
            )
        }
        return PropertyCase(seed: seed, index: index, commands: commands, faults: faults)
    }

    /// The code of the permanent faults: one that names no device, so a failed call does not say which of its
    /// names caused it.
    static let permanentCode = "iot.system.IllegalRequest"

    /// Fault rules tied to one key's content: a device of its pool (transient with a count, or permanent), or the
    /// key's product and firmware (the same).
    private static func contentFaults(
        for key: PropertyKey,
        pool: [String],
        _ random: inout PropertyRandom
    ) -> [FaultRule] {
        var rules: [FaultRule] = []
        if random.chance(0.15) {
            rules.append(
                FaultRule(
                    httpStatus: 503,
                    errorCode: "ServiceUnavailable",
                    count: Int.random(in: 1...2, using: &random),
                    deviceName: pool.randomElement(using: &random)!
                )
            )
        }
        if random.chance(0.06) {
            rules.append(FaultRule(errorCode: permanentCode, deviceName: pool.randomElement(using: &random)!))
        }
        if random.chance(0.08) {
            rules.append(
                FaultRule(
                    httpStatus: 503,
                    errorCode: "ServiceUnavailable",
                    count: Int.random(in: 1...2, using: &random),
                    productKey: key.productKey,
                    firmwareId: key.firmwareId
                )
            )
        }
        if random.chance(0.03) {
            rules.append(FaultRule(errorCode: permanentCode, productKey: key.productKey, firmwareId: key.firmwareId))
        }
        return rules
    }

    /// Whether "together costs no more calls than alone" can hold at all for this case.
    ///
    /// It cannot when a permanent fault names no device: a merged call that fails with it does not say which
    /// command's names caused it, so a coalescing worker must call again (per command, or by splitting) to give
    /// each command its own outcome. Example: `c1 = [a, X]`, `c2 = [b, X]`, every call naming X fails with
    /// `iot.system.IllegalRequest`. Alone: `[a, X]` fails, `[b, X]` fails, 2 calls. Together: `[a, b, X]` fails,
    /// and since the culprit could as well be `a` (then c2 would succeed alone) or `b`, both commands' own calls
    /// must still be made: 3 calls. The same with a rule on the key's product and firmware: `c1 = [a]`,
    /// `c2 = [b]`; together `[a, b]` fails, and the code does not say whether the key, `a` or `b` is the cause.
    /// Faults that name the device (`iot.device.NotExistedDevice`) or the key
    /// (unknown product, firmware, job, instance) do not have this problem, and transient faults are retried.
    var callsBoundApplies: Bool {
        !faults.contains { $0.errorCode == Self.permanentCode }
    }

    /// A key the platform knows (about four in five) or one it refuses as a whole.
    private static func randomKey(_ random: inout PropertyRandom) -> PropertyKey {
        let product =
            random.chance(0.05)
            ? PropertyUniverse.unknownProduct : PropertyUniverse.products.randomElement(using: &random)!
        let firmware =
            random.chance(0.08)
            ? PropertyUniverse.unknownFirmware(of: product)
            : PropertyUniverse.firmwares(of: product).randomElement(using: &random)!
        let jobId: String?
        switch Double.random(in: 0..<1, using: &random) {
        case ..<0.6: jobId = nil
        case ..<0.95: jobId = PropertyUniverse.job(of: firmware)
        default: jobId = PropertyUniverse.unknownJob(of: firmware)
        }
        let instance = random.chance(0.03) ? PropertyUniverse.unknownInstance : nil
        return PropertyKey(productKey: product, firmwareId: firmware, jobId: jobId, iotInstanceId: instance)
    }

    /// A rule in a fixed field order (a JSON encoding's key order varies from run to run).
    static func describe(_ rule: FaultRule) -> String {
        var parts: [String] = []
        if let status = rule.httpStatus { parts.append("HTTP \(status)") }
        if let code = rule.errorCode { parts.append(code) }
        if let count = rule.count { parts.append("\(count)x") }
        if let action = rule.action { parts.append("on \(action)") }
        if let device = rule.deviceName { parts.append("device \(device)") }
        if let product = rule.productKey { parts.append("product \(product)") }
        if let firmware = rule.firmwareId { parts.append("firmware \(firmware)") }
        return parts.joined(separator: " ")
    }

    var description: String {
        let lines = commands.enumerated().map { "  #\($0.offset): \($0.element)" }
        return "case \(index) of seed \(seed): \(commands.count) commands, faults \(faults.map(Self.describe))\n"
            + lines.joined(separator: "\n")
    }
}

// MARK: Outcomes

/// What "the same outcome" compares in a reply: the status, the cancelled devices and the failed groups
/// (names and code), each list sorted; request ids, attempts, messages and timestamps may differ.
struct CommandOutcome: Equatable, Sendable, CustomStringConvertible {
    struct Group: Equatable, Comparable, Sendable {
        var deviceNames: [String]
        var code: String

        static func < (lhs: Group, rhs: Group) -> Bool {
            (lhs.deviceNames.joined(separator: ","), lhs.code) < (rhs.deviceNames.joined(separator: ","), rhs.code)
        }
    }

    var status: String
    var cancelledDevices: [String]
    var failedGroups: [Group]

    init?(reply payload: [UInt8]) {
        guard let reply = try? JSONParser.parse(payload), let status = reply["status"]?.stringValue else { return nil }
        self.status = status
        cancelledDevices = (reply["cancelledDevices"]?.arrayValue ?? []).compactMap(\.stringValue).sorted()
        failedGroups = (reply["failedGroups"]?.arrayValue ?? []).map { group in
            Group(
                deviceNames: (group["deviceNames"]?.arrayValue ?? []).compactMap(\.stringValue).sorted(),
                code: group["code"]?.stringValue ?? "<none>"
            )
        }.sorted()
    }

    var description: String {
        let groups = failedGroups.map {
            "\($0.code) \($0.deviceNames.count <= 8 ? "\($0.deviceNames)" : "\($0.deviceNames.count) names")"
        }
        let cancelled =
            cancelledDevices.count <= 8 ? "\(cancelledDevices)" : "\(cancelledDevices.count) names"
        return "\(status), cancelled \(cancelled), failed \(groups)"
    }
}

/// Platform calls as the property counts them: every request to the RPC endpoint except the ones the quota
/// refused (`Throttling.User` answers depend on timing, not on what the worker chose to call).
func platformCalls(_ stats: SimulatorStats) -> Int { stats.requests - stats.throttled }

// MARK: Replies

/// A test-side MQTT client that publishes commands (MQTT 5 Response Topic and Correlation Data) and files the
/// replies by correlation id.
final class ReplyBook: Sendable {
    let client: MosquittoClient
    let replyTopic: String
    private let replies = LockedValue<[String: [[UInt8]]]>([:])

    private init(port: Int, replyTopic: String) throws {
        var configuration = MosquittoConfiguration(clientID: "replybook-\(UUID().uuidString.prefix(8))")
        configuration.port = port
        configuration.receiveMaximum = 1000
        var logger = Logger(label: "reply-book")
        logger.logLevel = .warning
        let store = replies
        client = try MosquittoClient(configuration: configuration, logger: logger) { message in
            let id = String(decoding: message.properties.correlationData ?? [], as: UTF8.self)
            store.withLock { $0[id, default: []].append(message.payload) }
        }
        self.replyTopic = replyTopic
    }

    /// A connected book, subscribed (SUBACK received) to `replyTopic`.
    static func subscribed(to replyTopic: String, port: Int) async throws -> ReplyBook {
        let book = try ReplyBook(port: port, replyTopic: replyTopic)
        try await book.client.connect()
        try await book.client.subscribe(to: [MQTTSubscribeInfo(topicFilter: replyTopic, qos: .atLeastOnce)])
        return book
    }

    func publish(_ payload: String, correlationId: String, to topic: String) async throws {
        try await client.publish(
            to: topic,
            payload: Array(payload.utf8),
            qos: .atLeastOnce,
            properties: MQTTProperties(responseTopic: replyTopic, correlationData: Array(correlationId.utf8))
        )
    }

    /// Every reply so far to this id.
    func replies(_ id: String) -> [[UInt8]] { replies.withLock { $0[id] ?? [] } }

    /// Every reply so far, by id.
    var all: [String: [[UInt8]]] { replies.value }

    /// How many distinct ids have a reply.
    var answeredCount: Int { replies.withLock { $0.count } }

    /// Waits (a hang guard, not a timing assertion) until every id has a reply; returns the ids still unanswered.
    func waitForReplies(_ ids: [String], within timeout: Duration) async throws -> [String] {
        let clock = ContinuousClock()
        let giveUp = clock.now + timeout
        while true {
            let missing = replies.withLock { stored in ids.filter { stored[$0] == nil } }
            if missing.isEmpty || clock.now >= giveUp { return missing }
            try await clock.sleep(for: .milliseconds(5))
        }
    }

    /// Waits (a hang guard) until at least `count` distinct ids have a reply.
    ///
    /// Polls every 2 ms: a coalescing worker answers up to 200 commands per platform call, and a kill meant
    /// to come "after N replies" should not come hundreds of replies later.
    func waitForAnswered(_ count: Int, within timeout: Duration) async throws {
        let clock = ContinuousClock()
        let giveUp = clock.now + timeout
        while answeredCount < count && clock.now < giveUp { try await clock.sleep(for: .milliseconds(2)) }
    }
}
