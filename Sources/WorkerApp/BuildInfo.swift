// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What was built: the version, the git revision (baked in by the BuildInfoPlugin) and the schemas embedded in
/// the binary.
public enum BuildInfo {
    /// The release version, bumped by hand with each release.
    public static let version = "0.12.0"

    /// The git revision the binary was built from (12 hex digits, `-dirty` when tracked files had changes), the
    /// Docker build's `OTA_CANCEL_REVISION`, or `unknown` when neither was known.
    public static let revision = GeneratedBuildInfo.revision

    /// `ota-cancel-worker 0.12.0 (revision 1a2b3c4d5e6f)`: what `--version` prints.
    public static var versionLine: String { "ota-cancel-worker \(version) (revision \(revision))" }

    /// The file names of the embedded schemas, as in `schemas/`.
    public static var embeddedSchemaNames: [String] { GeneratedBuildInfo.schemasBase64.keys.sorted() }

    /// The bytes of the embedded schema `name` (e.g. `cancel-command.schema.json`), exactly as in `schemas/` at
    /// build time; `nil` for a name that was not embedded.
    static func embeddedSchema(_ name: String) -> Data? {
        GeneratedBuildInfo.schemasBase64[name].flatMap { Data(base64Encoded: $0) }
    }
}
