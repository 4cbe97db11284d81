import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// cleanup.policy=compact as topics are created by stream processors and registries: accepted with
/// Kafka's compaction configs, keyless records refused, no time- or size-based deletion.
@Suite struct CompactedTopicTests {
    static func batch(keys: [String?], timestamp: Int64 = PartitionLog.currentTimeMs(), compression: CompressionCodec = .none) throws -> ByteBuffer {
        try RecordBatch(compression: compression, records: keys.enumerated().map { i, key in
            Record(offset: Int64(i), timestamp: timestamp, key: key.map { ByteBuffer(string: $0) }, value: ByteBuffer(string: "v\(i)"))
        }).encoded()
    }

    @Test func compactedTopicsAreCreatedWithKafkasConfigsAndShownWithTheirSources() throws {
        let fixture = try BrokerFixture(overrides: ["log.cleaner.delete.retention.ms": "1000"])
        try HostileRequestTests.create(fixture, "changelog", configs: ["cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                                                                       "segment.ms": "60000", "min.compaction.lag.ms": "0"])
        try HostileRequestTests.create(fixture, "both", configs: ["cleanup.policy": "compact,delete"])
        let described = try fixture.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "changelog", configurationKeys: nil)],
                                                                includeSynonyms: true), version: 4)
        let configs = Dictionary(uniqueKeysWithValues: (described.results.first?.configs ?? []).map { ($0.name, $0) })
        #expect(configs["cleanup.policy"]?.value == "compact" && configs["cleanup.policy"]?.configSource == 1)
        #expect(configs["min.cleanable.dirty.ratio"]?.value == "0.1")
        #expect(configs["delete.retention.ms"]?.value == "1000" && configs["delete.retention.ms"]?.configSource == 4)
        #expect(configs["max.compaction.lag.ms"]?.value == String(Int64.max) && configs["max.compaction.lag.ms"]?.configSource == 5)
        #expect(fixture.broker.topics.log("changelog", 0)?.config.cleanupCompact == true)
        #expect(fixture.broker.topics.log("changelog", 0)?.config.cleanupDelete == false)
        #expect(fixture.broker.topics.log("both", 0)?.config.cleanupDelete == true)
        for bad in ["", "compact,compact", "delete,forever", "Compact"] {
            let refused = try fixture.send(CreateTopicsRequest(topics: [.init(name: "bad", numPartitions: 1, replicationFactor: 1,
                                                                               configs: [.init(name: "cleanup.policy", value: bad)])]), version: 7)
            #expect(refused.topics.first?.errorCode == ErrorCode.invalidConfig.rawValue, "cleanup.policy '\(bad)'")
        }
        let ratio = try fixture.send(IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: "changelog", configs: [.init(name: "min.cleanable.dirty.ratio", configOperation: 0, value: "1.5")]),
        ]), version: 1)
        #expect(ratio.responses.first?.errorCode == ErrorCode.invalidConfig.rawValue)
    }

    @Test func aCompactedTopicRefusesRecordsWithoutAKey() throws {
        let fixture = try BrokerFixture()
        try HostileRequestTests.create(fixture, "table", configs: ["cleanup.policy": "compact"])
        try HostileRequestTests.create(fixture, "plain")
        for codec in [CompressionCodec.none, .gzip, .zstd] {
            let keyless = try HostileRequestTests.produce(fixture, "table", try Self.batch(keys: ["a", nil], compression: codec))
            #expect(keyless?.errorCode == ErrorCode.invalidRecord.rawValue)
            #expect(try HostileRequestTests.produce(fixture, "table", try Self.batch(keys: ["a", "b"], compression: codec))?.errorCode == 0)
        }
        #expect(try HostileRequestTests.produce(fixture, "plain", try Self.batch(keys: [nil]))?.errorCode == 0)
        #expect(fixture.broker.topics.log("table", 0)?.logEndOffset == 6)
    }

    @Test func compactOnlyTopicsAreNotTrimmedByRetentionAndSegmentsRollByAge() throws {
        let fixture = try BrokerFixture()
        try HostileRequestTests.create(fixture, "kept", configs: ["cleanup.policy": "compact", "retention.ms": "1", "segment.ms": "1"])
        try HostileRequestTests.create(fixture, "trimmed", configs: ["cleanup.policy": "compact,delete", "retention.ms": "1", "segment.ms": "1"])
        for topic in ["kept", "trimmed"] {
            for _ in 0..<3 {
                #expect(try HostileRequestTests.produce(fixture, topic, try Self.batch(keys: ["k"], timestamp: 1000))?.errorCode == 0)
                usleep(5_000)
            }
        }
        let kept = try #require(fixture.broker.topics.log("kept", 0))
        let trimmed = try #require(fixture.broker.topics.log("trimmed", 0))
        // segment.ms=1: every append after the first found the active segment old enough to roll.
        #expect(kept.segmentCount == 3 && trimmed.segmentCount == 3)
        try kept.applyRetention()
        try trimmed.applyRetention()
        #expect(kept.segmentCount == 3 && kept.logStartOffset == 0)
        #expect(trimmed.segmentCount == 1 && trimmed.logStartOffset == 2)
    }

    @Test func theOffsetsTopicIsCompactedAlsoInAnOlderDataDirectory() throws {
        let fixture = try BrokerFixture()
        let offsets = try #require(fixture.broker.topics.log("__consumer_offsets", 0))
        #expect(offsets.config.cleanupCompact && !offsets.config.cleanupDelete)
        // As an earlier broker left it: no cleanup.policy override.
        try fixture.broker.shutdown()
        let file = fixture.directory + "/__topic_configs/__consumer_offsets.properties"
        try "segment.bytes=104857600\n".write(toFile: file, atomically: true, encoding: .utf8)
        let restarted = try fixture.restart(clean: false)
        #expect(restarted.broker.topics.topic("__consumer_offsets")?.overrides["cleanup.policy"] == "compact")
        #expect(restarted.broker.topics.log("__consumer_offsets", 0)?.config.cleanupDelete == false)
    }

    /// `__consumer_offsets` is cleaned by the log cleaner: commits are key → latest value, an offset
    /// delete a tombstone, and the table read back after a restart is the one committed.
    @Test func theCleanerCompactsTheOffsetsTopicAndTheTableSurvivesARestart() throws {
        // log.roll.ms=1: every commit starts a segment, so all but the last are cleanable.
        let fixture = try BrokerFixture(overrides: ["log.roll.ms": "1"])
        try HostileRequestTests.create(fixture, "orders", partitions: 2)
        for i in Int64(0)..<60 {
            _ = try HostileRequestTests.commit(fixture, group: "g", topic: "orders", partitions: [0, 1], offset: i)
            _ = try HostileRequestTests.commit(fixture, group: "gone", topic: "orders", partitions: [0], offset: i)
            usleep(1_500)
        }
        let deleted = try fixture.send(OffsetDeleteRequest(groupId: "gone", topics: [.init(name: "orders", partitions: [.init(partitionIndex: 0)])]),
                                       version: 0)
        #expect(deleted.errorCode == 0)
        _ = try HostileRequestTests.commit(fixture, group: "last", topic: "orders", partitions: [0], offset: 7)
        let log = try #require(fixture.broker.topics.log("__consumer_offsets", 0))
        let before = log.sizeInBytes
        let report = try #require(fixture.broker.cleaner.cleanDirtiest())
        #expect(report.topicPartition == TopicPartition("__consumer_offsets", 0))
        #expect(report.stats.recordsRemoved >= 170 && log.sizeInBytes < before / 10)
        let restarted = try fixture.restart(clean: false)
        #expect(try HostileRequestTests.committed(restarted, group: "g", topic: "orders", partition: 0)?.0 == 59)
        #expect(try HostileRequestTests.committed(restarted, group: "g", topic: "orders", partition: 1)?.0 == 59)
        #expect(try HostileRequestTests.committed(restarted, group: "gone", topic: "orders") == nil)
        #expect(try HostileRequestTests.committed(restarted, group: "last", topic: "orders")?.0 == 7)
    }

    /// The old rewrite-by-copy and time retention lost a quiet group's commits; compaction keeps the
    /// latest commit of every key however old, until the group itself expires.
    @Test func aQuietGroupsCommitsOutliveTheOldTimeRetention() throws {
        let fixture = try BrokerFixture(overrides: ["log.roll.ms": "1", "log.retention.ms": "1000"])
        try HostileRequestTests.create(fixture, "orders")
        _ = try HostileRequestTests.commit(fixture, group: "quiet", topic: "orders", partitions: [0], offset: 41)
        usleep(2_000)
        for i in Int64(0)..<5 {
            _ = try HostileRequestTests.commit(fixture, group: "busy", topic: "orders", partitions: [0], offset: i)
            usleep(2_000)
        }
        let weekLater = PartitionLog.currentTimeMs() + 8 * 86_400_000
        fixture.broker.runMaintenance(nowMs: weekLater)
        #expect(fixture.broker.cleaner.cleanDirtiest(nowMs: weekLater) != nil)
        let restarted = try fixture.restart(clean: false)
        #expect(try HostileRequestTests.committed(restarted, group: "quiet", topic: "orders")?.0 == 41)
        #expect(try HostileRequestTests.committed(restarted, group: "busy", topic: "orders")?.0 == 4)
    }
}
