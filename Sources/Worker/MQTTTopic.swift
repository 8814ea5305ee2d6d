// SPDX-License-Identifier: Apache-2.0

/// MQTT topic rules the worker needs: is a string a publishable topic name, and does it match a filter.
public enum MQTTTopic {
    /// Why a string cannot be used as a topic to publish to, or `nil` when it can.
    ///
    /// MQTT 3.1.1 §4.7 / 5.0 §4.7: at least one character, at most 65,535 UTF-8 bytes, no `+`, `#` or NUL.
    /// Topics starting with `$` are reserved for the broker and refused too.
    public static func problemWithTopicName(_ topic: String) -> String? {
        if topic.isEmpty { return "the topic is empty" }
        if topic.utf8.count > 65_535 { return "the topic is longer than 65,535 bytes" }
        if topic.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }) {
            return "the topic contains a wildcard ('+' or '#')"
        }
        if topic.utf8.contains(0) { return "the topic contains a NUL character" }
        if topic.hasPrefix("$") { return "topics starting with '$' are reserved for the broker" }
        return nil
    }

    /// Whether `topic` matches the subscription filter `filter` (`+` one level, `#` this level and below).
    ///
    /// `a/#` matches `a` itself too, as MQTT specifies.
    public static func matches(topic: String, filter: String) -> Bool {
        let topicLevels = topic.split(separator: "/", omittingEmptySubsequences: false)
        let filterLevels = filter.split(separator: "/", omittingEmptySubsequences: false)
        var index = 0
        while index < filterLevels.count {
            let level = filterLevels[index]
            if level == "#" { return index == filterLevels.count - 1 }
            guard index < topicLevels.count else { return false }
            if level != "+" && level != topicLevels[index] { return false }
            index += 1
        }
        return topicLevels.count == filterLevels.count
    }
}
