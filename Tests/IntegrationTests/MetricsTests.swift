// SPDX-License-Identifier: Apache-2.0
import AsyncHTTPClient
import Foundation
import JSONSchema
import NIOCore
import NIOHTTP1
import PlatformAPI
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

        subscript(_ series: String) -> Double? { samples[series] }
    }

    static func scrape(port: Int) async throws -> Scrape {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        let body = try await response.body.collect(upTo: 1 << 20)
        var scrape = Scrape(contentType: response.headers.first(name: "content-type"))
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
            #expect(scrape.samples.keys.allSatisfy { $0.hasPrefix("ota_cancel_") })
        }
    }

}
