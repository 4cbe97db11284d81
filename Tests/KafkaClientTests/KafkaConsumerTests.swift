import Consumers
import Foundation
import KafkaClient
import KafkaWire
import NIOCore
import Producers
import Testing

@Suite struct PartitionAssignorTests {
    let members = [GroupMemberSubscription(memberId: "b", topics: ["t"]), GroupMemberSubscription(memberId: "a", topics: ["t"])]

    @Test func rangeGivesConsecutiveRangesFirstMembersTakingTheRemainder() {
        let plan = PartitionAssignor.range.assign(members, partitionCounts: ["t": 5])
        #expect(plan["a"] == [0, 1, 2].map { TopicPartition("t", $0) })
        #expect(plan["b"] == [3, 4].map { TopicPartition("t", $0) })
    }

    @Test func roundRobinDealsPartitionsInTurn() {
        let plan = PartitionAssignor.roundRobin.assign(members, partitionCounts: ["t": 5])
        #expect(plan["a"] == [0, 2, 4].map { TopicPartition("t", $0) })
        #expect(plan["b"] == [1, 3].map { TopicPartition("t", $0) })
    }

    @Test func cooperativeStickyKeepsOwnedPartitionsAndHoldsBackMovingOnes() {
        // "a" owned everything; "c" joins: "a" keeps its share, gives up the rest, and nothing "a"
        // still owns is handed to "c" in this round.
        let owned = (0..<6).map { TopicPartition("t", Int32($0)) }
        let subscriptions = [GroupMemberSubscription(memberId: "a", topics: ["t"], ownedPartitions: owned, generation: 3),
                             GroupMemberSubscription(memberId: "c", topics: ["t"], generation: -1)]
        let first = PartitionAssignor.cooperativeSticky.assign(subscriptions, partitionCounts: ["t": 6])
        #expect(first["a"]!.count == 3 && Set(first["a"]!).isSubset(of: Set(owned)))
        #expect(first["c"] == [])
        // Next round "a" owns only its three: the other three go to "c".
        let second = PartitionAssignor.cooperativeSticky.assign(
            [GroupMemberSubscription(memberId: "a", topics: ["t"], ownedPartitions: first["a"]!, generation: 4),
             GroupMemberSubscription(memberId: "c", topics: ["t"], generation: 4)], partitionCounts: ["t": 6])
        #expect(second["a"] == first["a"])
        #expect(Set(second["c"]!) == Set(owned).subtracting(first["a"]!))
    }
}

@Suite(.serialized) struct KafkaConsumerTests {
    @Test func groupConsumerReadsCommitsAndResumes() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=3", "group.initial.rebalance.delay.ms=0"])
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        producerConfiguration.compression = .snappy
        let producer = try KafkaProducer(configuration: producerConfiguration)
        _ = try await producer.produce(contentsOf: (0..<300).map { ProducerRecord(topic: "orders", key: Array("k\($0)".utf8), value: Array("v\($0)".utf8)) })
        await producer.close()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: "readers")
        configuration.autoOffsetReset = .earliest
        configuration.enableAutoCommit = false
        var consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["orders"])
        var seen: [String] = []
        for try await record in consumer.records {
            seen.append(String(buffer: record.value ?? ByteBuffer()))
            if seen.count == 200 { break }
        }
        try await consumer.commit()
        #expect(await consumer.currentAssignment.count == 3)
        await consumer.close()

        // A new member of the group starts at the committed offsets: the other 100, none twice.
        consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["orders"])
        for try await record in consumer.records {
            seen.append(String(buffer: record.value ?? ByteBuffer()))
            if seen.count == 300 { break }
        }
        await consumer.close()
        #expect(Set(seen) == Set((0..<300).map { "v\($0)" }))
        #expect(seen.count == 300)
    }

    /// `batches` hands out a poll's records at once and goes on where `records` stopped (and back):
    /// every record once, in order, and a commit after a batch covers all of it.
    @Test func batchesAndRecordsShareOnePositionAndCommitWhatWasHandedOut() async throws {
        let broker = try RunningBroker()
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        producerConfiguration.batchSize = 2048  // many record batches, fetched over several polls
        let producer = try KafkaProducer(configuration: producerConfiguration)
        _ = try await producer.produce(contentsOf: (0..<2000).map { ProducerRecord(topic: "polls", partition: 0, value: Array("v\($0)".utf8),
                                                                                  headers: [("n", Array("\($0)".utf8))]) })
        await producer.close()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: "pollers")
        configuration.autoOffsetReset = .earliest
        configuration.enableAutoCommit = false
        configuration.maxPartitionFetchBytes = 16_384  // a poll holds part of the topic
        let consumer = try KafkaConsumer(configuration: configuration)
        let partition = TopicPartition("polls", 0)
        await consumer.assign([partition])
        var offsets: [Int64] = []
        var iterator = consumer.records.makeAsyncIterator()
        for _ in 0..<3 { offsets.append(try #require(try await iterator.next()).offset) }
        var polls = 0
        for try await batch in consumer.batches {
            polls += 1
            for record in batch {
                #expect(record.value == ByteBuffer(string: "v\(record.offset)"))
                #expect(record.headers == [RecordHeader(key: "n", value: ByteBuffer(string: "\(record.offset)"))])
                offsets.append(record.offset)
            }
            if offsets.count >= 1000 { break }
        }
        try await consumer.commit()
        #expect(try await consumer.committed([partition])[partition] == Int64(offsets.count))
        var rest = consumer.records.makeAsyncIterator()
        while offsets.count < 2000 { offsets.append(try #require(try await rest.next()).offset) }
        await consumer.close()
        #expect(offsets == Array(0..<2000))
        #expect(polls > 1)
    }

    /// A batch that fails its CRC (a flipped byte on the broker's disk): the records before it, of its
    /// partition and the others, are all handed out; then every poll fails at it, naming partition and
    /// offset, until the application seeks past it. Nothing of another partition is skipped.
    @Test(.timeLimit(.minutes(1))) func aCorruptBatchStopsItsPartitionThereAndLosesNothingElse() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=2"])
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
        // Partition 1 gets two batches (offsets 0-9, then 10-19); the second will be corrupt.
        for first in [0, 10] {
            _ = try await producer.produce(contentsOf: (first..<first + 10).map { ProducerRecord(topic: "flipped", partition: 1, value: Array("p1-\($0)".utf8)) })
            await producer.flush()
        }
        _ = try await producer.produce(contentsOf: (0..<10).map { ProducerRecord(topic: "flipped", partition: 0, value: Array("p0-\($0)".utf8)) })
        await producer.close()

        // The last byte of partition 1's log (inside the second batch's CRC) is flipped while the broker is down.
        broker.stop()
        let segment = URL(fileURLWithPath: broker.directory).appendingPathComponent("flipped-1/00000000000000000000.log")
        var bytes = try Data(contentsOf: segment)
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: segment)
        try broker.start()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        let (p0, p1) = (TopicPartition("flipped", 0), TopicPartition("flipped", 1))
        await consumer.assign([p0, p1])
        var seen: [String] = []
        var iterator = consumer.records.makeAsyncIterator()
        var failure: KafkaClientError?
        // Were the bad batch taken for good, this would wait forever: closing the consumer ends the wait.
        let watchdog = Task { try await Task.sleep(for: .seconds(15)); await consumer.close() }
        do {
            while let record = try await iterator.next() { seen.append(String(buffer: record.value ?? ByteBuffer())) }
        } catch let error as KafkaClientError {
            failure = error
        }
        watchdog.cancel()
        let expected = ((0..<10).map { "p0-\($0)" } + (0..<10).map { "p1-\($0)" }).sorted()
        #expect(seen.sorted() == expected, "every record before the bad batch, of both partitions, once, before the error")
        #expect(failure?.kind == .protocolViolation && failure?.message.contains("flipped-1 at offset 10 fails its CRC") == true, "\(String(describing: failure))")
        #expect(await consumer.position(p1) == 10)
        // It stays there: the next poll fails the same way.
        await #expect(throws: KafkaClientError.self) { _ = try await iterator.next() }
        #expect(await consumer.position(p1) == 10)

        // Seeking past it goes on with what follows.
        try await consumer.seek(p1, to: 20)
        let late = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
        _ = try await late.produce(contentsOf: [ProducerRecord(topic: "flipped", partition: 1, value: Array("p1-20".utf8))])
        await late.close()
        let next = try await iterator.next()
        #expect(next?.partition == 1 && next?.offset == 20 && next.map { String(buffer: $0.value ?? ByteBuffer()) } == "p1-20")
        await consumer.close()
    }

    /// A poll that fails on one partition (out of range, with auto.offset.reset=none) skips nothing of
    /// the others fetched with it: after the application seeks the bad one, every record comes, once.
    @Test(.timeLimit(.minutes(1))) func aPollFailingOnOnePartitionSkipsNothingOfTheOthers() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=8"])
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
        let values = (0..<8).flatMap { partition in (0..<20).map { (partition, "p\(partition)-\($0)") } }
        _ = try await producer.produce(contentsOf: values.map { ProducerRecord(topic: "ranges", partition: Int32($0.0), value: Array($0.1.utf8)) })
        await producer.close()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.autoOffsetReset = .none
        let consumer = try KafkaConsumer(configuration: configuration)
        let partitions = (0..<8).map { TopicPartition("ranges", Int32($0)) }
        await consumer.assign(partitions)
        // Seven partitions from their start, one far past its end; all go out in one Fetch (in no fixed
        // order: the bad one comes after some of the others in most runs).
        for partition in partitions { try await consumer.seek(partition, to: partition.partition == 7 ? 1000 : 0) }
        var seen: [String] = []
        var iterator = consumer.records.makeAsyncIterator()
        var failure: KafkaClientError?
        do {
            while let record = try await iterator.next() { seen.append(String(buffer: record.value ?? ByteBuffer())) }
        } catch let error as KafkaClientError {
            failure = error
        }
        #expect(failure?.kind == .broker(.offsetOutOfRange), "\(String(describing: failure))")
        try await consumer.seek(partitions[7], to: 0)
        // Records that went missing would be waited for forever: closing the consumer ends the wait.
        let watchdog = Task { try await Task.sleep(for: .seconds(15)); await consumer.close() }
        while seen.count < values.count, let record = try await iterator.next() { seen.append(String(buffer: record.value ?? ByteBuffer())) }
        watchdog.cancel()
        #expect(seen.sorted() == values.map(\.1).sorted())
        await consumer.close()
    }

    @Test func manualAssignmentSeekAndPause() async throws {
        let broker = try RunningBroker()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
        _ = try await producer.produce(contentsOf: (0..<50).map { ProducerRecord(topic: "manual", partition: 0, value: [UInt8($0)]) })
        await producer.close()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        let partition = TopicPartition("manual", 0)
        await consumer.assign([partition])
        var iterator = consumer.records.makeAsyncIterator()
        #expect(try await iterator.next()?.offset == 0)
        try await consumer.seek(partition, to: 40)
        var iterator2 = consumer.records.makeAsyncIterator()
        let next = try await iterator2.next()
        #expect(next?.offset == 40 && next?.value == ByteBuffer(bytes: [40]))
        await consumer.close()
    }
}
