import Foundation
import KafkaLog
import KafkaWire
import Logging
@testable import MiniBroker
import Testing

/// What the broker finds on disk or in its configuration at start: anything it cannot trust is
/// skipped with a log line, or stops the start with a message naming the file or key; nothing traps.
@Suite struct StartupFilesTests {
    static func directory() -> String {
        let path = NSTemporaryDirectory() + "minibroker-start-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func partitionDirectoriesThatDoNotFollowPartitionZeroAreNotLoaded() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for name in ["x-2147483647", "y-100000", "z-0", "z-1", "z-5", "bad name-0", "w-05"] {
            try FileManager.default.createDirectory(atPath: path + "/" + name, withIntermediateDirectories: true)
        }
        let fixture = try BrokerFixture(directory: path)
        fixture.ownsDirectory = false
        #expect(fixture.broker.topics.topic("x") == nil)
        #expect(fixture.broker.topics.topic("y") == nil)
        #expect(fixture.broker.topics.topic("z")?.partitionCount == 2)
        #expect(fixture.broker.topics.topic("bad name") == nil)
        #expect(fixture.broker.topics.topic("w") == nil)
        // Nothing was created for them.
        #expect(!FileManager.default.fileExists(atPath: path + "/y-0"))
        #expect(!FileManager.default.fileExists(atPath: path + "/x-0"))
        let created = try fixture.send(CreateTopicsRequest(topics: [.init(name: "x", numPartitions: 1, replicationFactor: 1)]), version: 7)
        #expect(created.topics.first?.errorCode == 0)
    }

    @Test func segmentFilesWithForeignNamesAreSkipped() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let partition = path + "/s-0"
        try FileManager.default.createDirectory(atPath: partition, withIntermediateDirectories: true)
        for name in ["-5.log", "5.log", "abc.log", "09223372036854775807.log", "-0000000000000000001.snapshot"] {
            #expect(FileManager.default.createFile(atPath: partition + "/" + name, contents: Data([1, 2, 3])))
        }
        let fixture = try BrokerFixture(directory: path)
        fixture.ownsDirectory = false
        let log = try #require(fixture.broker.topics.log("s", 0))
        #expect(log.logEndOffset == 0 && log.logStartOffset == 0)
        let answer = try fixture.send(ProduceRequest(acks: -1, timeoutMs: 1000, topicData: [
            .init(name: "s", partitionData: [.init(index: 0, records: try HostileRequestTests.batch())]),
        ]), version: 9)
        #expect(answer.responses.first?.partitionResponses.first?.errorCode == 0)
    }

    @Test func checkpointWithACountOfInt64MaxIsIgnored() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try BrokerFixture(directory: path)
        first.ownsDirectory = false
        try HostileRequestTests.create(first, "c")
        try first.broker.shutdown()
        for file in [LogManager.recoveryPointFile, LogManager.logStartOffsetFile] {
            try "0\n\(Int64.max)\nc 0 0\n".write(toFile: path + "/" + file, atomically: true, encoding: .utf8)
        }
        let second = try BrokerFixture(directory: path)
        second.ownsDirectory = false
        #expect(second.broker.topics.topic("c")?.partitionCount == 1)
    }

    @Test func unreadableProducerIdBlockStopsTheStartNamingTheFile() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "\(Int64.max)\n".write(toFile: path + "/producer-id-block", atomically: true, encoding: .utf8)
        #expect {
            let fixture = try BrokerFixture(directory: path)
            fixture.ownsDirectory = false
        } throws: { error in "\(error)".contains("producer-id-block") }
    }

    @Test func invalidStoredTopicConfigsAreDroppedAtStart() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try BrokerFixture(directory: path)
        first.ownsDirectory = false
        try HostileRequestTests.create(first, "cfg")
        try first.broker.shutdown()
        try "segment.bytes=0\nretention.ms=1000\nno.such.key=1\n".write(toFile: path + "/__topic_configs/cfg.properties", atomically: true, encoding: .utf8)
        let second = try BrokerFixture(directory: path)
        second.ownsDirectory = false
        #expect(second.broker.topics.topic("cfg")?.overrides == ["retention.ms": "1000"])
        #expect(second.broker.topics.log("cfg", 0)?.config.segmentBytes == LogConfig().segmentBytes)
    }

    @Test func contradictoryOrOutOfRangeBrokerSettingsNameTheKey() throws {
        var config = BrokerConfig()
        try config.set("group.min.session.timeout.ms", "60000")
        try config.set("group.max.session.timeout.ms", "6000")
        #expect { try config.validate() } throws: { ($0 as? ConfigError)?.key == "group.min.session.timeout.ms" }
        #expect { try config.set("connections.max.idle.ms", String(Int64.max - 1)) } throws: { ($0 as? ConfigError)?.key == "connections.max.idle.ms" }
        try config.set("log.dirs", Self.directory())
        #expect(throws: ConfigError.self) { _ = try Broker(config: config, logger: Logger(label: "test")) }
    }
}
