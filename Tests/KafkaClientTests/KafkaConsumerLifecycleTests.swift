import Consumers
import Foundation
import KafkaClient
import KafkaWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Producers
import Synchronization
import Testing

/// The consumer as a service meets it (issue 27): a cancelled task's loop ends, failures it would
/// retry forever surface within default.api.timeout.ms, commits do not wait behind a parked Fetch,
/// close() hands out nothing after its final commit, and a consumer dropped without close() leaves
/// its group.
@Suite(.serialized) struct KafkaConsumerLifecycleTests {
    static func fill(_ broker: RunningBroker, topic: String, count: Int, partitions: Int? = nil) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.lingerMs = 5
        let producer = try KafkaProducer(configuration: configuration)
        _ = try await producer.produce(contentsOf: (0..<count).map { i in
            ProducerRecord(topic: topic, partition: partitions.map { Int32(i % $0) }, key: Array("k\(i)".utf8), value: Array("v\(i)".utf8))
        })
        await producer.close()
    }

    static func configuration(_ broker: RunningBroker, group: String? = nil) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: group)
        configuration.autoOffsetReset = .earliest
        return configuration
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheTaskEndsTheLoopAtOnce() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        try await Self.fill(broker, topic: "stream", count: 20_000)
        var configuration = Self.configuration(broker)
        configuration.fetchMaxWaitMs = 5000  // a Fetch at the log end parks at the broker for 5 s
        let consumer = try KafkaConsumer(configuration: configuration)
        await consumer.assign([TopicPartition("stream", 0)])
        let received = Atomic<Int>(0)
        let reader = Task {
            for try await _ in consumer.records {
                // The 1000th record's work lasts until the task is cancelled: the loop must end right after it.
                if received.add(1, ordering: .relaxed).newValue == 1000 {
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(1)) }
                }
            }
        }
        while received.load(ordering: .relaxed) < 1000 { try await Task.sleep(for: .milliseconds(1)) }
        reader.cancel()
        try await reader.value
        // Before, the loop went on through the poll's records (and fetched more) after the cancel.
        #expect(received.load(ordering: .relaxed) == 1000)

        // Waiting at the log end: the Fetch parked at the broker does not hold the loop.
        let idle = Task {
            for try await _ in consumer.records {}
        }
        try await Task.sleep(for: .milliseconds(300))
        let cancelledAt = ContinuousClock.now
        idle.cancel()
        try await idle.value
        #expect(ContinuousClock.now - cancelledAt < .seconds(1), "the loop waited for the parked Fetch's answer (5 s)")
        await consumer.close()
    }

    @Test(.timeLimit(.minutes(1))) func failuresItWouldRetryForeverSurface() async throws {
        let broker = try RunningBroker()
        // Neither subscribed nor assigned: at once.
        let idle = try KafkaConsumer(configuration: Self.configuration(broker))
        await #expect(throws: KafkaClientError.self) { for try await _ in idle.records {} }
        await idle.close()

        // No broker at the bootstrap address: after default.api.timeout.ms.
        var unreachable = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:\(RunningBroker.freePort())")
        unreachable.defaultApiTimeoutMs = 1000
        let lonely = try KafkaConsumer(configuration: unreachable)
        await lonely.assign([TopicPartition("anything", 0)])
        let started = ContinuousClock.now
        do {
            for try await _ in lonely.records {}
            Issue.record("the loop ended without an error")
        } catch let error as KafkaClientError {
            #expect(error.kind == .connection && error.message.contains("default.api.timeout.ms"))
        }
        #expect(ContinuousClock.now - started >= .milliseconds(1000) && ContinuousClock.now - started < .seconds(10))
        await lonely.close()

        // A subscription of which no topic exists.
        var missing = Self.configuration(broker, group: "nobody")
        missing.defaultApiTimeoutMs = 1500
        let typo = try KafkaConsumer(configuration: missing)
        try await typo.subscribe(topics: ["no-such-topic"])
        do {
            for try await _ in typo.records {}
            Issue.record("the loop ended without an error")
        } catch let error as KafkaClientError {
            #expect(error.kind == .broker(.unknownTopicOrPartition) && error.message.contains("no-such-topic"))
        }
        await typo.close()
    }

    @Test(.timeLimit(.minutes(1))) func aCommitAtTheLogEndDoesNotWaitBehindTheFetch() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1", "group.initial.rebalance.delay.ms=0"])
        try await Self.fill(broker, topic: "quiet", count: 100)
        var configuration = Self.configuration(broker, group: "committers")
        configuration.enableAutoCommit = false
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["quiet"])
        let received = Atomic<Int>(0)
        let reader = Task {
            for try await _ in consumer.records { received.add(1, ordering: .relaxed) }
        }
        while received.load(ordering: .relaxed) < 100 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(100))  // a Fetch is now parked at the broker (fetch.max.wait.ms 500)
        var durations: [Duration] = []
        for _ in 0..<5 {
            let start = ContinuousClock.now
            try await consumer.commit()
            durations.append(ContinuousClock.now - start)
            try await Task.sleep(for: .milliseconds(37))
        }
        // Before, every commit waited for the Fetch's answer (400+ ms); now it has a connection of its own.
        #expect(durations.sorted()[2] < .milliseconds(100), "commit times at the log end: \(durations)")
        #expect(try await consumer.committed([TopicPartition("quiet", 0)]) == [TopicPartition("quiet", 0): 100])
        reader.cancel()
        try await reader.value
        await consumer.close()
    }

    @Test(.timeLimit(.minutes(1))) func closeHandsOutNothingAfterItsFinalCommit() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=2", "group.initial.rebalance.delay.ms=0"])
        try await Self.fill(broker, topic: "closing", count: 20_000, partitions: 2)
        let configuration = Self.configuration(broker, group: "closers")  // auto-commit on
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["closing"])
        // A pthread lock (NIOLockedValueBox), which ThreadSanitizer sees; Synchronization.Mutex's futex it does not.
        let last = NIOLockedValueBox<[TopicPartition: Int64]>([:])
        let reader = Task {
            for try await record in consumer.records {
                last.withLockedValue { $0[record.topicPartition] = record.offset + 1 }
                try await Task.sleep(for: .microseconds(50))  // the application's work
            }
        }
        while last.withLockedValue({ $0.values.reduce(0, +) }) < 2000 { try await Task.sleep(for: .milliseconds(5)) }
        await consumer.close()
        try await reader.value
        // What close() committed is exactly what the loop received: nothing handed out after it.
        let reader2 = try KafkaConsumer(configuration: Self.configuration(broker, group: "closers"))
        let committed = try await reader2.committed([TopicPartition("closing", 0), TopicPartition("closing", 1)])
        #expect(committed == last.withLockedValue { $0 })
        await reader2.close()
        await #expect(throws: KafkaClientError.self) { try await consumer.commit() }
        do { try await consumer.commit(offsets: [TopicPartition("closing", 0): 1]) } catch let error as KafkaClientError {
            #expect(error.kind == .closed)
        }
    }

    @Test(.timeLimit(.minutes(1))) func theConsumerLogsJoinsAndRetriedFailures() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1", "group.initial.rebalance.delay.ms=0"])
        try await Self.fill(broker, topic: "logged", count: 5)
        let recorder = LogRecorder()
        var configuration = Self.configuration(broker, group: "loggers")
        configuration.logger = recorder.logger
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: ["logged"])
        var count = 0
        for try await _ in consumer.records {
            count += 1
            if count == 5 { break }
        }
        await consumer.close()
        #expect(recorder.all.contains { $0.level == .info && $0.text.hasPrefix("joined the group") && $0.text.contains("group=loggers")
                                        && $0.text.contains("logged-0") })

        var lonelyConfiguration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:\(RunningBroker.freePort())")
        lonelyConfiguration.defaultApiTimeoutMs = 500
        lonelyConfiguration.logger = recorder.logger
        let lonely = try KafkaConsumer(configuration: lonelyConfiguration)
        await lonely.assign([TopicPartition("x", 0)])
        await #expect(throws: KafkaClientError.self) { for try await _ in lonely.records {} }
        await lonely.close()
        let warnings = recorder.all.filter { $0.level == .warning && $0.text.hasPrefix("fetching failed, retrying") }
        #expect(warnings.count == 1, "one warning while the failure lasts, not one per retry")
        #expect(recorder.all.contains { $0.level == .error && $0.text.contains("connection refused") })
    }

    @Test(.timeLimit(.minutes(1))) func theProducerLogsABatchThatFailsForGood() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        let recorder = LogRecorder()
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.maxRequestSize = 8 << 20  // let it reach the broker, which takes 1 MB at most
        configuration.logger = recorder.logger
        let producer = try KafkaProducer(configuration: configuration)
        await #expect(throws: KafkaClientError.self) {
            _ = try await producer.send(ProducerRecord(topic: "big", value: [UInt8](repeating: 7, count: 2 << 20)))
        }
        await producer.close()
        #expect(recorder.all.contains { $0.level == .error && $0.text.hasPrefix("a batch failed for good") && $0.text.contains("MESSAGE_TOO_LARGE") })
    }

    @Test(.timeLimit(.minutes(1))) func aConsumerDroppedWithoutCloseLeavesItsGroup() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=2", "group.initial.rebalance.delay.ms=0"])
        try await Self.fill(broker, topic: "dropped", count: 10, partitions: 2)
        var first: KafkaConsumer? = try KafkaConsumer(configuration: Self.configuration(broker, group: "droppers"))
        try await first?.subscribe(topics: ["dropped"])
        var events = first?.events.makeAsyncIterator()
        let assigned = await events?.next()
        #expect(assigned == .partitionsAssigned([TopicPartition("dropped", 0), TopicPartition("dropped", 1)]))
        events = nil
        first = nil  // released, no close()

        let second = try KafkaConsumer(configuration: Self.configuration(broker, group: "droppers"))
        try await second.subscribe(topics: ["dropped"])
        let started = ContinuousClock.now
        var secondEvents = second.events.makeAsyncIterator()
        let took = await secondEvents.next()
        // Without the LeaveGroup the join waited for the first member's session.timeout.ms (45 s).
        #expect(took == .partitionsAssigned([TopicPartition("dropped", 0), TopicPartition("dropped", 1)]))
        #expect(ContinuousClock.now - started < .seconds(10))
        await second.close()
    }
}

/// What a logger was told (a test's own handler: no global bootstrap).
final class LogRecorder: Sendable {
    private let entries = NIOLockedValueBox<[(level: Logger.Level, text: String)]>([])
    var all: [(level: Logger.Level, text: String)] { entries.withLockedValue { $0 } }
    func add(_ level: Logger.Level, _ text: String) { entries.withLockedValue { $0.append((level, text)) } }

    var logger: Logger { Logger(label: "test") { _ in RecordingLogHandler(recorder: self) } }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        recorder.add(event.level, "\(event.message) \(fields)")
    }
}
