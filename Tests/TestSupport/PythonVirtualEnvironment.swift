// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A Python virtual environment holding pinned packages from PyPI, for tests that run a Python tool.
///
/// Made once and reused (a later run finds it complete and returns at once), atomically: it is built under a
/// temporary name and renamed, so concurrent or interrupted runs never see a half-installed one. An environment
/// that exists but does not hold the pinned versions is replaced.
public enum PythonVirtualEnvironment {
    /// The environment's `python`, after making sure `packages` (`name==version`) are installed in it.
    ///
    /// - Parameters:
    ///   - directory: where the environment lives; its name should carry the versions, so that a change of pin
    ///     makes a new one.
    ///   - packages: `pip install` requirements, each pinned as `name==version`.
    /// - Throws: ``TestSupportError`` saying what is missing (`python3`, `python3-venv`, PyPI) when it cannot be
    ///   made.
    public static func python(at directory: String, packages: [String]) async throws -> String {
        if try await isComplete(directory, packages: packages) { return directory + "/bin/python" }
        guard findExecutable("python3") != nil else {
            throw TestSupportError("python3 is required: apt-get install -y python3 python3-venv")
        }
        let parent = (directory as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let staging = directory + ".tmp-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let venv = try await runProcess("python3", ["-m", "venv", staging], timeout: .seconds(180))
        guard venv.exitCode == 0 else {
            throw TestSupportError("cannot create a virtual environment (apt-get install -y python3-venv): \(venv)")
        }
        let pip = try await runProcess(
            staging + "/bin/python",
            ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"] + packages,
            timeout: .seconds(600)
        )
        guard pip.exitCode == 0 else {
            throw TestSupportError(
                "pip could not install \(packages.joined(separator: " ")) from PyPI (network? proxy?): \(pip)"
            )
        }
        // Another run may have finished first; either environment is complete.
        if FileManager.default.fileExists(atPath: directory), !(try await isComplete(directory, packages: packages)) {
            try? FileManager.default.removeItem(atPath: directory)
        }
        do {
            try FileManager.default.moveItem(atPath: staging, toPath: directory)
        } catch {
            guard try await isComplete(directory, packages: packages) else {
                throw TestSupportError("cannot move the virtual environment to \(directory): \(error)")
            }
        }
        guard try await isComplete(directory, packages: packages) else {
            throw TestSupportError("the virtual environment at \(directory) does not hold \(packages)")
        }
        return directory + "/bin/python"
    }

    /// Whether `directory` is an environment whose installed versions are the pinned ones.
    private static func isComplete(_ directory: String, packages: [String]) async throws -> Bool {
        let python = directory + "/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let names = packages.map { String($0.split(separator: "=").first ?? "") }
        let check = try await runProcess(
            python,
            [
                "-c",
                "import sys, importlib.metadata as m; print(' '.join(m.version(n) for n in sys.argv[1:]))",
            ] + names,
            timeout: .seconds(60)
        )
        let expected = packages.map { String($0.split(separator: "=").last ?? "") }.joined(separator: " ")
        return check.exitCode == 0 && check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected
    }
}
