import Logging
import ServiceLifecycle

/// Runs a process's services until SIGTERM or SIGINT, then shuts them down gracefully in reverse
/// order: the HTTP server (listed last) finishes its in-flight requests before the producer or
/// consumer it uses (listed first) flushes, commits and leaves. ServiceLifecycle owns the signal
/// handlers, so they live as long as the group in every build configuration.
public enum ServiceRunner {
    public static let gracefulShutdownLimit: Duration = .seconds(60)

    public static func run(_ services: [any Service], logger: Logger) async throws {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                                           failureTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A shutdown that cannot finish (a broker gone while records wait for it) is cancelled.
        configuration.maximumGracefulShutdownDuration = gracefulShutdownLimit
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }
}

extension Logger {
    /// A logger at `level` (the services' `--log-level`).
    public static func service(_ label: String, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
