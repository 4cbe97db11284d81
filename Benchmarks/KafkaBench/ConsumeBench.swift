import ArgumentParser
import Consumers
import Foundation

/// `kafka-bench consume`: reads `--count` records of a topic from its beginning, as fast as they come.
struct ConsumeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume", abstract: "Consume records from the beginning of a topic (fill it first with `produce`).")

    @OptionGroup var load: LoadOptions
    @Option(help: "group.id: consume as a group member (subscribe) instead of assigning every partition.")
    var group: String?
    @Option(name: .customLong("max-partition-fetch-bytes"), help: "max.partition.fetch.bytes")
    var maxPartitionFetchBytes = 1_048_576
    @Option(name: .customLong("isolation-level"), help: "read_committed or read_uncommitted.")
    var isolationLevel = "read_committed"

    func validate() throws {
        guard ["read_committed", "read_uncommitted"].contains(isolationLevel) else {
            throw ValidationError("--isolation-level must be read_committed or read_uncommitted")
        }
    }

    func run() async throws {
        try await load.prepareTopic()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: load.bootstrapServer, groupId: group)
        configuration.security = try load.security()
        configuration.logger = .stderrWarnings("kafka-bench")
        configuration.clientId = "kafka-bench"
        configuration.autoOffsetReset = .earliest
        configuration.maxPartitionFetchBytes = maxPartitionFetchBytes
        configuration.isolationLevel = isolationLevel == "read_uncommitted" ? .readUncommitted : .readCommitted
        let consumer = try KafkaConsumer(configuration: configuration)
        if group != nil {
            try await consumer.subscribe(topics: [load.topic])
        } else {
            await consumer.assign(try await consumer.partitions(of: load.topic))
        }
        // The clock starts at the first record: joining and metadata are not throughput.
        let clock = ContinuousClock()
        var start: ContinuousClock.Instant?
        var steal = CPUSteal()
        // --duration: closing the consumer ends `batches` even while it waits for records. Until the
        // first record the run waits at most --duration for one; from it, the run lasts --duration.
        func stop(at deadline: ContinuousClock.Instant?) -> Task<Void, Error>? {
            deadline.map { deadline in
                Task {
                    try await clock.sleep(until: deadline)
                    await consumer.close()
                }
            }
        }
        var stopper = stop(at: load.deadline(from: clock.now))
        var records = 0, bytes = 0
        let limit = load.limit()  // read once: a property wrapper's getter per record shows in the profile
        // A poll's records at a time, as librdkafka's consume(num_messages) in compare.py; every record is read.
        reading: for try await batch in consumer.batches {
            if start == nil {
                start = clock.now
                steal = CPUSteal()
                stopper?.cancel()
                stopper = stop(at: load.deadline(from: clock.now))
            }
            for record in batch {
                records += 1
                bytes += (record.value?.readableBytes ?? 0) + (record.key?.readableBytes ?? 0)
                if records == limit { break reading }
            }
        }
        let seconds = Double((clock.now - (start ?? clock.now)) / .nanoseconds(1)) / 1e9
        stopper?.cancel()
        await consumer.close()
        // By count, the topic must have had them all; by time, what came in that time is the result.
        guard records == limit || (load.duration != nil && records > 0) else {
            throw BenchFailure(load.duration != nil ? "no records arrived within --duration" : "the topic ended after \(records) of \(limit) records")
        }
        try BenchResult(mode: "consume", records: records, failed: 0, recordSize: bytes / records, seconds: seconds, bytes: bytes,
                        latencyMicros: nil, steal: steal).report(jsonPath: load.json)
    }
}
