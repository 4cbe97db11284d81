import ArgumentParser
import Consumers
import Foundation
import Histogram
import NIOCore
import Producers

/// `kafka-bench e2e`: a producer at a target rate and a consumer in the same process; each record
/// carries its send time, so the latency is send to receipt, through the broker's log.
struct EndToEndBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "e2e", abstract: "Send at a fixed rate and measure send-to-receipt latency.")

    @OptionGroup var load: LoadOptions
    @Option(help: "Records per second the producer sends.") var rate = 10_000
    @Option(help: "acks: -1 (all), 1 or 0.") var acks: Int16 = -1
    @Option(name: .customLong("linger-ms"), help: "linger.ms") var lingerMs = 0
    @Option(help: "compression.type") var compression = "none"

    func validate() throws {
        guard rate >= 1 else { throw ValidationError("--rate must be at least 1 record per second") }
        guard load.recordSize >= 8 else { throw ValidationError("--record-size must be at least 8 (the send time rides in the value)") }
    }

    func run() async throws {
        let codec = try compressionCodec(compression)
        try await load.prepareTopic()
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: load.bootstrapServer)
        producerConfiguration.security = try load.security()
        producerConfiguration.logger = .stderrWarnings("kafka-bench")
        producerConfiguration.clientId = "kafka-bench"
        producerConfiguration.acks = acks
        producerConfiguration.enableIdempotence = acks == -1
        producerConfiguration.lingerMs = lingerMs
        producerConfiguration.compression = codec
        let producer = try KafkaProducer(configuration: producerConfiguration)
        _ = try await producer.send(ProducerRecord(topic: load.topic, value: Array(repeating: 0, count: load.recordSize)))

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: load.bootstrapServer)
        consumerConfiguration.security = try load.security()
        consumerConfiguration.logger = .stderrWarnings("kafka-bench")
        consumerConfiguration.clientId = "kafka-bench"
        consumerConfiguration.fetchMaxWaitMs = 100
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        let partitions = try await consumer.partitions(of: load.topic)
        await consumer.assign(partitions)
        for (partition, end) in try await consumer.endOffsets(partitions) { try await consumer.seek(partition, to: end) }

        let clock = ContinuousClock()
        let steal = CPUSteal()
        let origin = clock.now
        @Sendable func micros() -> UInt64 { UInt64((clock.now - origin) / .microseconds(1)) }
        let count = load.limit(atRate: rate)
        let receiver = Task { () -> Histogram<UInt64> in
            var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            var received = 0
            for try await record in consumer.records {
                guard let sentAt = record.value?.getInteger(at: record.value!.readerIndex, as: UInt64.self), sentAt > 0 else { continue }
                let now = micros()
                latency.record(now > sentAt ? now - sentAt : 0)
                received += 1
                if received == count { break }
            }
            return latency
        }
        var value = [UInt8](repeating: 0x61, count: load.recordSize)
        for i in 0..<count {
            // Paced against the schedule, not the previous send: a late record does not delay the rest.
            try await clock.sleep(until: origin + .nanoseconds(Int64(i) * 1_000_000_000 / Int64(rate)))
            withUnsafeBytes(of: micros().bigEndian) { value.replaceSubrange(0..<8, with: $0) }
            try await producer.produce(ProducerRecord(topic: load.topic, value: value))
        }
        await producer.flush()
        let latency = try await receiver.value
        let seconds = Double((clock.now - origin) / .nanoseconds(1)) / 1e9
        await producer.close()
        await consumer.close()
        try BenchResult(mode: "e2e", records: count, failed: 0, recordSize: load.recordSize, seconds: seconds,
                        latencyMicros: latency, steal: steal).report(jsonPath: load.json)
    }
}
