import KafkaClient
import KafkaWire
import Consumers
import Producers
import Foundation
import NIOCore
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

@Suite(.serialized) struct KafkaProducerDeliveryTests {
    @Test func fireAndForgetRecordsArriveAsDeliveryReports() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=2"])
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.batchSize = 1024  // many batches, several requests in flight
        configuration.compression = .lz4
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        let collected = Task {
            var all: [DeliveryReport] = []
            for await report in reports { all.append(report) }
            return all
        }
        var ids: [ProducerMessageID] = []
        for i in 0..<3000 {
            ids.append(try await producer.produce(ProducerRecord(topic: "reports", partition: Int32(i % 2), value: Array("v\(i)".utf8),
                                                                 headers: [("n", Array("\(i)".utf8))])))
        }
        await producer.close()  // flushes, then ends the report sequence
        let all = await collected.value
        #expect(all.count == 3000)
        #expect(Set(all.map(\.id)) == Set(ids))
        let delivered = all.compactMap { try? $0.result.get() }
        #expect(delivered.count == 3000)
        for partition in Int32(0)..<2 {
            // Every record once, in the order produced.
            let offsets = delivered.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets.sorted() == Array(0..<1500))
        }
    }

    /// Reports read a batch at a time, for records that share batches with awaited `send`s: every
    /// report's offset is where its own record landed (read back) and its timestamp the one given.
    @Test func reportBatchesNameEachRecordsOffsetAmongSends() async throws {
        let broker = try RunningBroker()
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.lingerMs = 50  // the sends and the chunks below share batches
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        let collected = Task {
            var all: [DeliveryReport] = []
            var batches = 0
            for await batch in reports.batches {
                batches += 1
                #expect(batch.topic == "mixed" && batch.partition == 0 && batch.error == nil)
                // Read in order (the iterator walks the runs) and by index (the subscript searches them): the same reports.
                let inOrder = Array(batch)
                #expect(inOrder.count == batch.count)
                for (position, report) in inOrder.enumerated() {
                    #expect(report.id == batch[position].id && (try? report.result.get()) == (try? batch[position].result.get()))
                }
                all.append(contentsOf: inOrder)
            }
            return (all, batches)
        }
        var valueOf: [ProducerMessageID: [UInt8]] = [:]
        var sent: [Task<RecordMetadata, Error>] = []
        for round in 0..<5 {
            let chunk = (0..<100).map { i in
                ProducerRecord(topic: "mixed", partition: 0, value: Array("r\(round)-\(i)".utf8), timestamp: 1_000_000 + Int64(round * 100 + i / 10))
            }
            let ids = try await producer.produce(contentsOf: chunk)
            for (id, record) in zip(ids, chunk) { valueOf[id] = record.value }
            sent.append(Task { try await producer.send(ProducerRecord(topic: "mixed", partition: 0, value: Array("s\(round)".utf8))) })
            await Task.yield()
        }
        var sendOffsets: [Int64] = []
        for task in sent { sendOffsets.append(try await task.value.offset) }
        await producer.close()
        let (all, batches) = await collected.value
        #expect(all.count == 500 && batches >= 1)

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        consumerConfiguration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        await consumer.assign([TopicPartition("mixed", 0)])
        var stored: [Int64: (value: [UInt8], timestamp: Int64)] = [:]
        for try await record in consumer.records {
            stored[record.offset] = (record.value.map { Array($0.readableBytesView) } ?? [], record.timestamp)
            if stored.count == 505 { break }
        }
        await consumer.close()
        for report in all {
            let metadata = try report.result.get()
            #expect(stored[metadata.offset]?.value == valueOf[report.id], "report \(report.id) at offset \(metadata.offset)")
            #expect(stored[metadata.offset]?.timestamp == metadata.timestamp)
        }
        #expect(Set(all.map { try! $0.result.get().offset }).union(sendOffsets) == Set(0..<505))
        for offset in sendOffsets { #expect(stored[offset].map { String(decoding: $0.value, as: UTF8.self).hasPrefix("s") } == true) }
    }

    /// One `produce(contentsOf:)` call of records that change topic, partition rule (given, keyed,
    /// sticky) and size along the way, through small batches and a buffer.memory it has to wait for:
    /// each record lands once, where its rule puts it, in order, and its report says where.
    @Test func oneCallOfMixedRecordsLandsEachWhereItBelongs() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=3"])
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.batchSize = 2048
        configuration.bufferMemory = 32 * 1024
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        let collected = Task {
            var landed: [ProducerMessageID: RecordMetadata] = [:]
            for await report in reports { landed[report.id] = try? report.result.get() }
            return landed
        }
        let records = (0..<3000).map { i -> ProducerRecord in
            let key: [UInt8]? = i % 7 == 1 || i % 7 == 2 ? Array("k\(i % 11)".utf8) : nil
            let value: [UInt8] = Array("v\(i)-".utf8) + [UInt8](repeating: UInt8(i % 256), count: (i % 13) * 10)
            return ProducerRecord(topic: (i / 50) % 2 == 0 ? "mix-a" : "mix-b", partition: i % 7 == 0 ? Int32(i % 3) : nil, key: key, value: value)
        }
        let ids = try await producer.produce(contentsOf: records)
        await producer.close()
        let landed = await collected.value
        #expect(ids.count == 3000 && Set(ids).count == 3000 && landed.count == 3000)

        var lastOffset: [String: Int64] = [:]
        for (record, id) in zip(records, ids) {
            guard let metadata = landed[id] else {
                Issue.record("no successful report for \(id)")
                continue
            }
            #expect(metadata.topic == record.topic)
            if let partition = record.partition { #expect(metadata.partition == partition) }
            if let key = record.key { #expect(metadata.partition == Partitioner.partition(forKey: key, count: 3)) }
            let place = "\(metadata.topic)-\(metadata.partition)"
            #expect(metadata.offset > lastOffset[place, default: -1], "records of \(place) out of order")
            lastOffset[place] = metadata.offset
        }
        // Read back: each partition dense from 0, each record's value where its report put it.
        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        consumerConfiguration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        await consumer.assign(["mix-a", "mix-b"].flatMap { topic in (0..<3).map { TopicPartition(topic, Int32($0)) } })
        var stored: [String: [UInt8]] = [:]
        for try await record in consumer.records {
            stored["\(record.topic)-\(record.partition)@\(record.offset)"] = record.value.map { Array($0.readableBytesView) }
            if stored.count == 3000 { break }
        }
        await consumer.close()
        for (place, last) in lastOffset { #expect((0...last).allSatisfy { stored["\(place)@\($0)"] != nil }, "\(place)") }
        for (record, id) in zip(records, ids) {
            guard let metadata = landed[id] else { continue }
            #expect(stored["\(metadata.topic)-\(metadata.partition)@\(metadata.offset)"] == record.value)
        }
    }

    @Test func bufferMemoryFullMakesSendWaitThenFailAfterMaxBlock() async throws {
        let broker = try RunningBroker()
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.bufferMemory = 4096
        configuration.batchSize = 1024
        configuration.maxBlockMs = 500
        let producer = try KafkaProducer(configuration: configuration)
        // The broker answers: 200 records of 300 bytes pass through a 4 KB buffer by waiting for space.
        for i in 0..<200 {
            _ = try await producer.produce(ProducerRecord(topic: "pressure", partition: 0, value: [UInt8](repeating: UInt8(i % 256), count: 300)))
        }
        await producer.flush()
        // The broker stops answering (SIGSTOP): the buffer fills and a send gives up after max.block.ms.
        kill(broker.process.processIdentifier, SIGSTOP)
        defer { kill(broker.process.processIdentifier, SIGCONT) }
        let started = ContinuousClock.now
        var refused: KafkaClientError?
        for _ in 0..<100 {
            do {
                _ = try await producer.produce(ProducerRecord(topic: "pressure", partition: 0, value: [UInt8](repeating: 1, count: 300)))
            } catch let error as KafkaClientError {
                refused = error
                break
            }
        }
        #expect(refused?.message.contains("buffer.memory") == true)
        #expect(ContinuousClock.now - started >= .milliseconds(450))
        kill(broker.process.processIdentifier, SIGCONT)
        await producer.close()
    }

    @Test func acksZeroAndAcksOneDeliver() async throws {
        let broker = try RunningBroker()
        for acks: Int16 in [0, 1] {
            var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
            configuration.acks = acks
            configuration.enableIdempotence = false
            let producer = try KafkaProducer(configuration: configuration)
            let metadata = try await producer.send(ProducerRecord(topic: "acks-\(acks)", partition: 0, value: [1, 2, 3]))
            #expect(metadata.offset == (acks == 0 ? -1 : 0))
            await producer.close()
        }
        // acks=0 wrote it all the same.
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        let offsets = try await client.connection(to: 0).send(ListOffsetsRequest(replicaId: -1, topics: [
            .init(name: "acks-0", partitions: [.init(partitionIndex: 0, timestamp: -1)]),
        ]))
        #expect(offsets.topics.first?.partitions.first?.offset == 1)
        await client.close()
    }

    /// linger.ms=0 sends a record at once, but the records that come while max.in.flight requests wait
    /// for their answers join the open batch (as in Kafka's accumulator) instead of queueing a batch
    /// each, so a producer that falls behind catches up with bigger requests.
    @Test(.timeLimit(.minutes(1))) func atLingerZeroRecordsWaitingForAnAnswerShareABatch() async throws {
        let proxy = try DelayingProxy(delay: .milliseconds(150))
        let broker = try proxy.broker()
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.lingerMs = 0
        configuration.maxInFlightRequestsPerConnection = 1
        let producer = try KafkaProducer(configuration: configuration)
        _ = try await producer.send(ProducerRecord(topic: "linger-0", partition: 0, value: [0]))  // metadata, producer id, connection
        let started = ContinuousClock.now
        for i in 1...40 {
            try await producer.produce(ProducerRecord(topic: "linger-0", partition: 0, value: Array("\(i)".utf8)))
            try await Task.sleep(for: .milliseconds(10))
        }
        let elapsed = ContinuousClock.now - started
        await producer.flush()
        await producer.close()
        let batches = try Self.recordCountsOfBatches(inPartitionDirectory: broker.directory + "/linger-0-0")
        #expect(batches.reduce(0, +) == 41)
        // 40 records over 400+ ms, each answer 150 ms late: a request per answer, carrying what came meanwhile
        // (a slow machine stretches the loop, so the bound follows the time it took).
        let answers = Int(elapsed / .milliseconds(150))
        #expect(batches.count <= answers + 3, "record batches of \(batches) records in \(elapsed)")
        #expect(batches.max()! >= 4, "records waiting for an answer shared a batch: \(batches)")
        #expect(batches.count >= 3, "linger.ms=0 sent records at once: \(batches)")
    }

    /// A batch whose broker went away fails once delivery.timeout.ms has passed, at linger.ms 0 and 5 (the
    /// sender cannot take it, so it stays open until it expires).
    @Test(.timeLimit(.minutes(1))) func batchesForAGoneBrokerFailAfterDeliveryTimeout() async throws {
        let broker = try RunningBroker()
        var producers: [(Int, KafkaProducer)] = []
        for lingerMs in [0, 5] {
            var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
            configuration.lingerMs = lingerMs
            configuration.deliveryTimeoutMs = 1500
            configuration.requestTimeoutMs = 1000
            let producer = try KafkaProducer(configuration: configuration)
            _ = try await producer.send(ProducerRecord(topic: "gone", partition: 0, value: [1]))
            producers.append((lingerMs, producer))
        }
        broker.process.terminate()
        broker.process.waitUntilExit()
        for (lingerMs, producer) in producers {
            let started = ContinuousClock.now
            do {
                _ = try await producer.send(ProducerRecord(topic: "gone", partition: 0, value: [2]))
                Issue.record("linger.ms=\(lingerMs): delivered to a stopped broker")
            } catch let error as KafkaClientError {
                #expect(error.kind == .timeout, "linger.ms=\(lingerMs): \(error)")
                #expect(error.message.contains("delivery.timeout.ms"), "linger.ms=\(lingerMs): \(error)")
            }
            #expect(ContinuousClock.now - started < .seconds(10), "linger.ms=\(lingerMs)")
            await producer.close()
        }
    }

    /// Records per record batch, read from the broker's segment files (Kafka's on-disk format).
    static func recordCountsOfBatches(inPartitionDirectory path: String) throws -> [Int] {
        var counts: [Int] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: path).filter({ $0.hasSuffix(".log") }).sorted() {
            let log = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path + "/" + name)))
            var position = 0
            while let length = log.getInteger(at: position + RecordBatchLayout.batchLength, as: Int32.self), length > 0,
                  let records = log.getInteger(at: position + RecordBatchLayout.recordCount, as: Int32.self) {
                counts.append(Int(records))
                position += RecordBatchLayout.logOverhead + Int(length)
            }
        }
        return counts
    }

    @Test func settingsKafkaRefusesAreRefusedByName() throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9092")
        configuration.acks = 1
        #expect(throws: KafkaClientError.self) { try KafkaProducer(configuration: configuration) }
        configuration.acks = -1
        configuration.maxInFlightRequestsPerConnection = 6
        do {
            _ = try KafkaProducer(configuration: configuration)
            Issue.record("max.in.flight 6 with idempotence was accepted")
        } catch let error as KafkaClientError {
            #expect(error.message.contains("max.in.flight.requests.per.connection"))
        }
        configuration.enableIdempotence = false
        _ = try KafkaProducer(configuration: configuration)
    }
}
