// SPDX-License-Identifier: Apache-2.0

/// The durations the command line takes relative to now (`request --deadline 5m`, `journal --since 1h`): a number
/// and one unit letter, `s`, `m`, `h` or `d`. One table, so that both options understand the same units.
enum DurationText {
    static let secondsPerUnit: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]

    /// The number before the unit letter and the unit's length in seconds; `nil` when `text` ends in no unit.
    static func split(_ text: String) -> (number: Substring, unitSeconds: Double)? {
        guard let last = text.last, let seconds = secondsPerUnit[last] else { return nil }
        return (text.dropLast(), seconds)
    }
}
