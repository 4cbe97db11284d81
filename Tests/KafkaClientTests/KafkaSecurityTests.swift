import KafkaClient
import NIOCore
import NIOPosix
import Testing

@Suite struct KafkaSecurityTests {
    @Test func settingsComeFromPropertiesAndTheEnvironmentAndRefuseWhatCannotWork() throws {
        let fromJaas = try KafkaSecurity(properties: [
            "security.protocol": "sasl_plaintext", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": #"org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="p \"q\"";"#,
        ])
        #expect(fromJaas == .saslPlaintext(mechanism: .scramSHA512, username: "bob", password: #"p "q""#))
        let overridden = try KafkaSecurity(properties: ["security.protocol": "SASL_PLAINTEXT", "sasl.username": "a", "sasl.password": "file"],
                                           environment: ["KAFKA_SASL_PASSWORD": "env", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"])
        #expect(overridden.saslPassword == "env" && overridden.saslMechanism == .scramSHA256)
        #expect(try KafkaSecurity(properties: [:], environment: [:]) == .plaintext)
        for bad: [String: String] in [["security.protocol": "KERBEROS"], ["sasl.mechanism": "GSSAPI"],
                                      ["security.protocol": "SASL_PLAINTEXT", "sasl.username": "a"],
                                      ["security.protocol": "SASL_PLAINTEXT", "sasl.password": "p"]] {
            #expect(throws: KafkaClientError.self, "\(bad)") { try KafkaSecurity(properties: bad) }
        }
    }

    @Test func thePasswordIsNeverPrinted() {
        let security = KafkaSecurity.saslPlaintext(mechanism: .plain, username: "alice", password: "s3cr3t-value")
        var dumped = ""
        dump(security, to: &dumped)
        for text in ["\(security)", String(describing: security), String(reflecting: security), dumped] {
            #expect(!text.contains("s3cr3t-value") && text.contains("alice"), "\(text)")
        }
    }

    @Test func tlsSettingsComeInLibrdkafkasAndJavasPemForms() throws {
        let librdkafka = try KafkaSecurity(properties: [
            "security.protocol": "ssl", "ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/me.pem",
            "ssl.key.location": "/me.key", "ssl.key.password": "kp", "ssl.endpoint.identification.algorithm": "none",
        ])
        #expect(librdkafka == .ssl(.init(caLocation: "/ca.pem", certificateLocation: "/me.pem", keyLocation: "/me.key", keyPassword: "kp",
                                         verifiesHostname: false)))
        let java = try KafkaSecurity(properties: [
            "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "bob", "sasl.password": "pw",
            "ssl.truststore.type": "PEM", "ssl.truststore.location": "/ca.pem", "ssl.keystore.type": "PEM", "ssl.keystore.location": "/ks.pem",
        ])
        #expect(java == .saslSsl(mechanism: .scramSHA256, username: "bob", password: "pw",
                                 tls: .init(caLocation: "/ca.pem", certificateLocation: "/ks.pem", keyLocation: "/ks.pem")))
        #expect(java.tls.verifiesHostname && java.usesTls && java.usesSasl)
        let environment = try KafkaSecurity(environment: ["KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/env-ca.pem",
                                                          "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "https"])
        #expect(environment == .ssl(.init(caLocation: "/env-ca.pem")))
        for bad: [String: String] in [["security.protocol": "SSL", "ssl.truststore.type": "JKS"],
                                      ["security.protocol": "SSL", "ssl.certificate.location": "/me.pem"],
                                      ["security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "dns"],
                                      ["security.protocol": "SASL_SSL", "sasl.username": "a"],
                                      ["security.protocol": "SSL", "ssl.ca.pem": "-----BEGIN CERTIFICATE-----..."],
                                      ["security.protocol": "SSL", "ssl.keystore.key": "-----BEGIN PRIVATE KEY-----..."]] {
            #expect(throws: KafkaClientError.self, "\(bad)") { try KafkaSecurity(properties: bad) }
        }
    }

    @Test func theKeyPasswordIsNeverPrinted() {
        let security = KafkaSecurity.saslSsl(mechanism: .plain, username: "alice", password: "s3cr3t-value",
                                             tls: .init(caLocation: "/ca.pem", certificateLocation: "/c.pem", keyLocation: "/c.key", keyPassword: "k3y-pass"))
        var dumped = ""
        dump(security, to: &dumped)
        for text in ["\(security)", String(reflecting: security), dumped] {
            #expect(!text.contains("s3cr3t-value") && !text.contains("k3y-pass") && text.contains("/ca.pem"), "\(text)")
        }
    }

    /// Files that cannot be read are configuration errors naming the key, before any connection is tried.
    @Test func unreadableTlsFilesAreRefusedNamingTheKey() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        for (tls, key) in [(KafkaSecurity.TLS(caLocation: "/nonexistent/ca.pem"), "ssl.ca.location"),
                           (KafkaSecurity.TLS(certificateLocation: "/nonexistent/c.pem", keyLocation: "/nonexistent/c.key"), "ssl.certificate.location")] {
            await #expect {
                _ = try await BrokerConnection.connect(host: "127.0.0.1", port: 9, clientId: "t", group: group, security: .ssl(tls))
            } throws: { error in
                guard let error = error as? KafkaClientError, error.kind == .configuration else { return false }
                return error.message.contains(key)
            }
        }
    }

    /// A port that is not TLS may read a ClientHello as the start of a frame and wait forever: the
    /// handshake ends at the request timeout with an error saying so, not a hang.
    @Test func aSilentPeerEndsTheHandshakeAtTheRequestTimeout() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let started = ContinuousClock.now
        await #expect {
            _ = try await BrokerConnection.connect(host: "127.0.0.1", port: port, clientId: "t", group: group,
                                                   requestTimeout: .milliseconds(300), security: .ssl())
        } throws: { error in
            guard let error = error as? KafkaClientError, error.kind == .timeout else { return false }
            return error.message.contains("did not complete within 300 ms")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        try await server.close()
    }
}
