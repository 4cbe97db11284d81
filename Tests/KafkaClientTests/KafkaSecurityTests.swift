import KafkaClient
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
        for bad: [String: String] in [["security.protocol": "SSL"], ["security.protocol": "KERBEROS"], ["sasl.mechanism": "GSSAPI"],
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
}
