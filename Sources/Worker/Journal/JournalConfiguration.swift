// SPDX-License-Identifier: Apache-2.0

/// Where and how durably the SQLite journal (``SQLiteJournal``) keeps its state.
public struct JournalConfiguration: Sendable {
    /// How SQLite syncs a committed transaction to disk.
    public struct Synchronous: Sendable, Hashable, CustomStringConvertible {
        let pragma: String

        private init(pragma: String) { self.pragma = pragma }

        /// `synchronous=NORMAL` in WAL mode: a commit survives a crash of the process (what the worker's
        /// at-least-once promise needs); the last commits may be lost if the machine loses power. The default.
        public static let normal = Synchronous(pragma: "NORMAL")
        /// `synchronous=FULL`: every commit is fsynced, so it also survives a power loss; costs a disk flush
        /// per message.
        public static let full = Synchronous(pragma: "FULL")

        public init?(name: String) {
            switch name.lowercased() {
            case "normal": self = .normal
            case "full": self = .full
            default: return nil
            }
        }

        public var description: String { pragma.lowercased() }
    }

    /// The journal file, or `nil` for an in-memory journal (nothing survives the process: benchmarks only).
    /// Default: `<state-dir>/journal.sqlite`, set by the application.
    public var path: String?
    /// Default ``Synchronous/normal``.
    public var synchronous: Synchronous
    /// How long replied commands are kept for deduplication. Default 24 hours.
    public var retention: Duration
    /// Most replied entries kept, whatever their age (the oldest go first). Default 1,000,000.
    public var maxEntries: Int

    public init(
        path: String?,
        synchronous: Synchronous = .normal,
        retention: Duration = .seconds(86_400),
        maxEntries: Int = 1_000_000
    ) {
        self.path = path
        self.synchronous = synchronous
        self.retention = retention
        self.maxEntries = maxEntries
    }
}
