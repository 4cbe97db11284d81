import Foundation
import KafkaLog
import KafkaWire
import Logging
@testable import MiniBroker
import NIOCore
import NIOPosix
import Testing

/// fsync and file work leave the event loops: a slow disk must not stall every connection of a loop.
@Suite struct BlockingWorkTests {
    @Test func blockingWorkRunsOnThePoolNotOnTheEventLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let loop = group.next()
        let ranOnLoop = try await BlockingExecutor.threadPool(pool).run(on: loop) { MultiThreadedEventLoopGroup.currentEventLoop != nil }.get()
        #expect(!ranOnLoop)
        // The request layer with the pool: an admin request is answered through it.
        let directory = NSTemporaryDirectory() + "minibroker-blocking-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var config = BrokerConfig()
        try config.set("log.dirs", directory)
        let broker = try Broker(config: config, logger: Logger(label: "test"))
        let coordinator = try GroupCoordinator(broker: broker, loop: loop, logger: Logger(label: "test"), blocking: .threadPool(pool))
        let dispatcher = try RequestDispatcher(broker: broker, coordinator: coordinator, logger: Logger(label: "test"), blocking: .threadPool(pool))
        var frame = ByteBuffer()
        RequestHeader(requestApiKey: ApiKey.createTopics.rawValue, requestApiVersion: 7, correlationId: 1, clientId: "t")
            .write(into: &frame, version: ApiKey.createTopics.requestHeaderVersion(7))
        CreateTopicsRequest(topics: [.init(name: "made-off-loop", numPartitions: 2, replicationFactor: 1)]).write(into: &frame, version: 7)
        let request = frame
        let answer = try await loop.flatSubmit { dispatcher.handle(request, eventLoop: loop) }.get()
        for handle in answer?.fileHandles ?? [] { try handle.close() }
        #expect(answer != nil)
        #expect(broker.topics.topic("made-off-loop")?.partitionCount == 2)
        coordinator.stop()
        dispatcher.transactions.stop()
        try await pool.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    @Test func flushMessagesFsyncsBeforeTheProduceIsAnswered() throws {
        let fixture = try BrokerFixture(overrides: ["log.flush.interval.messages": "1"])
        try HostileRequestTests.create(fixture, "durable")
        let log = try #require(fixture.broker.topics.log("durable", 0))
        #expect(try HostileRequestTests.produce(fixture, "durable", try HostileRequestTests.batch(records: 3))?.errorCode == 0)
        #expect(log.recoveryPointOffset == 3 && log.logEndOffset == 3)
        // The group coordinator's own appends are flushed too.
        #expect(try HostileRequestTests.commit(fixture, group: "g", topic: "durable", partitions: [0]).topics.first?.partitions.first?.errorCode == 0)
        let offsets = try #require(fixture.broker.topics.log("__consumer_offsets", 0))
        #expect(offsets.recoveryPointOffset == offsets.logEndOffset && offsets.logEndOffset > 0)
    }

    @Test func aFlushMovesTheRecoveryPointToTheLogEndAcrossSegments() throws {
        let directory = NSTemporaryDirectory() + "minibroker-flush-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var config = LogConfig()
        config.segmentBytes = 300
        let log = try PartitionLog(directory: directory, topicPartition: TopicPartition("f", 0), config: config, logStartOffset: 0,
                                   recoveryPoint: 0, clean: true, logger: Logger(label: "test"))
        _ = try log.append(try HostileRequestTests.batch(size: 50))
        try log.flush()
        #expect(log.recoveryPointOffset == 1)
        for _ in 0..<5 { _ = try log.append(try HostileRequestTests.batch(size: 50)) }
        #expect(log.segmentCount > 1)
        try log.flush()
        #expect(log.recoveryPointOffset == log.logEndOffset)
    }
}
