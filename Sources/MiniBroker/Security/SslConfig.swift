import Foundation
import NIOSSL

/// A TLS listener's settings, Kafka's `ssl.*` keys (each one `listener.name.<listener>.`-prefixable),
/// and the server context made from them. Keystores and truststores are PEM, as Kafka's
/// `ssl.keystore.type=PEM` (KIP-651): a file holding the private key and the certificate chain, or
/// the same PEM text inline in `ssl.keystore.key` and `ssl.keystore.certificate.chain`.
struct SslConfig {
    let listener: String
    let keystoreLocation: String?
    let keystoreCertificateChain: String?
    let keystoreKey: String?
    let keyPassword: String?
    let truststoreLocation: String?
    let truststoreCertificates: String?
    let clientAuth: String
    let enabledProtocols: [String]
    let principalMappingRules: String

    init(config: BrokerConfig, listener: String) {
        func value(_ key: String) -> String? { config.ssl(key, listener: listener).flatMap { $0.isEmpty ? nil : $0 } }
        self.listener = listener
        keystoreLocation = value("ssl.keystore.location")
        keystoreCertificateChain = value("ssl.keystore.certificate.chain").map(Self.normalizedPEM)
        keystoreKey = value("ssl.keystore.key").map(Self.normalizedPEM)
        keyPassword = value("ssl.key.password")
        truststoreLocation = value("ssl.truststore.location")
        truststoreCertificates = value("ssl.truststore.certificates").map(Self.normalizedPEM)
        // KIP-684: a SASL_SSL listener authenticates clients by SASL; only its own listener.name.<l>.ssl.client.auth
        // asks for certificates there, never the broker-wide key.
        let saslSsl = config.listeners.first { $0.name == listener }.flatMap { config.securityProtocol(of: $0) } == .saslSsl
        clientAuth = saslSsl ? config.explicit["listener.name.\(listener.lowercased()).ssl.client.auth"] ?? "none"
                             : value("ssl.client.auth") ?? "none"
        enabledProtocols = (value("ssl.enabled.protocols") ?? "TLSv1.2,TLSv1.3").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        principalMappingRules = value("ssl.principal.mapping.rules") ?? "DEFAULT"
    }

    static let pemOnly: @Sendable (String) -> String? = { value in
        value.uppercased() == "PEM" ? nil : "is not served: MiniBroker reads PEM files only (convert a JKS or PKCS12 store with keytool or openssl)"
    }

    static let protocols = ["TLSv1.2", "TLSv1.3"]

    static let protocolsCheck: @Sendable (String) -> String? = { value in
        let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty else { return "must name TLSv1.2, TLSv1.3 or both" }
        let refused = names.filter { !protocols.contains($0) }
        return refused.isEmpty ? nil : "names \(refused.joined(separator: ", ")): only TLSv1.2 and TLSv1.3 are served"
    }

    /// A TLS listener needs a certificate and its key, from a file or inline, not both (as Kafka refuses).
    func checkKeystoreIsSet() throws(ConfigError) {
        if keystoreLocation != nil && (keystoreKey != nil || keystoreCertificateChain != nil) {
            throw ConfigError(key: "ssl.keystore.location", reason: "is set with ssl.keystore.key or ssl.keystore.certificate.chain: give one or the other")
        }
        if truststoreLocation != nil && truststoreCertificates != nil {
            throw ConfigError(key: "ssl.truststore.location", reason: "is set with ssl.truststore.certificates: give one or the other")
        }
        if keystoreLocation != nil { return }
        guard keystoreCertificateChain != nil, keystoreKey != nil else {
            throw ConfigError(key: "ssl.keystore.location", reason: "listener \(listener) serves TLS: set ssl.keystore.location (a PEM file "
                              + "with the private key and the certificate chain), or ssl.keystore.certificate.chain and ssl.keystore.key")
        }
    }

    /// Reads the PEM files and makes the listener's server context. Every failure names its key.
    func makeContext() throws(ConfigError) -> NIOSSLContext {
        try checkKeystoreIsSet()
        let keyKey = keystoreLocation != nil ? "ssl.keystore.location" : "ssl.keystore.key"
        let keyPEM = try keystoreLocation.map { path throws(ConfigError) in try Self.read(path, key: "ssl.keystore.location") } ?? keystoreKey ?? ""
        let chainPEM = keystoreLocation != nil ? keyPEM : keystoreCertificateChain ?? ""
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8))
        } catch {
            throw ConfigError(key: keystoreLocation != nil ? "ssl.keystore.location" : "ssl.keystore.certificate.chain",
                              reason: "holds no readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else {
            throw ConfigError(key: keystoreLocation != nil ? "ssl.keystore.location" : "ssl.keystore.certificate.chain",
                              reason: "holds no PEM certificate (BEGIN CERTIFICATE)")
        }
        let key: NIOSSLPrivateKey
        do {
            if let keyPassword {
                key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem) { setter in setter(Array(keyPassword.utf8)) }
            } else {
                key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            }
        } catch {
            let hint = keyPassword == nil ? " (an encrypted key needs ssl.key.password)" : " (or ssl.key.password is wrong)"
            throw ConfigError(key: keyKey, reason: "holds no readable PEM private key\(hint)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = enabledProtocols.contains("TLSv1.2") ? .tlsv12 : .tlsv13
        tls.maximumTLSVersion = enabledProtocols.contains("TLSv1.3") ? .tlsv13 : .tlsv12
        switch clientAuth {
        case "required": tls.certificateVerification = .noHostnameVerification
        case "requested": tls.certificateVerification = .optionalVerification
        default: tls.certificateVerification = .none
        }
        if let trusted = try trustedCertificates() { tls.trustRoots = .certificates(trusted) }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ConfigError(key: keyKey, reason: "the certificate and key do not make a TLS context (\(error)): does the key match the certificate?")
        }
    }

    /// The CAs client certificates must chain to; nil leaves the system's.
    private func trustedCertificates() throws(ConfigError) -> [NIOSSLCertificate]? {
        let key = truststoreLocation != nil ? "ssl.truststore.location" : "ssl.truststore.certificates"
        guard let pem = try truststoreLocation.map({ path throws(ConfigError) in try Self.read(path, key: key) }) ?? truststoreCertificates else {
            return nil
        }
        let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        guard let certificates, !certificates.isEmpty else { throw ConfigError(key: key, reason: "holds no PEM certificate (BEGIN CERTIFICATE)") }
        return certificates
    }

    /// Inline PEM as Kafka takes it, perhaps on one line (a properties file's `\` continuations join
    /// its lines): each BEGIN/END block rebuilt with its base64 in lines of 64, as PEM readers want.
    static func normalizedPEM(_ text: String) -> String {
        var output = ""
        var rest = Substring(text)
        while let begin = rest.range(of: "-----BEGIN "), let headerEnd = rest[begin.upperBound...].range(of: "-----") {
            let label = rest[begin.upperBound..<headerEnd.lowerBound]
            guard let end = rest[headerEnd.upperBound...].range(of: "-----END \(label)-----") else { break }
            let body = rest[headerEnd.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
            output += "-----BEGIN \(label)-----\n"
            var line = body[...]
            while !line.isEmpty {
                output += line.prefix(64) + "\n"
                line = line.dropFirst(64)
            }
            output += "-----END \(label)-----\n"
            rest = rest[end.upperBound...]
        }
        return output.isEmpty ? text : output
    }

    private static func read(_ path: String, key: String) throws(ConfigError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: key, reason: "cannot read \(path)")
        }
        guard data.count <= 1 << 20, let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(key: key, reason: "\(path) is not a PEM file (text of at most 1 MiB)")
        }
        return text
    }
}
