import ArgumentParser
import Foundation
import KafkaClient

/// How a service authenticates and encrypts, as Kafka's tools take it: `--command-config` names a
/// client properties file (security.protocol, sasl.*, ssl.*), and each setting's environment variable
/// (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_PASSWORD, KAFKA_SSL_CA_LOCATION, ...) wins over the file.
public struct KafkaSecurityOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("command-config"),
            help: "A client properties file: security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ssl.certificate.location, ssl.key.location, ssl.key.password (each overridden by its KAFKA_* environment variable).")
    public var commandConfig: String?

    public init() {}

    public func security() throws -> KafkaSecurity {
        let properties = try commandConfig.map { path throws(KafkaClientError) in try ClientProperties.load(path: path) } ?? [:]
        return try KafkaSecurity(properties: properties, environment: ProcessInfo.processInfo.environment)
    }
}
