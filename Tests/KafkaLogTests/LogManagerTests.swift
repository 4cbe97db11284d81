import Foundation
import KafkaLog
import KafkaWire
import NIOCore
import Testing

@Suite struct LogManagerTests {
    @Test func checkpointsAndCleanShutdownMarker() throws {
        let dir = TemporaryDirectory()
        do {
            let manager = try LogManager(directory: dir.path, logger: testLogger)
            try manager.loadAll { _ in LogConfig() }
            let log = try manager.createLog(TopicPartition("orders", 2), config: LogConfig())
            _ = try log.append(clientBatch(count: 4))
            _ = try log.deleteRecords(before: 1)
            try manager.shutdown()
        }
        #expect(FileManager.default.fileExists(atPath: dir.path + "/.kafka_cleanshutdown"))
        let points = try String(contentsOfFile: dir.path + "/recovery-point-offset-checkpoint", encoding: .utf8)
        #expect(points == "0\n1\norders 2 4\n")
        let starts = try String(contentsOfFile: dir.path + "/log-start-offset-checkpoint", encoding: .utf8)
        #expect(starts == "0\n1\norders 2 1\n")

        let manager = try LogManager(directory: dir.path, logger: testLogger)
        try manager.loadAll { _ in LogConfig() }
        #expect(manager.wasCleanShutdown)
        // The marker is consumed at start: a crash from now on means recovery.
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/.kafka_cleanshutdown"))
        let log = try #require(manager.log(TopicPartition("orders", 2)))
        #expect(log.logStartOffset == 1 && log.logEndOffset == 4)
    }

    @Test func corruptCheckpointMeansFullRecovery() throws {
        let dir = TemporaryDirectory()
        do {
            let manager = try LogManager(directory: dir.path, logger: testLogger)
            try manager.loadAll { _ in LogConfig() }
            let log = try manager.createLog(TopicPartition("a-b", 0), config: LogConfig())
            for _ in 0..<3 { _ = try log.append(clientBatch(count: 2)) }
            try log.close(sync: false)
        }
        try "garbage\n".write(toFile: dir.path + "/recovery-point-offset-checkpoint", atomically: true, encoding: .utf8)
        let manager = try LogManager(directory: dir.path, logger: testLogger)
        try manager.loadAll { _ in LogConfig() }
        #expect(!manager.wasCleanShutdown)
        #expect(manager.log(TopicPartition("a-b", 0))?.logEndOffset == 6)
    }

    @Test func directoryNames() {
        #expect(TopicPartition(directoryName: "my-topic-12") == TopicPartition("my-topic", 12))
        #expect(TopicPartition(directoryName: "nodash") == nil)
        #expect(TopicPartition(directoryName: "t-x") == nil)
        #expect(TopicPartition(directoryName: "t--1") == TopicPartition("t-", 1))
    }
}
