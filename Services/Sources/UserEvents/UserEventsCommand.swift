import ArgumentParser
import Foundation
import Producers
import ServiceSupport
import UserEventModel

/// `user-events submit N`: sends N fake users as JSON values keyed by their id.
@main
struct UserEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user-events", abstract: "Submit fake user events to Kafka, from the command line or over HTTP.",
        subcommands: [Submit.self, Serve.self])
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send N fake users (id, address, datetime) as JSON.")

    @Argument(help: "How many users to send.")
    var count: Int

    @OptionGroup var kafkaSecurity: KafkaSecurityOptions
    @Option(name: .customLong("bootstrap-server"), help: "host:port[,host:port...] (bootstrap.servers).")
    var bootstrapServer = "127.0.0.1:9092"

    @Option(help: "The topic to send to.")
    var topic = "user-events"

    @Option(name: .customLong("delivery-timeout-ms"), help: "Give up on a record after this long (delivery.timeout.ms).")
    var deliveryTimeoutMs = 30_000

    @Option(help: "compression.type: none, gzip, snappy, lz4 or zstd.")
    var compression = "none"

    func validate() throws {
        guard count > 0 else { throw ValidationError("N must be a positive number of users") }
        guard codec != nil else { throw ValidationError("--compression must be one of none, gzip, snappy, lz4, zstd (not '\(compression)')") }
    }

    var codec: CompressionCodec? { CompressionCodec.allCases.first { $0.description == compression } }

    func run() async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrapServer)
        configuration.security = try kafkaSecurity.security()
        configuration.logger = .stderrWarnings("user-events")
        configuration.deliveryTimeoutMs = deliveryTimeoutMs
        configuration.maxBlockMs = deliveryTimeoutMs
        configuration.clientId = "user-events"
        configuration.compression = codec ?? .none
        let producer: KafkaProducer
        let reports: DeliveryReports
        do {
            (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        } catch {
            throw ValidationError("\(error)")
        }
        let start = ContinuousClock.now
        let terminal = isatty(STDOUT_FILENO) != 0 && count >= 1000
        let total = count
        // Delivery reports are counted as they come; the progress bar follows acknowledgements.
        let tally = Task { () -> (delivered: Int, failures: [String]) in
            var delivered = 0
            var failures: [String] = []
            for await report in reports {
                switch report.result {
                case .success: delivered += 1
                case .failure(let error): failures.append(error.message)
                }
                let done = delivered + failures.count
                if terminal && (done % 1000 == 0 || done == total) {
                    FileHandle.standardOutput.write(Data("\r\(progressBar(done, total))".utf8))
                }
            }
            return (delivered, failures)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var rng = SystemRandomNumberGenerator()
        var refused: String?
        for _ in 0..<count {
            let user = Places.randomUser(using: &rng)
            do {
                try await producer.produce(ProducerRecord(topic: topic, key: Array(user.id.utf8), value: Array(try encoder.encode(user))))
            } catch {
                refused = "\(error)"  // unreachable broker, refused topic, full buffer: nothing more will go
                break
            }
        }
        await producer.close()
        let (delivered, failures) = await tally.value
        if terminal { print("") }
        let elapsed = (ContinuousClock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(delivered) / seconds : 0
        print("delivered \(delivered), failed \(count - delivered), \(String(format: "%.0f", rate)) records/s")
        if let first = refused ?? failures.first {
            FileHandle.standardError.write(Data("user-events: \(first)\n".utf8))
            throw ExitCode(1)
        }
    }

    func progressBar(_ done: Int, _ total: Int) -> String {
        let width = 40
        let filled = width * done / max(total, 1)
        return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] \(done)/\(total)"
    }
}
