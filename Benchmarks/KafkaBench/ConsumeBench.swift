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

    func run() async throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: load.bootstrapServer, groupId: group)
        configuration.clientId = "kafka-bench"
        configuration.autoOffsetReset = .earliest
        configuration.maxPartitionFetchBytes = maxPartitionFetchBytes
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
        var records = 0, bytes = 0
        let count = load.count  // read once: a property wrapper's getter per record shows in the profile
        // A poll's records at a time, as librdkafka's consume(num_messages) in compare.py; every record is read.
        reading: for try await batch in consumer.batches {
            if start == nil {
                start = clock.now
                steal = CPUSteal()
            }
            for record in batch {
                records += 1
                bytes += (record.value?.readableBytes ?? 0) + (record.key?.readableBytes ?? 0)
                if records == count { break reading }
            }
        }
        let seconds = Double((clock.now - (start ?? clock.now)) / .nanoseconds(1)) / 1e9
        await consumer.close()
        guard records == load.count else {
            throw ValidationError("the topic ended after \(records) of \(load.count) records")
        }
        try BenchResult(mode: "consume", records: records, failed: 0, recordSize: load.recordSize, seconds: seconds, bytes: bytes,
                        latencyMicros: nil, steal: steal).report(jsonPath: load.json)
    }
}
