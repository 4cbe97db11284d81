import ArgumentParser
import Foundation
import Logging
import Producers
import ServiceSupport
import UserEventsAPI

/// `user-events serve`: the HTTP API — `POST /submit/{n}` (202), `GET /submissions/{id}`, `GET /report`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the user-events HTTP API (port 8000 unless --http-port or HTTP_PORT say otherwise).")

    @OptionGroup var service: HTTPServiceOptions
    @OptionGroup var kafkaSecurity: KafkaSecurityOptions

    @Option(help: "The topic users are produced to.")
    var topic = "user-events"

    @Option(name: .customLong("stats-url"), help: "The user-stats service whose report GET /report answers (else USER_STATS_URL).")
    var statsURL: String?

    @Option(name: .customLong("delivery-timeout-ms"), help: "Give up on a user after this long (delivery.timeout.ms); also max.block.ms.")
    var deliveryTimeoutMs = 30_000

    @Option(name: .customLong("max-running"), help: "Submissions produced at once; more are answered 503.")
    var maxRunning = 4

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard deliveryTimeoutMs > 0 else { throw ValidationError("--delivery-timeout-ms must be positive") }
        guard maxRunning > 0 else { throw ValidationError("--max-running must be positive") }
        _ = try statsBaseURL()
        _ = try service.port(default: UserEventsServer.defaultPort)
    }

    func statsBaseURL() throws -> URL {
        let text = statsURL ?? ProcessInfo.processInfo.environment["USER_STATS_URL"] ?? "http://127.0.0.1:8001"
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("the user-stats URL must be an http(s) address, not '\(text)'")
        }
        return url
    }

    func run() async throws {
        let logger = Logger.service("user-events", level: logLevel)
        var configuration = KafkaProducerConfiguration(bootstrapServers: service.bootstrapServers)
        configuration.security = try kafkaSecurity.security()
        configuration.clientId = "user-events-api"
        configuration.logger = logger
        configuration.acks = -1
        configuration.enableIdempotence = true
        configuration.deliveryTimeoutMs = deliveryTimeoutMs
        configuration.maxBlockMs = deliveryTimeoutMs
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        var settings = Submissions.Settings()
        settings.topic = topic
        settings.maxRunning = maxRunning
        let submissions = Submissions(producer: producer, reports: reports, settings: settings, logger: logger)
        let handler = UserEventsHandler(submissions: submissions, stats: StatsClient(baseURL: try statsBaseURL()))
        let app = try service.application(router: try UserEventsServer.router(handler: handler), name: "user-events API",
                                          defaultPort: UserEventsServer.defaultPort, logger: logger,
                                          detail: " (bootstrap.servers \(service.bootstrapServers), topic \(topic))")
        // Shut down in reverse: the server finishes its requests, the submissions queue their users,
        // then the producer flushes and closes.
        try await ServiceRunner.run([producer, submissions, app], logger: logger)
        logger.info("user-events API stopped")
    }
}
