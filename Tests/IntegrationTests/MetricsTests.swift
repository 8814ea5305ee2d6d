// SPDX-License-Identifier: Apache-2.0
import AsyncHTTPClient
import Foundation
import JSONSchema
import NIOCore
import NIOHTTP1
import PlatformAPI
import TestSupport
import Testing
import Worker
import WorkerApp

/// `GET /metrics` on the operations server, scraped like Prometheus would, while the worker does real work.
@Suite("Metrics endpoint")
struct MetricsTests {
    /// One scrape: the content type and every sample, keyed by its series (`name{labels}`).
    struct Scrape {
        var contentType: String?
        var samples: [String: Double] = [:]
        var lines: [String] = []
        /// The body as served.
        var text = ""

        subscript(_ series: String) -> Double? { samples[series] }
    }

    static func scrape(port: Int) async throws -> Scrape {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        let body = try await response.body.collect(upTo: 1 << 20)
        var scrape = Scrape(contentType: response.headers.first(name: "content-type"))
        scrape.text = String(buffer: body)
        for line in String(buffer: body).split(separator: "\n") {
            scrape.lines.append(String(line))
            if line.hasPrefix("#") { continue }
            // A sample line: series, one space, value (the text format has no timestamps here).
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a Prometheus sample line: \(line)")
                continue
            }
            scrape.samples[String(line[..<space])] = value
        }
        return scrape
    }

    @Test("counts messages by outcome, commands by status, platform calls by result, replies; shows readiness")
    func countsWhatHappened() async throws {
        try await withWorkerStack { stack in
            let port = try #require(stack.ops.port)
            let before = try await Self.scrape(port: port)
            #expect(before.contentType == "text/plain; version=0.0.4; charset=utf-8")
            // The fixed series exist from the start, at 0.
            #expect(before[#"ota_cancel_messages_total{outcome="rejected"}"#] == 0)
            #expect(before[#"ota_cancel_commands_completed_total{status="failed"}"#] == 0)
            #expect(before["ota_cancel_ready"] == 1)

            let succeeded = try await stack.cancel(["dev-000001"])
            #expect(succeeded["status"]?.stringValue == "succeeded")
            let failed = try await stack.cancel(["no-such-device"])
            #expect(failed["status"]?.stringValue == "failed")
            let rejected = try await stack.request(
                #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":[]}"#,
                responseTopic: "ota/cancel/reply/metrics-rejected",
                correlationData: "metrics-rejected"
            )
            #expect(try stack.reply(rejected[2])["status"]?.stringValue == "rejected")
            let command = #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000002"]}"#
            for _ in 0..<2 {
                let fields = try await stack.request(
                    command,
                    responseTopic: "ota/cancel/reply/metrics-duplicate",
                    correlationData: "metrics-duplicate"
                )
                #expect(try stack.reply(fields[2])["status"]?.stringValue == "succeeded")
            }

            // A reply is counted once the broker acknowledged it, which may be just after the requester got it.
            var scrape = try await Self.scrape(port: port)
            let giveUp = ContinuousClock.now + .seconds(20)
            while scrape["ota_cancel_replies_published_total"] != 5 && ContinuousClock.now < giveUp {
                try await Task.sleep(for: .milliseconds(50))
                scrape = try await Self.scrape(port: port)
            }
            #expect(scrape["ota_cancel_replies_published_total"] == 5)
            #expect(scrape[#"ota_cancel_messages_total{outcome="accepted"}"#] == 3)
            #expect(scrape[#"ota_cancel_messages_total{outcome="duplicate"}"#] == 1)
            #expect(scrape[#"ota_cancel_messages_total{outcome="rejected"}"#] == 1)
            #expect(scrape[#"ota_cancel_messages_total{outcome="dead_letter"}"#] == 0)
            #expect(scrape[#"ota_cancel_commands_completed_total{status="succeeded"}"#] == 2)
            #expect(scrape[#"ota_cancel_commands_completed_total{status="failed"}"#] == 1)
            // The rejection is a command answered too (at intake); its duration is not timed.
            #expect(scrape[#"ota_cancel_commands_completed_total{status="rejected"}"#] == 1)
            #expect(scrape[#"ota_cancel_commands_completed_total{status="expired"}"#] == 0)
            #expect(scrape[#"ota_cancel_command_duration_seconds_bucket{le="3600.0"}"#] == 3, "buckets up to an hour")
            #expect(scrape[#"ota_cancel_platform_calls_total{result="success"}"#] == 2)
            #expect(scrape[#"ota_cancel_platform_calls_total{result="not_found"}"#] == 1)
            // Every failure category is a series from the start (a dashboard sees 0, not nothing), and no other.
            let results = scrape.samples.keys.filter { $0.hasPrefix("ota_cancel_platform_calls_total{") }
            #expect(
                Set(results)
                    == Set(
                        (["success"] + PlatformAPIError.Category.allCases.map(\.rawValue)).map {
                            #"ota_cancel_platform_calls_total{result="\#($0)"}"#
                        }
                    ),
                "\(results.sorted())"
            )
            #expect(scrape["ota_cancel_platform_call_duration_seconds_count"] == 3)
            #expect(scrape["ota_cancel_command_duration_seconds_count"] == 3)
            #expect((scrape["ota_cancel_command_duration_seconds_sum"] ?? 0) > 0)
            #expect(scrape["ota_cancel_commands_in_flight"] == 0)
            // Coalescing: three calls of one name each (one command at a time), each after a wait in its queue.
            #expect(scrape["ota_cancel_call_device_names_count"] == 3)
            #expect(scrape["ota_cancel_call_device_names_sum"] == 3)
            #expect(scrape[#"ota_cancel_call_device_names_bucket{le="1.0"}"#] == 3)
            #expect(scrape["ota_cancel_call_wait_seconds_count"] == 3)
            #expect(scrape["ota_cancel_device_names_waiting"] == 0)
            #expect(scrape["ota_cancel_commands_waiting"] == 0)
            #expect(scrape["ota_cancel_batch_keys_waiting"] == 0)
            #expect(scrape["ota_cancel_platform_throttled_total"] == 0)
            #expect(scrape["ota_cancel_call_bisections_total"] == 0)
            #expect(scrape["ota_cancel_ready"] == 1)
            // Bounded labels: no topic, correlation id or device name ever becomes part of a series.
            let series = scrape.samples.keys.joined(separator: "\n")
            #expect(!series.contains("metrics-duplicate") && !series.contains("dev-00000") && !series.contains("ota/"))
            #expect(scrape.samples.keys.allSatisfy { $0.hasPrefix("ota_cancel_") || $0.hasPrefix("process_") })
        }
    }

    @Test("after mixed traffic: promtool check metrics passes, labels from fixed vocabularies, counters = replies")
    func scrapeIsValidAndAgreesWithReplies() async throws {
        try await withWorkerStack { stack in
            let port = try #require(stack.ops.port)
            // Mixed traffic: succeeded (three devices), failed (unknown device), partial, rejected, expired at
            // intake, a duplicate, and a dead letter (not JSON, no response topic).
            var replies: [JSONValue] = []
            replies.append(try await stack.cancel(["dev-000001", "dev-000002", "dev-000003"]))
            // Read back (it names its job): one ListOTATaskByJob, both devices canceled.
            replies.append(try await stack.cancel(["dev-000020", "dev-000021"], extra: #","jobId":"demoJob""#))
            replies.append(try await stack.cancel(["no-such-device"]))
            let rejected = try await stack.request(
                #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":[]}"#,
                responseTopic: "ota/cancel/reply/mixed-rejected",
                correlationData: "mixed-rejected"
            )
            replies.append(try stack.reply(rejected[2]))
            replies.append(try await stack.cancel(["dev-000004"], extra: #","deadline":"2020-01-01T00:00:00Z""#))
            let duplicate = #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000005"]}"#
            for _ in 0..<2 {
                let fields = try await stack.request(
                    duplicate,
                    responseTopic: "ota/cancel/reply/mixed-duplicate",
                    correlationData: "mixed-duplicate"
                )
                replies.append(try stack.reply(fields[2]))
            }
            let published = try await runProcess(
                "mosquitto_pub",
                [
                    "-h", "127.0.0.1", "-p", "\(stack.broker.port)", "-q", "1", "-t", "ota/cancel/request", "-m",
                    "not json",
                ]
            )
            #expect(published.exitCode == 0, "\(published)")
            let statuses = replies.compactMap { $0["status"]?.stringValue }
            #expect(statuses == ["succeeded", "succeeded", "failed", "rejected", "expired", "succeeded", "succeeded"])

            // Seven replies and one dead letter, each counted once the broker acknowledged it.
            var scrape = try await Self.scrape(port: port)
            let giveUp = ContinuousClock.now + .seconds(20)
            // The journal records the acknowledgements a moment later, in batches.
            while scrape["ota_cancel_replies_published_total"] != 8
                || scrape["ota_cancel_journal_replies_to_publish"] != 0,
                ContinuousClock.now < giveUp
            {
                try await Task.sleep(for: .milliseconds(50))
                scrape = try await Self.scrape(port: port)
            }
            #expect(scrape["ota_cancel_replies_published_total"] == 8)

            // The exposition is valid: Debian's promtool (package prometheus) lints it, HELP and TYPE included.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("scrape-\(UUID().uuidString)")
            try scrape.text.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            guard findExecutable("promtool") != nil else {
                Issue.record("promtool is not installed; apt-get install -y prometheus (scripts/test does it)")
                return
            }
            let lint = try await runProcess("/bin/sh", ["-c", "promtool check metrics < '\(file.path)'"])
            #expect(lint.exitCode == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "\(lint)")
            let families = Set(scrape.samples.keys.map(Self.family))
            for family in families {
                #expect(scrape.lines.contains { $0.hasPrefix("# HELP \(family) ") }, "no HELP for \(family)")
                #expect(scrape.lines.contains { $0.hasPrefix("# TYPE \(family) ") }, "no TYPE for \(family)")
            }

            // The shipped alert rules are valid, and every metric they name is one this scrape has.
            let rules = WorkerStack.repositoryRoot + "/deploy/prometheus/ota-cancel-worker.rules.yml"
            let checked = try await runProcess("promtool", ["check", "rules", rules])
            #expect(checked.exitCode == 0 && checked.stdout.contains("SUCCESS"), "\(checked)")
            let ruleText = try String(contentsOfFile: rules, encoding: .utf8)
            let named = Set(
                ruleText.matches(of: /(ota_cancel|process)_[a-z_]+/).map { String($0.output.0) }
            )
            #expect(named.count >= 8)
            for name in named { #expect(families.contains(name), "the alert rules name \(name), which is not served") }

            // Every label value comes from a fixed vocabulary.
            let vocabulary: [String: Set<String>] = [
                "outcome": Set(WorkerMetrics.MessageOutcome.allCases.map(\.rawValue) + ["cancelled", "failed"]),
                "status": ["succeeded", "partial", "failed", "rejected", "expired"],
                "result": Set(["success"] + PlatformAPIError.Category.allCases.map(\.rawValue)),
                "kind": ["reply", "dead_letter", "notice"],
                "reason": Set(OpsConnectionTable<Int, Int>.CloseReason.allCases.map(\.rawValue)),
                "action": Set(WorkerMetrics.ReadBackAction.allCases.map(\.rawValue)),
                "group": Set(WorkerMetrics.ReadBackGroup.allCases.map(\.rawValue)),
                "version": [BuildInfo.version],
                "revision": [BuildInfo.revision],
            ]
            for key in scrape.samples.keys {
                for (label, value) in Self.labels(key) where label != "le" {
                    #expect(vocabulary[label]?.contains(value) == true, "\(key): \(label)=\(value)")
                }
            }

            // The counters agree with the replies sent: one count per reply status (the duplicate's repeats its
            // original and is not counted again), devices by outcome as the replies list them.
            let answered = replies.filter { $0["duplicate"]?.boolValue != true }
            for status in ["succeeded", "partial", "failed", "rejected", "expired"] {
                let sent = answered.count { $0["status"]?.stringValue == status }
                #expect(
                    scrape[#"ota_cancel_commands_completed_total{status="\#(status)"}"#] == Double(sent),
                    "\(status)"
                )
            }
            let cancelled = answered.reduce(0) { $0 + ($1["cancelledDevices"]?.arrayValue?.count ?? 0) }
            let failed = answered.reduce(0) { total, reply in
                total
                    + (reply["failedGroups"]?.arrayValue ?? []).reduce(0) {
                        $0 + ($1["deviceNames"]?.arrayValue?.count ?? 0)
                    }
            }
            #expect(cancelled == 6 && failed == 1)
            #expect(scrape[#"ota_cancel_devices_total{outcome="cancelled"}"#] == Double(cancelled))
            #expect(scrape[#"ota_cancel_devices_total{outcome="failed"}"#] == Double(failed))
            #expect(scrape[#"ota_cancel_messages_total{outcome="dead_letter"}"#] == 1)
            #expect(scrape[#"ota_cancel_messages_total{outcome="expired"}"#] == 1)
            #expect(scrape[#"ota_cancel_messages_total{outcome="duplicate"}"#] == 1)
            #expect(scrape[#"ota_cancel_platform_calls_total{result="success"}"#] == 3)
            #expect(scrape[#"ota_cancel_platform_calls_total{result="not_found"}"#] == 1)
            #expect(scrape["ota_cancel_platform_limiter_wait_seconds_count"] == 4)
            #expect(scrape[#"ota_cancel_read_back_calls_total{action="list_by_job",result="success"}"#] == 1)
            #expect(scrape[#"ota_cancel_read_back_calls_total{action="unfinished_by_device",result="success"}"#] == 0)
            let readBackCanceled = answered.reduce(0) { $0 + ($1["devices"]?["canceled"]?.arrayValue?.count ?? 0) }
            #expect(readBackCanceled == 2)
            #expect(scrape[#"ota_cancel_read_back_devices_total{group="canceled"}"#] == Double(readBackCanceled))
            #expect(scrape[#"ota_cancel_read_back_devices_total{group="already_upgraded"}"#] == 0)

            // The state read at scrape time: build, connection, journal backlog, process.
            #expect(
                scrape[#"ota_cancel_build_info{version="\#(BuildInfo.version)",revision="\#(BuildInfo.revision)"}"#]
                    == 1
            )
            #expect(scrape["ota_cancel_broker_connected"] == 1)
            #expect(scrape["ota_cancel_broker_reconnects_total"] == 0)
            #expect(scrape["ota_cancel_replies_awaiting_ack"] == 0)
            #expect(scrape["ota_cancel_journal_unanswered_commands"] == 0)
            #expect(scrape["ota_cancel_journal_oldest_unanswered_age_seconds"] == 0)
            #expect(scrape["ota_cancel_journal_replies_to_publish"] == 0)
            #expect(scrape["ota_cancel_platform_limiter_rate_per_second"] == 0, "the stack runs without a limit")
            #expect((scrape["process_resident_memory_bytes"] ?? 0) > 1_000_000)
            #expect((scrape["process_open_fds"] ?? 0) > 3)
            #expect((scrape["process_max_fds"] ?? 0) >= (scrape["process_open_fds"] ?? .infinity))
            let started = scrape["process_start_time_seconds"] ?? 0
            #expect(abs(started - Date().timeIntervalSince1970) < 24 * 3600)
            #expect((scrape["process_cpu_seconds_total"] ?? 0) > 0)
        }
    }

    /// The metric family of a series: its name without labels and without a histogram's suffix.
    static func family(_ series: String) -> String {
        let name = String(series.prefix { $0 != "{" })
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if base.hasSuffix("_seconds") || base == WorkerMetrics.Name.namesPerCall { return base }
        }
        return name
    }

    /// The labels of a series, `name{a="x",b="y"}` → [(a, x), (b, y)] (the values here hold no quotes or commas).
    static func labels(_ series: String) -> [(String, String)] {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return [] }
        let inner = series[series.index(after: open)..<series.index(before: series.endIndex)]
        return inner.split(separator: ",").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            return (String(parts[0]), String(parts[1].dropFirst().dropLast()))
        }
    }
}
