// SPDX-License-Identifier: Apache-2.0
import Testing
import Worker

@Suite("MQTT topic rules")
struct MQTTTopicTests {
    @Test(
        "filter matching",
        arguments: [
            ("ota/cancel/reply", "ota/cancel/reply/#", true),
            ("ota/cancel/reply/a", "ota/cancel/reply/#", true),
            ("ota/cancel/reply/a/b", "ota/cancel/reply/#", true),
            ("ota/cancel/replyx", "ota/cancel/reply/#", false),
            ("ota/cancel", "ota/cancel/reply/#", false),
            ("ota/cancel/reply/a", "ota/cancel/reply/+", true),
            ("ota/cancel/reply/a/b", "ota/cancel/reply/+", false),
            ("ota/cancel/reply", "ota/cancel/reply/+", false),
            ("a/b/c", "+/b/+", true),
            ("a//c", "a/+/c", true),
            ("anything/at/all", "#", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
        ]
    )
    func matching(topic: String, filter: String, expected: Bool) {
        #expect(MQTTTopic.matches(topic: topic, filter: filter) == expected)
    }

    @Test("publishable topic names")
    func topicNames() {
        #expect(MQTTTopic.problemWithTopicName("ota/cancel/reply/x") == nil)
        #expect(MQTTTopic.problemWithTopicName("") != nil)
        #expect(MQTTTopic.problemWithTopicName("a/+/b") != nil)
        #expect(MQTTTopic.problemWithTopicName("a/#") != nil)
        #expect(MQTTTopic.problemWithTopicName("a\u{0}b") != nil)
        #expect(MQTTTopic.problemWithTopicName("$SYS/x") != nil)
        #expect(MQTTTopic.problemWithTopicName(String(repeating: "a", count: 65_536)) != nil)
    }

    @Test(
        "topic filters: # only as the whole last level, + only as a whole level, not empty, no NUL, 65,535 bytes",
        arguments: [
            ("ota/cancel/request", nil),
            ("#", nil),
            ("+", nil),
            ("ota/#", nil),
            ("ota/+/request", nil),
            ("+/+/#", nil),
            ("/", nil),
            ("a//b", nil),
            ("$SYS/#", nil),
            (String(repeating: "a", count: 65_535), nil),
            ("", "empty"),
            ("ota/#/x", "last level"),
            ("#/x", "last level"),
            ("ota/a#", "whole level"),
            ("ota/#a", "whole level"),
            ("ota/a+/b", "'+' must be a whole level"),
            ("ota/+a", "'+' must be a whole level"),
            ("ota/\u{0}/x", "NUL"),
            (String(repeating: "a", count: 65_536), "65535 UTF-8 bytes, this one has 65536"),
            // Bytes, not characters: 32,768 two-byte characters are 65,536 bytes.
            (String(repeating: "é", count: 32_768), "this one has 65536"),
        ] as [(String, String?)]
    )
    func filters(filter: String, problem: String?) {
        let found = MQTTTopic.problemWithTopicFilter(filter)
        if let problem {
            #expect(found?.contains(problem) == true, "\(filter.prefix(40)): \(found ?? "accepted")")
        } else {
            #expect(found == nil, "\(filter.prefix(40)): \(found ?? "")")
        }
    }

    @Test(
        "the subscription: a filter, or $share/<group>/<filter> with a group and a valid filter",
        arguments: [
            ("ota/cancel/request", nil),
            ("$share/workers/ota/cancel/request", nil),
            ("$share/g/#", nil),
            ("$share/g/ota/+/request", nil),
            ("ota/#/x", "last level"),
            ("$share", "group is missing"),
            ("$share/", "group is missing"),
            ("$share/g", "filter after the group is missing"),
            ("$share/g/", "filter after the group is missing"),
            ("$share//ota/x", "group is empty"),
            ("$share/g+/ota/x", "group cannot contain"),
            ("$share/#/ota/x", "group cannot contain"),
            ("$share/g/ota/#/x", "$share/<group>/<filter>: '#' may only be the last level"),
            ("$share/g/a+", "'+' must be a whole level"),
        ] as [(String, String?)]
    )
    func subscriptions(subscription: String, problem: String?) {
        let found = MQTTTopic.problemWithSubscription(subscription)
        if let problem {
            #expect(found?.contains(problem) == true, "\(subscription): \(found ?? "accepted")")
        } else {
            #expect(found == nil, "\(subscription): \(found ?? "")")
        }
    }
}
