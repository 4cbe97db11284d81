import ArgumentParser
import Consumers
import Foundation
import KafkaClient
import Logging
import UserEventModel

/// `user-stats run`: the stats service; `user-stats report`: the current report as JSON.
@main
struct UserStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user-stats", abstract: "Consume user events into SQLite and report users per city.",
        subcommands: [Run.self, ReportCommand.self])
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Consume user events in a group, store them, log a report periodically.")

    @Option(name: .customLong("bootstrap-server"), help: "host:port[,host:port...] (bootstrap.servers).")
    var bootstrapServer = "127.0.0.1:9092"
    @Option(help: "The topic to read.") var topic = "user-events"
    @Option(help: "The consumer group (group.id).") var group = "user-stats"
    @Option(help: "The SQLite database.") var db = "stats.sqlite"
    @Option(name: .customLong("report-interval"), help: "Seconds between reports.") var reportInterval = 5.0

    func validate() throws {
        guard reportInterval > 0 else { throw ValidationError("--report-interval must be positive") }
    }

    func run() async throws {
        let logger: Logger = {
            var logger = Logger(label: "user-stats")
            logger.logLevel = .info
            return logger
        }()
        let store: UserStore
        do {
            store = try UserStore(path: db)
        } catch {
            throw ValidationError("cannot open the database \(db): \(error)")
        }
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrapServer, groupId: group)
        configuration.clientId = "user-stats"
        configuration.logger = logger  // joins, rebalances and retried failures in the service's own log
        configuration.autoOffsetReset = .earliest
        configuration.enableAutoCommit = false  // offsets are committed after the write
        configuration.partitionAssignmentStrategy = [.cooperativeSticky, .range]
        configuration.sessionTimeoutMs = 10_000
        configuration.heartbeatIntervalMs = 1000
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: [topic])
        logger.info("user-stats started", metadata: ["topic": "\(topic)", "group": "\(group)", "db": "\(db)"])

        // SIGINT/SIGTERM: close the consumer (it leaves the group); the loop below then ends.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let signals = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0) }
        for source in signals {
            source.setEventHandler { Task { await consumer.close() } }
            source.resume()
        }
        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(reportInterval))
                guard !Task.isCancelled, let report = try? store.report() else { continue }
                let counts = report.cities.map { "\($0.city): \($0.users)" }.joined(separator: ", ")
                logger.info("New report generated (\(report.totalUsers) users, \(report.skippedEvents) skipped): \(counts)")
            }
        }
        let events = Task {
            for await event in consumer.events { logger.info("rebalance: \(event)") }
        }
        let decoder = JSONDecoder()
        do {
            for try await record in consumer.records {
                let value = record.value.map { Data($0.readableBytesView) } ?? Data()
                do {
                    let user = try decoder.decode(UserEvent.self, from: value)
                    guard UUID(uuidString: user.id) != nil else { throw ValidationError("id '\(user.id)' is not a UUID") }
                    if try store.upsert(user) {
                        logger.info("New user inserted: \(String(decoding: value, as: UTF8.self))")
                    }
                } catch let error as DecodingError {
                    try store.skip(topic: record.topic, partition: record.partition, offset: record.offset, reason: "\(error)")
                    logger.warning("skipped a malformed event at \(record.topic)-\(record.partition)@\(record.offset): not a user event")
                } catch let error as ValidationError {
                    try store.skip(topic: record.topic, partition: record.partition, offset: record.offset, reason: error.message)
                    logger.warning("skipped a malformed event at \(record.topic)-\(record.partition)@\(record.offset): \(error.message)")
                }
                // At least once: the offset moves only after the user is stored.
                try await consumer.commit(offsets: [record.topicPartition: record.offset + 1])
            }
        } catch {
            logger.error("user-stats stopped: \(error)")
            reporter.cancel()
            await consumer.close()
            throw ExitCode(1)
        }
        reporter.cancel()
        events.cancel()
        if let report = try? store.report() {
            logger.info("user-stats stopped with \(report.totalUsers) users stored")
        }
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Print the current report as JSON.")

    @Option(help: "The SQLite database.") var db = "stats.sqlite"

    func run() async throws {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no database at \(db): start `user-stats run --db \(db)` first")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(try UserStore(path: db, readOnly: true).report()), as: UTF8.self))
    }
}
