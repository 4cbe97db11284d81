/// How a client secures its connections, by Kafka's client settings: `security.protocol`,
/// `sasl.mechanism`, `sasl.username` and `sasl.password` (or Java's `sasl.jaas.config`), and for TLS
/// librdkafka's `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, `ssl.key.password`
/// and `ssl.endpoint.identification.algorithm`. Printed or dumped, it shows passwords as `[hidden]`.
public struct KafkaSecurity: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `security.protocol`.
    public enum SecurityProtocol: String, Sendable, CaseIterable {
        case plaintext = "PLAINTEXT"
        case ssl = "SSL"
        case saslPlaintext = "SASL_PLAINTEXT"
        case saslSsl = "SASL_SSL"
    }

    /// `sasl.mechanism`.
    public enum SaslMechanism: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case scramSHA256 = "SCRAM-SHA-256"
        case scramSHA512 = "SCRAM-SHA-512"
    }

    /// TLS settings for SSL and SASL_SSL, PEM files as librdkafka takes them.
    public struct TLS: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
        /// `ssl.ca.location`: the CA certificates the broker's certificate must chain to; nil trusts the system's.
        public var caLocation: String?
        /// `ssl.certificate.location`: this client's certificate (chain), for brokers with `ssl.client.auth`.
        public var certificateLocation: String?
        /// `ssl.key.location`: the certificate's private key.
        public var keyLocation: String?
        /// `ssl.key.password`: the key's passphrase, if it is encrypted.
        public var keyPassword: String?
        /// `ssl.endpoint.identification.algorithm=https` (the default): the broker's certificate must name the
        /// host (or IP address) connected to. `none` turns the check off, not the certificate's verification.
        public var verifiesHostname: Bool

        public init(caLocation: String? = nil, certificateLocation: String? = nil, keyLocation: String? = nil,
                    keyPassword: String? = nil, verifiesHostname: Bool = true) {
            self.caLocation = caLocation
            self.certificateLocation = certificateLocation
            self.keyLocation = keyLocation
            self.keyPassword = keyPassword
            self.verifiesHostname = verifiesHostname
        }

        public var description: String {
            var parts = ["CA \(caLocation ?? "system")"]
            if let certificateLocation { parts.append("certificate \(certificateLocation)") }
            if keyPassword != nil { parts.append("key password [hidden]") }
            if !verifiesHostname { parts.append("no hostname verification") }
            return parts.joined(separator: ", ")
        }

        public var customMirror: Mirror {
            Mirror(self, children: ["caLocation": caLocation as Any, "certificateLocation": certificateLocation as Any,
                                    "keyLocation": keyLocation as Any, "keyPassword": keyPassword == nil ? "nil" : "[hidden]",
                                    "verifiesHostname": verifiesHostname])
        }
    }

    public var securityProtocol: SecurityProtocol
    public var saslMechanism: SaslMechanism
    public var saslUsername: String
    public var saslPassword: String
    public var tls: TLS

    public init(securityProtocol: SecurityProtocol = .plaintext, saslMechanism: SaslMechanism = .plain,
                saslUsername: String = "", saslPassword: String = "", tls: TLS = TLS()) {
        self.securityProtocol = securityProtocol
        self.saslMechanism = saslMechanism
        self.saslUsername = saslUsername
        self.saslPassword = saslPassword
        self.tls = tls
    }

    /// No authentication, no encryption.
    public static let plaintext = KafkaSecurity()

    /// SASL over a plain connection.
    public static func saslPlaintext(mechanism: SaslMechanism, username: String, password: String) -> KafkaSecurity {
        KafkaSecurity(securityProtocol: .saslPlaintext, saslMechanism: mechanism, saslUsername: username, saslPassword: password)
    }

    /// TLS; with a client certificate, the broker may take the principal from it (`ssl.client.auth`).
    public static func ssl(_ tls: TLS = TLS()) -> KafkaSecurity {
        KafkaSecurity(securityProtocol: .ssl, tls: tls)
    }

    /// SASL over TLS, as production Kafka clusters run.
    public static func saslSsl(mechanism: SaslMechanism, username: String, password: String, tls: TLS = TLS()) -> KafkaSecurity {
        KafkaSecurity(securityProtocol: .saslSsl, saslMechanism: mechanism, saslUsername: username, saslPassword: password, tls: tls)
    }

    public var usesSasl: Bool { securityProtocol == .saslPlaintext || securityProtocol == .saslSsl }

    public var usesTls: Bool { securityProtocol == .ssl || securityProtocol == .saslSsl }

    public var description: String {
        var text = securityProtocol.rawValue
        if usesSasl { text += " \(saslMechanism.rawValue) as \(saslUsername) (password [hidden])" }
        if usesTls { text += " (\(tls))" }
        return text
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["securityProtocol": securityProtocol, "saslMechanism": saslMechanism, "saslUsername": saslUsername,
                                "saslPassword": "[hidden]", "tls": tls])
    }

    /// Refuses what cannot authenticate, naming the key.
    func validate() throws(KafkaClientError) {
        if usesTls, (tls.certificateLocation == nil) != (tls.keyLocation == nil) {
            throw KafkaClientError(.configuration, "ssl.certificate.location and ssl.key.location go together: set both or neither")
        }
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
                throw KafkaClientError(.configuration, "security.protocol '\(value)' is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            }
            securityProtocol = parsed
        }
        try readTLS(properties)
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

    /// The TLS keys: librdkafka's, and Java's PEM forms (`ssl.truststore.location` with
    /// `ssl.truststore.type=PEM`; `ssl.keystore.location` with `ssl.keystore.type=PEM`, the key and the
    /// certificate chain in one file).
    private mutating func readTLS(_ properties: [String: String]) throws(KafkaClientError) {
        for key in ["ssl.truststore.type", "ssl.keystore.type"] {
            if let type = properties[key], type.uppercased() != "PEM" {
                throw KafkaClientError(.configuration, "\(key) \(type): this client reads PEM files only (ssl.ca.location, "
                                       + "ssl.certificate.location, ssl.key.location)")
            }
        }
        // Inline PEM is not read by this client: refused, so that a client never connects without the
        // certificate or CA its settings name.
        for key in ["ssl.ca.pem", "ssl.certificate.pem", "ssl.key.pem", "ssl.truststore.certificates", "ssl.keystore.certificate.chain",
                    "ssl.keystore.key"] where properties[key] != nil {
            throw KafkaClientError(.configuration, "\(key) (inline PEM) is not read by this client: put the PEM in a file and name it "
                                   + "with ssl.ca.location, ssl.certificate.location or ssl.key.location")
        }
        func path(_ key: String) -> String? { properties[key].flatMap { $0.isEmpty ? nil : $0 } }
        tls.caLocation = path("ssl.ca.location") ?? path("ssl.truststore.location")
        tls.certificateLocation = path("ssl.certificate.location") ?? path("ssl.keystore.location")
        tls.keyLocation = path("ssl.key.location") ?? path("ssl.keystore.location")
        tls.keyPassword = path("ssl.key.password")
        if let algorithm = properties["ssl.endpoint.identification.algorithm"] {
            switch algorithm.lowercased() {
            case "https": tls.verifiesHostname = true
            case "", "none": tls.verifiesHostname = false
            default:
                throw KafkaClientError(.configuration, "ssl.endpoint.identification.algorithm '\(algorithm)' is not https or none")
            }
        }
    }

    /// The variables every command and service of this package reads, by the setting each stands for.
    public static let environmentVariables = [
        ("security.protocol", "KAFKA_SECURITY_PROTOCOL"), ("sasl.mechanism", "KAFKA_SASL_MECHANISM"),
        ("sasl.username", "KAFKA_SASL_USERNAME"), ("sasl.password", "KAFKA_SASL_PASSWORD"),
        ("ssl.ca.location", "KAFKA_SSL_CA_LOCATION"), ("ssl.certificate.location", "KAFKA_SSL_CERTIFICATE_LOCATION"),
        ("ssl.key.location", "KAFKA_SSL_KEY_LOCATION"), ("ssl.key.password", "KAFKA_SSL_KEY_PASSWORD"),
        ("ssl.endpoint.identification.algorithm", "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM"),
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
