// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

@testable import WorkerApp

/// The `/proc` parsing behind the `process_*` metrics, on fixed text (and once on this process's own).
@Suite("Process statistics")
struct ProcessStatisticsTests {
    /// A `/proc/self/stat` line whose command name holds spaces and a parenthesis, as a thread name may.
    static let stat =
        "4242 (ota (cancel) w) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 9 0 1000 734003200 5120 "
        + "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0"

    @Test("fields are counted from the last parenthesis: CPU, start time, virtual and resident memory")
    func parsesStat() throws {
        let parsed = try #require(
            ProcessStatistics.parse(stat: Self.stat, ticksPerSecond: 100, pageSize: 4096, bootTime: 1_700_000_000)
        )
        #expect(parsed.cpuSeconds == 3.0)  // (250 + 50) ticks at 100 per second
        #expect(parsed.startTime == 1_700_000_010)  // boot + 1000 ticks
        #expect(parsed.virtualBytes == 734_003_200)
        #expect(parsed.residentBytes == 5120 * 4096)
    }

    @Test("text that is not a stat line gives nil, not made-up figures")
    func refusesOtherText() {
        #expect(ProcessStatistics.parse(stat: "", ticksPerSecond: 100, pageSize: 4096, bootTime: 0) == nil)
        #expect(ProcessStatistics.parse(stat: "1 (x) S 1 2", ticksPerSecond: 100, pageSize: 4096, bootTime: 0) == nil)
        #expect(ProcessStatistics.parse(stat: Self.stat, ticksPerSecond: 0, pageSize: 4096, bootTime: 0) == nil)
    }

    @Test("btime is read from /proc/stat")
    func bootTime() {
        #expect(ProcessStatistics.bootTime(procStat: "cpu  1 2 3\nbtime 1733100000\nprocesses 9\n") == 1_733_100_000)
        #expect(ProcessStatistics.bootTime(procStat: "cpu  1 2 3\n") == nil)
    }

    #if os(Linux)
    @Test("this process: plausible figures")
    func currentProcess() throws {
        let current = try #require(ProcessStatistics.current())
        #expect(current.residentBytes > 1_000_000)
        #expect(current.openFileDescriptors >= 3 && current.openFileDescriptors <= current.maxFileDescriptors)
        #expect(abs(current.startTime - Date().timeIntervalSince1970) < 24 * 3600)
    }
    #endif
}
