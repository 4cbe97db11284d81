import ArgumentParser
import Foundation
import KafkaClient

/// `kfk`: topics, consumer groups and the cluster of any Kafka broker, from a terminal. Flags carry
/// Kafka's tool names where a Kafka user would look (`--bootstrap-server`, `--command-config`,
/// `--partitions`, `--replication-factor`, `--config`, `--to-earliest`...).
@main
struct Kfk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kfk", abstract: "Manage the topics and consumer groups of a Kafka cluster (any Kafka broker).",
        subcommands: [Topics.self, Groups.self, Cluster.self, Quotas.self, Users.self, Produce.self, Consume.self])
}

/// Where the cluster is and how to print: shared by every command.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("bootstrap-server"),
            help: "host:port[,host:port] (else KAFKA_BOOTSTRAP_SERVERS, else bootstrap.servers in --command-config, else 127.0.0.1:9092).")
    var bootstrapServer: String?
    @Option(name: .customLong("command-config"),
            help: "A client properties file: bootstrap.servers (when no flag gives one), security.protocol, sasl.mechanism, sasl.username, sasl.password or sasl.jaas.config, ssl.ca.location, ssl.certificate.location, ssl.key.location, ssl.key.password, ssl.endpoint.identification.algorithm.")
    var commandConfig: String?
    @Flag(help: "Print JSON instead of tables.") var json = false

    /// The --command-config file's key=value lines ('#' and '!' comments), read once per call.
    func commandProperties() throws -> [String: String] {
        guard let commandConfig else { return [:] }
        do {
            return try ClientProperties.load(path: commandConfig)
        } catch {
            throw CLIError(error.message)
        }
    }

    /// The flag, the environment, the config file, the default: the first that says.
    func bootstrapServers() throws -> String {
        if let bootstrapServer { return bootstrapServer }
        if let env = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP_SERVERS"], !env.isEmpty { return env }
        return try commandProperties()["bootstrap.servers"] ?? "127.0.0.1:9092"
    }

    /// security.protocol, SASL and TLS settings: --command-config's keys, each overridden by its environment
    /// variable (KafkaSecurity.environmentVariables: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_PASSWORD,
    /// KAFKA_SSL_CA_LOCATION, ...), so a password need not sit in a file or on a command line.
    func security() throws -> KafkaSecurity {
        try KafkaSecurity(properties: try commandProperties(), environment: ProcessInfo.processInfo.environment)
    }

    /// Runs `body` with an admin client, turning any failure into one line on stderr and exit 1.
    func withAdmin<T>(_ body: (KafkaAdminClient) async throws -> T) async throws -> T {
        let client: KafkaClient
        do {
            client = try KafkaClient(bootstrapServers: try bootstrapServers(), clientId: "kfk", security: try security())
        } catch {
            throw CLIError.reported(error)
        }
        do {
            let result = try await body(KafkaAdminClient(client: client))
            await client.close()
            return result
        } catch let error as ExitCode {
            await client.close()
            throw error
        } catch {
            await client.close()
            throw CLIError.reported(error)
        }
    }
}

/// A failure the CLI reports in one line, exiting non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    static func reported(_ error: Error) -> ExitCode {
        FileHandle.standardError.write(Data("kfk: \(error)\n".utf8))
        return ExitCode(1)
    }
}

extension ParsableCommand {
    /// Parses `key=value` pairs of repeated options.
    static func pairs(_ items: [String], option: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("\(option) takes key=value, not '\(item)'") }
            result[String(parts[0])] = String(parts[1])
        }
        return result
    }
}
