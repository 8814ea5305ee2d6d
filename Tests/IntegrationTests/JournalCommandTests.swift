// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Logging
import Mosquitto
import PlatformSimulator
import TestSupport
import Testing
import Worker
import WorkerApp

/// `ota-cancel-worker journal` as an operator runs it: the built binary, over the state folder of a real worker
/// process that is writing it, then of one killed with SIGKILL mid-run.
@Suite("Journal command", .timeLimit(.minutes(4)))
struct JournalCommandTests {
    /// Runs `ota-cancel-worker journal <arguments>`.
    private static func journal(
        _ arguments: [String],
        environment: [String: String] = [:]
    ) async throws -> ProcessResult {
        try await runProcess(
            try workerBinary(),
            ["journal"] + arguments,
            timeout: .seconds(60),
            environment: environment
        )
    }

    /// The JSON objects of a JSON-lines output; records an issue for every line that is not one.
    private static func jsonLines(_ output: String, sourceLocation: SourceLocation = #_sourceLocation) -> [JSONObject] {
        output.split(separator: "\n").compactMap { line in
            guard case .object(let object)? = try? JSONParser.parse(String(line)) else {
                Issue.record("not a JSON object: \(line.prefix(300))", sourceLocation: sourceLocation)
                return nil
            }
            return object
        }
    }

    @Test(
        "list, show, export and stats over a worker writing its journal, then over one SIGKILLed mid-run: --pending is exactly the unanswered commands"
    )
    func journalOfARealWorker() async throws {
        let binary = try workerBinary()
        let state = try makeTemporaryDirectory("ota-journal-cmd")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let replyTopic = "ota/cancel/reply/journal"
        try await withMosquittoBroker { broker in
            try await withPlatformSimulator(
                configuration: SimulatorConfiguration(generateDevices: 1_000, qps: 0, latency: .milliseconds(20)),
                logger: quietTestLogger("journal-command-test")
            ) { simulator in
                let requester = try await Collector.subscribed(to: [replyTopic], port: broker.port)
                let process = try await launchWorkerProcess(
                    binary,
                    [
                        "run", "--broker-port", "\(broker.port)", "--client-id", "journal-worker",
                        "--platform-endpoint", simulator.endpoint, "--access-key-id", "testid", "--platform-qps", "0",
                        "--verify", "off", "--state-dir", state, "--schema-dir",
                        WorkerStack.repositoryRoot + "/schemas",
                        "--ops-port", "0", "--log-level", "notice",
                    ],
                    logPath: state + "/worker.log"
                )
                defer { process.signal(SIGKILL) }

                // One command of 450 devices: three calls (at most 200 names each), three request ids.
                let big = EndToEndTests.devices(1...450)
                try await requester.client.publish(
                    to: "ota/cancel/request",
                    payload: Array(EndToEndTests.command(big).utf8),
                    qos: .atLeastOnce,
                    properties: MQTTProperties(responseTopic: replyTopic, correlationData: Array("big-1".utf8))
                )
                let replies = try await requester.waitUntil { _ in requester.correlations.contains("big-1") }
                let bigReply = try #require(
                    replies.first { $0.properties.correlationData == Array("big-1".utf8) }
                        .flatMap { try? JSONParser.parse($0.payload) }
                )
                #expect(bigReply["status"]?.stringValue == "succeeded")
                let requestIds = (bigReply["requestIds"]?.arrayValue ?? []).compactMap { $0.stringValue }
                #expect(requestIds.count == 3, "450 names go in three calls")

                // While the worker takes in and answers a steady stream of commands, every subcommand reads.
                let streamed = 100
                let stream = Task {
                    for index in 1...streamed {
                        try await publishCommands(
                            [500 + index],
                            through: requester.client,
                            replyTopic: replyTopic,
                            prefix: "w-"
                        )
                        try await Task.sleep(for: .milliseconds(30))
                    }
                }
                var rounds = 0
                while rounds < 40 {
                    rounds += 1
                    for arguments in [
                        ["list", "--state-dir", state], ["list", "--state-dir", state, "--json", "--limit", "0"],
                        ["show", "big-1", "--state-dir", state], ["export", "--state-dir", state, "--since", "1h"],
                        ["stats", "--state-dir", state], ["stats", "--state-dir", state, "--json"],
                    ] {
                        let result = try await Self.journal(arguments)
                        #expect(result.exitCode == 0, "journal \(arguments.joined(separator: " ")): \(result)")
                    }
                    if requester.correlations.filter({ $0.hasPrefix("w-") }).count == streamed { break }
                }
                try await stream.value
                _ = try await requester.waitUntil { _ in requester.correlations.count == streamed + 1 }
                #expect(requester.correlations.count == streamed + 1)
                print("journal command test: \(rounds) rounds of the four subcommands beside the writing worker")

                // `show` of the big command: the three request ids, each call's devices, and the reply.
                let shown = try await Self.journal(["show", "big-1", "--state-dir", state])
                #expect(shown.exitCode == 0, "\(shown)")
                for requestId in requestIds {
                    #expect(
                        shown.stdout.contains("RequestId \(requestId)"),
                        "show lists call \(requestId):\n\(shown.stdout)"
                    )
                }
                #expect(shown.stdout.contains("Platform calls: 3"))
                #expect(shown.stdout.contains("Reply: succeeded"))
                #expect(shown.stdout.contains("cancelled      450: "))
                let shownJSON = try #require(
                    Self.jsonLines(try await Self.journal(["show", "big-", "--state-dir", state, "--json"]).stdout)
                        .first
                )
                let calls = try #require(shownJSON["calls"]?.arrayValue)
                #expect(Set(calls.compactMap { $0["requestId"]?.stringValue }) == Set(requestIds))
                let sent = calls.flatMap { $0["deviceNames"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
                #expect(sent.sorted() == big, "the calls carried the command's 450 names, each once")
                #expect(shownJSON["reply"]?["requestIds"]?.arrayValue?.count == 3)

                // Slow the platform to a stall, send four more commands (devices no earlier command named), and
                // kill the worker once each one's call has reached the platform (so each is journaled and running).
                let answeredBefore = requester.correlations
                simulator.state.injectFault(FaultRule(latencyMilliseconds: 120_000))
                let stalled = 901...904
                try await publishCommands(stalled, through: requester.client, replyTopic: replyTopic, prefix: "b-")
                let clock = ContinuousClock()
                let giveUp = clock.now + .seconds(30)
                func reached(_ index: Int) -> Bool {
                    (simulator.state.tasks(deviceName: String(format: "dev-%06d", index))?.first?.cancelCalls ?? 0) > 0
                }
                while !stalled.allSatisfy(reached) && clock.now < giveUp {
                    try await clock.sleep(for: .milliseconds(20))
                }
                #expect(stalled.allSatisfy(reached), "the four calls reached the platform")
                try await clock.sleep(for: .milliseconds(500))  // the earlier replies' acknowledgements are stored
                process.signal(SIGKILL)
                #expect(await process.waitForExit() == 128 + SIGKILL)

                let sentIds = answeredBefore.union(stalled.map { "b-\($0)" })
                let unanswered = sentIds.subtracting(requester.correlations)
                #expect(unanswered == Set(stalled.map { "b-\($0)" }), "the stalled commands got no reply")

                let pending = try await Self.journal(["list", "--pending", "--json", "--state-dir", state])
                #expect(pending.exitCode == 0, "\(pending)")
                let pendingIds = Set(Self.jsonLines(pending.stdout).compactMap { $0["correlationId"]?.stringValue })
                #expect(pendingIds == unanswered, "journal list --pending is exactly what no reply answered")
                let table = try await Self.journal(["list", "--pending"], environment: ["OTA_CANCEL_STATE_DIR": state])
                #expect(table.exitCode == 0, "\(table)")
                #expect(table.stdout.split(separator: "\n").count == 5, "a header and four rows:\n\(table.stdout)")
                #expect(table.stdout.contains("running"))

                // After the crash: export lines are JSON, one per entry; stats agree.
                let export = try await Self.journal(["export", "--state-dir", state])
                #expect(export.exitCode == 0, "\(export.stderr)")
                let lines = Self.jsonLines(export.stdout)
                let stats = try #require(
                    Self.jsonLines(try await Self.journal(["stats", "--json", "--state-dir", state]).stdout).first
                )
                #expect(lines.count == streamed + 5, "\(streamed + 1) answered and 4 pending commands")
                #expect(stats["entries"] == .number(JSONNumber(streamed + 5)))
                #expect(stats["pending"] == .number(JSONNumber(4)))
                #expect(lines.filter { $0["pending"] == .bool(true) }.count == 4)

                // Exit statuses.
                #expect(try await Self.journal(["show", "no-such-command", "--state-dir", state]).exitCode == 1)
                #expect(
                    try await Self.journal(["show", "b-", "--state-dir", state]).exitCode == 1,
                    "b- names four ids"
                )
                #expect(try await Self.journal(["list", "--since", "yesterday", "--state-dir", state]).exitCode == 64)
                #expect(try await Self.journal(["list", "--status", "fine", "--state-dir", state]).exitCode == 64)
                #expect(try await Self.journal(["show", "--state-dir", state]).exitCode == 64)
                #expect(try await Self.journal(["stats", "--state-dir", state + "/missing"]).exitCode == 66)
                await requester.client.disconnect()
            }
        }
    }
    @Test("a journal without -wal/-shm in a folder this user cannot write is read (immutable), and creates nothing")
    func readOnlyFolder() async throws {
        let folder = try makeTemporaryDirectory("ota-journal-ro")
        defer {
            chmod(folder, 0o700)
            try? FileManager.default.removeItem(atPath: folder)
        }
        do {
            let journal = try SQLiteJournal(configuration: JournalConfiguration(path: folder + "/journal.sqlite"))
            let letter = OutgoingMessage(
                topic: "ota/cancel/dead-letter",
                payload: Array(#"{"x":1}"#.utf8),
                properties: MQTTProperties()
            )
            _ = try journal.record(.deadLetter(letter), at: Date())
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/journal.sqlite-wal"), "closed cleanly")
        // Another user than the folder's: root writes anywhere, so as root the probe runs as nobody.
        let binary = try workerBinary()
        let asOther: (String, [String])
        if geteuid() == 0 {
            // util-linux's setpriv is on every Debian; without it the test fails rather than skip silently.
            let setpriv = try #require(findExecutable("setpriv"), "setpriv (util-linux) is needed to read as nobody")
            chmod(folder, 0o755)
            chmod(folder + "/journal.sqlite", 0o644)
            asOther = (setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", binary])
        } else {
            chmod(folder, 0o555)
            asOther = (binary, [])
        }
        let listed = try await runProcess(asOther.0, asOther.1 + ["journal", "list", "--json", "--state-dir", folder])
        #expect(listed.exitCode == 0, "\(listed)")
        #expect(Self.jsonLines(listed.stdout).map { $0["kind"]?.stringValue } == ["dead-letter"])
        let contents = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(contents == ["journal.sqlite"], "nothing created beside it")
        if geteuid() == 0 {
            chmod(folder + "/journal.sqlite", 0o600)
            let refused = try await runProcess(asOther.0, asOther.1 + ["journal", "stats", "--state-dir", folder])
            #expect(refused.exitCode == 78, "\(refused)")
            #expect(refused.stderr.contains("this user may not read it"))
        }
    }
}
