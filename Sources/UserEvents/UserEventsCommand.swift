import ArgumentParser
import Foundation
import KafkaClient
import Producers

/// `user-events submit N`: sends N fake users as JSON values keyed by their id.
@main
struct UserEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user-events", abstract: "Submit fake user events to Kafka.", subcommands: [Submit.self])
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send N fake users (id, address, datetime) as JSON.")

    @Argument(help: "How many users to send.")
    var count: Int

    @Option(name: .customLong("bootstrap-server"), help: "host:port[,host:port...] (bootstrap.servers).")
    var bootstrapServer = "127.0.0.1:9092"

    @Option(help: "The topic to send to.")
    var topic = "user-events"

    @Option(name: .customLong("delivery-timeout-ms"), help: "Give up on a record after this long (delivery.timeout.ms).")
    var deliveryTimeoutMs = 30_000

    func validate() throws {
        guard count > 0 else { throw ValidationError("N must be a positive number of users") }
    }

    func run() async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrapServer)
        configuration.deliveryTimeoutMs = deliveryTimeoutMs
        configuration.clientId = "user-events"
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: configuration)
        } catch {
            throw ValidationError("\(error)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let start = ContinuousClock.now
        let terminal = isatty(STDOUT_FILENO) != 0 && count >= 1000
        var rng = SystemRandomNumberGenerator()
        var delivered = 0
        var failures: [String] = []
        let window = 10_000
        var next = 0
        while next < count {
            let chunk = min(window, count - next)
            let users = (0..<chunk).map { _ in Places.randomUser(using: &rng) }
            let outcomes = await withTaskGroup(of: String?.self) { group in
                for user in users {
                    let value = try! encoder.encode(user)
                    group.addTask {
                        do {
                            _ = try await producer.send(ProducerRecord(topic: topic, key: Array(user.id.utf8), value: Array(value)))
                            return nil
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String?]()) { $0.append($1) }
            }
            delivered += outcomes.filter { $0 == nil }.count
            failures += outcomes.compactMap { $0 }
            next += chunk
            if terminal { FileHandle.standardOutput.write(Data("\r\(progressBar(next, count))".utf8)) }
            if failures.count == outcomes.count { break }  // nothing gets through: stop early
        }
        await producer.close()
        if terminal { print("") }
        let elapsed = (ContinuousClock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(delivered) / seconds : 0
        print("delivered \(delivered), failed \(count - delivered), \(String(format: "%.0f", rate)) records/s")
        if let first = failures.first {
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
