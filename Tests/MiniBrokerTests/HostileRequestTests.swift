import BrokerFuzzer
import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// Well-formed requests with hostile values: each once killed the broker or lost committed data.
/// Every test ends by checking that the broker still answers.
@Suite struct HostileRequestTests {
    static func batch(records: Int = 1, size: Int = 10, timestamp: Int64 = PartitionLog.currentTimeMs()) throws -> ByteBuffer {
        try RecordBatch(records: (0..<records).map {
            Record(offset: Int64($0), timestamp: timestamp, key: ByteBuffer(string: "k\($0)"), value: ByteBuffer(repeating: 1, count: size))
        }).encoded()
    }

    static func create(_ fixture: BrokerFixture, _ name: String, partitions: Int32 = 1, configs: [String: String] = [:]) throws {
        let answer = try fixture.send(CreateTopicsRequest(topics: [.init(name: name, numPartitions: partitions, replicationFactor: 1,
                                                                         configs: configs.map { .init(name: $0.key, value: $0.value) })]), version: 7)
        try #require(answer.topics.first?.errorCode == 0, "creating \(name): \(answer.topics.first?.errorMessage ?? "")")
    }

    static func produce(_ fixture: BrokerFixture, _ topic: String, _ records: ByteBuffer?, partition: Int32 = 0) throws -> ProduceResponse.PartitionProduceResponse? {
        try fixture.send(ProduceRequest(acks: -1, timeoutMs: 1000, topicData: [
            .init(name: topic, partitionData: [.init(index: partition, records: records)]),
        ]), version: 9).responses.first?.partitionResponses.first
    }

    /// The broker answers a plain Metadata: nothing above killed it.
    static func stillServes(_ fixture: BrokerFixture) throws {
        let answer = try fixture.send(MetadataRequest(topics: nil), version: 12)
        #expect(answer.brokers.count == 1)
    }

    static func commit(_ fixture: BrokerFixture, group: String, topic: String, partitions: [Int32], offset: Int64 = 5,
                       metadata: String? = "") throws -> OffsetCommitResponse {
        try fixture.send(OffsetCommitRequest(groupId: group, generationIdOrMemberEpoch: -1, memberId: "", topics: [
            .init(name: topic, partitions: partitions.map { .init(partitionIndex: $0, committedOffset: offset, committedMetadata: metadata) }),
        ]), version: 8)
    }

    static func committed(_ fixture: BrokerFixture, group: String, topic: String, partition: Int32 = 0) throws -> (Int64, String?)? {
        let answer = try fixture.send(OffsetFetchRequest(groupId: group, topics: [.init(name: topic, partitionIndexes: [partition])]), version: 7)
        guard let p = answer.topics.first?.partitions.first, p.committedOffset >= 0 else { return nil }
        return (p.committedOffset, p.metadata)
    }

    // MARK: 1. Arithmetic on outside values

    @Test func createPartitionsWithInt32MinCountIsRefusedNotTrapped() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "grow", partitions: 2)
        for assignments: [CreatePartitionsRequest.CreatePartitionsAssignment]? in [[], nil] {
            let answer = try fixture.send(CreatePartitionsRequest(topics: [.init(name: "grow", count: Int32.min, assignments: assignments)]), version: 3)
            #expect(answer.results.first?.errorCode == ErrorCode.invalidPartitions.rawValue)
        }
        #expect(fixture.broker.topics.topic("grow")?.partitionCount == 2)
        try Self.stillServes(fixture)
    }

    @Test func timestampBoundNearInt64MaxSaturatesInsteadOfTrapping() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "ts", configs: ["message.timestamp.after.max.ms": String(Int64.max - 1),
                                                 "message.timestamp.before.max.ms": String(Int64.max - 1)])
        #expect(try Self.produce(fixture, "ts", try Self.batch())?.errorCode == 0)
        #expect(try Self.produce(fixture, "ts", try Self.batch(timestamp: Int64.max - 2))?.errorCode == 0)
        #expect(try Self.produce(fixture, "ts", try Self.batch(timestamp: 0))?.errorCode == 0)
    }

    @Test func fetchAskingForInt32MaxBytesGetsAtMostFetchMaxBytes() throws {
        let fixture = try BrokerFixture(overrides: ["fetch.max.bytes": "4000"])
        try Self.create(fixture, "big", partitions: 4)
        let one = try Self.batch(size: 900)
        for p in Int32(0)..<4 {
            for _ in 0..<5 { #expect(try Self.produce(fixture, "big", one, partition: p)?.errorCode == 0) }
        }
        let request = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: Int32.max, topics: [
            .init(topic: "big", partitions: (0..<4).map { .init(partition: $0, fetchOffset: 0, partitionMaxBytes: Int32.max) }),
        ])
        let frame = try #require(try fixture.dispatcher.handle(Self.frame(request, version: 12), eventLoop: fixture.loop).wait())
        var body = try ResponseBytes.read(frame)
        _ = try ResponseHeader(from: &body, version: 1)
        let response = try FetchResponse(from: &body, version: 12)
        let recordBytes = response.responses.flatMap(\.partitions).reduce(0) { $0 + ($1.records?.readableBytes ?? 0) }
        #expect(recordBytes > 0 && recordBytes <= 4000, "\(recordBytes) record bytes for fetch.max.bytes 4000")
        // Negative partition limits read nothing rather than a negative range.
        let negative = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: -5, topics: [
            .init(topic: "big", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: Int32.min)]),
        ])
        let answer = try #require(try fixture.dispatcher.handle(Self.frame(negative, version: 12), eventLoop: fixture.loop).wait())
        _ = try ResponseBytes.read(answer)
    }

    static func frame<R: KafkaRequest>(_ request: R, version: Int16) -> ByteBuffer {
        var frame = ByteBuffer()
        RequestHeader(requestApiKey: R.apiKey.rawValue, requestApiVersion: version, correlationId: 1, clientId: "test")
            .write(into: &frame, version: R.apiKey.requestHeaderVersion(version))
        request.write(into: &frame, version: version)
        return frame
    }

    // MARK: 2. Allocation sized by the sender

    @Test func batchClaimingInt32MaxRecordsIsRefusedAndTimestampLookupsStayCheap() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "claims")
        var lying = try Self.batch()
        lying.setInteger(Int32.max, at: lying.readerIndex + RecordBatchLayout.recordCount)
        lying.setInteger(Int32.max - 1, at: lying.readerIndex + RecordBatchLayout.lastOffsetDelta)
        var view = try RecordBatchView(unchecked: lying)
        lying.setInteger(view.computeCRC(), at: lying.readerIndex + RecordBatchLayout.crc)
        view = try RecordBatchView(unchecked: lying)
        #expect(view.computeCRC() == view.crc)
        #expect(try Self.produce(fixture, "claims", lying)?.errorCode == ErrorCode.invalidRecord.rawValue)
        #expect(try Self.produce(fixture, "claims", try Self.batch(timestamp: 1000))?.errorCode == 0)
        let found = try fixture.send(ListOffsetsRequest(replicaId: -1, topics: [
            .init(name: "claims", partitions: [.init(partitionIndex: 0, timestamp: 500)]),
        ]), version: 7)
        #expect(found.topics.first?.partitions.first?.offset == 0)
    }

    // MARK: 3. Responses and writes larger than the request deserves

    @Test func metadataNamingATopicRepeatedlyAnswersItOnce() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "many", partitions: 50)
        let answer = try fixture.send(MetadataRequest(topics: Array(repeating: .init(name: "many"), count: 2000)), version: 12)
        #expect(answer.topics.count == 1 && answer.topics.first?.partitions.count == 50)
    }

    @Test func describeRequestsNamingOneResourceRepeatedlyAnswerItOnce() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "c")
        let configs = try fixture.send(DescribeConfigsRequest(resources: Array(repeating: .init(resourceType: 2, resourceName: "c", configurationKeys: nil),
                                                                                 count: 5000)), version: 4)
        #expect(configs.results.count == 1 && (configs.results.first?.configs.count ?? 0) > 5)
        let groups = try fixture.send(DescribeGroupsRequest(groups: Array(repeating: "g", count: 5000) + ["h"]), version: 5)
        #expect(groups.groups.map(\.groupId) == ["g", "h"])
        // Names that differ only by '.' against '_' still collide (now found through an index).
        try Self.create(fixture, "a.b")
        let collision = try fixture.send(CreateTopicsRequest(topics: [.init(name: "a_b", numPartitions: 1, replicationFactor: 1)]), version: 7)
        #expect(collision.topics.first?.errorCode == ErrorCode.invalidTopicException.rawValue)
    }

    @Test func offsetCommitsAreBoundedDeduplicatedAndKeyedSafely() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "t", partitions: 1000)
        // A group id whose length does not fit the record key's int16 length.
        let long = String(repeating: "g", count: Int(Int16.max) + 1)
        let refused = try Self.commit(fixture, group: long, topic: "t", partitions: [0])
        #expect(refused.topics.first?.partitions.first?.errorCode == ErrorCode.invalidGroupId.rawValue)
        // 1,000 partitions under a 30 KB group id: 30 MB of records for a small request.
        let heavy = try Self.commit(fixture, group: String(repeating: "h", count: 30_000), topic: "t", partitions: Array(0..<1000))
        #expect(heavy.topics.first?.partitions.allSatisfy { $0.errorCode == ErrorCode.invalidCommitOffsetSize.rawValue } == true)
        let log = try #require(fixture.broker.topics.log(OffsetStore.topic, 0))
        let before = log.sizeInBytes
        // The same partition named 500 times is one record.
        let repeated = try Self.commit(fixture, group: "g", topic: "t", partitions: Array(repeating: 7, count: 500))
        #expect(repeated.topics.first?.partitions.allSatisfy { $0.errorCode == 0 } == true)
        #expect(log.sizeInBytes - before < 500, "\(log.sizeInBytes - before) bytes appended for one partition's commit")
        #expect(try Self.committed(fixture, group: "g", topic: "t", partition: 7)?.0 == 5)
    }

    // MARK: 4. Internal topics are the broker's

    @Test func clientsCannotProduceToDeleteTruncateGrowOrReconfigureInternalTopics() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "t")
        #expect(try Self.commit(fixture, group: "g", topic: "t", partitions: [0]).topics.first?.partitions.first?.errorCode == 0)
        let internalTopic = OffsetStore.topic
        var poisoned = try RecordBatch(records: [Record(timestamp: Int64.min, key: ByteBuffer(bytes: [0, 1, 0, 1, 0x67]), value: nil)]).encoded()
        #expect(try Self.produce(fixture, internalTopic, poisoned)?.errorCode == ErrorCode.invalidTopicException.rawValue)
        poisoned.clear()
        let deleted = try fixture.send(DeleteTopicsRequest(topicNames: [internalTopic]), version: 5)
        #expect(deleted.responses.first?.errorCode != 0)
        let truncated = try fixture.send(DeleteRecordsRequest(topics: [.init(name: internalTopic, partitions: [.init(partitionIndex: 0, offset: -1)])]), version: 2)
        #expect(truncated.topics.first?.partitions.first?.errorCode == ErrorCode.invalidTopicException.rawValue)
        let grown = try fixture.send(CreatePartitionsRequest(topics: [.init(name: internalTopic, count: 5, assignments: nil)]), version: 3)
        #expect(grown.results.first?.errorCode != 0)
        let altered = try fixture.send(AlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: internalTopic,
                                                                             configs: [.init(name: "retention.ms", value: "1")])]), version: 2)
        #expect(altered.responses.first?.errorCode != 0)
        let incremental = try fixture.send(IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: internalTopic, configs: [.init(name: "segment.bytes", configOperation: 0, value: "1000")]),
        ]), version: 1)
        #expect(incremental.responses.first?.errorCode != 0)
        // The offsets are still there and commits still work, also after a restart.
        #expect(try Self.commit(fixture, group: "g", topic: "t", partitions: [0], offset: 9).topics.first?.partitions.first?.errorCode == 0)
        let restarted = try fixture.restart()
        #expect(try Self.committed(restarted, group: "g", topic: "t")?.0 == 9)
    }

    @Test func undecodableAndHostileRecordsInTheOffsetsTopicAreSkippedAtStart() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "t")
        #expect(try Self.commit(fixture, group: "g", topic: "t", partitions: [0], offset: 3).topics.first?.partitions.first?.errorCode == 0)
        // Written behind the request layer, as a disk or an older broker might have left them: a
        // record that does not decode, a batch whose records are garbage, and a commit made at Int64.min.
        let log = try #require(fixture.broker.topics.log(OffsetStore.topic, 0))
        // The topic is compacted (keys are checked on append): an older broker's data had no such check.
        var lenient = log.config
        lenient.cleanupCompact = false
        log.config = lenient
        _ = try log.append(try RecordBatch(records: [Record(timestamp: 1, key: ByteBuffer(bytes: [0, 1, 0xff]), value: ByteBuffer(bytes: [1]))]).encoded())
        var garbage = try RecordBatch(records: [Record(timestamp: 1, key: ByteBuffer(bytes: [1]), value: ByteBuffer(bytes: [2]))]).encoded()
        garbage.setInteger(UInt8(0x7e), at: garbage.readerIndex + RecordBatchLayout.headerSize)  // a record length that overruns the batch
        var view = try RecordBatchView(unchecked: garbage)
        garbage.setInteger(view.computeCRC(), at: garbage.readerIndex + RecordBatchLayout.crc)
        view = try RecordBatchView(unchecked: garbage)
        #expect(throws: (any Error).self) { try view.records() }
        _ = try log.append(garbage)
        var key = ByteBuffer(), value = ByteBuffer()
        key.writeInteger(Int16(1)); key.writeKafkaString("old", compact: false); key.writeKafkaString("t", compact: false); key.writeInteger(Int32(0))
        value.writeInteger(Int16(1)); value.writeInteger(Int64(1)); value.writeInteger(Int32(-1))
        value.writeKafkaNullableString(nil, compact: false); value.writeInteger(Int64.min)
        _ = try log.append(try RecordBatch(records: [Record(timestamp: 1, key: key, value: value)]).encoded())
        var current = fixture
        for clean in [true, false] {
            let restarted = try current.restart(clean: clean)
            current = restarted
            #expect(try Self.committed(restarted, group: "g", topic: "t")?.0 == 3)
            #expect(try Self.committed(restarted, group: "old", topic: "t")?.0 == 1)
            // The expiry sweep runs at start: a commit time of Int64.min must not overflow it.
            restarted.loop.advanceTime(by: .seconds(1))
            try Self.stillServes(restarted)
        }
    }

    // MARK: 5. Offsets that must survive

    @Test func nullMetadataCommitSurvivesARestart() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "t")
        #expect(try Self.commit(fixture, group: "g", topic: "t", partitions: [0], offset: 42, metadata: nil).topics.first?.partitions.first?.errorCode == 0)
        let restarted = try fixture.restart()
        #expect(try Self.committed(restarted, group: "g", topic: "t")?.0 == 42)
    }

    @Test func aQuietGroupKeepsItsOffsetsAcrossARestartPastTheRetention() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "t")
        #expect(try Self.commit(fixture, group: "quiet", topic: "t", partitions: [0], offset: 11).topics.first?.partitions.first?.errorCode == 0)
        let offsets = fixture.coordinator.offsets
        let retention: Int64 = 7 * 86_400_000
        let committedAt = try #require(offsets.offsets["quiet"]?.values.first?.commitTimestamp)
        // Eight days later the broker restarts: the group has not been seen empty for a retention yet.
        let restartedAt = committedAt + retention + 86_400_000
        try offsets.expire(retentionMs: retention, activeGroups: [], emptySince: { _ in restartedAt }, nowMs: restartedAt + 60_000)
        #expect(offsets.offsets["quiet"] != nil)
        // Empty for longer than the retention after that: expired, as Kafka expires them.
        try offsets.expire(retentionMs: retention, activeGroups: [], emptySince: { _ in restartedAt }, nowMs: restartedAt + retention + 1)
        #expect(offsets.offsets["quiet"] == nil)
    }

    // MARK: 6. Races

    @Test func aProduceToADeletedLogIsRefusedNotTrapped() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "gone")
        let log = try #require(fixture.broker.topics.log("gone", 0))
        _ = try fixture.send(DeleteTopicsRequest(topicNames: ["gone"]), version: 5)
        #expect(throws: AppendError.self) { try log.append(try Self.batch()) }
        #expect(log.logEndOffset == 0)
        _ = try log.read(from: 0, maxBytes: 100, minOneBatch: true)
        try Self.create(fixture, "gone")
        #expect(try Self.produce(fixture, "gone", try Self.batch())?.errorCode == 0)
    }

    // MARK: 8. Linear work

    @Test func alterConfigsOfManyResourcesFlagsOnlyTheRepeatedOnes() throws {
        let fixture = try BrokerFixture()
        try Self.create(fixture, "a")
        var resources = (0..<4000).map { AlterConfigsRequest.AlterConfigsResource(resourceType: 2, resourceName: "missing-\($0)", configs: []) }
        resources += [.init(resourceType: 2, resourceName: "a", configs: []), .init(resourceType: 2, resourceName: "a", configs: [])]
        let answer = try fixture.send(AlterConfigsRequest(resources: resources, validateOnly: true), version: 2)
        #expect(answer.responses.count == 4002)
        #expect(answer.responses.prefix(4000).allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue })
        #expect(answer.responses.suffix(2).allSatisfy { $0.errorCode == ErrorCode.invalidRequest.rawValue })
    }
}
