// SPDX-License-Identifier: Apache-2.0
import Foundation
import PackagePlugin

/// Bakes the git revision and the JSON Schemas of `schemas/` into the target it is applied to (WorkerApp), as
/// `GeneratedBuildInfo`: `--version` names the revision that was built, and `run`, `validate` and `sign` work from
/// any folder, and in an image that holds nothing beside the binary.
///
/// A prebuild command, because the revision changes without any input file changing: the script runs before
/// every build and rewrites its output only when the content differs, so an unchanged tree recompiles nothing.
/// `/bin/sh` is the tool (a prebuild command cannot use an executable built by the package itself).
/// `OTA_CANCEL_REVISION`, when set in the build's environment, is passed on: a Docker build has no `.git`.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let script = context.package.directoryURL.appending(path: "scripts/lib/build-info.sh")
        var environment: [String: String] = [:]
        if let revision = ProcessInfo.processInfo.environment["OTA_CANCEL_REVISION"] {
            environment["OTA_CANCEL_REVISION"] = revision
        }
        return [
            .prebuildCommand(
                displayName: "Build info (git revision, embedded schemas) for \(target.name)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path(), context.package.directoryURL.path(), output.path()],
                environment: environment,
                outputFilesDirectory: output
            )
        ]
    }
}
