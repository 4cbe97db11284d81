import Consumers
import Foundation
import KafkaClient
import KafkaWire
import Producers
import Testing

/// One client core for a process (issue 27): a producer, a consumer and an admin client on one
/// `KafkaClient` share its metadata and its connections, a consumer's parked Fetch delays none of
/// the others, and closing one of them leaves the client to the rest.
@Suite(.serialized) struct SharedClientTests {
    @Test(.timeLimit(.minutes(1))) func aProducerAConsumerAndAnAdminClientShareOneClient() async throws {
        let broker = try RunningBroker()
        let client = try KafkaClient(bootstrapServers: broker.bootstrap, clientId: "shared")
        let admin = KafkaAdminClient(client: client)
        try await admin.createTopics([NewTopic(name: "orders", partitions: 2), NewTopic(name: "audit", partitions: 1)])

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: "unused:1", groupId: "shared-group")
        consumerConfiguration.autoOffsetReset = .earliest
        // At the log end a Fetch parks at the broker for 30 s: far longer than 20 sends take even under
        // ThreadSanitizer (5 s there), so a send queued behind it cannot pass for one that was not.
        consumerConfiguration.fetchMaxWaitMs = 30_000
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, client: client)
        try await consumer.subscribe(topics: ["orders"])
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: "unused:1")
        producerConfiguration.lingerMs = 0
        let producer = try KafkaProducer(configuration: producerConfiguration, client: client)

        // The consumer waits at the end of the empty "orders", its Fetch parked at the broker.
        let reader = Task {
            var values: [String] = []
            for try await record in consumer.records {
                values.append(record.valueString ?? "")
                if values.count == 20 { break }
            }
            return values
        }
        // Once assigned, the consumer fetches from the log end and its Fetch parks.
        for await event in consumer.events {
            if case .partitionsAssigned = event { break }
        }
        try await Task.sleep(for: .milliseconds(500))
        // Sends to another topic go on the shared client's produce connection, not behind the parked
        // Fetch: on the Fetch's connection the first would wait out fetch.max.wait.ms.
        let started = ContinuousClock.now
        for i in 0..<20 {
            _ = try await producer.send(ProducerRecord(topic: "audit", value: "a\(i)"))
        }
        #expect(ContinuousClock.now - started < .seconds(15), "awaited sends waited behind the consumer's parked Fetch")
        for i in 0..<20 {
            _ = try await producer.send(ProducerRecord(topic: "orders", key: "k\(i % 4)", value: "v\(i)"))
        }
        let values = try await reader.value
        #expect(Set(values) == Set((0..<20).map { "v\($0)" }))
        try await consumer.commit()

        // One metadata cache: what the producer and the consumer learned is the client's.
        let metadata = try #require(await client.metadata)
        #expect(metadata.partitionCount(of: "orders") == 2)
        #expect(metadata.topicId(of: "orders") != .zero)

        // Closing the producer leaves the client open: the admin client and a second producer go on.
        await producer.close()
        #expect(try await admin.listTopics()["audit"] == 1)
        let second = try KafkaProducer(configuration: producerConfiguration, client: client)
        let landed = try await second.send(ProducerRecord(topic: "orders", partition: 1, value: "after"))
        #expect(landed.partition == 1)
        await second.close()

        // The consumer's close commits and leaves; the client still answers.
        await consumer.close()
        let committed = try await admin.committedOffsets("shared-group")
        #expect(committed.values.reduce(0, +) == 20)
        #expect(try await admin.listTopics()["orders"] == 2)
        await client.close()
    }

    @Test func theClientsTopicIdIndexFollowsEachRefresh() async throws {
        let broker = try RunningBroker()
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        let admin = KafkaAdminClient(client: client)
        try await admin.createTopics([NewTopic(name: "a", partitions: 3), NewTopic(name: "b", partitions: 1)])
        let metadata = try await client.refreshMetadata(topics: nil)
        let idA = metadata.topicId(of: "a"), idB = metadata.topicId(of: "b")
        #expect(idA != .zero && idB != .zero && idA != idB)
        #expect(metadata.topicName("", id: idA) == "a")
        #expect(metadata.topicName("named", id: idA) == "named", "an answer's own name wins")
        #expect(metadata.leader(of: TopicPartition("a", 2)) != nil)
        #expect(metadata.leader(of: TopicPartition("a", 3)) == nil)
        try await admin.deleteTopics(["a"])
        let after = try await client.refreshMetadata(topics: nil)
        #expect(after.topicName("", id: idA) == "", "a deleted topic's id names nothing")
        #expect(after.topicName("", id: idB) == "b")
        await client.close()
    }
}

/// `ClusterMetadata`'s lookups on a hand-built cache.
struct ClusterMetadataTests {
    @Test func leadersOfSparseAndDensePartitions() {
        let id = KafkaUUID(high: 1, low: 2)
        let metadata = ClusterMetadata(topics: [
            "dense": TopicInfo(name: "dense", id: id, partitions: [.init(partition: 0, leader: 1), .init(partition: 1, leader: -1)]),
            // Not 0..<count (a partition the broker did not list): found by number, not position.
            "sparse": TopicInfo(name: "sparse", id: .zero, partitions: [.init(partition: 1, leader: 7), .init(partition: 4, leader: 8)]),
        ])
        #expect(metadata.leader(of: TopicPartition("dense", 0)) == 1)
        #expect(metadata.leader(of: TopicPartition("dense", 1)) == nil, "leader -1: none now")
        #expect(metadata.leader(of: TopicPartition("sparse", 1)) == 7)
        #expect(metadata.leader(of: TopicPartition("sparse", 4)) == 8)
        #expect(metadata.leader(of: TopicPartition("sparse", 0)) == nil)
        #expect(metadata.leader(of: TopicPartition("sparse", -1)) == nil)
        #expect(metadata.leader(of: TopicPartition("unknown", 0)) == nil)
        #expect(metadata.partitionCount(of: "dense") == 2)
        #expect(metadata.partitionCount(of: "unknown") == nil)
        #expect(metadata.topicName(nil, id: id) == "dense")
        #expect(metadata.topicName(nil, id: .zero) == "", "the zero id is no topic's")
    }
}
