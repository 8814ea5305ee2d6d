// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import WorkerApp

/// `ota-cancel-worker journal`: the state folder's journal as an audit trail, read-only and safe beside a running
/// worker.
///
/// Thin: each subcommand fills ``JournalTool/Options`` and `JournalTool` does the work (tested as a library).
struct Journal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Read the journal of a state folder: list, show, export, stats (read-only, safe while a worker runs).",
        discussion: """
            The journal is opened read-only: it never writes and takes no write lock, so it can run beside the \
            worker that writes the folder. Exit status: 0 done, 1 'show' found no such entry (or an ambiguous \
            prefix), 64 unusable options, 66 no journal in the state folder, 78 a journal that cannot be read.
            """,
        subcommands: [List.self, Show.self, Export.self, Stats.self]
    )

    /// The options every subcommand has.
    struct Common: ParsableArguments {
        @Option(help: "The worker's state folder. (default: OTA_CANCEL_STATE_DIR, else ./state)")
        var stateDir: String?

        func options() -> JournalTool.Options {
            JournalTool.Options(stateDirectory: stateDir, environment: ProcessInfo.processInfo.environment)
        }
    }

    /// The filters of `list`, `export` and `stats`.
    struct Filters: ParsableArguments {
        @Option(
            help: """
                Only these statuses (repeat or comma-separate): succeeded, partial, failed, rejected, expired, \
                running, waiting, dead-letter, notice.
                """
        )
        var status: [String] = []

        @Flag(help: "Only entries the worker has not answered yet: running, waiting, or a reply not yet acknowledged.")
        var pending = false

        @Option(
            help:
                "Only entries received since an RFC 3339 time (2026-12-02T06:00:00Z) or a duration ago (90s, 15m, 1h, 7d)."
        )
        var since: String?

        @Option(help: "Only entries whose correlation id starts with this.")
        var correlationId: String?

        func apply(to options: inout JournalTool.Options) {
            options.statuses = status
            options.pending = pending
            options.since = since
            options.correlationIdPrefix = correlationId
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List journal entries, oldest first: a table, or JSON lines with --json."
        )

        @OptionGroup var common: Common
        @OptionGroup var filters: Filters

        @Option(help: "Most entries, the newest that match; 0 for all. (default: 100)")
        var limit: Int?

        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            var options = common.options()
            filters.apply(to: &options)
            options.limit = limit
            options.json = json
            try finish(await JournalTool.list(options, output: { print($0) }, problem: warn))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one command: its timestamps, each platform call (devices, RequestId, attempts), the reply.",
            discussion: """
                ID is a correlation id, or a prefix of exactly one; all entries with that correlation id are shown \
                (a command, its duplicates, a conflicting repeat). --entry shows an entry by its number (the ENTRY \
                column of 'list'), also one without a correlation id (a dead letter). Device lists are shortened; \
                --json prints everything, as one 'export' line per entry.
                """
        )

        @OptionGroup var common: Common

        @Argument(help: "A correlation id, or a prefix of exactly one.")
        var id: String?

        @Option(help: "Show the entry with this number instead.")
        var entry: Int64?

        @Flag(help: "One JSON object per entry, with every device name.")
        var json = false

        func validate() throws {
            if (id == nil) == (entry == nil) {
                throw ValidationError("give a correlation id or --entry N (one of them)")
            }
        }

        func run() async throws {
            var options = common.options()
            options.json = json
            try finish(await JournalTool.show(id, entry: entry, options: options, output: { print($0) }, problem: warn))
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print every matching entry with all it holds, one JSON object per line, oldest first (for an audit store)."
        )

        @OptionGroup var common: Common
        @OptionGroup var filters: Filters

        @Option(help: "Most entries, the oldest that match; 0 for all. (default: all)")
        var limit: Int?

        func run() async throws {
            var options = common.options()
            filters.apply(to: &options)
            options.limit = limit
            try finish(await JournalTool.export(options, output: { print($0) }, problem: warn))
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Count entries by status, kind and progress, and the platform calls, attempts and devices sent."
        )

        @OptionGroup var common: Common
        @OptionGroup var filters: Filters

        @Flag(help: "One JSON object.")
        var json = false

        func run() async throws {
            var options = common.options()
            filters.apply(to: &options)
            options.json = json
            try finish(await JournalTool.stats(options, output: { print($0) }, problem: warn))
        }
    }
}

/// Writes a problem to standard error.
private func warn(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// Ends the command with `status` (nothing to throw for 0).
private func finish(_ status: Int32) throws {
    if status != 0 { throw ExitCode(status) }
}
