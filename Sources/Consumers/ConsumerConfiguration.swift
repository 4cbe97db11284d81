import CoreMetrics
import KafkaClient
import KafkaWire
import Logging
import NIOCore

/// The consumer's settings, named after Kafka's consumer configs (`group.id` is `groupId`).
public struct KafkaConsumerConfiguration: Sendable {
    /// bootstrap.servers
    public var bootstrapServers: String
    /// client.id
    public var clientId = "swift-kafka-consumer"
    /// group.id: needed by `subscribe` and by commits.
    public var groupId: String?
    /// group.instance.id: static membership; a restart within the session timeout keeps the assignment.
    public var groupInstanceId: String?
    /// partition.assignment.strategy, in order of preference.
    public var partitionAssignmentStrategy: [PartitionAssignor] = [.range, .cooperativeSticky]
    /// auto.offset.reset: where to start without a committed offset (or when it is out of range).
    public var autoOffsetReset: AutoOffsetReset = .latest
    /// enable.auto.commit: commit the positions of returned records every `autoCommitIntervalMs`.
    public var enableAutoCommit = true
    /// auto.commit.interval.ms
    public var autoCommitIntervalMs = 5000
    /// session.timeout.ms
    public var sessionTimeoutMs = 45_000
    /// heartbeat.interval.ms
    public var heartbeatIntervalMs = 3000
    /// max.poll.interval.ms: the rebalance timeout this member asks for.
    public var maxPollIntervalMs = 300_000
    /// fetch.min.bytes
    public var fetchMinBytes = 1
    /// fetch.max.wait.ms
    public var fetchMaxWaitMs = 500
    /// fetch.max.bytes
    public var fetchMaxBytes = 52_428_800
    /// max.partition.fetch.bytes
    public var maxPartitionFetchBytes = 1_048_576
    /// request.timeout.ms
    public var requestTimeoutMs = 30_000
    /// retry.backoff.ms
    public var retryBackoffMs = 100
    /// default.api.timeout.ms: how long a failure the consumer retries on its own may last before
    /// `records` and `batches` throw it — no broker reachable, a group it cannot join, a subscription
    /// of which no topic exists.
    public var defaultApiTimeoutMs = 60_000
    /// metadata.max.age.ms: how often the subscribed topics' metadata is refreshed; a partition
    /// count that changed makes the group rebalance so new partitions get a reader.
    public var metadataMaxAgeMs = 300_000
    /// isolation.level: `.readCommitted` (the default here, as in librdkafka) reads up to the last
    /// stable offset and never returns records of aborted transactions; `.readUncommitted` (Java's
    /// default) reads everything up to the high watermark. Without transactions both read the same.
    public var isolationLevel: IsolationLevel = .readCommitted

    /// Where the consumer says what it does: group joins and rebalances (info), failures it retries
    /// (warning, once each until they clear), commits that fail (warning). Through swift-log's global handler.
    /// security.protocol, sasl.mechanism, sasl.username and sasl.password: how every connection
    /// authenticates (plaintext by default).
    public var security: KafkaSecurity = .plaintext
    public var logger = Logger(label: "swift-kafka.consumer")
    /// Where the consumer's metrics go (records received, rebalances, request latency; see
    /// `ClientMeters`): nil for the factory bootstrapped in swift-metrics' `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)?

    public init(bootstrapServers: String, groupId: String? = nil) {
        self.bootstrapServers = bootstrapServers
        self.groupId = groupId
    }
}

public enum AutoOffsetReset: String, Sendable {
    case earliest, latest, none
}

/// isolation.level: what a consumer reads of transactional records.
public enum IsolationLevel: Int8, Sendable {
    /// Every record up to the high watermark, of open and aborted transactions too.
    case readUncommitted = 0
    /// Committed records only, up to the last stable offset (the start of the oldest open transaction).
    case readCommitted = 1
}

/// A record as the consumer returns it. Key, value and header values are views into the fetched
/// bytes (ByteBuffer slices, as swift-kafka-client has them): nothing is copied per record.
public struct ConsumerRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    // No initialiser in here: the decoder builds records with the compiler's memberwise one, in
    // place (an explicit one built each record on the stack and copied it out).

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }

    /// The key as UTF-8 text (nil for a null key; invalid UTF-8 is repaired).
    public var keyString: String? { key.map { String(buffer: $0) } }
    /// The value as UTF-8 text (nil for a null value, a tombstone).
    public var valueString: String? { value.map { String(buffer: $0) } }
    /// The key's bytes (a copy).
    public var keyBytes: [UInt8]? { key.map { Array($0.readableBytesView) } }
    /// The value's bytes (a copy).
    public var valueBytes: [UInt8]? { value.map { Array($0.readableBytesView) } }
}

/// Group membership changes, in the order they happened.
public enum RebalanceEvent: Sendable, Equatable {
    case partitionsAssigned([TopicPartition])
    case partitionsRevoked([TopicPartition])
    /// Taken over by another member without a chance to commit (session expired, fenced).
    case partitionsLost([TopicPartition])
}

extension KafkaClientError {
    static func consumer(_ message: String) -> KafkaClientError { KafkaClientError(.configuration, message) }
}
