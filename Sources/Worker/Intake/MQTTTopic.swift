// SPDX-License-Identifier: Apache-2.0
import Mosquitto

/// MQTT topic rules the worker needs: is a string a publishable topic name, and does it match a filter.
public enum MQTTTopic {
    /// Why a string cannot be used as a topic to publish to, or `nil` when it can.
    ///
    /// libmosquitto's own verdict (``MQTTTopicName/problem(with:)``: at least one character, at most 65,535 UTF-8
    /// bytes, no `+` or `#`, none of the characters MQTT forbids in a UTF-8 string: U+0000, the control characters
    /// U+0001–U+001F and U+007F–U+009F, the noncharacters U+FDD0–U+FDEF and U+nFFFE/U+nFFFF), so a topic accepted
    /// here is one `mosquitto_publish_v5` accepts too. Topics starting with `$` are reserved for the broker and
    /// refused as well. The problem never quotes the topic.
    public static func problemWithTopicName(_ topic: String) -> String? {
        if let problem = MQTTTopicName.problem(with: topic) { return problem }
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
