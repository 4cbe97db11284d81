import KafkaLog

/// The topic-level configs MiniBroker supports, each with the broker key it defaults from.
public enum TopicConfig {
    public struct Key: Sendable {
        public let definition: ConfigDefinition
        /// The broker key that supplies the default (Kafka's "synonym").
        public let brokerKey: String?
    }

    public static let keys: [Key] = [
        Key(definition: ConfigDefinition("cleanup.policy", .list, "delete", check: ConfigDefinition.cleanupPolicy), brokerKey: "log.cleanup.policy"),
        Key(definition: ConfigDefinition("min.cleanable.dirty.ratio", .double, "0.5", check: ConfigDefinition.fraction),
            brokerKey: "log.cleaner.min.cleanable.ratio"),
        Key(definition: ConfigDefinition("min.compaction.lag.ms", .long, "0", check: ConfigDefinition.atLeast(0, .long)),
            brokerKey: "log.cleaner.min.compaction.lag.ms"),
        Key(definition: ConfigDefinition("max.compaction.lag.ms", .long, String(Int64.max), check: ConfigDefinition.atLeast(1, .long)),
            brokerKey: "log.cleaner.max.compaction.lag.ms"),
        Key(definition: ConfigDefinition("delete.retention.ms", .long, "86400000", check: ConfigDefinition.atLeast(0, .long)),
            brokerKey: "log.cleaner.delete.retention.ms"),
        Key(definition: ConfigDefinition("segment.ms", .long, "604800000", check: ConfigDefinition.atLeast(1, .long)), brokerKey: "log.roll.ms"),
        Key(definition: ConfigDefinition("compression.type", .string, "producer",
                                         check: ConfigDefinition.oneOf(["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"])),
            brokerKey: "compression.type"),
        Key(definition: ConfigDefinition("retention.ms", .long, "604800000", check: ConfigDefinition.atLeast(-1, .long)), brokerKey: nil),
        Key(definition: ConfigDefinition("retention.bytes", .long, "-1", check: ConfigDefinition.atLeast(-1, .long)), brokerKey: "log.retention.bytes"),
        Key(definition: ConfigDefinition("segment.bytes", .int, "1073741824", check: ConfigDefinition.atLeast(14, .int)), brokerKey: "log.segment.bytes"),
        Key(definition: ConfigDefinition("index.interval.bytes", .int, "4096", check: ConfigDefinition.atLeast(0, .int)), brokerKey: "log.index.interval.bytes"),
        Key(definition: ConfigDefinition("max.message.bytes", .int, "1048588", check: ConfigDefinition.atLeast(0, .int)), brokerKey: "message.max.bytes"),
        Key(definition: ConfigDefinition("message.timestamp.type", .string, "CreateTime",
                                         check: ConfigDefinition.oneOf(["CreateTime", "LogAppendTime"])), brokerKey: "log.message.timestamp.type"),
        Key(definition: ConfigDefinition("message.timestamp.before.max.ms", .long, String(Int64.max), check: ConfigDefinition.atLeast(0, .long)),
            brokerKey: "log.message.timestamp.before.max.ms"),
        Key(definition: ConfigDefinition("message.timestamp.after.max.ms", .long, "3600000", check: ConfigDefinition.atLeast(0, .long)),
            brokerKey: "log.message.timestamp.after.max.ms"),
        Key(definition: ConfigDefinition("flush.messages", .long, String(Int64.max), check: ConfigDefinition.atLeast(1, .long)),
            brokerKey: "log.flush.interval.messages"),
        Key(definition: ConfigDefinition("flush.ms", .long, String(Int64.max), check: ConfigDefinition.atLeast(0, .long)),
            brokerKey: "log.flush.interval.ms"),
        Key(definition: ConfigDefinition("min.insync.replicas", .int, "1", check: ConfigDefinition.atLeast(1, .int)), brokerKey: "min.insync.replicas"),
    ]

    static let byName: [String: Key] = Dictionary(uniqueKeysWithValues: keys.map { ($0.definition.name, $0) })

    /// The refusal for a topic config, or nil when the key and value are fine.
    public static func problem(key: String, value: String?) -> String? {
        guard let k = byName[key] else { return "unknown or unsupported topic config '\(key)'" }
        guard let value else { return nil }
        return k.definition.problem(with: value).map { "invalid value '\(value)' for '\(key)': \($0)" }
    }

    /// The effective value of a topic config: the topic's override, else the broker's, else Kafka's default.
    public static func effective(_ key: Key, overrides: [String: String], broker: BrokerConfig) -> (value: String?, source: ConfigSource, synonyms: [(String, String?, ConfigSource)]) {
        var synonyms: [(String, String?, ConfigSource)] = []
        if let v = overrides[key.definition.name] { synonyms.append((key.definition.name, v, .dynamicTopicConfig)) }
        let brokerValue: (String?, ConfigSource)
        if key.definition.name == "retention.ms" {
            let explicit = ["log.retention.ms", "log.retention.minutes", "log.retention.hours"].contains { broker.explicit[$0] != nil }
            brokerValue = (String(broker.retentionMs), explicit ? .staticBrokerConfig : .defaultConfig)
            synonyms.append(("log.retention.ms", brokerValue.0, brokerValue.1))
        } else if let brokerKey = key.brokerKey {
            let (v, source) = broker.value(brokerKey)
            brokerValue = (v ?? key.definition.defaultValue, source)
            synonyms.append((brokerKey, brokerValue.0, brokerValue.1))
        } else {
            brokerValue = (key.definition.defaultValue, .defaultConfig)
        }
        if let v = overrides[key.definition.name] { return (v, .dynamicTopicConfig, synonyms) }
        return (brokerValue.0, brokerValue.1, synonyms)
    }

    /// The log settings of a topic with these overrides.
    public static func logConfig(overrides: [String: String], broker: BrokerConfig) -> LogConfig {
        func value(_ name: String) -> String? { effective(byName[name]!, overrides: overrides, broker: broker).value }
        var config = LogConfig()
        config.segmentBytes = value("segment.bytes").flatMap { Int($0) } ?? config.segmentBytes
        config.indexIntervalBytes = value("index.interval.bytes").flatMap { Int($0) } ?? config.indexIntervalBytes
        config.retentionMs = value("retention.ms").flatMap { Int64($0) } ?? config.retentionMs
        config.retentionBytes = value("retention.bytes").flatMap { Int64($0) } ?? config.retentionBytes
        config.flushMessages = value("flush.messages").flatMap { Int64($0) } ?? config.flushMessages
        config.flushMs = value("flush.ms").flatMap { Int64($0) } ?? config.flushMs
        config.maxMessageBytes = value("max.message.bytes").flatMap { Int($0) } ?? config.maxMessageBytes
        config.logAppendTime = value("message.timestamp.type") == "LogAppendTime"
        config.timestampBeforeMaxMs = value("message.timestamp.before.max.ms").flatMap { Int64($0) } ?? config.timestampBeforeMaxMs
        config.timestampAfterMaxMs = value("message.timestamp.after.max.ms").flatMap { Int64($0) } ?? config.timestampAfterMaxMs
        let policy = ConfigDefinition.policies(value("cleanup.policy") ?? "delete")
        config.cleanupDelete = policy.contains("delete")
        config.cleanupCompact = policy.contains("compact")
        config.segmentMs = value("segment.ms").flatMap { Int64($0) } ?? config.segmentMs
        config.minCleanableDirtyRatio = value("min.cleanable.dirty.ratio").flatMap { Double($0) } ?? config.minCleanableDirtyRatio
        config.minCompactionLagMs = value("min.compaction.lag.ms").flatMap { Int64($0) } ?? config.minCompactionLagMs
        config.maxCompactionLagMs = value("max.compaction.lag.ms").flatMap { Int64($0) } ?? config.maxCompactionLagMs
        config.deleteRetentionMs = value("delete.retention.ms").flatMap { Int64($0) } ?? config.deleteRetentionMs
        return config
    }
}
