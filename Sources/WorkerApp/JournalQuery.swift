// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import Worker

/// The pure decisions of `ota-cancel-worker journal` that come before any reading: what `--since` and `--status`
/// mean, and which entries `show ID` names.
public enum JournalQuery {
    /// The instant `--since` names: an RFC 3339 timestamp (`2026-12-02T06:00:00Z`, any offset), or a duration
    /// back from `now`, a whole number followed by `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`, `7d`).
    ///
    /// - Returns: `nil` when `text` is neither.
    public static func since(_ text: String, now: Date) -> Date? {
        if let date = RFC3339.date(from: text) { return date }
        guard let (number, seconds) = DurationText.split(text), let amount = Int(number), amount >= 0 else {
            return nil
        }
        return now.addingTimeInterval(-Double(amount) * seconds)
    }

    /// The statuses `--status` names: words separated by commas (`failed,partial`), each a ``JournalEntryStatus``.
    ///
    /// - Returns: the set, or the first word that is not a status.
    public static func statuses(_ words: [String]) -> Result<Set<JournalEntryStatus>, UnknownStatus> {
        var statuses = Set<JournalEntryStatus>()
        for word in words.flatMap({ $0.split(separator: ",") }) {
            let trimmed = word.trimmingCharacters(in: .whitespaces).lowercased()
            guard let status = JournalEntryStatus(rawValue: trimmed) else {
                return .failure(UnknownStatus(word: trimmed))
            }
            statuses.insert(status)
        }
        return .success(statuses)
    }

    /// A `--status` word that is not a status.
    public struct UnknownStatus: Error, Sendable, Hashable, CustomStringConvertible {
        public var word: String

        public var description: String {
            "unknown status '\(LogEscaping.escape(word))'; use "
                + JournalEntryStatus.allCases.map(\.rawValue).joined(separator: ", ")
        }
    }

    /// Which entries `show ID` names.
    public enum Lookup: Sendable, Hashable {
        /// The entries of one correlation id (the command first, then its duplicates and conflicting repeats).
        case found([JournalEntrySummary])
        case notFound
        /// `id` is a prefix of several correlation ids (at most 10 are listed).
        case ambiguous([String])
    }

    /// Resolves `show ID` among `candidates` (the reader's entries whose correlation id starts with `id`; others
    /// are ignored): the correlation id equal to `id` if there is one, else the one correlation id that starts
    /// with `id`.
    ///
    /// A correlation id may have several entries (a command, its duplicates, a conflicting repeat): all are
    /// shown. A prefix that several correlation ids share names none of them: the caller says which ones.
    public static func lookup(_ id: String, among candidates: [JournalEntrySummary]) -> Lookup {
        let exact = candidates.filter { $0.correlationId == id }
        if !exact.isEmpty { return .found(exact) }
        var ids = [String]()
        for candidate in candidates {
            if let correlationId = candidate.correlationId, correlationId.hasPrefix(id), !ids.contains(correlationId) {
                ids.append(correlationId)
            }
        }
        switch ids.count {
        case 0: return .notFound
        case 1: return .found(candidates.filter { $0.correlationId == ids[0] })
        default: return .ambiguous(Array(ids.prefix(10)))
        }
    }
}
