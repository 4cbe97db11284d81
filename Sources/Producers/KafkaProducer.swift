import Foundation
import KafkaClient
import KafkaWire
import NIOCore

/// The producer's settings, named after Kafka's producer configs.
public struct KafkaProducerConfiguration: Sendable {
    /// bootstrap.servers
    public var bootstrapServers: String
    public var clientId = "swift-kafka-producer"
    /// acks: -1 (all), 1 or 0.
    public var acks: Int16 = -1
    /// linger.ms
    public var lingerMs = 5
    /// batch.size: bytes of records per partition batch before it is sent.
    public var batchSize = 16_384
    /// compression.type
    public var compression: CompressionCodec = .none
    /// enable.idempotence
    public var enableIdempotence = true
    /// delivery.timeout.ms: how long a record may take, retries included.
    public var deliveryTimeoutMs = 120_000
    /// retry.backoff.ms
    public var retryBackoffMs = 100

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }
}

/// Where a record landed.
public struct RecordMetadata: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
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

/// A pure-Swift Kafka producer: records are batched per partition (linger.ms, batch.size), sent to
/// the partition's leader, retried on retriable errors, and with idempotence (the default) carry a
/// producer id and per-partition sequence numbers so that a retry is never written twice. One batch
/// per partition is in flight at a time, which keeps order across retries.
public actor KafkaProducer {
    public let configuration: KafkaProducerConfiguration
    let client: KafkaClient
    private var producerId: Int64 = -1
    private var producerEpoch: Int16 = -1
    private var sequences: [PartitionKey: Int32] = [:]
    private var open: [PartitionKey: OpenBatch] = [:]
    private var ready: [PartitionKey: [OpenBatch]] = [:]
    private var inFlight: Set<PartitionKey> = []
    private var sticky: [String: Int32] = [:]
    private var nextBatchId = 0
    private var idle: [CheckedContinuation<Void, Never>] = []

    struct PartitionKey: Hashable {
        var topic: String
        var partition: Int32
    }

    struct OpenBatch {
        var id: Int
        var records: [Record] = []
        var waiters: [CheckedContinuation<RecordMetadata, Error>] = []
        var bytes = 0
        var created: ContinuousClock.Instant = .now
    }

    public init(configuration: KafkaProducerConfiguration) throws {
        self.configuration = configuration
        client = try KafkaClient(bootstrapServers: configuration.bootstrapServers, clientId: configuration.clientId)
    }

    /// Sends a record and returns where it landed once the broker acknowledged it.
    public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        if configuration.enableIdempotence && producerId < 0 { try await initProducerId() }
        let partition = try await choosePartition(record)
        let key = PartitionKey(topic: record.topic, partition: partition)
        return try await withCheckedThrowingContinuation { continuation in
            append(record, to: key, continuation)
        }
    }

    /// Waits until every record sent so far is acknowledged (or failed).
    public func flush() async {
        for key in Array(open.keys) { closeBatch(key) }
        while !(open.isEmpty && ready.values.allSatisfy(\.isEmpty) && inFlight.isEmpty) {
            await withCheckedContinuation { idle.append($0) }
        }
    }

    public func close() async {
        await flush()
        await client.close()
    }

    // MARK: Partitioning

    private func choosePartition(_ record: ProducerRecord) async throws -> Int32 {
        var metadata = await client.metadata
        if metadata?.topics[record.topic] == nil {
            metadata = try await client.refreshMetadata(topics: [record.topic], allowAutoTopicCreation: true)
        }
        guard let topic = metadata?.topics[record.topic], !topic.partitions.isEmpty else {
            let error = metadata?.topicErrors[record.topic] ?? .unknownTopicOrPartition
            throw KafkaClientError(.broker(error), "topic '\(record.topic)' is not available: \(error)")
        }
        let count = Int32(topic.partitions.count)
        if let partition = record.partition {
            guard partition >= 0 && partition < count else {
                throw KafkaClientError(.broker(.unknownTopicOrPartition), "topic '\(record.topic)' has no partition \(partition)")
            }
            return partition
        }
        if let key = record.key { return Partitioner.partition(forKey: key, count: count) }
        // KIP-480: stick to one partition until its batch goes out.
        if let current = sticky[record.topic], current < count { return current }
        let chosen = Int32.random(in: 0..<count)
        sticky[record.topic] = chosen
        return chosen
    }

    // MARK: Batching

    private func append(_ record: ProducerRecord, to key: PartitionKey, _ continuation: CheckedContinuation<RecordMetadata, Error>) {
        var batch = open[key] ?? {
            nextBatchId += 1
            let id = nextBatchId
            let lingerMs = configuration.lingerMs
            Task { [weak self] in
                try? await Task.sleep(for: .milliseconds(lingerMs))
                await self?.lingerExpired(key, id)
            }
            return OpenBatch(id: id)
        }()
        let timestamp = record.timestamp ?? Int64(Date.nowMs)
        let r = Record(offset: Int64(batch.records.count), timestamp: timestamp,
                       key: record.key.map { ByteBuffer(bytes: $0) }, value: record.value.map { ByteBuffer(bytes: $0) },
                       headers: record.headers.map { RecordHeader(key: $0.0, value: $0.1.map { ByteBuffer(bytes: $0) }) })
        batch.records.append(r)
        batch.waiters.append(continuation)
        batch.bytes += (record.key?.count ?? 0) + (record.value?.count ?? 0) + 16
        open[key] = batch
        if batch.bytes >= configuration.batchSize { closeBatch(key) }
    }

    private func lingerExpired(_ key: PartitionKey, _ id: Int) {
        if open[key]?.id == id { closeBatch(key) }
    }

    private func closeBatch(_ key: PartitionKey) {
        guard let batch = open.removeValue(forKey: key) else { return }
        if sticky[key.topic] == key.partition { sticky[key.topic] = nil }
        ready[key, default: []].append(batch)
        drain(key)
    }

    private func drain(_ key: PartitionKey) {
        guard !inFlight.contains(key), var queue = ready[key], !queue.isEmpty else {
            notifyIfIdle()
            return
        }
        let batch = queue.removeFirst()
        ready[key] = queue
        inFlight.insert(key)
        let baseSequence = producerId >= 0 ? sequences[key, default: 0] : -1
        if producerId >= 0 { sequences[key] = baseSequence &+ Int32(batch.records.count) }
        Task { await self.send(batch, to: key, baseSequence: baseSequence) }
    }

    private func notifyIfIdle() {
        guard open.isEmpty, ready.values.allSatisfy(\.isEmpty), inFlight.isEmpty else { return }
        let waiting = idle
        idle = []
        for continuation in waiting { continuation.resume() }
    }

    // MARK: Sending

    private func send(_ batch: OpenBatch, to key: PartitionKey, baseSequence: Int32) async {
        let deadline = ContinuousClock.now + .milliseconds(configuration.deliveryTimeoutMs)
        var result: Result<(Int64, Int64), Error>
        var attempt = 0
        repeat {
            attempt += 1
            result = await produceOnce(batch, to: key, baseSequence: baseSequence)
            if case .failure(let error as KafkaClientError) = result, Self.isRetriable(error), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(configuration.retryBackoffMs * min(attempt, 10)))
                _ = try? await client.refreshMetadata(topics: [key.topic])
                continue
            }
            break
        } while true
        inFlight.remove(key)
        switch result {
        case .success(let (baseOffset, logAppendTime)):
            for (index, waiter) in batch.waiters.enumerated() {
                let timestamp = logAppendTime >= 0 ? logAppendTime : batch.records[index].timestamp
                waiter.resume(returning: RecordMetadata(topic: key.topic, partition: key.partition,
                                                        offset: baseOffset + Int64(index), timestamp: timestamp))
            }
        case .failure(let error):
            for waiter in batch.waiters { waiter.resume(throwing: error) }
        }
        drain(key)
    }

    static func isRetriable(_ error: KafkaClientError) -> Bool {
        switch error.kind {
        case .connection, .timeout: return true
        case .broker(let code): return code.isRetriable
        default: return false
        }
    }

    private func produceOnce(_ batch: OpenBatch, to key: PartitionKey, baseSequence: Int32) async -> Result<(Int64, Int64), Error> {
        do {
            guard let leader = await client.metadata?.topics[key.topic]?.partitions.first(where: { $0.partition == key.partition })?.leader else {
                throw KafkaClientError(.broker(.leaderNotAvailable), "no leader known for \(key.topic)-\(key.partition)")
            }
            let connection = try await client.connection(to: leader)
            let records = try RecordBatch(compression: configuration.compression, producerId: producerId, producerEpoch: producerEpoch,
                                          baseSequence: baseSequence, records: batch.records).encoded()
            let request = ProduceRequest(acks: configuration.acks, timeoutMs: 30_000, topicData: [
                .init(name: key.topic, topicId: await client.metadata?.topics[key.topic]?.id ?? .zero,
                      partitionData: [.init(index: key.partition, records: records)]),
            ])
            let response = try await connection.send(request)
            guard let answer = response.responses.first?.partitionResponses.first else {
                throw KafkaClientError(.protocolViolation, "produce response without the partition")
            }
            guard answer.errorCode == 0 else {
                let code = ErrorCode(rawValue: answer.errorCode)
                throw KafkaClientError(.broker(code), "produce to \(key.topic)-\(key.partition) failed: \(code)\(answer.errorMessage.map { ": \($0)" } ?? "")")
            }
            return .success((answer.baseOffset, answer.logAppendTimeMs))
        } catch {
            return .failure(error)
        }
    }

    private func initProducerId() async throws {
        _ = try await client.refreshMetadata(topics: [])
        guard let broker = await client.metadata?.brokers.keys.sorted().first else {
            throw KafkaClientError(.connection, "no broker in the cluster metadata")
        }
        let response = try await client.connection(to: broker).send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1))
        guard response.errorCode == 0 else {
            throw KafkaClientError(.broker(ErrorCode(rawValue: response.errorCode)), "InitProducerId failed: \(ErrorCode(rawValue: response.errorCode))")
        }
        if producerId < 0 {
            producerId = response.producerId
            producerEpoch = response.producerEpoch
        }
    }
}

extension Date {
    static var nowMs: Int { Int(Date().timeIntervalSince1970 * 1000) }
}
