// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import Worker

/// The optional configuration file (`--config FILE` or `OTA_CANCEL_CONFIG`): one JSON object whose keys are the
/// option names without their dashes prefix (`"broker-host"`, `"platform-qps"`, `"reply-topic-allow"`).
///
/// It is the last place a setting is looked for: a flag beats its environment variable, which beats the file,
/// which beats the default. JSON because the project parses it exactly already (duplicate keys are refused,
/// numbers keep their literal); a value may be a string, a number, a boolean, or (for list options) an array of
/// strings. A key that names no option is an error, so a typo cannot silently leave a default in place. Secrets
/// themselves are refused: the file names the files that hold them (`access-key-secret-file`,
/// `broker-password-file`), so that the configuration can be shared and versioned.
struct ConfigurationFile {
    /// The file's path, as given (named in errors).
    let path: String
    /// Each key's value as the text a flag or variable would carry.
    let values: [String: String]

    /// Keys refused because they would put a secret in the file, with the setting to use instead.
    static let secretKeys = [
        "access-key-secret": "access-key-secret-file",
        "broker-password": "broker-password-file",
    ]

    /// Reads and checks the file.
    ///
    /// Errors name the file, a position and keys, never a value or a character of it: a secret file given as
    /// `--config` by mistake must not be printed (see ``FileDiagnostics``).
    ///
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` naming the file (and the key) when it cannot be
    ///   read, is not a JSON object, holds a secret, or has a value of the wrong kind.
    static func load(path: String) throws(WorkerError) -> ConfigurationFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidConfiguration("config: cannot read '\(path)'")
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(data)
        } catch {
            throw .invalidConfiguration("config: '\(path)' is not valid JSON: \(FileDiagnostics.notJSON(error))")
        }
        guard let object = document.objectValue else {
            throw .invalidConfiguration("config: '\(path)' must hold one JSON object of option names and values")
        }
        var values = [String: String]()
        for (key, value) in object {
            if let instead = secretKeys[key] {
                throw .invalidConfiguration(
                    "\(key) (in \(path)): a secret does not belong in the configuration file; set \(instead) instead"
                )
            }
            switch value {
            case .string(let text): values[key] = text
            case .number(let number): values[key] = number.literal
            case .bool(let flag): values[key] = flag ? "true" : "false"
            case .array(let items):
                let texts = items.compactMap(\.stringValue)
                guard texts.count == items.count else {
                    throw .invalidConfiguration("\(FileDiagnostics.key(key)) (in \(path)) must be an array of strings")
                }
                values[key] = texts.joined(separator: ",")
            case .null, .object:
                throw .invalidConfiguration(
                    "\(FileDiagnostics.key(key)) (in \(path)) must be a string, a number or a boolean"
                )
            }
        }
        return ConfigurationFile(path: path, values: values)
    }

    /// Refuses keys that name no option (`known`: every option the resolver looked up).
    func checkKeys(known: Set<String>) throws(WorkerError) {
        let unknown = values.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw .invalidConfiguration(
                "config: '\(path)' has unknown option\(unknown.count == 1 ? "" : "s") "
                    + unknown.map { key in
                        FileDiagnostics.key(key)
                            + (ClosestName.closest(to: key, among: known).map { " (did you mean \"\($0)\"?)" } ?? "")
                    }.joined(separator: ", ")
                    + " (keys are option names without the dashes, e.g. \"broker-host\")"
            )
        }
    }
}
