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
}
