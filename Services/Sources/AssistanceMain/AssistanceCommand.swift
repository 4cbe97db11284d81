import ArgumentParser
import Assistance
import Consumers
import Foundation
import KafkaClient
import Logging
import Producers
import ServiceSupport

/// `assistance serve`: the HTTP service; `assistance listen --topic sales`: a department's listener.
@main
struct AssistanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assistance", abstract: "Take assistance requests over HTTP and publish them to their department's topic.",
        subcommands: [Serve.self, Listen.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve POST /assistance (port 8002 unless --http-port or HTTP_PORT say otherwise).")

    @OptionGroup var service: HTTPServiceOptions
    @OptionGroup var kafkaSecurity: KafkaSecurityOptions

    @Option(name: .customLong("delivery-timeout-ms"), help: "Give up on a request's event after this long (delivery.timeout.ms); also max.block.ms.")
    var deliveryTimeoutMs = 10_000

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard deliveryTimeoutMs > 0 else { throw ValidationError("--delivery-timeout-ms must be positive") }
        _ = try service.port(default: AssistanceServer.defaultPort)
    }

    func run() async throws {
        let logger = Logger.service("assistance", level: logLevel)
        var configuration = KafkaProducerConfiguration(bootstrapServers: service.bootstrapServers)
        configuration.security = try kafkaSecurity.security()
        configuration.clientId = "assistance"
        configuration.logger = logger
        configuration.acks = -1
        configuration.enableIdempotence = true
        configuration.allowAutoCreateTopics = false  // a topic that vanished after the check is not re-created
        configuration.deliveryTimeoutMs = deliveryTimeoutMs
        configuration.maxBlockMs = deliveryTimeoutMs
        configuration.lingerMs = 0  // each request waits for its own event
        let producer = try KafkaProducer(configuration: configuration)
        let metadata = try KafkaClient(bootstrapServers: service.bootstrapServers, clientId: "assistance",
                                       security: try kafkaSecurity.security())
        let handler = AssistanceHandler(producer: producer, metadata: metadata, logger: logger)
        let app = try service.application(router: try AssistanceServer.router(handler: handler), name: "assistance",
                                          defaultPort: AssistanceServer.defaultPort, logger: logger,
                                          detail: " (bootstrap.servers \(service.bootstrapServers))")
        do {
            try await ServiceRunner.run([producer, app], logger: logger)
        } catch {
            await metadata.close()
            throw error
        }
        await metadata.close()
        logger.info("assistance stopped")
    }
}

struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log the assistance requests of one department's topic, in a consumer group.")

    @Option(help: "The department's topic.") var topic: String
    @Option(help: "The consumer group (group.id); else assistance-<topic>.") var group: String?
    @OptionGroup var kafkaSecurity: KafkaSecurityOptions
    @Option(name: .customLong("bootstrap-server"), help: "host:port[,host:port...] (else KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092).")
    var bootstrapServer: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let logger = Logger.service("assistance-listener", level: logLevel)
        var options = HTTPServiceOptions()
        options.bootstrapServer = bootstrapServer
        var configuration = KafkaConsumerConfiguration(bootstrapServers: options.bootstrapServers, groupId: group ?? "assistance-\(topic)")
        configuration.security = try kafkaSecurity.security()
        configuration.clientId = "assistance-listener"
        configuration.logger = logger
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        try await consumer.subscribe(topics: [topic])
        logger.info("listening for assistance requests on \(topic) (group \(configuration.groupId ?? ""))")
        do {
            try await ServiceRunner.run([AssistanceListener(consumer: consumer, logger: logger)], logger: logger)
        } catch {
            logger.error("the listener stopped: \(error)")
            throw ExitCode(1)
        }
    }
}
