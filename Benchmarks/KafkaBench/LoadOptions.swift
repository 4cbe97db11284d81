import ArgumentParser
import Foundation
import KafkaClient
import KafkaWire

/// Options every mode shares: where, which topic, how big, how many or how long.
struct LoadOptions: ParsableArguments {
    @Option(name: .customLong("bootstrap-server"), help: "host:port (bootstrap.servers).")
    var bootstrapServer = "127.0.0.1:9092"
    @Option(help: "Topic to use (created on first use with the broker's defaults if missing, or with --partitions).")
    var topic = "kafka-bench"
    @Option(help: "Partitions of the topic: created with this many if missing; an existing topic must have as many.")
    var partitions: Int32?
    @Option(name: .customLong("record-size"), help: "Bytes per record value.")
    var recordSize = 100
    @Option(help: "Records to send or read (default 1,000,000; no limit with --duration).")
    var count: Int?
    @Option(help: "Seconds to run; with --count the run ends at whichever comes first.")
    var duration: Double?
    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let duration, !(duration > 0 && duration < 1e6) { throw ValidationError("--duration must be a number of seconds above 0") }
        if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1") }
        guard recordSize >= 0 else { throw ValidationError("--record-size must not be negative") }
    }

    /// security.protocol, SASL and TLS from the environment (KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_CA_LOCATION, ...),
    /// as every command of this package reads them: the same load over PLAINTEXT, SSL or SASL.
    func security() throws -> KafkaSecurity {
        try KafkaSecurity(environment: ProcessInfo.processInfo.environment)
    }

    /// The most records the run handles: --count, or what --duration allows at `rate` records/s.
    func limit(atRate rate: Int? = nil) -> Int {
        let byTime = duration.flatMap { duration in rate.map { Int(duration * Double($0)) } }
        switch (count, byTime) {
        case let (count?, byTime?): return min(count, max(byTime, 1))
        case let (count?, nil): return count
        case let (nil, byTime?): return max(byTime, 1)
        case (nil, nil): return duration == nil ? 1_000_000 : Int.max
        }
    }

    /// When a run started at `start` ends by --duration (nil: by count only).
    func deadline(from start: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        duration.map { start + .nanoseconds(Int64($0 * 1e9)) }
    }

    /// With --partitions: creates the topic with that many partitions, or checks an existing one has them.
    func prepareTopic() async throws {
        guard let partitions else { return }
        let client = try KafkaClient(bootstrapServers: bootstrapServer, clientId: "kafka-bench", security: try security())
        var failure: Error?
        do {
            let admin = KafkaAdminClient(client: client)
            do {
                try await admin.createTopics([NewTopic(name: topic, partitions: partitions)])
            } catch let error as KafkaClientError where error.kind == .broker(.topicAlreadyExists) {
                let existing = try await admin.listTopics()[topic] ?? 0
                if existing != Int(partitions) {
                    throw BenchFailure("topic '\(topic)' exists with \(existing) partitions, not the \(partitions) of --partitions")
                }
            }
        } catch {
            failure = error
        }
        await client.close()
        if let failure { throw failure }
    }
}

/// The codec a --compression value names (compression.type), or a usage error listing them.
func compressionCodec(_ name: String) throws -> CompressionCodec {
    guard let codec = CompressionCodec(name: name) else {
        throw ValidationError("--compression must be none, gzip, snappy, lz4 or zstd")
    }
    return codec
}

/// A run that could not do what it was asked (not a usage mistake: no usage text with it).
struct BenchFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
