import CoreMetrics
import Logging
import KafkaClient
import KafkaWire

/// The producer's settings, named after Kafka's producer configs (`linger.ms` is `lingerMs`).
public struct KafkaProducerConfiguration: Sendable {
    /// bootstrap.servers: "host:port[,host:port...]".
    public var bootstrapServers: String
    /// client.id
    public var clientId = "swift-kafka-producer"
    /// acks: -1 (all), 1 or 0 (no answer; the record's offset is unknown, -1).
    public var acks: Int16 = -1
    /// linger.ms: how long a partition's batch waits for more records.
    public var lingerMs = 5
    /// batch.size: bytes of records per partition batch before it is closed.
    public var batchSize = 16_384
    /// compression.type
    public var compression: CompressionCodec = .none
    /// enable.idempotence: producer id and sequence numbers, so a retry is never written twice.
    public var enableIdempotence = true
    /// max.in.flight.requests.per.connection (at most 5 with idempotence, as Kafka requires).
    public var maxInFlightRequestsPerConnection = 5
    /// delivery.timeout.ms: how long a record may take from send to acknowledgement, retries included.
    public var deliveryTimeoutMs = 120_000
    /// request.timeout.ms: how long one request may wait for its answer.
    public var requestTimeoutMs = 30_000
    /// buffer.memory: bytes of unsent records; beyond it `send` waits (up to `maxBlockMs`).
    public var bufferMemory = 33_554_432
    /// max.block.ms: how long `send` may wait for buffer space or metadata.
    public var maxBlockMs = 60_000
    /// max.request.size: the largest produce request.
    public var maxRequestSize = 1_048_576
    /// retries: how often a batch is retried on a retriable error (bounded by `deliveryTimeoutMs`).
    public var retries = Int(Int32.max)
    /// retry.backoff.ms
    public var retryBackoffMs = 100
    /// metadata.max.age.ms: metadata older than this is refreshed even without an error, so new
    /// partitions and moved leaders are seen.
    public var metadataMaxAgeMs = 300_000
    /// allow.auto.create.topics (librdkafka's name): whether sending to a topic the broker does not
    /// have asks the broker to create it (as Metadata's allow_auto_topic_creation; the broker's
    /// auto.create.topics.enable decides). Off, such a send fails with UNKNOWN_TOPIC_OR_PARTITION.
    public var allowAutoCreateTopics = true
    /// transactional.id: makes the producer transactional (`initTransactions()`, then
    /// `beginTransaction()` ... `commitTransaction()`), implies idempotence. A restarted application
    /// uses the same id, so that its new producer fences the old one and aborts what it left open.
    public var transactionalId: String?
    /// transaction.timeout.ms: how long a transaction may stay open before the coordinator aborts it
    /// (and fences this producer). At most the broker's transaction.max.timeout.ms.
    public var transactionTimeoutMs = 60_000

    /// Where the producer says what it does: connection problems and retries (warning, debug),
    /// batches that fail for good (error), epoch bumps (info). Through swift-log's global handler.
    /// security.protocol, sasl.mechanism, sasl.username and sasl.password: how every connection
    /// authenticates (plaintext by default).
    public var security: KafkaSecurity = .plaintext
    public var logger = Logger(label: "swift-kafka.producer")
    /// Where the producer's metrics go (records sent, record errors, retries, request latency; see
    /// `ClientMeters`): nil for the factory bootstrapped in swift-metrics' `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)?

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    /// Refuses what Kafka refuses, naming the config key.
    func validate() throws {
        func refuse(_ message: String) -> KafkaClientError { KafkaClientError(.configuration, message) }
        guard [-1, 0, 1].contains(acks) else { throw refuse("acks must be -1 (all), 0 or 1, not \(acks)") }
        guard lingerMs >= 0 else { throw refuse("linger.ms must not be negative") }
        guard batchSize > 0 else { throw refuse("batch.size must be positive") }
        guard maxInFlightRequestsPerConnection >= 1 else { throw refuse("max.in.flight.requests.per.connection must be at least 1") }
        guard deliveryTimeoutMs > 0, requestTimeoutMs > 0, maxBlockMs >= 0 else {
            throw refuse("delivery.timeout.ms and request.timeout.ms must be positive, max.block.ms not negative")
        }
        guard bufferMemory >= batchSize else { throw refuse("buffer.memory must be at least batch.size") }
        guard retries >= 0, retryBackoffMs >= 0 else { throw refuse("retries and retry.backoff.ms must not be negative") }
        guard metadataMaxAgeMs >= 0 else { throw refuse("metadata.max.age.ms must not be negative") }
        if let transactionalId {
            guard !transactionalId.isEmpty else { throw refuse("transactional.id must not be empty") }
            guard enableIdempotence else { throw refuse("transactional.id requires enable.idempotence") }
            guard transactionTimeoutMs > 0 else { throw refuse("transaction.timeout.ms must be positive") }
        }
        if enableIdempotence {
            guard acks == -1 else { throw refuse("enable.idempotence requires acks=all (-1)") }
            guard maxInFlightRequestsPerConnection <= 5 else {
                throw refuse("enable.idempotence requires max.in.flight.requests.per.connection <= 5")
            }
            guard retries > 0 else { throw refuse("enable.idempotence requires retries > 0") }
        }
    }
}

/// Where a record landed.
public struct RecordMetadata: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// -1 with acks=0, when the broker does not answer.
    public var offset: Int64
    public var timestamp: Int64
}

/// A record to send.
public struct ProducerRecord: Sendable {
    public var topic: String
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [(String, [UInt8]?)]
    /// CreateTime in ms since the epoch; now when nil.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?,
                headers: [(String, [UInt8]?)] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// Identifies a record handed to `KafkaProducer.produce`; its delivery report carries the same id.
public struct ProducerMessageID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public var description: String { "\(rawValue)" }
}

extension KafkaProducerConfiguration {
    /// The client a producer makes for itself when it is given none.
    func makeClient() throws -> KafkaClient {
        try .forOwner(bootstrapServers: bootstrapServers, clientId: clientId, metricsFactory: metricsFactory,
                      requestTimeoutMs: requestTimeoutMs, security: security)
    }
}
