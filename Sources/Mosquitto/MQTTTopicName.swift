// SPDX-License-Identifier: Apache-2.0
import CMosquitto

/// libmosquitto's own rules for a topic name a client may publish to, asked of libmosquitto itself.
///
/// `mosquitto_publish_v5` refuses a topic that `mosquitto_validate_utf8` or `mosquitto_pub_topic_check2` rejects
/// (`MOSQ_ERR_MALFORMED_UTF8`, `MOSQ_ERR_INVAL`), and nothing about the message can change that verdict later.
/// Callers that take a topic from untrusted input (a requester's reply topic) check it with ``problem(with:)``
/// when it arrives, so that a message is refused at once instead of failing at every publication attempt.
/// The verdict is libmosquitto's, not a copy of its rules: the two cannot drift apart.
public enum MQTTTopicName {
    /// The most bytes a topic name may have (MQTT 3.1.1 and 5.0 §1.5.4: a UTF-8 string has a 2-byte length).
    public static let maximumBytes = 65_535

    /// Why libmosquitto would refuse to publish to `topic`, or `nil` when it would not.
    ///
    /// Refused: the empty topic; more than 65,535 bytes; `+` or `#`; and any character MQTT forbids in a UTF-8
    /// string: U+0000, the control characters U+0001–U+001F and U+007F–U+009F, and the noncharacters
    /// U+FDD0–U+FDEF and U+nFFFE/U+nFFFF (MQTT 5.0 §1.5.4, as libmosquitto 2.0 applies it).
    /// - Parameter topic: the topic name to check.
    /// - Returns: a sentence naming the problem (and, for a forbidden character, its code point and position),
    ///   without quoting the topic itself.
    public static func problem(with topic: String) -> String? {
        let bytes = Array(topic.utf8)
        if bytes.isEmpty { return "the topic is empty" }
        if bytes.count > maximumBytes {
            return "the topic has \(bytes.count) bytes, more than MQTT's limit of 65,535"
        }
        if utf8Result(bytes) != MOSQ_ERR_SUCCESS.rawValue {
            // Each code point is judged on its own by libmosquitto, so the first one it refuses alone is the culprit.
            for (index, scalar) in topic.unicodeScalars.enumerated()
            where utf8Result(Array(String(scalar).utf8)) != MOSQ_ERR_SUCCESS.rawValue {
                return "the topic contains \(codePoint(scalar)) (\(kind(of: scalar))) at character \(index + 1), "
                    + "which MQTT does not allow in a topic name"
            }
            return "the topic is not valid MQTT UTF-8"
        }
        let check = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { mosquitto_pub_topic_check2($0.baseAddress, $0.count) }
        }
        if check != MOSQ_ERR_SUCCESS.rawValue {
            if bytes.contains(UInt8(ascii: "+")) || bytes.contains(UInt8(ascii: "#")) {
                return "the topic contains a wildcard ('+' or '#')"
            }
            return "libmosquitto refuses the topic (\(MosquittoError.ResultCode(rawValue: check).name))"
        }
        return nil
    }

    private static func utf8Result(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { mosquitto_validate_utf8($0.baseAddress, Int32($0.count)) }
        }
    }

    private static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    private static func kind(of scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0: "NUL"
        case 0x01...0x1F, 0x7F...0x9F: "a control character"
        case 0xFDD0...0xFDEF: "a noncharacter"
        case let value where value & 0xFFFE == 0xFFFE: "a noncharacter"
        default: "a character libmosquitto refuses"
        }
    }
}
