// SPDX-License-Identifier: Apache-2.0
import Mosquitto

/// MQTT topic rules the worker needs: is a string a publishable topic name or a subscribable filter, and does a
/// topic match a filter.
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

    /// Why a string cannot be subscribed to as a topic filter, or `nil` when it can (MQTT 5.0 §4.7, 3.1.1 §4.7).
    ///
    /// At least one character, at most 65,535 UTF-8 bytes, no U+0000; `#` only as the whole of the last level
    /// (`ota/#`, `#`), `+` only as a whole level (`ota/+/reply`). A broker refuses anything else: mosquitto
    /// closes the connection on such a SUBSCRIBE, so a worker with a bad command topic would reconnect for ever.
    /// The problem never quotes the filter (the caller names the setting and may quote it escaped).
    public static func problemWithTopicFilter(_ filter: String) -> String? {
        let bytes = filter.utf8.count
        if bytes == 0 { return "a topic filter cannot be empty" }
        if bytes > MQTTTopicName.maximumBytes {
            return "a topic filter is at most \(MQTTTopicName.maximumBytes) UTF-8 bytes, this one has \(bytes)"
        }
        if filter.unicodeScalars.contains("\u{0}") { return "a topic filter cannot contain the NUL character" }
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.contains("#") {
                guard level == "#" else { return "'#' must be a whole level, alone in it (as in ota/cancel/#)" }
                guard index == levels.count - 1 else {
                    return "'#' may only be the last level (it matches everything below: ota/cancel/#)"
                }
            }
            if level.contains("+"), level != "+" {
                return "'+' must be a whole level, alone in it (as in ota/+/request)"
            }
        }
        return nil
    }

    /// Why a string cannot be the worker's subscription, or `nil` when it can: a topic filter, or a shared
    /// subscription `$share/<group>/<filter>` whose group is not empty and has no `+`, `#` or `/`, and whose
    /// filter is valid.
    public static func problemWithSubscription(_ subscription: String) -> String? {
        let prefix = "$share/"
        guard subscription.hasPrefix(prefix) || subscription == "$share" else {
            return problemWithTopicFilter(subscription)
        }
        if subscription.utf8.count > MQTTTopicName.maximumBytes {
            return "a topic filter is at most \(MQTTTopicName.maximumBytes) UTF-8 bytes, "
                + "this one has \(subscription.utf8.count)"
        }
        let rest = subscription.dropFirst(prefix.count)
        let shape = "a shared subscription is $share/<group>/<filter>"
        guard let slash = rest.firstIndex(of: "/") else {
            return rest.isEmpty ? "\(shape): the group is missing" : "\(shape): the filter after the group is missing"
        }
        let group = rest[..<slash]
        if group.isEmpty { return "\(shape): the group is empty" }
        if group.contains("+") || group.contains("#") { return "\(shape): the group cannot contain '+' or '#'" }
        let filter = String(rest[rest.index(after: slash)...])
        if filter.isEmpty { return "\(shape): the filter after the group is missing" }
        return problemWithTopicFilter(filter).map { "\(shape): \($0)" }
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
