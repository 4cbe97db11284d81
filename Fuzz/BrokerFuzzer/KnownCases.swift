import KafkaLog
import KafkaWire
import NIOCore

/// The well-formed but hostile requests of the hardening review (issue 21), as fuzz sequences: each
/// once killed the broker or lost committed offsets. `minibroker-fuzz --write-known-cases` writes
/// them into the corpus, which the tests replay with every failing sequence found since.
public enum KnownCases {
    public static var all: [(name: String, steps: [FuzzStep])] {
        [
            ("create-partitions-int32-min", setup + [
                request(CreatePartitionsRequest(topics: [.init(name: "t0", count: Int32.min, assignments: [])]), 3),
                request(CreatePartitionsRequest(topics: [.init(name: "t0", count: Int32.min, assignments: nil)]), 3),
            ]),
            ("timestamp-after-max-near-int64-max", setup + [
                request(IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "t1", configs: [
                    .init(name: "message.timestamp.after.max.ms", configOperation: 0, value: String(Int64.max - 1)),
                ])]), 1),
                produce("t1", batch(timestamp: PartitionLog.currentTimeMs())),
            ]),
            ("fetch-of-int32-max-bytes", setup + [
                produce("t0", batch(timestamp: PartitionLog.currentTimeMs(), valueSize: 10_000)),
                request(FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: Int32.max, topics: [
                    .init(topic: "t0", partitions: (0..<3).map { .init(partition: $0, fetchOffset: 0, partitionMaxBytes: Int32.max) }),
                ]), 12),
            ]),
            ("batch-claiming-int32-max-records", setup + [
                produce("t1", lying(batch(timestamp: 5), recordCount: Int32.max)),
                request(ListOffsetsRequest(replicaId: -1, topics: [.init(name: "t1", partitions: [.init(partitionIndex: 0, timestamp: 1)])]), 7),
            ]),
            ("metadata-naming-one-topic-2000-times", setup + [
                request(MetadataRequest(topics: Array(repeating: .init(name: "t0"), count: 2000)), 12),
            ]),
            ("offset-commit-with-group-id-past-int16", setup + [
                commit(group: String(repeating: "g", count: 32_768), metadata: ""),
                commit(group: "g0", metadata: ""),
                .restart(clean: true),
            ]),
            ("produce-to-offsets-topic-with-int64-min-commit-time", setup + [
                produce("__consumer_offsets", offsetRecord(commitTimestamp: Int64.min)),
                .restart(clean: false),
                .advance(milliseconds: 61_000),
                .restart(clean: true),
            ]),
            ("delete-offsets-topic-then-commit", setup + [
                request(DeleteTopicsRequest(topicNames: ["__consumer_offsets"]), 5),
                request(DeleteRecordsRequest(topics: [.init(name: "__consumer_offsets", partitions: [.init(partitionIndex: 0, offset: -1)])]), 2),
                request(AlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "__consumer_offsets",
                                                              configs: [.init(name: "retention.ms", value: "1")])]), 2),
                commit(group: "g0", metadata: ""),
                .restart(clean: true),
            ]),
            ("null-metadata-commit-then-restart", setup + [
                commit(group: "g1", metadata: nil),
                .restart(clean: true),
                .restart(clean: false),
            ]),
            ("join-group-with-many-protocols", setup + [
                request(JoinGroupRequest(groupId: "g0", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "", protocolType: "consumer",
                                         protocols: (0..<2000).map { .init(name: "p\($0)", metadata: ByteBuffer()) }), 3),
                request(JoinGroupRequest(groupId: "g0", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "", protocolType: "consumer",
                                         protocols: (0..<2000).reversed().map { .init(name: "p\($0)", metadata: ByteBuffer()) }), 3),
                .advance(milliseconds: 4000),
            ]),
        ]
    }

    /// Text of a case's sequence file.
    public static func file(_ steps: [FuzzStep], name: String) -> String {
        "# minibroker-fuzz known case: \(name)\n" + steps.map(\.line).joined(separator: "\n") + "\n"
    }

    static let setup: [FuzzStep] = [
        .config(key: "group.initial.rebalance.delay.ms", value: "0"),
        request(CreateTopicsRequest(topics: [.init(name: "t0", numPartitions: 3, replicationFactor: 1)]), 7),
        request(CreateTopicsRequest(topics: [.init(name: "t1", numPartitions: 1, replicationFactor: 1)]), 7),
    ]

    static func request<R: KafkaRequest>(_ request: R, _ version: Int16) -> FuzzStep {
        .request(BrokerFuzzer.frame(request, version: version))
    }

    static func produce(_ topic: String, _ records: ByteBuffer) -> FuzzStep {
        request(ProduceRequest(acks: -1, timeoutMs: 1000, topicData: [.init(name: topic, partitionData: [.init(index: 0, records: records)])]), 9)
    }

    static func commit(group: String, metadata: String?) -> FuzzStep {
        request(OffsetCommitRequest(groupId: group, generationIdOrMemberEpoch: -1, memberId: "", topics: [
            .init(name: "t0", partitions: [.init(partitionIndex: 1, committedOffset: 17, committedMetadata: metadata)]),
        ]), 8)
    }

    static func batch(timestamp: Int64, valueSize: Int = 10) -> ByteBuffer {
        let record = Record(offset: 0, timestamp: timestamp, key: ByteBuffer(string: "k"), value: ByteBuffer(repeating: 7, count: valueSize))
        return (try? RecordBatch(records: [record]).encoded()) ?? ByteBuffer()
    }

    /// A batch whose header claims `recordCount` records, its CRC made to match.
    static func lying(_ batch: ByteBuffer, recordCount: Int32) -> ByteBuffer {
        var bytes = batch
        bytes.setInteger(recordCount, at: bytes.readerIndex + RecordBatchLayout.recordCount)
        bytes.setInteger(recordCount - 1, at: bytes.readerIndex + RecordBatchLayout.lastOffsetDelta)
        if let view = try? RecordBatchView(unchecked: bytes) { bytes.setInteger(view.computeCRC(), at: bytes.readerIndex + RecordBatchLayout.crc) }
        return bytes
    }

    /// A committed-offset record as the group coordinator writes them, made at `commitTimestamp`.
    static func offsetRecord(commitTimestamp: Int64) -> ByteBuffer {
        var key = ByteBuffer(), value = ByteBuffer()
        key.writeInteger(Int16(1))
        key.writeKafkaString("g0", compact: false)
        key.writeKafkaString("t0", compact: false)
        key.writeInteger(Int32(0))
        value.writeInteger(Int16(1))
        value.writeInteger(Int64(1))
        value.writeInteger(Int32(-1))
        value.writeKafkaNullableString(nil, compact: false)
        value.writeInteger(commitTimestamp)
        return (try? RecordBatch(records: [Record(timestamp: 1, key: key, value: value)]).encoded()) ?? ByteBuffer()
    }
}
