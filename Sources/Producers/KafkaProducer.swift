import Foundation
import KafkaClient
import KafkaWire
import NIOCore
import ServiceLifecycle

/// A pure-Swift Kafka producer. Records are batched per partition (`lingerMs`, `batchSize`); the
/// ready batches of all partitions led by one broker go out together in one ProduceRequest, up to
/// `maxInFlightRequestsPerConnection` requests per connection. With idempotence (the default) each
/// batch carries the producer id, epoch and a per-partition sequence, so retries are neither written
/// twice nor reordered. `bufferMemory` bounds what is buffered: beyond it `send` waits.
///
/// `send` returns where the record landed; `produce` returns at once and the outcome arrives on the
/// `DeliveryReports` of `makeProducerWithDeliveryReports`. As a ServiceLifecycle `Service`, `run()`
/// waits for graceful shutdown, then flushes and closes.
public actor KafkaProducer {
    public let configuration: KafkaProducerConfiguration
    let client: KafkaClient
    /// Whether `close()` closes the client (made by this producer) or only this producer's own
    /// connections (a client shared with other producers, consumers or an admin client).
    private let ownsClient: Bool
    /// This producer's connections to its transaction coordinator.
    let lane = ClientLane()
    var producerId: Int64 = -1
    var producerEpoch: Int16 = -1
    /// A transactional producer's transaction (`KafkaProducer+Transactions`).
    var transaction = ProducerTransaction()
    /// AddPartitionsToTxn requests on their way, shared by every record waiting for one.
    var addingToTransaction: [TopicPartition: Task<Void, Error>] = [:]
    private var producerIdTask: Task<Void, Error>?
    var partitions: [TopicPartition: PartitionQueue] = [:]
    private var sticky: [String: Int32] = [:]
    /// The last topic's partition count and the last partition's queue: runs of records to one
    /// topic and partition skip two dictionary lookups (string hashing) per record.
    private var lastTopicCount: (topic: String, count: Int32)?
    private var lastQueue: (key: TopicPartition, queue: PartitionQueue)?
    private var lastSticky: (topic: String, partition: Int32)?
    /// Buffers of completed batches, reused for new ones (a fresh 1 MB buffer per batch costs its
    /// page faults every time).
    private var spareBuffers: [ByteBuffer] = []
    /// The client's metadata as of this producer's last refresh: a snapshot, so a record costs no
    /// hop to the client's actor.
    var cluster = ClusterMetadata()
    var inFlightRequests: [Int32: Int] = [:]
    var connections: [Int32: BrokerConnection] = [:]
    var connecting: Set<Int32> = []
    var pendingRequests: [Int: (leader: Int32, batches: [ProducerBatch])] = [:]
    var nextRequestId = 0
    var outcomes: AsyncStream<ProduceOutcome>.Continuation?
    private var bufferedBytes = 0
    private var spaceWaiters: [(id: Int, bytes: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextWaiterId = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var nextMessageId: UInt64 = 0
    private let reports: AsyncStream<DeliveryReportBatch>.Continuation?
    private var closed = false
    private var lingerSweepScheduled = false
    /// linger.ms=0 and a batch was opened: drain before the current call returns or waits.
    private var drainPending = false
    var wakeScheduled: ContinuousClock.Instant?
    var metadataRefreshScheduled = false
    /// When metadata last came in: past metadata.max.age.ms it is refreshed.
    var metadataRefreshedAt = ContinuousClock.now

    /// A producer with a client of its own, made from the configuration's bootstrap servers,
    /// security, client id, request timeout and metrics.
    public init(configuration: KafkaProducerConfiguration) throws {
        try self.init(configuration: configuration, client: nil, reports: nil)
    }

    /// A producer on a client shared with other producers, consumers or an admin client of this
    /// process: one metadata cache and one set of connections for all of them. The client's
    /// bootstrap servers, security, client id, request timeout and metrics apply (the
    /// configuration's are not used); `close()` leaves the client open for the others.
    public init(configuration: KafkaProducerConfiguration, client: KafkaClient) throws {
        try self.init(configuration: configuration, client: client, reports: nil)
    }

    /// A producer whose `produce` outcomes arrive on the returned sequence (on `client` if given).
    public static func makeProducerWithDeliveryReports(configuration: KafkaProducerConfiguration,
                                                       client: KafkaClient? = nil) throws -> (KafkaProducer, DeliveryReports) {
        let (stream, continuation) = AsyncStream.makeStream(of: DeliveryReportBatch.self)
        return (try KafkaProducer(configuration: configuration, client: client, reports: continuation), DeliveryReports(stream: stream))
    }

    private init(configuration: KafkaProducerConfiguration, client shared: KafkaClient?,
                 reports: AsyncStream<DeliveryReportBatch>.Continuation?) throws {
        try configuration.validate()
        self.configuration = configuration
        self.reports = reports
        ownsClient = shared == nil
        client = try shared ?? configuration.makeClient()
    }

    // MARK: Sending

    /// Sends a record and returns where it landed once the broker acknowledged it.
    public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        let (key, bytes) = try await prepare(record)
        return try await withCheckedThrowingContinuation { continuation in
            append(record, to: key, reserved: bytes) { $0.appendWaiter(continuation, timestamp: $1) }
            drainIfPending()
        }
    }

    /// Queues a record and returns its id at once (after waiting for buffer space if `bufferMemory`
    /// is full); its outcome arrives as a delivery report.
    @discardableResult
    public func produce(_ record: ProducerRecord) async throws -> ProducerMessageID {
        let (key, bytes) = try await prepare(record)
        nextMessageId += 1
        let id = ProducerMessageID(rawValue: nextMessageId)
        append(record, to: key, reserved: bytes) { $0.appendReport(id, timestamp: $1) }
        drainIfPending()
        return id
    }

    /// Queues many records with one call (one actor hop for all of them, which is what makes small
    /// records fast); returns their ids in order. Waits for buffer space like `produce`.
    @discardableResult
    public func produce(contentsOf records: [ProducerRecord]) async throws -> [ProducerMessageID] {
        defer { drainIfPending() }
        var ids: [ProducerMessageID] = []
        ids.reserveCapacity(records.count)
        let now = Self.nowMs()  // one CreateTime for the records of one call
        var index = 0
        while index < records.count {
            // As many records as can go without waiting. Read through the array's buffer: each field
            // is borrowed in place (indexing the array copied whole records, a retain and a release
            // for each of their arrays and strings).
            index = records.withUnsafeBufferPointer { records in appendReady(records, from: index, now: now, ids: &ids) }
            guard index < records.count else { break }
            // One that has to wait: for the producer id, metadata or buffer space (which the batches
            // opened so far free once sent).
            drainIfPending()
            let record = records[index]
            let (key, bytes) = try await prepare(record)
            nextMessageId += 1
            let id = ProducerMessageID(rawValue: nextMessageId)
            append(record, to: key, reserved: bytes, now: now) { $0.appendReport(id, timestamp: $1) }
            ids.append(id)
            index += 1
        }
        return ids
    }

    /// Appends records from `index` on while none has to wait; returns the index of the first that
    /// has to. A record that opens a run goes the general way; the records after it that go to the
    /// same batch are appended as a run (`appendRun`).
    private func appendReady(_ records: UnsafeBufferPointer<ProducerRecord>, from start: Int, now: Int64,
                             ids: inout [ProducerMessageID]) -> Int {
        guard let base = records.baseAddress else { return start }
        var index = start
        while index < records.count {
            // Through the pointer the record is borrowed in place; indexing the buffer copied it (a
            // retain and a release for each of its arrays and strings).
            let (appended, target) = appendIfReady(base[index], now: now, ids: &ids)
            guard appended else { return index }
            index += 1
            guard let target else { continue }  // its batch closed after it
            let (next, full) = appendRun(base, from: index, to: records.count, into: target.batch, now: now, ids: &ids)
            index = next
            if full {
                close(target.queue)
                drain()
            }
        }
        return index
    }

    /// One record by the general path, unless it has to wait; the batch it went to while still open.
    private func appendIfReady(_ record: borrowing ProducerRecord, now: Int64, ids: inout [ProducerMessageID])
        -> (appended: Bool, target: (queue: PartitionQueue, batch: ProducerBatch)?) {
        guard let (partition, bytes) = readyToAppend(record) else { return (false, nil) }
        nextMessageId += 1
        let id = ProducerMessageID(rawValue: nextMessageId)
        ids.append(id)
        return (true, append(timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers,
                             to: TopicPartition(record.topic, partition),
                             reserved: bytes, now: now) { $0.appendReport(id, timestamp: $1) })
    }

    /// Appends the records from `start` on that go to `batch`, the open batch the previous record
    /// went to, until one goes elsewhere, would overflow the batch or buffer.memory, or the batch is
    /// full (`full`: the caller closes it). Nothing here suspends or calls out, so what the general
    /// path checks per record (closed, producer id, waiters, partition count, sticky partition) holds
    /// for the whole run and is read once, and the batch's contents are taken with one access: per
    /// record those reads were Swift exclusivity checks, a tenth of the producer's profile.
    private func appendRun(_ records: UnsafePointer<ProducerRecord>, from start: Int, to end: Int, into batch: ProducerBatch,
                           now: Int64, ids: inout [ProducerMessageID]) -> (next: Int, full: Bool) {
        let topic = batch.partition.topic, partition = batch.partition.partition
        guard start < end, let count = lastTopicCount, count.topic == topic else { return (start, false) }
        let stickyHere = lastSticky.map { $0.topic == topic && $0.partition == partition } ?? false
        let budget = configuration.bufferMemory - bufferedBytes, batchSize = configuration.batchSize
        var reserved = 0
        var messageId = nextMessageId
        var reports: (firstId: UInt64, count: Int, timestamp: Int64) = (messageId + 1, 0, now)
        var index = start
        var full = false
        batch.withContents { contents in
            while index < end {
                let record = records + index
                guard record.pointee.topic == topic else { break }
                if let wanted = record.pointee.partition {
                    guard wanted == partition else { break }
                } else if let key = record.pointee.key {
                    guard Partitioner.partition(forKey: key, count: count.count) == partition else { break }
                } else {
                    guard stickyHere else { break }
                }
                let bytes = RecordBatchBuilder.estimatedSize(keyCount: record.pointee.key?.count, valueCount: record.pointee.value?.count,
                                                             headers: record.pointee.headers)
                guard reserved + bytes <= budget, contents.builder.sizeInBytes + bytes <= batchSize else { break }
                reserved += bytes
                let timestamp = record.pointee.timestamp ?? now
                if timestamp != reports.timestamp {
                    contents.completions.appendReports(reports)
                    reports = (messageId + 1, 0, timestamp)
                }
                contents.builder.append(timestamp: timestamp, key: record.pointee.key, value: record.pointee.value,
                                        headers: record.pointee.headers)
                messageId += 1
                reports.count += 1
                index += 1
                if contents.builder.sizeInBytes >= batchSize {
                    full = true
                    break
                }
            }
            // Who hears of these records: one run of ids per timestamp, not an entry per record.
            contents.completions.appendReports(reports)
            contents.reservedBytes += reserved
        }
        ids.append(contentsOf: (nextMessageId + 1..<messageId + 1).lazy.map { ProducerMessageID(rawValue: $0) })
        bufferedBytes += reserved
        nextMessageId = messageId
        return (index, full)
    }

    /// The synchronous path of `prepare`: producer id, partition count and buffer room all at hand.
    private func readyToAppend(_ record: borrowing ProducerRecord) -> (partition: Int32, bytes: Int)? {
        guard !closed, !configuration.enableIdempotence || producerId >= 0, spaceWaiters.isEmpty,
              transactionalId == nil || transaction.phase == .inTransaction else { return nil }
        let count: Int32
        if let last = lastTopicCount, last.topic == record.topic {
            count = last.count
        } else {
            guard let known = knownPartitionCount(record.topic) else { return nil }
            count = known
            lastTopicCount = (record.topic, known)
        }
        guard let partition = try? partition(topic: record.topic, partition: record.partition, key: record.key,
                                             count: count) else { return nil }
        // A partition new to the transaction waits for AddPartitionsToTxn, or at version 2 is noted (the slow path).
        if transactionalId != nil && !transaction.accepts(TopicPartition(record.topic, partition)) { return nil }
        let bytes = RecordBatchBuilder.estimatedSize(keyCount: record.key?.count, valueCount: record.value?.count,
                                                     headers: record.headers)
        guard bufferedBytes + bytes <= configuration.bufferMemory else { return nil }
        bufferedBytes += bytes
        return (partition, bytes)
    }

    /// Sends everything buffered now and waits until it is acknowledged or failed.
    public func flush() async {
        for queue in partitions.values { close(queue) }
        drain()
        while !partitions.values.allSatisfy(\.isIdle) {
            await withCheckedContinuation { idleWaiters.append($0) }
        }
    }

    /// Flushes, then closes the connections; later sends fail and the delivery reports end.
    public func close() async {
        closed = true
        await flush()
        if ownsClient { await client.close() } else { await client.closeConnections(of: lane) }
        outcomes?.finish()
        reports?.finish()
    }

    private func prepare(_ record: ProducerRecord) async throws -> (TopicPartition, Int) {
        guard !closed else { throw KafkaClientError(.closed, "the producer is closed") }
        if transactionalId != nil {
            try checkTransactionalSend()
        } else if configuration.enableIdempotence && producerId < 0 {
            try await ensureProducerId()
        }
        let partition = try await choosePartition(record)
        if transactionalId != nil {
            try await addToTransaction(TopicPartition(record.topic, partition))
            try checkTransactionalSend()
        }
        let bytes = RecordBatchBuilder.estimatedSize(keyCount: record.key?.count, valueCount: record.value?.count, headers: record.headers)
        try await reserve(bytes)
        return (TopicPartition(record.topic, partition), bytes)
    }

    // MARK: buffer.memory

    /// Waits (FIFO, at most max.block.ms) until `bytes` fit in buffer.memory.
    private func reserve(_ bytes: Int) async throws {
        if spaceWaiters.isEmpty && (bufferedBytes + bytes <= configuration.bufferMemory || bufferedBytes == 0) {
            bufferedBytes += bytes
            return
        }
        nextWaiterId += 1
        let id = nextWaiterId
        let maxBlockMs = configuration.maxBlockMs
        Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(maxBlockMs))
            await self?.expireSpaceWaiter(id)
        }
        let granted = await withCheckedContinuation { spaceWaiters.append((id, bytes, $0)) }
        guard granted else {
            throw KafkaClientError(.timeout, "buffer.memory (\(configuration.bufferMemory) bytes) stayed full for max.block.ms (\(maxBlockMs) ms)")
        }
    }

    private func expireSpaceWaiter(_ id: Int) {
        guard let index = spaceWaiters.firstIndex(where: { $0.id == id }) else { return }
        spaceWaiters.remove(at: index).continuation.resume(returning: false)
    }

    func release(_ bytes: Int) {
        bufferedBytes -= bytes
        while let first = spaceWaiters.first, bufferedBytes + first.bytes <= configuration.bufferMemory || bufferedBytes == 0 {
            spaceWaiters.removeFirst()
            bufferedBytes += first.bytes
            first.continuation.resume(returning: true)
        }
    }

    // MARK: Partitioning

    private func choosePartition(_ record: ProducerRecord) async throws -> Int32 {
        var count: Int32
        if let known = knownPartitionCount(record.topic) { count = known } else { count = try await waitForTopic(record.topic) }
        // A partition past the known count may have been added since: ask once before refusing.
        if let wanted = record.partition, wanted >= count {
            absorb(try await client.refreshMetadata(topics: [record.topic]))
            count = knownPartitionCount(record.topic) ?? count
        }
        return try partition(topic: record.topic, partition: record.partition, key: record.key, count: count)
    }

    /// The topic's partition count from the last metadata, unless unknown (or, in a broken answer, zero).
    private func knownPartitionCount(_ topic: String) -> Int32? {
        guard let count = cluster.partitionCount(of: topic), count > 0 else { return nil }
        return count
    }

    /// The record's own partition, its key's (murmur2), or the topic's sticky one (KIP-480: one
    /// partition until its batch closes).
    private func partition(topic: String, partition: Int32?, key: [UInt8]?, count: Int32) throws -> Int32 {
        if let partition {
            guard partition >= 0 && partition < count else {
                throw KafkaClientError(.broker(.unknownTopicOrPartition), "topic '\(topic)' has no partition \(partition)")
            }
            return partition
        }
        if let key { return Partitioner.partition(forKey: key, count: count) }
        if let last = lastSticky, last.topic == topic, last.partition < count { return last.partition }
        if let current = sticky[topic], current < count {
            lastSticky = (topic, current)
            return current
        }
        let chosen = Int32.random(in: 0..<count)
        sticky[topic] = chosen
        lastSticky = (topic, chosen)
        return chosen
    }

    /// Metadata for a topic new to this producer, retried on retriable topic errors up to max.block.ms.
    private func waitForTopic(_ topic: String) async throws -> Int32 {
        let deadline = ContinuousClock.now + .milliseconds(configuration.maxBlockMs)
        while true {
            let metadata = try await client.refreshMetadata(topics: [topic], allowAutoTopicCreation: configuration.allowAutoCreateTopics)
            absorb(metadata)
            if let count = knownPartitionCount(topic) { return count }
            let error = metadata.topicErrors[topic] ?? .unknownTopicOrPartition
            guard error.isRetriable, error != .unknownTopicOrPartition, ContinuousClock.now < deadline else {
                throw KafkaClientError(.broker(error), "topic '\(topic)' is not available: \(error)")
            }
            try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
        }
    }

    /// Takes the client's fresh metadata (leaders, partition counts, topic ids) as this producer's snapshot.
    func absorb(_ metadata: ClusterMetadata) {
        metadataRefreshedAt = .now
        lastTopicCount = nil
        cluster = metadata
    }

    // MARK: Batching

    private func append(_ record: ProducerRecord, to key: TopicPartition, reserved: Int, now: Int64? = nil,
                        completion: (inout RecordCompletions, Int64) -> Void) {
        append(timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers, to: key, reserved: reserved,
               now: now, completion: completion)
    }

    /// Encodes a record into its partition's open batch (closing the batch first when it would
    /// overflow batch.size, and after it once it reaches batch.size); `completion` records who hears
    /// of the outcome. Returns the batch when it is still open.
    @discardableResult
    private func append(timestamp: Int64?, key recordKey: [UInt8]?, value: [UInt8]?, headers: [(String, [UInt8]?)],
                        to key: TopicPartition, reserved: Int, now: Int64?,
                        completion: (inout RecordCompletions, Int64) -> Void) -> (queue: PartitionQueue, batch: ProducerBatch)? {
        let queue: PartitionQueue
        if let last = lastQueue, last.key.partition == key.partition, last.key.topic == key.topic {
            queue = last.queue
        } else {
            queue = partitions[key] ?? {
                let created = PartitionQueue()
                partitions[key] = created
                return created
            }()
            lastQueue = (key, queue)
        }
        if let open = queue.open, open.recordCount > 0, open.builder.sizeInBytes + reserved > configuration.batchSize {
            close(queue)
        }
        let batch = queue.open ?? {
            let created = ProducerBatch(partition: key, buffer: spareBuffers.popLast() ?? ByteBuffer(), capacity: configuration.batchSize,
                                        deliveryTimeout: .milliseconds(configuration.deliveryTimeoutMs))
            queue.open = created
            scheduleLingerSweep()
            return created
        }()
        batch.contents.append(timestamp: timestamp ?? now ?? Self.nowMs(), key: recordKey, value: value, headers: headers,
                              reserved: reserved, completion: completion)
        guard batch.contents.builder.sizeInBytes < configuration.batchSize else {
            close(queue)
            drain()
            return nil
        }
        return (queue, batch)
    }

    /// Moves the open batch to the ready queue.
    func close(_ queue: PartitionQueue) {
        guard let batch = queue.open else { return }
        queue.open = nil
        queue.ready.append(batch)
        if sticky[batch.partition.topic] == batch.partition.partition {
            sticky[batch.partition.topic] = nil
            lastSticky = nil
        }
    }

    /// One timer for all partitions: sends the batches that lingered long enough, as far as the sender
    /// can take them (the rest go when an answer frees a slot). With linger.ms=0 no timer: the call that
    /// opened the batch drains before it returns or waits.
    private func scheduleLingerSweep() {
        guard configuration.lingerMs > 0 else {
            drainPending = true
            return
        }
        guard !lingerSweepScheduled else { return }
        lingerSweepScheduled = true
        let lingerMs = configuration.lingerMs
        Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(lingerMs))
            await self?.lingerSweep()
        }
    }

    private func drainIfPending() {
        guard drainPending else { return }
        drainPending = false
        drain()
    }

    private func lingerSweep() {
        lingerSweepScheduled = false
        drain()
        let now = ContinuousClock.now
        let linger = Duration.milliseconds(configuration.lingerMs)
        if partitions.values.contains(where: { queue in queue.open.map { now - $0.createdAt < linger } ?? false }) {
            scheduleLingerSweep()
        }
    }

    /// Wakes `flush()` callers when nothing is left.
    func notifyIfIdle() {
        guard !idleWaiters.isEmpty, partitions.values.allSatisfy(\.isIdle) else { return }
        let waiting = idleWaiters
        idleWaiters = []
        for continuation in waiting { continuation.resume() }
    }

    /// Completes every record of a batch, then frees its buffer space.
    func complete(_ batch: ProducerBatch, _ result: Result<(baseOffset: Int64, logAppendTime: Int64), KafkaClientError>) {
        let topic = batch.partition.topic
        if case .success = result {
            client.meters?.count("kafka_producer_records_sent_total", ("topic", topic), by: Int(batch.recordCount))
        } else {
            client.meters?.count("kafka_producer_record_errors_total", ("topic", topic), by: Int(batch.recordCount))
        }
        let completions = batch.completions
        for (index, continuation) in completions.waiters {
            continuation.resume(with: result.map { answer in
                RecordMetadata(topic: topic, partition: batch.partition.partition, batch: answer, index: index,
                               createTime: completions.timestamps[index])
            }.mapError { $0 as Error })
        }
        if let reports, !completions.reportRuns.isEmpty {
            reports.yield(DeliveryReportBatch(topic: topic, partition: batch.partition.partition, outcome: result,
                                              runs: completions.reportRuns, timestamps: completions.timestamps))
        }
        release(batch.reservedBytes)
        if var spare = batch.encoded, configuration.compression == .none, spareBuffers.count < 4,
           spare.capacity >= configuration.batchSize + RecordBatchLayout.headerSize {
            batch.encoded = nil
            spare.clear()
            spareBuffers.append(spare)
        }
    }

    // MARK: Producer id

    /// InitProducerId once, shared by every concurrent first send.
    private func ensureProducerId() async throws {
        if producerIdTask == nil {
            producerIdTask = Task { try await self.initProducerId() }
        }
        do {
            try await producerIdTask!.value
        } catch {
            producerIdTask = nil
            throw error
        }
    }

    private func initProducerId() async throws {
        let metadata = try await client.refreshMetadata(topics: [])
        guard let broker = metadata.brokers.keys.sorted().first else {
            throw KafkaClientError(.connection, "no broker in the cluster metadata")
        }
        let response = try await client.connection(to: broker).send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1),
                                                                    timeout: .milliseconds(Int64(configuration.requestTimeoutMs)))
        guard response.errorCode == 0 else {
            let code = ErrorCode(rawValue: response.errorCode)
            throw KafkaClientError(.broker(code), "InitProducerId failed: \(code)")
        }
        producerId = response.producerId
        producerEpoch = response.producerEpoch
        for queue in partitions.values {
            queue.nextSequence = 0
            queue.ackedSequence = 0
        }
    }

    /// KIP-360: after a batch with a sequence failed for good, the idempotent producer moves to the
    /// next epoch and restarts every partition's sequence at 0, so the gap it left is no error.
    func bumpEpoch() {
        // A transactional producer's epoch is its coordinator's to bump; its failures abort the transaction.
        guard transactionalId == nil else { return }
        guard producerEpoch < Int16.max else {
            producerId = -1
            producerIdTask = Task {
                try await self.initProducerId()
                self.drain()
            }
            return
        }
        producerEpoch += 1
        for queue in partitions.values {
            queue.nextSequence = 0
            queue.ackedSequence = 0
        }
    }
}

extension KafkaProducer {
    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension KafkaProducer: Service {
    /// Runs until graceful shutdown (or cancellation), then flushes and closes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
