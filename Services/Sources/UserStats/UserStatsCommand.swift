import ArgumentParser
import Consumers
import Foundation
import Logging
import ServiceSupport
import UserStatsService

/// `user-stats run`: the stats service; `user-stats report`: the current report as JSON.
@main
struct UserStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user-stats", abstract: "Consume user events into SQLite and report users per city.",
        subcommands: [Run.self, ReportCommand.self])
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume user events in a group, store them, log a report periodically and answer GET /report (port 8001).")

    @OptionGroup var service: HTTPServiceOptions
    @OptionGroup var kafkaSecurity: KafkaSecurityOptions
    @Option(help: "The topic to read.") var topic = "user-events"
    @Option(help: "The consumer group (group.id).") var group = "user-stats"
    @Option(help: "The SQLite database.") var db = "stats.sqlite"
    @Option(name: .customLong("report-interval"), help: "Seconds between reports.") var reportInterval = 5.0
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard reportInterval > 0, reportInterval.isFinite else { throw ValidationError("--report-interval must be positive") }
        _ = try service.port(default: StatsServer.defaultPort)
    }

    func run() async throws {
        let logger = Logger.service("user-stats", level: logLevel)
        let store: UserStore
        do {
            store = try UserStore(path: db)
        } catch {
            throw ValidationError("cannot open the database \(db): \(error)")
        }
        var configuration = KafkaConsumerConfiguration(bootstrapServers: service.bootstrapServers, groupId: group)
        configuration.security = try kafkaSecurity.security()
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
        let stats = StatsConsumer(consumer: consumer, store: store, reportInterval: .seconds(reportInterval), logger: logger)
        let app = try service.application(router: StatsServer.router(store: store), name: "user-stats",
                                          defaultPort: StatsServer.defaultPort, logger: logger)
        do {
            try await ServiceRunner.run([stats, app], logger: logger)
        } catch {
            logger.error("user-stats failed: \(error)")
            throw ExitCode(1)
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
        let report = try await UserStore(path: db, readOnly: true).report()
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}
