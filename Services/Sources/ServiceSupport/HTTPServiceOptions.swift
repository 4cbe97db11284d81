import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// Where a service listens and which brokers it uses: flags first, then the environment
/// (`HTTP_PORT`, `KAFKA_BOOTSTRAP_SERVERS`), as services are deployed, then the defaults.
public struct HTTPServiceOptions: ParsableArguments {
    @Option(help: "The address to listen on.")
    public var host = "127.0.0.1"

    @Option(name: .customLong("http-port"), help: "The HTTP port (else HTTP_PORT, else the service's default).")
    public var httpPort: Int?

    @Option(name: .customLong("bootstrap-server"), help: "host:port[,host:port...] (else KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092).")
    public var bootstrapServer: String?

    public init() {}

    public func port(default port: Int) throws -> Int {
        if let httpPort { return try Self.checkedPort(httpPort, "--http-port") }
        if let text = ProcessInfo.processInfo.environment["HTTP_PORT"], !text.isEmpty {
            guard let value = Int(text) else { throw ValidationError("HTTP_PORT must be a port number, not '\(text)'") }
            return try Self.checkedPort(value, "HTTP_PORT")
        }
        return port
    }

    public var bootstrapServers: String {
        if let bootstrapServer { return bootstrapServer }
        if let env = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP_SERVERS"], !env.isEmpty { return env }
        return "127.0.0.1:9092"
    }

    static func checkedPort(_ port: Int, _ source: String) throws -> Int {
        guard (0...65_535).contains(port) else { throw ValidationError("\(source) must be between 0 and 65535, not \(port)") }
        return port
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension HTTPServiceOptions {
    /// The service's HTTP server on `--host` and its port, logging where it listens once it is bound
    /// (`--http-port 0` picks a free port, which only the log then tells).
    public func application(router: Router<BasicRequestContext>, name: String, defaultPort: Int, logger: Logger,
                            detail: String = "") throws -> Application<RouterResponder<BasicRequestContext>> {
        Application(
            router: router,
            configuration: .init(address: .hostname(host, port: try port(default: defaultPort)), serverName: name),
            onServerRunning: { channel in
                logger.info("\(name) listening on \(channel.localAddress.map { "\($0)" } ?? "?")\(detail)")
            },
            logger: logger)
    }
}
