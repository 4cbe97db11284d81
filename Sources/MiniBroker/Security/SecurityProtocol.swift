/// How a listener's connections are secured, by Kafka's names (`listener.security.protocol.map`).
public enum SecurityProtocol: String, Sendable, CaseIterable {
    case plaintext = "PLAINTEXT"
    case ssl = "SSL"
    case saslPlaintext = "SASL_PLAINTEXT"
    case saslSsl = "SASL_SSL"

    /// Connections authenticate with SaslHandshake and SaslAuthenticate before anything else.
    public var usesSasl: Bool { self == .saslPlaintext || self == .saslSsl }

    public var usesTls: Bool { self == .ssl || self == .saslSsl }
}

/// The SASL mechanisms MiniBroker serves.
public enum SaslMechanismName {
    public static let plain = "PLAIN"
    public static let supported = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
}
