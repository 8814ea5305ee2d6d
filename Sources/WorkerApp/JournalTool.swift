// SPDX-License-Identifier: Apache-2.0
public import Foundation
import JSONSchema
import Worker

/// `ota-cancel-worker journal list|show|export|stats`: reads a state folder's journal (read-only, safe beside a
/// running worker) and prints it for a person or, with `--json`, as JSON lines.
///
/// The argument parser's command is thin: it fills ``Options`` and calls one of these functions, which open the
/// reader (``SQLiteJournalReader``), ask it, and hand each printed line to `output` (standard output) and each
/// problem to `problem` (standard error); they return the exit status (``ExitStatus``).
public enum JournalTool {
    /// The exit statuses of `journal`, in the manner of `sysexits.h` as the other subcommands use it.
    public enum ExitStatus {
        public static let success: Int32 = 0
        /// `show`: no entry has that correlation id (or the prefix names several).
        public static let notFound: Int32 = 1
        /// A flag's value cannot be used (`--since`, `--status`, `--limit`).
        public static let usage: Int32 = WorkerApp.ExitStatus.usage
        /// `EX_NOINPUT`: there is no journal in the state folder.
        public static let noJournal: Int32 = 66
        /// `EX_CONFIG`, as `run` exits for an unusable state folder: the journal exists but cannot be read (not a
        /// journal, a schema older than v3, no permission, an I/O error).
        public static let unreadable: Int32 = WorkerApp.ExitStatus.configuration
    }

    /// What the command line said, `nil` meaning "not given".
    public struct Options: Sendable {
        /// `--state-dir`; else `OTA_CANCEL_STATE_DIR`; else `./state`, as `run` resolves it.
        public var stateDirectory: String?
        /// The environment the state folder falls back to.
        public var environment: [String: String]
        /// JSON lines instead of text.
        public var json = false
        /// `--status` words (comma-separated lists allowed).
        public var statuses: [String] = []
        /// `--pending`: only entries the worker still owes a reply (or its publication).
        public var pending = false
        /// `--since`: RFC 3339 or a duration back from now (``JournalQuery/since(_:now:)``).
        public var since: String?
        /// `--correlation-id`: a prefix of the correlation id.
        public var correlationIdPrefix: String?
        /// `--limit`: most entries; `0` for all. Default: 100 for `list`, all for `export`.
        public var limit: Int?

        public init(stateDirectory: String?, environment: [String: String]) {
            self.stateDirectory = stateDirectory
            self.environment = environment
        }
    }

    /// Where the journal of `options`' state folder is.
    public static func journalPath(_ options: Options) -> String {
        let folder = options.stateDirectory ?? options.environment["OTA_CANCEL_STATE_DIR"] ?? "./state"
        return folder + "/journal.sqlite"
    }

    /// `journal list`: the newest `--limit` (default 100) matching entries, oldest first, as a table or JSON lines.
    public static func list(
        _ options: Options,
        now: Date = Date(),
        output: (String) -> Void,
        problem: (String) -> Void
    ) async -> Int32 {
        let opened = prepare(options, now: now)
        guard case .success(let (reader, filter)) = opened else { return failed(opened, problem) }
        let limit = options.limit ?? 100
        do {
            let entries = try await reader.entries(matching: filter, limit: limit == 0 ? nil : limit, newest: true)
            if options.json {
                for entry in entries { output(JournalReport.line(JournalReport.json(entry))) }
            } else if entries.isEmpty {
                problem("no entries match")
            } else {
                JournalReport.table(entries).forEach(output)
            }
            if limit > 0 && entries.count == limit {
                problem("showing the newest \(limit) entries that match; --limit 0 shows all")
            }
            return ExitStatus.success
        } catch {
            problem("Error: " + error.message)
            return ExitStatus.unreadable
        }
    }

    /// `journal show ID`: the entries of the correlation id `id` (exact, else a unique prefix), or entry `entry`.
    public static func show(
        _ id: String?,
        entry: Int64?,
        options: Options,
        output: (String) -> Void,
        problem: (String) -> Void
    ) async -> Int32 {
        let opened = prepare(options, now: Date())
        guard case .success(let (reader, _)) = opened else { return failed(opened, problem) }
        do {
            var ids = [Int64]()
            if let entry {
                ids = [entry]
            } else if let id {
                var found = try await reader.entries(
                    matching: JournalFilter(correlationId: id),
                    limit: 100,
                    newest: false
                )
                if found.isEmpty {
                    found = try await reader.entries(
                        matching: JournalFilter(correlationIdPrefix: id),
                        limit: 1000,
                        newest: false
                    )
                }
                switch JournalQuery.lookup(id, among: found) {
                case .found(let entries): ids = entries.map(\.id)
                case .notFound: break
                case .ambiguous(let candidates):
                    problem(
                        "Error: '\(LogEscaping.escape(id))' starts several correlation ids ("
                            + candidates.map { LogEscaping.escape($0) }.joined(separator: ", ")
                            + (candidates.count == 10 ? ", …" : "") + "); give more of it"
                    )
                    return ExitStatus.notFound
                }
            }
            var details = [JournalEntryDetail]()
            for entryId in ids {
                details += try await reader.details(matching: JournalFilter(id: entryId), after: 0, limit: 1)
            }
            guard !details.isEmpty else {
                let what = entry.map { "entry \($0)" } ?? "correlation id '\(LogEscaping.escape(id ?? ""))'"
                problem("Error: no journal entry has \(what) in \(reader.location)")
                return ExitStatus.notFound
            }
            for (index, detail) in details.enumerated() {
                if options.json {
                    output(JournalReport.line(JournalReport.json(detail)))
                } else {
                    if index > 0 { output("") }
                    JournalReport.show(detail).forEach(output)
                }
            }
            return ExitStatus.success
        } catch {
            problem("Error: " + error.message)
            return ExitStatus.unreadable
        }
    }

    /// `journal export`: every matching entry with everything stored about it, one JSON line each, oldest first,
    /// read in pages (a journal of a million entries is never held in memory at once).
    public static func export(
        _ options: Options,
        now: Date = Date(),
        output: (String) -> Void,
        problem: (String) -> Void
    ) async -> Int32 {
        let opened = prepare(options, now: now)
        guard case .success(let (reader, filter)) = opened else { return failed(opened, problem) }
        var remaining = (options.limit ?? 0) == 0 ? Int.max : options.limit ?? 0
        var after: Int64 = 0
        do {
            while remaining > 0 {
                let page = try await reader.details(matching: filter, after: after, limit: min(200, remaining))
                for detail in page { output(JournalReport.line(JournalReport.json(detail))) }
                guard let last = page.last else { break }
                after = last.summary.id
                remaining -= page.count
            }
            return ExitStatus.success
        } catch {
            problem("Error: " + error.message)
            return ExitStatus.unreadable
        }
    }

    /// `journal stats`: counts by status, kind and progress, and the calls', over the matching entries.
    public static func stats(
        _ options: Options,
        now: Date = Date(),
        output: (String) -> Void,
        problem: (String) -> Void
    ) async -> Int32 {
        let opened = prepare(options, now: now)
        guard case .success(let (reader, filter)) = opened else { return failed(opened, problem) }
        do {
            let stats = try await reader.stats(matching: filter)
            if options.json {
                output(JournalReport.line(JournalReport.json(stats, location: reader.location)))
            } else {
                JournalReport.stats(stats, location: reader.location).forEach(output)
            }
            return ExitStatus.success
        } catch {
            problem("Error: " + error.message)
            return ExitStatus.unreadable
        }
    }

    // MARK: - Shared steps

    /// A failure before reading: its status and what to say.
    struct Failure: Error {
        var status: Int32
        var message: String
    }

    /// The filter the flags describe, and the reader.
    static func prepare(_ options: Options, now: Date) -> Result<(SQLiteJournalReader, JournalFilter), Failure> {
        var filter = JournalFilter(pendingOnly: options.pending, correlationIdPrefix: options.correlationIdPrefix)
        if let since = options.since {
            guard let date = JournalQuery.since(since, now: now) else {
                return .failure(
                    Failure(
                        status: ExitStatus.usage,
                        message: "--since '\(LogEscaping.escape(since))' is neither an RFC 3339 time "
                            + "(2026-12-02T06:00:00Z) nor a duration (90s, 15m, 1h, 7d)"
                    )
                )
            }
            filter.since = date
        }
        if !options.statuses.isEmpty {
            switch JournalQuery.statuses(options.statuses) {
            case .success(let statuses): filter.statuses = statuses
            case .failure(let unknown):
                return .failure(Failure(status: ExitStatus.usage, message: "--status: \(unknown)"))
            }
        }
        if let limit = options.limit, limit < 0 {
            return .failure(Failure(status: ExitStatus.usage, message: "--limit must be 0 (all) or more"))
        }
        let path = journalPath(options)
        guard FileManager.default.fileExists(atPath: path) else {
            return .failure(
                Failure(
                    status: ExitStatus.noJournal,
                    message: "there is no journal at \(path): give the worker's state folder with --state-dir "
                        + "(OTA_CANCEL_STATE_DIR)"
                )
            )
        }
        do {
            return .success((try SQLiteJournalReader(path: path), filter))
        } catch {
            // The worker keeps its journal 0600: the usual reason is another user.
            let hint =
                FileManager.default.isReadableFile(atPath: path)
                ? "" : " (this user may not read it: run as the worker's user)"
            return .failure(Failure(status: ExitStatus.unreadable, message: error.message + hint))
        }
    }

    static func failed<T>(_ result: Result<T, Failure>, _ problem: (String) -> Void) -> Int32 {
        guard case .failure(let failure) = result else { return ExitStatus.success }
        problem("Error: " + failure.message)
        return failure.status
    }
}
