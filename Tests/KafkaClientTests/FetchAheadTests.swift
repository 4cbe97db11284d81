@testable import Consumers
import Foundation
import KafkaClient
import KafkaWire
import NIOCore
import Producers
import Testing

/// The Fetch the event loop writes the moment an answer comes, while the consumer waits for it.
@Suite(.serialized) struct FetchAheadTests {
    /// Batches of `count` records from `base` on (base offsets set as a broker would), one after another.
    static func batches(_ spans: [(base: Int64, count: Int)]) throws -> ByteBuffer {
        var bytes = ByteBuffer()
        for span in spans {
            var builder = RecordBatchBuilder()
            for i in 0..<span.count { builder.append(timestamp: 1, key: nil, value: Array("v\(i)".utf8)) }
            var batch = try builder.build()
            batch.setInteger(span.base, at: batch.readerIndex)
            bytes.writeBuffer(&batch)
        }
        return bytes
    }

    static let request = FetchRequest(replicaId: -1, maxWaitMs: 500, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0,
                                      sessionEpoch: -1, topics: [.init(topic: "t", topicId: KafkaUUID(high: 1, low: 2), partitions: [
                                          .init(partition: 0, currentLeaderEpoch: -1, fetchOffset: 10, lastFetchedEpoch: -1, logStartOffset: -1,
                                                partitionMaxBytes: 1 << 20),
                                          .init(partition: 1, currentLeaderEpoch: -1, fetchOffset: 7, lastFetchedEpoch: -1, logStartOffset: -1,
                                                partitionMaxBytes: 1 << 20),
                                      ])])
    static let requested = [TopicPartition("t", 0): Int64(10), TopicPartition("t", 1): 7]

    static func answer(_ partitions: [FetchResponse.PartitionData], errorCode: Int16 = 0) -> FetchResponse {
        // Named by topic id only, as Fetch v13 and later answer.
        FetchResponse(errorCode: errorCode, responses: [.init(topicId: KafkaUUID(high: 1, low: 2), partitions: partitions)])
    }

    @Test func theNextFetchStartsAfterEachPartitionsCompleteBatches() throws {
        var records = try Self.batches([(10, 5), (15, 3), (18, 4)])
        records.moveWriterIndex(to: records.writerIndex - 7)  // the last batch cut short: fetched again next time
        let answer = Self.answer([.init(partitionIndex: 0, records: records), .init(partitionIndex: 1, records: ByteBuffer())])
        let (next, requested) = try #require(PendingFetch.following(Self.request, requested: Self.requested, answer: answer))
        #expect(requested == [TopicPartition("t", 0): 18, TopicPartition("t", 1): 7])
        #expect(next.topics.flatMap(\.partitions).map(\.fetchOffset) == [18, 7])
        #expect(next.topics.first?.topicId == KafkaUUID(high: 1, low: 2) && next.maxWaitMs == 500)
    }

    @Test func anErrorOrAnAnswerThatMovedNothingSendsNothing() throws {
        let records = try Self.batches([(10, 5)])
        let failed = Self.answer([.init(partitionIndex: 0, records: records),
                                  .init(partitionIndex: 1, errorCode: ErrorCode.notLeaderOrFollower.rawValue)])
        #expect(PendingFetch.following(Self.request, requested: Self.requested, answer: failed) == nil)
        let wholeFailed = Self.answer([.init(partitionIndex: 0, records: records)], errorCode: ErrorCode.unknownServerError.rawValue)
        #expect(PendingFetch.following(Self.request, requested: Self.requested, answer: wholeFailed) == nil)
        let empty = Self.answer([.init(partitionIndex: 0, records: ByteBuffer()), .init(partitionIndex: 1)])
        #expect(PendingFetch.following(Self.request, requested: Self.requested, answer: empty) == nil)
        // Records before the fetch offset only (the start of a batch already read): nothing moved.
        let old = Self.answer([.init(partitionIndex: 0, records: try Self.batches([(2, 5)]))])
        #expect(PendingFetch.following(Self.request, requested: Self.requested, answer: old) == nil)
    }

    /// Answers held back 20 ms each keep the consumer waiting, so the next Fetch leaves from the event
    /// loop; seeks and a pause while one is out drop it: every record once, in order.
    @Test(.timeLimit(.minutes(1))) func fetchesSentFromTheLoopKeepTheOrderThroughSeeksAndPauses() async throws {
        let proxy = try DelayingProxy(delay: .milliseconds(20))
        let broker = try proxy.broker()
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        producerConfiguration.batchSize = 2048
        let producer = try KafkaProducer(configuration: producerConfiguration)
        _ = try await producer.produce(contentsOf: (0..<3000).map { ProducerRecord(topic: "ahead", partition: 0, value: Array("v\($0)".utf8)) })
        await producer.close()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:\(proxy.port)")
        configuration.autoOffsetReset = .earliest
        configuration.maxPartitionFetchBytes = 4096  // a few batches per Fetch: many Fetches
        let consumer = try KafkaConsumer(configuration: configuration)
        let partition = TopicPartition("ahead", 0)
        await consumer.assign([partition])
        func read(_ count: Int) async throws -> [Int64] {
            var offsets: [Int64] = []
            var iterator = consumer.records.makeAsyncIterator()
            while offsets.count < count, let record = try await iterator.next() {
                #expect(record.value == ByteBuffer(string: "v\(record.offset)"))
                offsets.append(record.offset)
            }
            return offsets
        }
        #expect(try await read(1000) == Array(0..<1000))
        try await consumer.seek(partition, to: 500)
        #expect(try await read(1000) == Array(500..<1500))
        await consumer.pause([partition])
        await consumer.resume([partition])
        #expect(try await read(1000) == Array(1500..<2500))
        try await consumer.seek(partition, to: 2900)
        #expect(try await read(100) == Array(2900..<3000))
        #expect(await consumer.fetchesSentFromTheLoop > 5)
        await consumer.close()
    }

    /// A seek while a Fetch is out makes its answer stale: that answer sends no Fetch ahead from the old
    /// position, which would wait at the log end for fetch.max.wait.ms in front of the consumer's Fetch
    /// from the new one (a broker answers a connection's requests in order).
    @Test(.timeLimit(.minutes(1))) func aSeekDoesNotWaitBehindAFetchSentForTheOldPosition() async throws {
        let proxy = try DelayingProxy(delay: .milliseconds(20))
        let broker = try proxy.broker()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrap))
        for batch in 0..<10 {  // ten batches of 100 records
            _ = try await producer.produce(contentsOf: (0..<100).map { ProducerRecord(topic: "seek-ahead", partition: 0, value: Array("v\(batch * 100 + $0)".utf8)) })
            await producer.flush()
        }
        await producer.close()

        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:\(proxy.port)")
        configuration.autoOffsetReset = .earliest
        configuration.maxPartitionFetchBytes = 1  // one batch per answer
        configuration.fetchMaxWaitMs = 3000
        let consumer = try KafkaConsumer(configuration: configuration)
        let partition = TopicPartition("seek-ahead", 0)
        await consumer.assign([partition])
        var handedOut: Int64 = 0
        for try await batch in consumer.batches {
            handedOut = try #require(batch.last).offset + 1
            if handedOut >= 900 { break }  // the Fetch for the last batch is out
        }
        #expect(handedOut == 900)
        try await consumer.seek(partition, to: 0)
        let started = ContinuousClock.now
        var iterator = consumer.records.makeAsyncIterator()
        let first = try await iterator.next()
        let waited = ContinuousClock.now - started
        #expect(first?.offset == 0 && first?.value == ByteBuffer(string: "v0"))
        #expect(waited < .milliseconds(1500), "the first record after the seek took \(waited) (fetch.max.wait.ms is 3 s)")
        await consumer.close()
    }
}
