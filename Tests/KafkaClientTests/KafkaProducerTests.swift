import KafkaClient
import KafkaWire
import Producers
import Testing

@Suite(.serialized) struct KafkaProducerTests {
    /// Java's murmur2, checked against pairs computed by an independent port (kafka-python's).
    @Test func murmur2MatchesJava() {
        let cases: [([UInt8], UInt32, Int32)] = [
            ([], 275_646_681, 3), (Array("a".utf8), 2_731_586_172, 4), (Array("ab".utf8), 316_155_434, 2),
            (Array("abc".utf8), 479_470_107, 3), (Array("key".utf8), 3_215_029_929, 1),
            (Array("user-42".utf8), 1_459_644_460, 4), (Array("21".utf8), 3_321_034_988, 0),
            ([0xFF, 0xFE, 0xFD, 0x80, 0x7F], 3_071_191_806, 4),
        ]
        for (key, hash, partitionOf6) in cases {
            #expect(UInt32(bitPattern: Partitioner.murmur2(key)) == hash, "\(key)")
            #expect(Partitioner.partition(forKey: key, count: 6) == partitionOf6, "\(key)")
        }
    }

    @Test func sendsKeyedRecordsToTheirPartitionsInOrder() async throws {
        let broker = try RunningBroker()
        let admin = try KafkaClient(bootstrapServers: broker.bootstrap)
        _ = try await admin.refreshMetadata(topics: [])
        let created = try await admin.connection(to: 0).send(CreateTopicsRequest(topics: [.init(name: "keyed", numPartitions: 6, replicationFactor: 1)]))
        #expect(created.topics.first?.errorCode == 0)
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.compression = .zstd
        let producer = try KafkaProducer(configuration: configuration)
        let results = try await withThrowingTaskGroup(of: (Int, RecordMetadata).self) { group in
            for i in 0..<200 {
                group.addTask {
                    (i, try await producer.send(ProducerRecord(topic: "keyed", key: Array("key-\(i % 20)".utf8), value: Array("value-\(i)".utf8))))
                }
            }
            return try await group.reduce(into: [Int: RecordMetadata]()) { $0[$1.0] = $1.1 }
        }
        await producer.close()
        #expect(results.count == 200)
        for (i, metadata) in results {
            #expect(metadata.partition == Partitioner.partition(forKey: Array("key-\(i % 20)".utf8), count: 6))
        }
        // Offsets are dense per partition: every record written once.
        for partition in Int32(0)..<6 {
            let offsets = results.values.filter { $0.partition == partition }.map(\.offset).sorted()
            #expect(offsets == Array(0..<Int64(offsets.count)))
        }
        await admin.close()
    }

    @Test func unknownTopicWithoutAutoCreationFailsClearly() async throws {
        let broker = try RunningBroker(overrides: ["auto.create.topics.enable=false"])
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
        do {
            _ = try await producer.send(ProducerRecord(topic: "missing", value: [1]))
            Issue.record("sent to a missing topic")
        } catch let error as KafkaClientError {
            #expect(error.message.contains("missing"))
        }
        await producer.close()
    }
}
