// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
import Worker

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    @Test(
        "parsing",
        arguments: [
            ("2026-11-26T17:16:19Z", 1_795_713_379.0),
            ("2026-11-26t17:16:19z", 1_795_713_379.0),
            ("2026-11-26T17:16:19.5Z", 1_795_713_379.5),
            ("2026-11-26T18:16:19+01:00", 1_795_713_379.0),
            ("2026-11-26T12:46:19-04:30", 1_795_713_379.0),
            ("2016-12-31T23:59:60Z", 1_483_228_800.0),
        ]
    )
    func parsing(text: String, seconds: Double) throws {
        let date = try #require(RFC3339.date(from: text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.000_001)
    }

    @Test(
        "garbage is refused",
        arguments: [
            "", "2026-11-26", "2026-11-26T17:16:19", "2026-11-26T17:16:19+0100", "2026-02-30T00:00:00Z",
            "2026-11-26T17:16:19Z ",
        ]
    )
    func garbage(text: String) {
        #expect(RFC3339.date(from: text) == nil)
    }

    @Test("formatting keeps milliseconds and round-trips")
    func formatting() throws {
        let date = Date(timeIntervalSince1970: 1_795_713_379.123)
        #expect(RFC3339.string(from: date) == "2026-11-26T17:16:19.123Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        let back = try #require(RFC3339.date(from: RFC3339.string(from: date)))
        #expect(abs(back.timeIntervalSince(date)) < 0.001)
    }
}
