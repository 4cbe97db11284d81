import KafkaClient
import KafkaWire
import Testing

@Suite(.serialized) struct KafkaAdminClientTests {
    @Test func createDescribeListDelete() async throws {
        let broker = try RunningBroker()
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        let admin = KafkaAdminClient(client: client)
        try await admin.createTopics([NewTopic(name: "orders", partitions: 3, configs: ["retention.ms": "60000"])])
        // validate_only creates nothing.
        try await admin.createTopics([NewTopic(name: "dry-run", partitions: 1)], validateOnly: true)
        let topics = try await admin.listTopics()
        #expect(topics["orders"] == 3 && topics["dry-run"] == nil)
        let configs = try await admin.describeTopicConfigs("orders")
        #expect(configs["retention.ms"] == TopicConfigEntry(name: "retention.ms", value: "60000", isOverride: true))
        #expect(configs["segment.bytes"]?.isOverride == false)
        // Refusals carry the Kafka error and the topic.
        do {
            try await admin.createTopics([NewTopic(name: "orders", partitions: 1)])
            Issue.record("created twice")
        } catch let error as KafkaClientError {
            guard case .broker(let code) = error.kind else { Issue.record("\(error)"); return }
            #expect(code == .topicAlreadyExists && error.message.contains("orders"))
        }
        try await admin.deleteTopics(["orders"])
        #expect(try await admin.listTopics()["orders"] == nil)
        await #expect(throws: KafkaClientError.self) { try await admin.deleteTopics(["orders"]) }
        await client.close()
    }
}
