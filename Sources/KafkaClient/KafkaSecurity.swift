/// How a client secures its connections, by Kafka's client settings: `security.protocol`,
/// `sasl.mechanism`, `sasl.username` and `sasl.password` (or Java's `sasl.jaas.config`). Printed or
/// dumped, it shows the password as `[hidden]`.
public struct KafkaSecurity: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `security.protocol`. TLS (SSL, SASL_SSL) is not served by this client yet.
    public enum SecurityProtocol: String, Sendable, CaseIterable {
        case plaintext = "PLAINTEXT"
        case saslPlaintext = "SASL_PLAINTEXT"
    }

    /// `sasl.mechanism`.
    public enum SaslMechanism: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case scramSHA256 = "SCRAM-SHA-256"
        case scramSHA512 = "SCRAM-SHA-512"
    }

    public var securityProtocol: SecurityProtocol
    public var saslMechanism: SaslMechanism
    public var saslUsername: String
    public var saslPassword: String

    public init(securityProtocol: SecurityProtocol = .plaintext, saslMechanism: SaslMechanism = .plain,
                saslUsername: String = "", saslPassword: String = "") {
        self.securityProtocol = securityProtocol
        self.saslMechanism = saslMechanism
        self.saslUsername = saslUsername
        self.saslPassword = saslPassword
    }

    /// No authentication, no encryption.
    public static let plaintext = KafkaSecurity()

    /// SASL over a plain connection.
    public static func saslPlaintext(mechanism: SaslMechanism, username: String, password: String) -> KafkaSecurity {
        KafkaSecurity(securityProtocol: .saslPlaintext, saslMechanism: mechanism, saslUsername: username, saslPassword: password)
    }

    public var usesSasl: Bool { securityProtocol == .saslPlaintext }

    public var description: String {
        usesSasl ? "\(securityProtocol.rawValue) \(saslMechanism.rawValue) as \(saslUsername) (password [hidden])" : securityProtocol.rawValue
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["securityProtocol": securityProtocol, "saslMechanism": saslMechanism, "saslUsername": saslUsername,
                                "saslPassword": "[hidden]"])
    }

    /// Refuses what cannot authenticate, naming the key.
    func validate() throws(KafkaClientError) {
        guard usesSasl else { return }
        guard !saslUsername.isEmpty else { throw KafkaClientError(.configuration, "sasl.username must be set for \(securityProtocol.rawValue)") }
        guard !saslPassword.isEmpty else { throw KafkaClientError(.configuration, "sasl.password must be set for \(securityProtocol.rawValue)") }
    }

    /// From client properties as Kafka's tools and librdkafka write them (`--command-config` files):
    /// `security.protocol`, `sasl.mechanism`, `sasl.username`/`sasl.password`, or a `sasl.jaas.config`
    /// with `username="..." password="..."`. Keys it does not know are left to the caller.
    public init(properties: [String: String]) throws(KafkaClientError) {
        self.init()
        if let value = properties["security.protocol"] {
            guard let parsed = SecurityProtocol(rawValue: value.uppercased()) else {
                let tls = ["SSL", "SASL_SSL"].contains(value.uppercased())
                throw KafkaClientError(.configuration, tls ? "security.protocol \(value): TLS is not supported by this client yet"
                                                           : "security.protocol '\(value)' is not PLAINTEXT or SASL_PLAINTEXT")
            }
            securityProtocol = parsed
        }
        if let value = properties["sasl.mechanism"] ?? properties["sasl.mechanisms"] {
            guard let parsed = SaslMechanism(rawValue: value.uppercased()) else {
                throw KafkaClientError(.configuration, "sasl.mechanism '\(value)' is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
            }
            saslMechanism = parsed
        }
        if let jaas = properties["sasl.jaas.config"] {
            saslUsername = Self.jaasOption("username", in: jaas) ?? ""
            saslPassword = Self.jaasOption("password", in: jaas) ?? ""
        }
        if let username = properties["sasl.username"] { saslUsername = username }
        if let password = properties["sasl.password"] { saslPassword = password }
        try validate()
    }

    /// The variables every command and service of this package reads, by the setting each stands for.
    public static let environmentVariables = [
        ("security.protocol", "KAFKA_SECURITY_PROTOCOL"), ("sasl.mechanism", "KAFKA_SASL_MECHANISM"),
        ("sasl.username", "KAFKA_SASL_USERNAME"), ("sasl.password", "KAFKA_SASL_PASSWORD"),
    ]

    /// `properties` (a client properties file, perhaps empty) with each setting its environment
    /// variable gives replaced: how deployments pass a password without a file or a command line.
    public init(properties: [String: String] = [:], environment: [String: String]) throws(KafkaClientError) {
        var merged = properties
        for (key, variable) in Self.environmentVariables {
            if let value = environment[variable], !value.isEmpty { merged[key] = value }
        }
        try self.init(properties: merged)
    }

    /// `key="value"` in a JAAS line (quotes required, as Kafka writes them; `\"` escapes a quote).
    static func jaasOption(_ key: String, in text: String) -> String? {
        guard let start = text.range(of: "\(key)=\"") else { return nil }
        var value = ""
        var rest = text[start.upperBound...]
        while let character = rest.first {
            rest = rest.dropFirst()
            if character == "\"" { return value }
            if character == "\\", let escaped = rest.first {
                value.append(escaped)
                rest = rest.dropFirst()
            } else {
                value.append(character)
            }
        }
        return nil
    }
}
