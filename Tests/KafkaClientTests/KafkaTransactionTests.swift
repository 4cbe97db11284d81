import Consumers
import Foundation
import KafkaClient
import KafkaWire
import Producers
import Testing

/// The transactional producer and the read_committed consumer against a real minibroker (issue 23):
/// what commits is read, what aborts is not, offsets commit with the output, a second producer
/// with the same id fences the first, and misuse gets typed errors.
@Suite(.serialized) struct KafkaTransactionTests {
    static func producer(_ broker: RunningBroker, id: String) throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.transactionalId = id
        configuration.lingerMs = 1
        return try KafkaProducer(configuration: configuration)
    }

    /// The first `count` values of `topic`'s partition 0 a consumer at this isolation level reads:
    /// an aborted record read_committed let through would show among them (each test aborts before
    /// it commits more).
    static func values(_ broker: RunningBroker, _ topic: String, _ isolation: IsolationLevel, count: Int) async throws -> [String] {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.isolationLevel = isolation
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        await consumer.assign([TopicPartition(topic, 0)])
        var values: [String] = []
        for try await record in consumer.records {
            values.append(record.valueString ?? "")
            if values.count == count { break }
        }
        await consumer.close()
        return values
    }

    static func send(_ producer: KafkaProducer, _ topic: String, _ values: [String]) async throws {
        for value in values { _ = try await producer.produce(ProducerRecord(topic: topic, partition: 0, value: Array(value.utf8))) }
    }

    @Test(.timeLimit(.minutes(1))) func committedRecordsAreReadAndAbortedOnesAreNot() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        let producer = try Self.producer(broker, id: "swift-app")
        try await producer.initTransactions()
        try await producer.beginTransaction()
        try await Self.send(producer, "out", ["a", "b"])
        try await producer.commitTransaction()
        try await producer.beginTransaction()
        try await Self.send(producer, "out", ["x"])
        try await producer.abortTransaction()
        try await producer.beginTransaction()
        try await Self.send(producer, "out", ["c"])
        try await producer.commitTransaction()
        await producer.close()
        #expect(try await Self.values(broker, "out", .readCommitted, count: 3) == ["a", "b", "c"])
        #expect(try await Self.values(broker, "out", .readUncommitted, count: 4) == ["a", "b", "x", "c"])
    }

    @Test(.timeLimit(.minutes(1))) func misuseGetsInvalidStateErrors() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        let producer = try Self.producer(broker, id: "misuse")
        await #expect { try await Self.send(producer, "out", ["early"]) } throws: { ($0 as? KafkaTransactionError)?.kind == .invalidState }
        await #expect { try await producer.beginTransaction() } throws: { ($0 as? KafkaTransactionError)?.kind == .invalidState }
        try await producer.initTransactions()
        await #expect { try await Self.send(producer, "out", ["outside"]) } throws: { ($0 as? KafkaTransactionError)?.kind == .invalidState }
        await #expect { try await producer.commitTransaction() } throws: { ($0 as? KafkaTransactionError)?.kind == .invalidState }
        try await producer.beginTransaction()
        await #expect { try await producer.beginTransaction() } throws: { ($0 as? KafkaTransactionError)?.kind == .invalidState }
        try await producer.abortTransaction()
        await producer.close()
        var plain = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        plain.transactionalId = "x"
        plain.enableIdempotence = false
        #expect(throws: KafkaClientError.self) { try KafkaProducer(configuration: plain) }
    }

    @Test(.timeLimit(.minutes(1))) func aSecondProducerWithTheSameIdFencesTheFirst() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        let first = try Self.producer(broker, id: "shared")
        try await first.initTransactions()
        try await first.beginTransaction()
        try await Self.send(first, "out", ["zombie"])
        await first.flush()
        let second = try Self.producer(broker, id: "shared")
        try await second.initTransactions()
        await #expect { try await first.commitTransaction() } throws: { ($0 as? KafkaTransactionError)?.kind == .fenced }
        // Once fenced, always fenced.
        await #expect { try await first.beginTransaction() } throws: { ($0 as? KafkaTransactionError)?.kind == .fenced }
        try await second.beginTransaction()
        try await Self.send(second, "out", ["fresh"])
        try await second.commitTransaction()
        await first.close()
        await second.close()
        #expect(try await Self.values(broker, "out", .readCommitted, count: 1) == ["fresh"])
    }

    @Test(.timeLimit(.minutes(1))) func aFailedRecordMakesTheTransactionAbortableAndTheNextOneCommits() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.transactionalId = "too-large"
        configuration.lingerMs = 1
        configuration.maxRequestSize = 4 << 20
        configuration.bufferMemory = 8 << 20
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.initTransactions()
        try await producer.beginTransaction()
        try await Self.send(producer, "out", ["kept-out"])
        // 2 MB is over the broker's max.message.bytes: the batch fails for good.
        _ = try await producer.produce(ProducerRecord(topic: "out", partition: 0, value: [UInt8](repeating: 0x61, count: 2 << 20)))
        await #expect { try await producer.commitTransaction() } throws: { ($0 as? KafkaTransactionError)?.kind == .abortable }
        try await producer.abortTransaction()
        // The failed batch's sequence left a gap: the producer moved to a new epoch, so this works.
        try await producer.beginTransaction()
        try await Self.send(producer, "out", ["after"])
        try await producer.commitTransaction()
        await producer.close()
        #expect(try await Self.values(broker, "out", .readCommitted, count: 1) == ["after"])
    }

    @Test(.timeLimit(.minutes(1))) func offsetsSentToTheTransactionCommitWithIt() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        var input = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        input.lingerMs = 1
        let feeder = try KafkaProducer(configuration: input)
        for i in 0..<50 { _ = try await feeder.produce(ProducerRecord(topic: "in", partition: 0, value: Array("\(i)".utf8))) }
        await feeder.close()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: "eos")
        configuration.autoOffsetReset = .earliest
        configuration.enableAutoCommit = false
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["in"])
        let producer = try Self.producer(broker, id: "eos-app")
        try await producer.initTransactions()
        var done = 0
        for try await batch in consumer.batches {
            try await producer.beginTransaction()
            for record in batch {
                _ = try await producer.produce(ProducerRecord(topic: "out", partition: 0, value: Array("out-\(record.valueString ?? "")".utf8)))
            }
            let next = Dictionary(batch.map { ($0.topicPartition, $0.offset + 1) }, uniquingKeysWith: { max($0, $1) })
            try await producer.sendOffsetsToTransaction(next, groupMetadata: try await consumer.groupMetadata())
            // The first batch is aborted: its output and its offsets go; the consumer goes back.
            if done == 0 {
                try await producer.abortTransaction()
                for (partition, _) in next { try await consumer.seek(partition, to: 0) }
                done = -1
                continue
            }
            try await producer.commitTransaction()
            done = max(done, 0) + batch.count
            if done >= 50 { break }
        }
        await consumer.close()
        await producer.close()
        let check = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: "eos"))
        #expect(try await check.committed([TopicPartition("in", 0)]) == [TopicPartition("in", 0): 50])
        await check.close()
        #expect(try await Self.values(broker, "out", .readCommitted, count: 50) == (0..<50).map { "out-\($0)" })
    }

    /// The producer speaks the transaction version the cluster finalized: at 2 every end moves it to
    /// the next epoch (KIP-890 part 2) and no AddPartitionsToTxn or AddOffsetsToTxn is sent; at 1 the
    /// epoch stays. Records and offsets come out the same either way.
    @Test(.timeLimit(.minutes(1)), arguments: [Int16(2), 1]) func bothTransactionVersionsCommitAndAbortAlike(level: Int16) async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        let admin = KafkaAdminClient(client: client)
        if level < 2 { try await admin.updateFeatures(["transaction.version": level], upgradeType: .safeDowngrade) }
        #expect(try await admin.describeFeatures().finalized["transaction.version"] == (level > 0 ? level : nil))
        let producer = try Self.producer(broker, id: "tv-\(level)")
        try await producer.initTransactions()
        for (values, commit) in [(["a", "b"], true), (["x"], false), (["c"], true)] {
            try await producer.beginTransaction()
            try await Self.send(producer, "out", values)
            if commit { try await producer.commitTransaction() } else { try await producer.abortTransaction() }
        }
        // An empty transaction ends here, without the coordinator.
        try await producer.beginTransaction()
        try await producer.commitTransaction()
        // Offsets alone: TxnOffsetCommit v5 adds them (version 2), AddOffsetsToTxn does (version 1).
        try await producer.beginTransaction()
        try await producer.sendOffsetsToTransaction([TopicPartition("out", 0): 7], groupMetadata: ConsumerGroupMetadata(groupId: "tv-group"))
        try await producer.commitTransaction()
        await producer.close()
        #expect(try await Self.values(broker, "out", .readCommitted, count: 3) == ["a", "b", "c"])
        #expect(try await admin.committedOffsets("tv-group") == [TopicPartition("out", 0): 7])
        let described = try await client.anyConnection().send(DescribeTransactionsRequest(transactionalIds: ["tv-\(level)"]))
        // Four ends reached the coordinator (the empty transaction did not).
        #expect(described.transactionStates.first?.producerEpoch == (level >= 2 ? 4 : 0))
        await client.close()
    }
}
