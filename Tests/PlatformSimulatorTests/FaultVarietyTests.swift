// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature
import Testing

@testable import PlatformSimulator

/// The faults beyond "the next N calls fail": a share of calls, random latency, slow bodies, start-up rules,
/// strict rule parsing, and a platform clock that is off.
@Suite("Fault variety")
struct FaultVarietyTests {
    static let cancel = SignedCaller.cancelParameters(deviceNames: ["dev-queued"])

    @Test("a share of calls: about 30% of 300 hit, the count of hits is what the stats say, and a seed replays it")
    func probability() async throws {
        var configuration = testConfiguration()
        configuration.randomSeed = 42
        configuration.faults = [FaultRule(httpStatus: 503, probability: 0.3)]
        try await withSimulator(configuration) { simulator, caller in
            func pattern(_ calls: Int) async throws -> [Bool] {
                var hits = [Bool]()
                for _ in 0..<calls {
                    let answer = try await caller.call(Self.cancel)
                    #expect(answer.status == 503 || answer.bool("Success") == true)
                    hits.append(answer.status == 503)
                }
                return hits
            }
            let first = try await pattern(300)
            let hits = first.filter { $0 }.count
            // Expected 90, standard deviation about 8: a broken probability (0%, 100%, or 50%) is far outside.
            #expect((45...135).contains(hits), "\(hits) of 300 calls hit by a 30% rule")
            #expect(simulator.state.stats().faultsInjected == hits)
            // The rule stays in force (no count) and reset restores the start-up rule and the random sequence.
            #expect(simulator.state.faults().count == 1)
            simulator.state.reset()
            #expect(simulator.state.faults() == configuration.faults)
            #expect(try await pattern(300) == first)
        }
    }

    @Test("a probability rule that misses lets the next rule apply; a count counts only the hits")
    func probabilityThenNext() async throws {
        var configuration = testConfiguration()
        configuration.randomSeed = 1
        try await withSimulator(configuration) { simulator, caller in
            simulator.state.injectFault(FaultRule(httpStatus: 500, count: 2, probability: 0.5))
            simulator.state.injectFault(FaultRule(httpStatus: 503))
            var statuses = [Int]()
            for _ in 0..<40 { statuses.append(try await caller.call(Self.cancel).status) }
            #expect(statuses.filter { $0 == 500 }.count == 2)
            #expect(statuses.filter { $0 == 503 }.count == 38)
            #expect(simulator.state.faults().count == 1)
        }
    }

    @Test("random latency: every draw within [min, max], and they vary (fault rule and configuration)")
    func randomLatency() {
        var random = SimulatorRandom(seed: 3)
        let rule = FaultRule(latencyMilliseconds: 50, maxLatencyMilliseconds: 400)
        let draws = (0..<200).map { _ in rule.latency(using: &random) }
        #expect(draws.allSatisfy { $0 >= .milliseconds(50) && $0 <= .milliseconds(400) })
        #expect(Set(draws).count > 50)
        #expect(FaultRule(latencyMilliseconds: 70).latency(using: &random) == .milliseconds(70))
        #expect(FaultRule(maxLatencyMilliseconds: 10).latency(using: &random) <= .milliseconds(10))

        // The configuration's own random latency, through the engine.
        var configuration = testConfiguration(latency: .milliseconds(20))
        configuration.maximumLatency = .milliseconds(80)
        configuration.randomSeed = 5
        let state = try! SimulatorState(configuration: configuration)
        let engine = RPCEngine(configuration: configuration, state: state, logger: quietLogger)
        var delays = [Duration]()
        for _ in 0..<100 {
            // A refused request still waits the configured latency, which is all this looks at.
            if case .answer(_, let delay) = engine.handle(method: "GET", query: "Action=X", form: nil, hostId: "h") {
                delays.append(delay)
            }
        }
        #expect(delays.count == 100)
        #expect(delays.allSatisfy { $0 >= .milliseconds(20) && $0 <= .milliseconds(80) })
        #expect(Set(delays).count > 20)
    }

    @Test("a random-latency rule delays the answer by at least its minimum")
    func randomLatencyOverHTTP() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(count: 1, latencyMilliseconds: 300, maxLatencyMilliseconds: 600))
            let started = ContinuousClock.now
            let answer = try await caller.call(Self.cancel)
            #expect(ContinuousClock.now - started >= .milliseconds(300))
            #expect(answer.bool("Success") == true)
        }
    }

    @Test("a slow body: the whole, correct answer arrives, spread over the given time; an error answer can be slow too")
    func slowBody() async throws {
        try await withSimulator { simulator, caller in
            simulator.state.injectFault(FaultRule(count: 1, slowBodyMilliseconds: 600))
            var started = ContinuousClock.now
            let slow = try await caller.call(Self.cancel)
            #expect(ContinuousClock.now - started >= .milliseconds(540))
            #expect(slow.status == 200 && slow.bool("Success") == true && isUpperCaseUUID(slow.string("RequestId")))
            #expect(status(simulator.state, "t-queued") == "CANCELED")

            simulator.state.injectFault(FaultRule(httpStatus: 503, count: 1, slowBodyMilliseconds: 400))
            started = ContinuousClock.now
            let error = try await caller.call(SignedCaller.cancelParameters(deviceNames: ["dev-confirm"]))
            #expect(ContinuousClock.now - started >= .milliseconds(360))
            #expect(error.status == 503 && error.string("Code") == "ServiceUnavailable")
            #expect(status(simulator.state, "t-confirm") == "CONFIRM")
        }
    }

    @Test("rules are parsed strictly: unknown keys and impossible values are refused with a reason")
    func strictRules() async throws {
        #expect(throws: SimulatorError.invalidConfiguration("")) {
            try FaultRule.decode(json: Data(#"{"probabilty":0.5}"#.utf8))
        }
        #expect(throws: SimulatorError.invalidConfiguration("")) {
            try FaultRule.decode(json: Data(#"{"httpStatus":503,"probability":0}"#.utf8))
        }
        #expect(throws: SimulatorError.invalidConfiguration("")) {
            try FaultRule.decode(json: Data(#"{"latencyMilliseconds":500,"maxLatencyMilliseconds":100}"#.utf8))
        }
        #expect(throws: SimulatorError.invalidConfiguration("")) {
            try FaultRule.decode(json: Data(#"{"dropConnection":true,"slowBodyMilliseconds":100}"#.utf8))
        }
        #expect(throws: SimulatorError.invalidConfiguration("")) { try FaultRule.decode(json: Data("[]".utf8)) }
        let rule = try FaultRule.decode(
            json: Data(#"{"errorCode":"Throttling.User","probability":0.25,"slowBodyMilliseconds":10}"#.utf8)
        )
        #expect(rule == FaultRule(errorCode: "Throttling.User", probability: 0.25, slowBodyMilliseconds: 10))

        var configuration = testConfiguration()
        configuration.faults = [FaultRule(probability: 2)]
        #expect(throws: SimulatorError.invalidConfiguration("")) { try configuration.validate() }

        try await withSimulator { simulator, caller in
            let refused = try await caller.raw(
                "POST",
                "/_sim/faults",
                body: #"{"httpStatus":503,"cnt":1}"#,
                contentType: "application/json"
            )
            #expect(refused.status == 400 && refused.string("error")?.contains("unknown key(s) cnt") == true)
            let added = try await caller.raw(
                "POST",
                "/_sim/faults",
                body: #"{"httpStatus":503,"probability":0.5}"#,
                contentType: "application/json"
            )
            #expect(added.status == 201)
            #expect(simulator.state.faults() == [FaultRule(httpStatus: 503, probability: 0.5)])
        }
    }

    @Test("a platform clock 20 minutes ahead refuses a current Timestamp; 10 minutes is tolerated")
    func clockOffset() async throws {
        var ahead = testConfiguration()
        ahead.clockOffset = .seconds(20 * 60)
        try await withSimulator(ahead) { _, caller in
            let answer = try await caller.call(Self.cancel)
            #expect(answer.status == 400 && answer.string("Code") == "InvalidTimeStamp.Expired")
            // A request stamped with the platform's own time passes.
            let synced = try await caller.call(Self.cancel, timestamp: Date().addingTimeInterval(20 * 60))
            #expect(synced.bool("Success") == true)
        }
        var behind = testConfiguration()
        behind.clockOffset = .seconds(-10 * 60)
        try await withSimulator(behind) { _, caller in
            let answer = try await caller.call(Self.cancel)
            #expect(answer.bool("Success") == true)
        }
    }
}
