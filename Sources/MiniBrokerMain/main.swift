import ArgumentParser
import Foundation
import KafkaSASL
import Logging
import Metrics
import MiniBroker
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `minibroker`: a single-node Kafka broker. With no arguments it listens on 127.0.0.1:9092 and keeps
/// its data in ./data.
@main
struct MiniBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minibroker",
        abstract: "A durable single-node Kafka broker.",
        discussion: "Settings apply in this order: defaults, --config file, --override, then --host/--port/--data-dir.")

    @Option(help: "Listen on this host (sets listeners).")
    var host: String?

    @Option(help: "Listen on this port (sets listeners).")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Keep the log here (sets log.dirs).")
    var dataDirectory: String?

    @Option(name: .customLong("config"), help: "A Kafka server.properties-style file.")
    var configFile: String?

    @Option(name: .customLong("override"), help: "key=value for any supported broker key (repeatable).")
    var overrides: [String] = []

    @Option(name: .customLong("add-scram"),
            help: "Store a SCRAM user before serving, as kafka-storage format does: 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (iterations=N optional; repeatable).")
    var addScram: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func makeConfig() throws -> BrokerConfig {
        var config = BrokerConfig()
        if let configFile {
            guard let text = try? String(contentsOfFile: configFile, encoding: .utf8) else {
                throw ValidationError("cannot read config file \(configFile)")
            }
            try config.load(propertiesText: text)
        }
        for item in overrides {
            guard let eq = item.firstIndex(of: "=") else { throw ValidationError("--override '\(item)' is not key=value") }
            try config.set(String(item[..<eq]).trimmingCharacters(in: .whitespaces), String(item[item.index(after: eq)...]).trimmingCharacters(in: .whitespaces))
        }
        if host != nil || port != nil {
            let current = config.listeners.first
            let h = host ?? current?.host ?? "127.0.0.1"
            let p = port ?? current?.port ?? 9092
            let hostPart = h.contains(":") ? "[\(h)]" : h
            try config.set("listeners", "PLAINTEXT://\(hostPart):\(p)")
            if config.explicit["advertised.listeners"] == nil { try config.set("advertised.listeners", "PLAINTEXT://\(hostPart):\(p)") }
        }
        if let dataDirectory { try config.set("log.dirs", dataDirectory) }
        try config.validate()
        return config
    }

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "minibroker")
        let config: BrokerConfig
        do {
            config = try makeConfig()
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let users = try addScram.map { text in
            do { return try ScramUserArgument(parsing: text) } catch { throw ValidationError("--add-scram \(error)") }
        }
        let broker = try Broker(config: config, logger: logger)
        for user in users {
            try broker.upsertScramCredential(user: user.name, mechanism: user.mechanism, password: user.password, iterations: user.iterations)
            logger.info("SCRAM credential stored", metadata: ["user": "\(user.name)", "mechanism": "\(user.mechanism.mechanismName)"])
        }
        // Anything in the process that reports through swift-metrics lands on the same endpoint.
        if broker.metrics.enabled { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: broker.metrics.registry)) }
        let server = BrokerServer(broker: broker, group: group, logger: logger)
        try await server.bind()
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await group.shutdownGracefully()
    }
}
