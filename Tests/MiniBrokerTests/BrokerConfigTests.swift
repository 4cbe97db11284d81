import MiniBroker
import Testing

@Suite struct BrokerConfigTests {
    @Test func defaults() {
        let config = BrokerConfig()
        #expect(config.listeners == [Listener(name: "PLAINTEXT", host: "127.0.0.1", port: 9092)])
        #expect(config.logDirectory == "./data")
        #expect(config.numPartitions == 1 && config.autoCreateTopics)
        #expect(config.retentionMs == 168 * 3_600_000)
        #expect(config.socketRequestMaxBytes == 104_857_600)
    }

    @Test func propertiesFileAndPrecedence() throws {
        var config = BrokerConfig()
        try config.load(propertiesText: """
            # a comment
            ! another
            listeners=PLAINTEXT://0.0.0.0:19092
            log.dirs = /var/lib/minibroker
            num.partitions: 3
            log.retention.hours=1
            log.retention.minutes=30
            """)
        #expect(config.listeners.first?.port == 19092 && config.listeners.first?.host == "0.0.0.0")
        #expect(config.logDirectory == "/var/lib/minibroker")
        #expect(config.numPartitions == 3)
        // ms beats minutes beats hours, as in Kafka.
        #expect(config.retentionMs == 30 * 60_000)
        try config.set("log.retention.ms", "5000")
        #expect(config.retentionMs == 5000)
        #expect(config.advertisedListeners == config.listeners)
    }

    @Test func unknownKeysAndBadValuesNameTheKey() {
        var config = BrokerConfig()
        for (key, value) in [("no.such.key", "1"), ("num.partitions", "zero"), ("num.partitions", "0"),
                             ("auto.create.topics.enable", "maybe"), ("listeners", "127.0.0.1:9092"),
                             ("log.message.timestamp.type", "Now")] {
            do {
                try config.set(key, value)
                Issue.record("\(key)=\(value) accepted")
            } catch let error as ConfigError {
                #expect(error.key == key)
                #expect(error.description.contains(key))
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        #expect(throws: ConfigError.self) { try config.load(propertiesText: "just words") }
    }
}
