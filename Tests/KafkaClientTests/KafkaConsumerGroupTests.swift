import Consumers
import Foundation
import KafkaClient
import NIOCore
import Producers
import Testing

/// What the consumers of a test processed, by consumer.
actor Processed {
    private(set) var values: [String] = []
    private(set) var byConsumer: [Int: Int] = [:]

    func add(_ value: String, by consumer: Int) {
        values.append(value)
        byConsumer[consumer, default: 0] += 1
    }

    func covers(_ expected: Set<String>) -> Bool { expected.isSubset(of: Set(values)) }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

func produce(_ values: [String], to topic: String, on broker: RunningBroker, partition: Int32? = nil) async throws {
    let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
    for value in values {
        _ = try await producer.produce(ProducerRecord(topic: topic, partition: partition, key: Array(value.utf8), value: Array(value.utf8)))
    }
    await producer.close()
}

@Suite(.serialized) struct KafkaConsumerGroupTests {
    func groupConfiguration(_ broker: RunningBroker, group: String) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: group)
        configuration.autoOffsetReset = .earliest
        configuration.heartbeatIntervalMs = 100
        configuration.sessionTimeoutMs = 6000
        configuration.autoCommitIntervalMs = 200
        return configuration
    }

    /// Reads `consumer.records` into `processed` until the consumer closes.
    func reader(_ consumer: KafkaConsumer, _ index: Int, _ processed: Processed) -> Task<Void, Error> {
        Task {
            for try await record in consumer.records {
                await processed.add(String(buffer: record.value ?? ByteBuffer()), by: index)
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func threeConsumersSplitSixPartitionsAndTakeOverWhenOneLeaves() async throws {
        let broker = try RunningBroker(overrides: ["group.initial.rebalance.delay.ms=0"])
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        try await KafkaAdminClient(client: client).createTopics([NewTopic(name: "events", partitions: 6)])
        await client.close()
        let first = (0..<600).map { "a\($0)" }
        try await produce(first, to: "events", on: broker)

        let processed = Processed()
        var consumers: [KafkaConsumer] = []
        var readers: [Task<Void, Error>] = []
        for index in 0..<3 {
            let consumer = try KafkaConsumer(configuration: groupConfiguration(broker, group: "splitters"))
            try await consumer.subscribe(topics: ["events"])
            consumers.append(consumer)
            readers.append(reader(consumer, index, processed))
        }
        // Two partitions each, together all six.
        let split = await eventually(within: 30) {
            var all: [TopicPartition] = []
            for consumer in consumers {
                let assigned = await consumer.currentAssignment
                guard assigned.count == 2 else { return false }
                all += assigned
            }
            return Set(all).count == 6
        }
        #expect(split)
        #expect(await eventually(within: 30) { await processed.covers(Set(first)) })

        // One leaves; the other two take its partitions over and read what comes next.
        await consumers[2].close()
        _ = try await readers[2].value
        let tookOver = await eventually(within: 30) {
            let a = await consumers[0].currentAssignment, b = await consumers[1].currentAssignment
            return a.count == 3 && b.count == 3 && Set(a + b).count == 6
        }
        #expect(tookOver)
        let second = (0..<600).map { "b\($0)" }
        try await produce(second, to: "events", on: broker)
        #expect(await eventually(within: 30) { await processed.covers(Set(first + second)) })
        for consumer in consumers.prefix(2) { await consumer.close() }
        for reader in readers { _ = try await reader.value }

        // Every record processed at least once; both survivors read some of the second half.
        let values = await processed.values
        #expect(Set(values) == Set(first + second))
        let counts = await processed.byConsumer
        #expect(counts[0, default: 0] > 0 && counts[1, default: 0] > 0)
    }

    @Test(.timeLimit(.minutes(2))) func commitsSurviveABrokerRestartAndANewMemberResumesThere() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=2", "group.initial.rebalance.delay.ms=0"])
        try await produce((0..<100).map { "r\($0)" }, to: "durable", on: broker)
        var configuration = groupConfiguration(broker, group: "restarters")
        configuration.enableAutoCommit = false
        var consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["durable"])
        var seen: [String] = []
        for try await record in consumer.records {
            seen.append(String(buffer: record.value ?? ByteBuffer()))
            if seen.count == 60 { break }
        }
        try await consumer.commit()

        // The broker goes away and comes back; the same consumer goes on from its commits.
        try broker.restart()
        try await produce((100..<120).map { "r\($0)" }, to: "durable", on: broker)
        for try await record in consumer.records {
            seen.append(String(buffer: record.value ?? ByteBuffer()))
            if Set(seen).count == 120 { break }
        }
        try await consumer.commit()
        await consumer.close()
        #expect(Set(seen) == Set((0..<120).map { "r\($0)" }))

        // After another restart a new member starts at the committed offsets: only what is new.
        try broker.restart()
        consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["durable"])
        try await produce(["late"], to: "durable", on: broker)
        var iterator = consumer.records.makeAsyncIterator()
        let next = try await iterator.next()
        #expect(next.map { String(buffer: $0.value ?? ByteBuffer()) } == "late")
        await consumer.close()
    }

    @Test(.timeLimit(.minutes(1))) func metadataMaxAgeBringsNewPartitionsToProducerAndGroup() async throws {
        let broker = try RunningBroker(overrides: ["group.initial.rebalance.delay.ms=0"])
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        let admin = KafkaAdminClient(client: client)
        try await admin.createTopics([NewTopic(name: "growing", partitions: 1)])
        var configuration = groupConfiguration(broker, group: "growers")
        configuration.metadataMaxAgeMs = 300
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["growing"])
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        producerConfiguration.metadataMaxAgeMs = 300
        let producer = try KafkaProducer(configuration: producerConfiguration)
        #expect(try await producer.send(ProducerRecord(topic: "growing", key: Array("k0".utf8), value: Array("k0".utf8))).partition == 0)

        try await admin.createPartitions("growing", totalCount: 3)
        // Keyed records spread over three partitions once the producer's metadata is refreshed.
        var partitions: Set<Int32> = []
        var sent: [String] = []
        let spread = try await eventually(within: 10) {
            let value = "k\(sent.count + 1)"
            sent.append(value)
            partitions.insert(try await producer.send(ProducerRecord(topic: "growing", key: Array(value.utf8), value: Array(value.utf8))).partition)
            return partitions.count == 3
        }
        #expect(spread)
        await producer.close()
        // The group rebalances and reads the new partitions too.
        let processed = Processed()
        let reading = reader(consumer, 0, processed)
        #expect(await eventually(within: 20) { await processed.covers(Set(["k0"] + sent)) })
        #expect(await eventually(within: 5) { await consumer.currentAssignment.count == 3 })
        await consumer.close()
        _ = try await reading.value
        await client.close()
    }
}
