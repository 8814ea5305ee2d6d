// SPDX-License-Identifier: Apache-2.0
import Crypto
import JSONSchema

/// The canonical form of a payload: what "the same command" means for deduplication.
///
/// Object keys sorted by Unicode scalars at every level, compact serialisation, numbers as written: two
/// payloads that differ only in key order or whitespace are the same command; any other difference
/// (another device, another deadline, another reason) makes a different one.
enum Canonical {
    static func digest(of value: JSONValue) -> [UInt8] {
        Array(SHA256.hash(data: sorted(value).serializedBytes()))
    }

    private static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements):
            return .array(elements.map(sorted))
        case .object(let object):
            let pairs = object.map { ($0.key, sorted($0.value)) }
                .sorted { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
            return .object(JSONObject(pairs))
        default:
            return value
        }
    }
}
