// SPDX-License-Identifier: Apache-2.0
import Foundation
public import Logging
import Synchronization
public import Worker

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state folder: created private, checked, and held by one worker at a time.
///
/// The journal holds every command (device names, reasons, who asked) and its reply, so nobody but the worker's
/// user reads it: the folder is `0700` and the journal's files (`journal.sqlite`, `-wal`, `-shm`) are `0600`.
/// SQLite creates a database file `0644` (less the umask), so the journal file is created `0600` before the
/// journal opens it; SQLite then gives `-wal` and `-shm` the database file's mode. A folder or journal file that
/// an earlier version (or a person) left more open is tightened when this process owns it, and said loudly when
/// it cannot be.
///
/// Two workers on one folder would share a journal and, usually, an MQTT client id: the broker hands the session
/// to the newer one and the journal is written by both ("database is locked"). So the folder has an advisory lock,
/// `flock(LOCK_EX | LOCK_NB)` on `<folder>/lock`, which records the holder's pid and start time, taken before the
/// journal is opened and before any connection, and held until the worker's service group ends. The kernel drops
/// it when the holder dies, so a crash leaves nothing to clean up.
public enum StateDirectory {
    /// The lock file's name in the state folder.
    public static let lockFileName = "lock"
    /// The mode the folder is created with, and the most open one it is left with when owned.
    public static let directoryMode: UInt32 = 0o700
    /// The mode of the journal's files and of the lock file.
    public static let fileMode: UInt32 = 0o600

    /// Creates (or checks) the folder, takes its lock, and creates or tightens the journal's files.
    ///
    /// - Parameters:
    ///   - path: The state folder (`--state-dir`).
    ///   - journalPath: The journal database file, or `nil` for an in-memory journal.
    ///   - logger: Says what was tightened, and what is too open and cannot be.
    /// - Returns: The lock, held until it is released or deallocated.
    /// - Throws: ``WorkerError/journal(_:file:line:)`` when another process holds the folder (the message names
    ///   the folder and the holder's pid); ``WorkerError/invalidConfiguration(_:file:line:)`` when the folder or
    ///   a file in it cannot be created, opened or given its mode.
    public static func prepare(
        _ path: String,
        journalPath: String?,
        logger: Logger
    ) throws(WorkerError) -> StateDirectoryLock {
        try createDirectory(path)
        try checkWritable(path, journalPath: journalPath)
        try restrict(path, maximum: directoryMode, what: "state-dir", logger: logger)
        let lock = try StateDirectoryLock.acquire(directory: path, logger: logger)
        try restrict(path + "/" + lockFileName, maximum: fileMode, what: "state-dir", logger: logger)
        if let journalPath {
            try createPrivateFile(journalPath)
            for file in [journalPath, journalPath + "-wal", journalPath + "-shm"] {
                try restrict(file, maximum: fileMode, what: "journal", logger: logger)
            }
        }
        return lock
    }

    /// What `check-config` says of the folder, having changed nothing: whether it exists or can be created,
    /// whether this user can write in it, and whether another worker holds it.
    ///
    /// The lock is tried (`flock(LOCK_EX | LOCK_NB)`) and released at once when the lock file exists; a worker
    /// starting in that very instant would be refused as if the folder were held (exit 75) and be restarted.
    /// - Returns: a line for the summary, and whether another worker holds the folder: that is no error here
    ///   (`check-config` may run beside the worker it checks), the line says so.
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` when `run` would be refused.
    public static func check(
        _ path: String,
        journalPath: String?
    ) throws(WorkerError) -> (summary: String, inUse: Bool) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            // The nearest folder that exists must let this user create the rest.
            var ancestor = (path as NSString).deletingLastPathComponent
            while !ancestor.isEmpty, ancestor != "/", access(ancestor, F_OK) != 0 {
                ancestor = (ancestor as NSString).deletingLastPathComponent
            }
            if ancestor.isEmpty { ancestor = "." }
            var parentIsDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: ancestor, isDirectory: &parentIsDirectory),
                parentIsDirectory.boolValue
            else {
                throw .invalidConfiguration(
                    unusableMessage(
                        path: path,
                        action: "create",
                        user: currentUser(),
                        errorNumber: ENOTDIR,
                        folder: path
                    )
                )
            }
            if access(ancestor, W_OK | X_OK) != 0 {
                throw .invalidConfiguration(
                    unusable(path: path, action: "create", folder: path)
                )
            }
            return ("'\(path)' does not exist yet; it will be created 0700", false)
        }
        guard isDirectory.boolValue else {
            throw .invalidConfiguration(
                "state-dir: '\(path)' exists and is not a folder; choose a folder with --state-dir (OTA_CANCEL_STATE_DIR)"
            )
        }
        try checkWritable(path, journalPath: journalPath)
        let lockPath = path + "/" + lockFileName
        let descriptor = open(lockPath, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return ("'\(path)' is writable and free", false) }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = StateDirectoryLockRecord(text: readText(descriptor))
            let who = holder.map { "process \($0.pid) (started \($0.started))" } ?? "another process"
            return ("'\(path)' is writable, and in use by \(who): run would exit 75 while that one runs", true)
        }
        _ = flock(descriptor, LOCK_UN)
        return ("'\(path)' is writable and free", false)
    }

    /// The first bytes of an open file, as text.
    private static func readText(_ descriptor: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
    }

    // MARK: Messages (pure)

    /// The user this process runs as, for messages: `name (uid N)`, or `uid N` when it has no name.
    static func currentUser() -> String {
        let uid = geteuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "\(String(cString: name)) (uid \(uid))"
    }

    /// ``unusableMessage(path:action:user:errorNumber:folder:)`` for the failure `errno` reports now (read before
    /// anything else runs: looking the user up may change it).
    static func unusable(path: String, action: String, folder: String) -> String {
        let errorNumber = errno
        return unusableMessage(
            path: path,
            action: action,
            user: currentUser(),
            errorNumber: errorNumber,
            folder: folder
        )
    }

    /// Why the worker cannot use `path` (the state folder, or a file in it) and what to do about it.
    ///
    /// - Parameters:
    ///   - path: the folder or file.
    ///   - action: what failed, e.g. `write in` or `create`.
    ///   - user: ``currentUser()``'s text.
    ///   - errorNumber: the `errno` of the failure.
    ///   - folder: the state folder (the one to give to the user or to replace with `--state-dir`).
    public static func unusableMessage(
        path: String,
        action: String,
        user: String,
        errorNumber: Int32,
        folder: String
    ) -> String {
        let reason = String(cString: strerror(errorNumber))
        let choose = "--state-dir (OTA_CANCEL_STATE_DIR)"
        switch errorNumber {
        case EROFS:
            return "state-dir: cannot \(action) '\(path)': \(reason) (a read-only file system); "
                + "give the worker a writable folder with \(choose)"
        case EACCES, EPERM:
            let name = user.split(separator: " ").first.map(String.init) ?? user
            let remedy =
                action == "create"
                ? "create it for that user (mkdir -p '\(folder)' && chown \(name) '\(folder)')"
                : "give the folder to that user (chown -R \(name) '\(folder)')"
            return "state-dir: cannot \(action) '\(path)' as user \(user): \(reason); \(remedy) "
                + "or choose another with \(choose)"
        case ENOTDIR:
            return "state-dir: cannot \(action) '\(path)': a part of the path is a file, not a folder; "
                + "choose another folder with \(choose)"
        default:
            return "state-dir: cannot \(action) '\(path)' as user \(user): \(reason); check the folder, "
                + "or choose another with \(choose)"
        }
    }

    // MARK: Modes (the decision is pure)

    /// What to do with a file or folder's mode.
    public enum ModeAction: Equatable, Sendable {
        /// It is no more open than allowed.
        case keep
        /// Remove the bits beyond the allowed ones: `chmod(to)`.
        case tighten(to: UInt32)
        /// It is more open than allowed, and another user owns it: this process may not change it.
        case tooOpenNotOwned
    }

    /// The action for permission bits `mode` (`0o777` part) of a file owned by `owner`, seen by the process user
    /// `user`, when at most `maximum` is allowed.
    ///
    /// Only bits are removed, never added: a folder `0500` stays `0500` (and the journal then says it cannot
    /// write), so this never widens what anybody may do.
    public static func modeAction(mode: UInt32, owner: UInt32, user: UInt32, maximum: UInt32) -> ModeAction {
        let permissions = mode & 0o7777
        guard permissions & ~maximum != 0 else { return .keep }
        guard owner == user else { return .tooOpenNotOwned }
        return .tighten(to: permissions & maximum)
    }

    /// `0o755` as `0755`, for messages.
    static func octal(_ mode: UInt32) -> String {
        "0" + String(mode & 0o7777, radix: 8)
    }

    // MARK: I/O

    /// Creates the folder `0700` (its missing parents `0755`) unless it exists.
    private static func createDirectory(_ path: String) throws(WorkerError) {
        // FileManager rather than stat(2): `struct stat` is claimed by a different clang module depending on which
        // files of this module import what (MemberImportVisibility then refuses its fields).
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw .invalidConfiguration(
                    "state-dir: '\(path)' exists and is not a folder; choose a folder with --state-dir "
                        + "(OTA_CANCEL_STATE_DIR)"
                )
            }
            return
        }
        try createDirectory(path, mode: directoryMode, folder: path)
    }

    /// `mkdir(path, mode)`; a folder that exists already is fine.
    private static func createDirectory(_ path: String, mode: UInt32, folder: String) throws(WorkerError) {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            try createDirectory(parent, mode: 0o755, folder: folder)
        }
        if mkdir(path, mode_t(mode)) != 0, errno != EEXIST {
            throw .invalidConfiguration(
                unusable(path: path, action: "create", folder: folder)
            )
        }
    }

    /// The folder must be writable (the lock, the journal and SQLite's `-wal` and `-shm` are created in it), and
    /// journal files that exist must be readable and writable: refused here with the path, the user and what to
    /// do, rather than later as `SQLite error 14`. (`access` answers for the real user, who is the effective one
    /// for the worker; it also reports a read-only file system.)
    static func checkWritable(_ path: String, journalPath: String?) throws(WorkerError) {
        if access(path, W_OK | X_OK) != 0 {
            throw .invalidConfiguration(
                unusable(path: path, action: "write in", folder: path)
            )
        }
        var files = [path + "/" + lockFileName]
        if let journalPath { files += [journalPath, journalPath + "-wal", journalPath + "-shm"] }
        for file in files where access(file, F_OK) == 0 && access(file, R_OK | W_OK) != 0 {
            throw .invalidConfiguration(
                unusable(path: file, action: "write", folder: path)
            )
        }
    }

    /// Creates `path` empty and `0600` when it does not exist (SQLite takes an empty file as a new database).
    private static func createPrivateFile(_ path: String) throws(WorkerError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(fileMode))
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            let folder = (path as NSString).deletingLastPathComponent
            throw .invalidConfiguration(
                unusable(path: path, action: "create", folder: folder)
            )
        }
    }

    /// Applies ``modeAction(mode:owner:user:maximum:)`` to `path` (a missing file is fine: nothing to restrict).
    private static func restrict(_ path: String, maximum: UInt32, what: String, logger: Logger) throws(WorkerError) {
        guard let status = try? FileManager.default.attributesOfItem(atPath: path),
            let permissions = (status[.posixPermissions] as? NSNumber)?.uint32Value,
            let owner = (status[.ownerAccountID] as? NSNumber)?.uint32Value
        else { return }
        let mode = permissions & 0o7777
        switch modeAction(mode: mode, owner: owner, user: UInt32(geteuid()), maximum: maximum) {
        case .keep:
            return
        case .tighten(let tightened):
            guard chmod(path, mode_t(tightened)) == 0 else {
                throw .invalidConfiguration(
                    "\(what): cannot change the mode of '\(path)' from \(octal(mode)) to \(octal(tightened)): "
                        + String(cString: strerror(errno))
                )
            }
            logger.notice(
                "tightened a file mode: the journal is for the worker's user alone",
                metadata: [
                    LogKey.path: "\(path)", LogKey.modeWas: "\(octal(mode))", LogKey.mode: "\(octal(tightened))",
                ]
            )
        case .tooOpenNotOwned:
            logger.warning(
                "more open than the worker wants and owned by another user, so left as it is: restrict it by hand",
                metadata: [
                    LogKey.path: "\(path)", LogKey.mode: "\(octal(mode))", LogKey.ownerUID: "\(owner)",
                    LogKey.wanted: "at most \(octal(maximum))",
                ]
            )
        }
    }
}

/// What the lock file says about its holder: `pid=<pid> started=<RFC 3339 time>`.
///
/// Read back only to name the holder in the second worker's error, and only these two fields, checked: the file
/// is in a folder others may have written before it was tightened, so nothing else of it is ever printed.
public struct StateDirectoryLockRecord: Equatable, Sendable {
    /// The holder's process id.
    public var pid: Int32
    /// When the holder took the lock (RFC 3339, UTC), as it wrote it.
    public var started: String

    public init(pid: Int32, started: String) {
        self.pid = pid
        self.started = started
    }

    /// The file's text.
    public var text: String { "pid=\(pid) started=\(started)\n" }

    /// Parses ``text``; `nil` for anything else (empty, foreign, truncated).
    public init?(text: String) {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, fields[0].hasPrefix("pid="), fields[1].hasPrefix("started="),
            let pid = Int32(fields[0].dropFirst(4)), pid > 0
        else { return nil }
        let started = fields[1].dropFirst(8)
        guard !started.isEmpty, started.count <= 40,
            started.allSatisfy({ $0.isASCII && ($0.isNumber || "-:.TZ+".contains($0)) })
        else { return nil }
        self.init(pid: pid, started: String(started))
    }
}

/// The state folder's lock, held while this object lives or until ``release()``.
///
/// `flock` locks belong to the open file description: two workers in one process (tests) exclude each other as
/// two processes do, and closing the descriptor (``release()``, `deinit`, or the process ending) releases it.
public final class StateDirectoryLock: Sendable {
    /// The state folder.
    public let directory: String
    private let descriptor: Mutex<Int32?>

    private init(directory: String, descriptor: Int32) {
        self.directory = directory
        self.descriptor = Mutex(descriptor)
    }

    deinit { release() }

    /// Whether the lock is still held.
    public var isHeld: Bool { descriptor.withLock { $0 != nil } }

    /// Releases the lock; later calls do nothing.
    public func release() {
        descriptor.withLock { descriptor in
            if let open = descriptor { close(open) }
            descriptor = nil
        }
    }

    /// Takes the lock of `directory` without waiting.
    ///
    /// - Throws: ``WorkerError/journal(_:file:line:)`` naming the folder and the holder's pid when another
    ///   process (or another worker in this one) holds it.
    static func acquire(directory: String, logger: Logger) throws(WorkerError) -> StateDirectoryLock {
        let path = directory + "/" + StateDirectory.lockFileName
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode_t(StateDirectory.fileMode))
        guard descriptor >= 0 else {
            throw .invalidConfiguration(
                StateDirectory.unusable(path: path, action: "open", folder: directory)
            )
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let problem = errno
            defer { close(descriptor) }
            guard problem == EWOULDBLOCK else {
                throw .invalidConfiguration("state-dir: cannot lock '\(path)': \(String(cString: strerror(problem)))")
            }
            throw .journal(inUseMessage(directory: directory, holder: readHolder(descriptor)))
        }
        let lock = StateDirectoryLock(directory: directory, descriptor: descriptor)
        // A lock file an earlier run left more open is tightened by StateDirectory.prepare, like the journal's.
        let record = StateDirectoryLockRecord(pid: getpid(), started: RFC3339.string(from: Date()))
        let bytes = Array(record.text.utf8)
        guard ftruncate(descriptor, 0) == 0, pwrite(descriptor, bytes, bytes.count, 0) == bytes.count else {
            throw .invalidConfiguration("state-dir: cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        logger.debug("state folder locked", metadata: [LogKey.lock: "\(path)"])
        return lock
    }

    /// The second worker's message: the folder, the holder (when its record can be read), what to do.
    public static func inUseMessage(directory: String, holder: StateDirectoryLockRecord?) -> String {
        let who =
            holder.map { "process \($0.pid) (started \($0.started))" }
            ?? "another process (its pid is not recorded in \(lockFileDescription))"
        return "state-dir '\(directory)' is in use by \(who): two workers must not share a state folder "
            + "(they would share the journal and the MQTT session); stop that one, or give this one its own --state-dir"
    }

    private static let lockFileDescription = "the folder's '\(StateDirectory.lockFileName)' file"

    /// The holder's record. The holder writes it right after locking, so an empty file is read again a few times.
    private static func readHolder(_ descriptor: Int32) -> StateDirectoryLockRecord? {
        for attempt in 0..<10 {
            var buffer = [UInt8](repeating: 0, count: 128)
            let count = pread(descriptor, &buffer, buffer.count, 0)
            if count > 0, let record = StateDirectoryLockRecord(text: String(decoding: buffer[..<count], as: UTF8.self))
            {
                return record
            }
            if attempt < 9 { usleep(10_000) }
        }
        return nil
    }
}
