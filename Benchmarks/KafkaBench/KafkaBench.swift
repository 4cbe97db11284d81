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

struct ProduceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "produce", abstract: "Produce records as fast as acknowledged.")

    @OptionGroup var load: LoadOptions
    @Option(help: "acks: -1 (all), 1 or 0.") var acks: Int16 = -1
    @Option(help: "compression.type") var compression = "none"
    @Option(name: .customLong("batch-size"), help: "batch.size in bytes.") var batchSize = 1_000_000
    @Option(name: .customLong("linger-ms"), help: "linger.ms") var lingerMs = 5
    @Option(name: .customLong("max-in-flight"), help: "max.in.flight.requests.per.connection") var maxInFlight = 5
    @Flag(inversion: .prefixedEnableDisable, help: "enable.idempotence") var idempotence = true
    @Option(help: "Records per second to send at (default: as fast as they are acknowledged).") var rate: Int?
    @Option(help: "Give records keys, cycling through this many (a compacted topic's updates; default: no keys).") var keys: Int?
    @Option(name: .customLong("transactional-id"), help: "Send in transactions of this transactional.id (committed per --commit-every-*).")
    var transactionalId: String?
    @Option(name: .customLong("commit-every-records"), help: "With --transactional-id: commit once this many records are in the transaction.")
    var commitEveryRecords: Int?
    @Option(name: .customLong("commit-every-ms"), help: "With --transactional-id: commit once the transaction is this old.")
    var commitEveryMs: Int?

    func validate() throws {
        if let rate, rate < 1 { throw ValidationError("--rate must be at least 1 record per second") }
        if let keys, !(1...10_000_000).contains(keys) { throw ValidationError("--keys must be from 1 to 10,000,000") }
        if (commitEveryRecords != nil || commitEveryMs != nil) && transactionalId == nil {
            throw ValidationError("--commit-every-records and --commit-every-ms need --transactional-id")
        }
        if transactionalId != nil && commitEveryRecords == nil && commitEveryMs == nil {
            throw ValidationError("--transactional-id needs --commit-every-records or --commit-every-ms")
        }
    }

    /// The chunks sent in turn: one of unkeyed records, or as many as cycle through --keys (keys
    /// `k00000000`...). Built before the clock starts.
    func chunkPool(chunkSize: Int, value: [UInt8]) -> [[ProducerRecord]] {
        guard let keys else { return [Array(repeating: ProducerRecord(topic: load.topic, value: value), count: chunkSize)] }
        let chunks = max(1, (keys + chunkSize - 1) / chunkSize)
        return (0..<chunks).map { c in
            (0..<chunkSize).map { j in
                ProducerRecord(topic: load.topic, key: Array(String(format: "k%08d", (c * chunkSize + j) % keys).utf8), value: value)
            }
        }
    }

    func run() async throws {
        let codec = try compressionCodec(compression)
        try await load.prepareTopic()
        var configuration = KafkaProducerConfiguration(bootstrapServers: load.bootstrapServer)
        configuration.security = try load.security()
        configuration.logger = .stderrWarnings("kafka-bench")
        configuration.acks = acks
        configuration.compression = codec
        configuration.batchSize = batchSize
        configuration.lingerMs = lingerMs
        configuration.maxInFlightRequestsPerConnection = maxInFlight
        configuration.enableIdempotence = idempotence
        configuration.bufferMemory = max(64 << 20, batchSize * 4)
        configuration.clientId = "kafka-bench"
        configuration.transactionalId = transactionalId
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        let limit = load.limit(atRate: rate)
        let value = [UInt8](repeating: 0x61, count: load.recordSize)
        // Warm up: metadata, producer id and connection before the clock starts (a transaction's
        // coordinator too).
        if transactionalId != nil {
            try await producer.initTransactions()
            try await producer.beginTransaction()
        }
        _ = try await producer.send(ProducerRecord(topic: load.topic, key: keys.map { _ in Array("warm-up".utf8) }, value: value))
        if transactionalId != nil { try await producer.commitTransaction() }
        // Records go in chunks (1000, as the librdkafka side uses produce_batch; smaller when paced, so
        // that a chunk is at most a millisecond of --rate). The records of a chunk share its send time.
        let chunkSize = rate.map { max(1, min(1000, $0 / 1000)) } ?? 1000
        let pool = chunkPool(chunkSize: chunkSize, value: value)
        // A stamp per chunk; a run by --duration alone has room for 2^22 chunks (only the pages used are touched).
        let chunks = limit == Int.max ? 1 << 22 : (limit + chunkSize - 1) / chunkSize
        let sentAt = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: chunks)
        defer { sentAt.deallocate() }
        let clock = ContinuousClock()
        let steal = CPUSteal()
        let origin = clock.now
        let deadline = load.deadline(from: origin)
        func nanos(_ instant: ContinuousClock.Instant = clock.now) -> UInt64 { UInt64((instant - origin) / .nanoseconds(1)) }
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
                    let chunk = (Int(report.id.rawValue) - 1) / chunkSize
                    if chunk < chunks { latency.record(now > stamps[chunk] ? (now - stamps[chunk]) / 1000 : 0) }
                }
            }
            return (delivered, failed, latency)
        }
        var sent = 0, chunk = 0
        // Transactions: open one before the first chunk, commit and open the next on the schedule.
        var inTransaction = 0, transactionStart = clock.now, commits = 0
        if transactionalId != nil { try await producer.beginTransaction() }
        while sent < limit, chunk < chunks {
            // Paced against the schedule, not the previous chunk: a late chunk does not delay the rest.
            if let rate { try await clock.sleep(until: origin + .nanoseconds(Int64(sent) * 1_000_000_000 / Int64(rate))) }
            let now = clock.now
            if let deadline, now >= deadline { break }
            let size = min(chunkSize, limit - sent)
            sentAt[chunk] = nanos(now)
            let chunkOfRecords = pool[chunk % pool.count]
            try await producer.produce(contentsOf: size == chunkSize ? chunkOfRecords : Array(chunkOfRecords.prefix(size)))
            sent += size
            chunk += 1
            if transactionalId != nil {
                inTransaction += size
                if inTransaction >= (commitEveryRecords ?? Int.max)
                    || clock.now - transactionStart >= .milliseconds(commitEveryMs ?? Int.max / 1_000_000) {
                    try await producer.commitTransaction()
                    commits += 1
                    try await producer.beginTransaction()
                    inTransaction = 0
                    transactionStart = clock.now
                }
            }
        }
        if transactionalId != nil {
            try await producer.commitTransaction()
            commits += 1
            FileHandle.standardError.write(Data("kafka-bench: \(commits) transactions committed\n".utf8))
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
