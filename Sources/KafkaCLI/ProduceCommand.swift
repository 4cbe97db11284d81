import ArgumentParser
import Foundation
import KafkaWire
import Producers

/// `kfk produce T`: each line of standard input becomes a record (kafka-console-producer.sh).
struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send each line of standard input to a topic as a record.",
        discussion: "With --key-separator, the text before the first separator is the key. Ends at the end of input, once every record is acknowledged.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The topic.") var topic: String
    @Option(help: "Send every record to this partition (default: by key, or spread).") var partition: Int32?
    @Option(name: .customLong("key-separator"), help: "Split each line into key and value at the first occurrence of this text.")
    var keySeparator: String?
    @Option(help: "acks: all, 1 or 0.") var acks = "all"
    @Option(name: .customLong("compression-codec"), help: "none, gzip, snappy, lz4 or zstd.") var compression = "none"
    @Option(name: .customLong("transactional-id"), help: "Send every line in one transaction of this transactional id, committed at the end of input.")
    var transactionalId: String?
    @Flag(help: "With --transactional-id: abort the transaction at the end instead of committing it.") var abort = false

    func validate() throws {
        if topic.isEmpty { throw ValidationError("name a topic") }
        if keySeparator?.isEmpty == true { throw ValidationError("--key-separator must not be empty") }
        guard ["all", "-1", "1", "0"].contains(acks) else { throw ValidationError("--acks must be all, 1 or 0") }
        guard CompressionCodec(name: compression) != nil else { throw ValidationError("unknown --compression-codec \(compression)") }
        if transactionalId?.isEmpty == true { throw ValidationError("--transactional-id must not be empty") }
        if transactionalId != nil && !["all", "-1"].contains(acks) { throw ValidationError("--transactional-id needs --acks all") }
        if abort && transactionalId == nil { throw ValidationError("--abort needs --transactional-id") }
    }

    func run() async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: try connection.bootstrapServers())
        configuration.security = try connection.security()
        configuration.clientId = "kfk-producer"
        configuration.logger = .stderrWarnings("kfk")
        configuration.acks = acks == "all" ? -1 : Int16(acks) ?? -1
        configuration.enableIdempotence = configuration.acks == -1
        configuration.compression = CompressionCodec(name: compression) ?? .none
        configuration.transactionalId = transactionalId
        let producer: KafkaProducer, reports: DeliveryReports
        do { (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration) } catch { throw CLIError.reported(error) }
        // Each record's outcome: the command fails if any record was not delivered.
        let outcomes = Task { () -> (failed: Int, first: KafkaClientError?) in
            var failed = 0, first: KafkaClientError?
            for await report in reports {
                if case .failure(let error) = report.result {
                    failed += 1
                    if first == nil { first = error }
                }
            }
            return (failed, first)
        }
        var sent = 0
        do {
            if transactionalId != nil {
                try await producer.initTransactions()
                try await producer.beginTransaction()
            }
            while let line = readLine(strippingNewline: true) {
                var key: [UInt8]?
                var value = Array(line.utf8)
                if let keySeparator, let range = line.range(of: keySeparator) {
                    key = Array(line[..<range.lowerBound].utf8)
                    value = Array(line[range.upperBound...].utf8)
                }
                // Queued, not awaited one by one (which would wait a linger per line): the producer batches them.
                try await producer.produce(ProducerRecord(topic: topic, partition: partition, key: key, value: value))
                sent += 1
            }
            if transactionalId != nil {
                if abort { try await producer.abortTransaction() } else { try await producer.commitTransaction() }
            }
        } catch {
            if let failed = error as? KafkaTransactionError, failed.kind == .abortable { try? await producer.abortTransaction() }
            await producer.close()
            throw CLIError.reported(error)
        }
        await producer.close()  // flushes; the reports end
        let (failed, first) = await outcomes.value
        if let first { throw CLIError.reported(CLIError("\(failed) of \(sent) records were not delivered to \(topic): \(first)")) }
        let outcome = transactionalId == nil ? "" : abort ? " in a transaction, aborted" : " in a transaction, committed"
        if connection.json { try Output.json(["records": sent]) } else { FileHandle.standardError.write(Data("kfk: sent \(sent) records to \(topic)\(outcome)\n".utf8)) }
    }
}

extension CompressionCodec {
    /// The codec of a `compression.type` name.
    init?(name: String) {
        switch name.lowercased() {
        case "none", "uncompressed": self = .none
        case "gzip": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }
}
