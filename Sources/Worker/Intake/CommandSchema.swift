// SPDX-License-Identifier: Apache-2.0
public import JSONSchema
import Foundation

/// The compiled command schema, with the worker's configured limits applied.
public struct CommandSchema: Sendable {
    /// The validator; format assertion is on, so a malformed `deadline` is an error like any other.
    public let validator: JSONSchemaValidator

    /// Compiles `cancel-command.schema.json`.
    ///
    /// - Parameters:
    ///   - document: the schema as parsed from the file.
    ///   - maxDeviceNames: lowers `properties.deviceNames.maxItems` when smaller than the schema's own value, so
    ///     the error a user sees names the effective limit.
    public init(document: JSONValue, maxDeviceNames: Int?) throws(WorkerError) {
        var document = document
        if let maxDeviceNames, case .object(var root) = document,
            case .object(var properties)? = root["properties"],
            case .object(var deviceNames)? = properties["deviceNames"]
        {
            let current = deviceNames["maxItems"]?.numberValue?.int64Value.map(Int.init) ?? Int.max
            if maxDeviceNames < current {
                deviceNames["maxItems"] = .number(JSONNumber(maxDeviceNames))
                properties["deviceNames"] = .object(deviceNames)
                root["properties"] = .object(properties)
                document = .object(root)
            }
        }
        do {
            validator = try JSONSchemaValidator(schema: document, options: .init(formatAssertion: true))
        } catch {
            throw WorkerError.invalidSchema("\(error)")
        }
    }

    /// Loads and compiles the schema file.
    public static func load(path: String, maxDeviceNames: Int?) throws(WorkerError) -> CommandSchema {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkerError.schemaNotFound(path)
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(data)
        } catch {
            // Described by position and kind, never quoted: the path may name a file that was never a schema.
            throw WorkerError.invalidSchema("\(path): \(error.contentFreeDescription)")
        }
        return try CommandSchema(document: document, maxDeviceNames: maxDeviceNames)
    }
}
