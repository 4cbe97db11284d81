import ArgumentParser
import Foundation
import Histogram
import KafkaWire
import Producers

/// `kafka-bench`: load generator for any Kafka broker, on our own clients.
@main
struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-bench", abstract: "Throughput and latency of a Kafka broker, measured with the Swift clients.",
        subcommands: [ProduceBench.self, ConsumeBench.self, EndToEndBench.self])
}

/// Options every mode shares.
struct LoadOptions: ParsableArguments {
    @Option(name: .customLong("bootstrap-server"), help: "host:port (bootstrap.servers).")
    var bootstrapServer = "127.0.0.1:9092"
    @Option(help: "Topic to use (created on first use with the broker's defaults if missing).")
    var topic = "kafka-bench"
    @Option(name: .customLong("record-size"), help: "Bytes per record value.")
    var recordSize = 100
    @Option(help: "Records to send.")
    var count = 1_000_000
    @Option(help: "Write the results as JSON to this file.")
    var json: String?
}

struct ProduceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "produce", abstract: "Produce records as fast as acknowledged.")

    @OptionGroup var load: LoadOptions
    @Option(help: "acks: -1 (all), 1 or 0.") var acks: Int16 = -1
    @Option(help: "compression.type") var compression = "none"
    @Option(name: .customLong("batch-size"), help: "batch.size in bytes.") var batchSize = 1_000_000
    @Option(name: .customLong("linger-ms"), help: "linger.ms") var lingerMs = 5
    @Option(name: .customLong("max-in-flight"), help: "max.in.flight.requests.per.connection") var maxInFlight = 5
    @Flag(inversion: .prefixedEnableDisable, help: "enable.idempotence") var idempotence = true

    func run() async throws {
        guard let codec = CompressionCodec.allCases.first(where: { $0.description == compression }) else {
            throw ValidationError("--compression must be none, gzip, snappy, lz4 or zstd")
        }
        var configuration = KafkaProducerConfiguration(bootstrapServers: load.bootstrapServer)
        configuration.acks = acks
        configuration.compression = codec
        configuration.batchSize = batchSize
        configuration.lingerMs = lingerMs
        configuration.maxInFlightRequestsPerConnection = maxInFlight
        configuration.enableIdempotence = idempotence
        configuration.bufferMemory = max(64 << 20, batchSize * 4)
        configuration.clientId = "kafka-bench"
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        let count = load.count
        let value = [UInt8](repeating: 0x61, count: load.recordSize)
        // Warm up: metadata, producer id and connection before the clock starts.
        _ = try await producer.send(ProducerRecord(topic: load.topic, value: value))
        let sentAt = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: count + 1)
        defer { sentAt.deallocate() }
        let clock = ContinuousClock()
        let steal = CPUSteal()
        let origin = clock.now
        func nanos() -> UInt64 { UInt64((clock.now - origin) / .nanoseconds(1)) }
        nonisolated(unsafe) let stamps = sentAt
        let tally = Task { () -> (Int, Int, Histogram<UInt64>) in
            var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var delivered = 0, failed = 0
            var now: UInt64 = 0
            // A batch of a partition at a time: one suspension per batch; every report is still read.
            for await batch in reports.batches {
                now = nanos()
                for report in batch {
                    switch report.result {
                    case .success: delivered += 1
                    case .failure: failed += 1
                    }
                    let index = Int(report.id.rawValue) - 1
                    if index < count { latency.record(now > stamps[index] ? (now - stamps[index]) / 1000 : 0) }
                }
            }
            return (delivered, failed, latency)
        }
        // Chunks of 1000, as the librdkafka side uses produce_batch: one call per chunk.
        let chunkOfRecords = Array(repeating: ProducerRecord(topic: load.topic, value: value), count: 1000)
        var i = 0
        while i < count {
            let chunk = min(1000, count - i)
            let now = nanos()
            for j in i..<i + chunk { sentAt[j] = now }
            try await producer.produce(contentsOf: chunk == 1000 ? chunkOfRecords : Array(chunkOfRecords.prefix(chunk)))
            i += chunk
        }
        await producer.flush()
        let elapsed = Double(nanos()) / 1e9
        await producer.close()
        let (delivered, failed, latency) = await tally.value
        let result = BenchResult(mode: "produce", records: delivered, failed: failed, recordSize: load.recordSize, seconds: elapsed,
                                 latencyMicros: latency, steal: steal)
        try result.report(jsonPath: load.json)
        if failed > 0 { throw ExitCode(1) }
    }
}

/// What a run measured, printed as one line and optionally written as JSON.
struct BenchResult: Codable {
    var mode: String
    var records: Int
    var failed: Int
    var recordSize: Int
    var seconds: Double
    var recordsPerSecond: Double
    var megabytesPerSecond: Double
    /// Latencies (produce: send to acknowledgement; e2e: send to receipt); absent for consume.
    var p50Micros: UInt64?
    var p99Micros: UInt64?
    var p999Micros: UInt64?
    var maxMicros: UInt64?
    /// The machine's CPU steal during the run (a shared VM), when the system reports it.
    var stealPercent: Double?

    init(mode: String, records: Int, failed: Int, recordSize: Int, seconds: Double, bytes: Int? = nil, latencyMicros: Histogram<UInt64>?,
         steal: CPUSteal) {
        self.mode = mode
        self.records = records
        self.failed = failed
        self.recordSize = recordSize
        self.seconds = seconds
        recordsPerSecond = Double(records) / seconds
        megabytesPerSecond = Double(bytes ?? records * recordSize) / seconds / 1e6
        p50Micros = latencyMicros?.valueAtPercentile(50)
        p99Micros = latencyMicros?.valueAtPercentile(99)
        p999Micros = latencyMicros?.valueAtPercentile(99.9)
        maxMicros = latencyMicros?.max
        stealPercent = steal.percentSinceStart
    }

    func report(jsonPath: String?) throws {
        var line = String(format: "%@: %d records of %d B in %.2f s: %.0f records/s, %.1f MB/s", mode, records, recordSize, seconds,
                          recordsPerSecond, megabytesPerSecond)
        if let p50Micros, let p99Micros, let p999Micros, let maxMicros {
            line += "; latency us p50 \(p50Micros) p99 \(p99Micros) p99.9 \(p999Micros) max \(maxMicros)"
        }
        if let stealPercent { line += String(format: "; cpu steal %.0f%%", stealPercent) }
        print(line + " (failed \(failed))")
        if let jsonPath {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(self).write(to: URL(fileURLWithPath: jsonPath))
        }
    }
}
