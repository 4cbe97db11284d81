import KafkaClient
import KafkaWire
import NIOCore

/// Fetching: starting positions (committed offset or auto.offset.reset), Fetch requests to each
/// partition's leader, and decoding of their record batches (all four codecs) into records. Fetches
/// are pipelined: once an answer arrives the next Fetch to that leader goes out (from the event loop
/// when the consumer was waiting, see `PendingFetch.send`), so it is on the wire while the answer is
/// checked and decoded and the application works through its records.
extension KafkaConsumer {
    /// Fetches the next records into `fetched`, waiting up to fetch.max.wait.ms on the broker at a
    /// time; false once the consumer is closed. Records handed out before count as consumed.
    /// Ends (false) when the calling task is cancelled, also while a Fetch waits at the log end;
    /// throws a failure it kept retrying once that has lasted default.api.timeout.ms.
    func poll() async throws -> Bool {
        foldHandedOut()
        while !closed {
            if Task.isCancelled { return false }
            if let stopError { throw stopError }
            if let lasting = failures.takeLasting(.milliseconds(configuration.defaultApiTimeoutMs)) {
                configuration.logger.error("giving up after default.api.timeout.ms", metadata: ["error": "\(lasting.message)"])
                throw lasting
            }
            guard !assignment.isEmpty || !subscription.isEmpty else {
                throw KafkaClientError.consumer("not subscribed to any topic nor assigned any partition: call subscribe(topics:) or assign(_:) first")
            }
            let fetchable = assignment.subtracting(paused)
            guard !fetchable.isEmpty else {
                do { try await Task.sleep(for: .milliseconds(50)) } catch { return false }
                continue
            }
            let records: [ConsumerRecord]
            do {
                try await initializePositions(fetchable)
                records = try await fetch(fetchable)
                failures.cleared(.fetch)
            } catch let error as KafkaClientError where error.kind.isRetriableConnectionProblem {
                // A connection cut (a broker restart, or `close()` from another task) is retried, not
                // thrown at the application: the next turn reconnects, or ends when closed. One that
                // lasts surfaces (above).
                if closed { return false }
                if failures.note(.fetch, error) {
                    configuration.logger.warning("fetching failed, retrying", metadata: ["error": "\(error.message)"])
                }
                do { try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs)) } catch { return false }
                continue
            } catch is CancellationError {
                return false
            } catch let error as KafkaClientError where error.kind == .closed && (closing || closed) {
                // `close()` from another task closed the client under this poll: the loop ends.
                return false
            }
            if !records.isEmpty {
                fetched.start(records)
                return true
            }
        }
        return false
    }

    /// Takes what the `records` iterators handed out into `consumed`.
    func foldHandedOut() {
        for (partition, next) in fetched.take() where positions[partition] != nil {
            consumed[partition] = next
        }
    }

    /// Fetched records of these partitions not handed out yet are dropped and fetched again later
    /// (from the position they had), so a pause, a loss or a seek skips nothing.
    func unfetch(_ partitions: Set<TopicPartition>) {
        for (partition, offset) in fetched.discard({ partitions.contains($0) }) where positions[partition] != nil {
            positions[partition] = offset
        }
        fetchGeneration += 1
        for partition in partitions { unfetchedAt[partition] = fetchGeneration }
    }

    private func initializePositions(_ partitions: Set<TopicPartition>) async throws {
        let missing = partitions.filter { positions[$0] == nil }
        guard !missing.isEmpty else { return }
        if missing.contains(where: { cluster.topics[$0.topic] == nil }) {
            try await refreshTopics(Array(Set(missing.map(\.topic))))
        }
        var committedOffsets: [TopicPartition: Int64] = [:]
        if configuration.groupId != nil { committedOffsets = try await committed(Array(missing)) }
        var reset: [TopicPartition] = []
        for partition in missing {
            if let offset = committedOffsets[partition] { positions[partition] = offset } else { reset.append(partition) }
        }
        try await resetPositions(reset)
    }

    /// auto.offset.reset: ListOffsets for the earliest or latest offset.
    func resetPositions(_ partitions: [TopicPartition]) async throws {
        guard !partitions.isEmpty else { return }
        guard configuration.autoOffsetReset != .none else {
            throw KafkaClientError(.broker(.offsetOutOfRange), "no committed offset for \(partitions.map(\.description).joined(separator: ", ")) and auto.offset.reset is none")
        }
        let found = try await listOffsets(partitions, at: configuration.autoOffsetReset == .earliest ? -2 : -1)
        positions.merge(found) { _, new in new }
    }

    /// The first offset of each partition (its log start).
    public func beginningOffsets(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await listOffsets(partitions, at: -2)
    }

    /// The end of each partition for this consumer's isolation level: the offset the next record
    /// will get (read_uncommitted), or the last stable offset (read_committed).
    public func endOffsets(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await listOffsets(partitions, at: -1)
    }

    /// ListOffsets: -2 asks for the earliest offset, -1 for the latest.
    private func listOffsets(_ partitions: [TopicPartition], at timestamp: Int64) async throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let connection = try await client.anyConnection()
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        let response = try await connection.send(ListOffsetsRequest(replicaId: -1, isolationLevel: configuration.isolationLevel.rawValue,
                                                                    topics: byTopic.map { topic, entries in
            .init(name: topic, partitions: entries.map { .init(partitionIndex: $0.partition, timestamp: timestamp) })
        }), timeout: requestTimeout)
        var result: [TopicPartition: Int64] = [:]
        for topic in response.topics {
            for partition in topic.partitions {
                guard partition.errorCode == 0 else {
                    throw KafkaClientError(.broker(ErrorCode(rawValue: partition.errorCode)), "ListOffsets for \(topic.name)-\(partition.partitionIndex) failed: \(ErrorCode(rawValue: partition.errorCode))")
                }
                result[TopicPartition(topic.name, partition.partitionIndex)] = partition.offset
            }
        }
        return result
    }

    /// The partitions of a topic, from fresh metadata.
    public func partitions(of topic: String) async throws -> [TopicPartition] {
        try await refreshTopics([topic])
        guard let count = cluster.partitionCount(of: topic) else {
            throw KafkaClientError(.broker(.unknownTopicOrPartition), "topic '\(topic)' is not known to the cluster")
        }
        return (0..<count).map { TopicPartition(topic, $0) }
    }

    /// Answers of the Fetch to each leader of these partitions (sent now unless one is already out);
    /// positions move past what they return, and the next Fetch to that leader goes out at once,
    /// before this answer's records are checked and decoded, so the broker sends while we decode.
    private func fetch(_ partitions: Set<TopicPartition>) async throws -> [ConsumerRecord] {
        var byLeader: [Int32: [TopicPartition]] = [:]
        for partition in partitions where positions[partition] != nil {
            let leader = cluster.leader(of: partition) ?? -1
            if leader < 0 {
                try await refreshTopics([partition.topic])
                continue
            }
            byLeader[leader, default: []].append(partition)
        }
        let startGeneration = fetchGeneration
        var records: [ConsumerRecord] = []
        // Each partition whose position this call moved: from where, to where.
        var moved: [TopicPartition: (from: Int64, to: Int64)] = [:]
        /// Puts partitions this call moved back where it found them, unless a seek or a rebalance set
        /// them meanwhile.
        func putBack(_ partitions: some Sequence<TopicPartition>) {
            for partition in partitions {
                if let span = moved[partition], positions[partition] == span.to { positions[partition] = span.from }
            }
        }
        do {
            for (leader, partitions) in byLeader {
                guard let pending = try await pendingFetch(to: leader, partitions) else { continue }
                pendingFetches[leader] = nil
                let response: FetchResponse
                do {
                    response = try await pending.response.value
                } catch let error as KafkaClientError {
                    guard case .connection = error.kind else { throw error }
                    try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
                    continue
                }
                let (current, recordSets) = try await absorb(response, of: pending, fetchable: Set(partitions), moved: &moved)
                // Ahead of the application and of decoding: the next Fetch for what this one served,
                // already on the wire if the event loop sent it (when it asks for what we would).
                if current {
                    if let ahead = pending.followUp.take(), ahead.generation == fetchGeneration, ahead.requested == fetchPositions(partitions) {
                        pendingFetches[leader] = ahead
                        fetchesSentFromTheLoop += 1
                    } else {
                        _ = try? await pendingFetch(to: leader, partitions)
                    }
                }
                for set in recordSets {
                    let before = records.count
                    do {
                        try decode(set, into: &records)
                        client.meters?.count("kafka_consumer_records_received_total", ("topic", set.partition.topic), by: records.count - before)
                    } catch let corrupt {
                        // As Kafka's consumer does: the partition's records before the bad batch are
                        // handed out and it stays at the bad batch (the application may seek past it).
                        // The Fetch sent ahead asked for what follows, so it is stale.
                        fetchGeneration += 1
                        guard positions[set.partition] == set.next else { continue }  // a seek or rebalance meanwhile
                        positions[set.partition] = corrupt.offset
                        // The bad batch comes first: this poll fails (below, nothing of it is lost) and
                        // the partition stays at the bad batch; else its records before it go out.
                        let comesFirst = records.count == before
                        moved[set.partition] = (comesFirst ? corrupt.offset : set.from, corrupt.offset)
                        if comesFirst { throw corrupt.error }
                    }
                }
            }
        } catch {
            // Nothing of this call reaches the application: each partition it moved goes back to where
            // it was (unless a seek or a rebalance set it meanwhile), and the Fetches sent ahead are stale.
            putBack(moved.keys)
            fetchGeneration += 1
            throw error
        }
        // A seek, pause or rebalance while this call waited: those partitions' records are not handed
        // out, and a partition nobody repositioned (a pause) goes back to where this call found it.
        let touched = Set(moved.keys.filter { (unfetchedAt[$0] ?? .min) > startGeneration })
        if !touched.isEmpty {
            records.removeAll { touched.contains($0.topicPartition) }
            putBack(touched)
        }
        return records
    }

    /// The Fetch out to `leader`, or a new one from the current positions.
    private func pendingFetch(to leader: Int32, _ partitions: [TopicPartition]) async throws -> PendingFetch? {
        if let pending = pendingFetches[leader] { return pending }
        let requested = fetchPositions(partitions)
        guard !requested.isEmpty else { return nil }
        // Read with the positions: a seek while the connection is made leaves this Fetch stale.
        let generation = fetchGeneration, epoch = fetchEpoch.current
        let request = FetchRequest(
            replicaId: -1, maxWaitMs: Int32(configuration.fetchMaxWaitMs), minBytes: Int32(configuration.fetchMinBytes),
            maxBytes: Int32(configuration.fetchMaxBytes), isolationLevel: configuration.isolationLevel.rawValue, sessionId: 0, sessionEpoch: -1,
            topics: Dictionary(grouping: requested.keys, by: \.topic).map { topic, entries in
                .init(topic: topic, topicId: cluster.topicId(of: topic), partitions: entries.map {
                    .init(partition: $0.partition, currentLeaderEpoch: -1, fetchOffset: requested[$0]!, lastFetchedEpoch: -1,
                          logStartOffset: -1, partitionMaxBytes: Int32(configuration.maxPartitionFetchBytes))
                })
            })
        let pending: PendingFetch
        do {
            let connection = try await leaderConnection(leader)
            pending = try PendingFetch.send(request, requested: requested, generation: generation, epoch: fetchEpoch, sentAt: epoch,
                                            on: connection,
                                            timeout: requestTimeout + .milliseconds(Int64(configuration.fetchMaxWaitMs)))
        } catch let error as KafkaClientError {
            guard case .connection = error.kind else { throw error }
            try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
            return nil
        }
        pendingFetches[leader] = pending
        return pending
    }

    /// Where a Fetch of these partitions starts: their positions.
    private func fetchPositions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        Dictionary(uniqueKeysWithValues: partitions.compactMap { partition in positions[partition].map { (partition, $0) } })
    }

    /// The open connection to `leader`: the one used last, else one from the client.
    private func leaderConnection(_ leader: Int32) async throws -> BrokerConnection {
        if let connection = leaderConnections[leader], connection.isActive { return connection }
        let connection = try await client.connection(to: leader, for: .fetch(lane))
        leaderConnections[leader] = connection
        return connection
    }

    /// The record sets of the answer to `pending`, each partition's position moved past its complete
    /// batches (read from their headers; the records are checked and decoded after the next Fetch is
    /// out). Partitions whose position moved since it was sent, or that are no longer fetchable, are
    /// skipped (they are fetched again from where they are). `current`: whether anything was.
    private func absorb(_ response: FetchResponse, of pending: PendingFetch, fetchable: Set<TopicPartition>,
                        moved: inout [TopicPartition: (from: Int64, to: Int64)]) async throws -> (current: Bool, recordSets: [FetchedRecordSet]) {
        guard response.errorCode == 0 else {
            throw KafkaClientError(.broker(ErrorCode(rawValue: response.errorCode)), "Fetch failed: \(ErrorCode(rawValue: response.errorCode))")
        }
        // A rebalance or seek while the fetch was out makes its answer stale.
        guard pending.generation == fetchGeneration else { return (false, []) }
        var current = false
        var recordSets: [FetchedRecordSet] = []
        for topic in response.responses {
            let name = cluster.topicName(topic.topic, id: topic.topicId)
            for data in topic.partitions {
                let partition = TopicPartition(name, data.partitionIndex)
                guard let fetchedFrom = pending.requested[partition], positions[partition] == fetchedFrom,
                      fetchable.contains(partition) else { continue }
                current = true
                switch ErrorCode(rawValue: data.errorCode) {
                case .noError:
                    if let bytes = data.records {
                        var set = FetchedRecordSet(partition: partition, from: fetchedFrom, bytes: bytes)
                        if configuration.isolationLevel == .readCommitted {
                            set.aborted = (data.abortedTransactions ?? []).sorted { $0.firstOffset < $1.firstOffset }
                        }
                        positions[partition] = set.next
                        moved[partition] = (set.from, set.next)
                        recordSets.append(set)
                    }
                case .offsetOutOfRange:
                    positions[partition] = nil
                    try await resetPositions([partition])
                case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .unknownTopicId, .fencedLeaderEpoch:
                    try await refreshTopics([name])
                case let code:
                    throw KafkaClientError(.broker(code), "fetching \(partition) failed: \(code)")
                }
            }
        }
        return (current, recordSets)
    }

    /// Decodes complete batches (a trailing partial one is fetched again next time), skipping
    /// control batches, records before the fetch offset and, read_committed, the batches of aborted
    /// transactions (Kafka's rule: from an aborted transaction's first offset, the producer's
    /// transactional batches are dropped until its ABORT marker). A batch that fails its CRC or does
    /// not parse ends the set with `CorruptBatch`, the records before it kept in `records`.
    /// Keys and values are slices of the fetched (or decompressed) bytes: nothing is copied.
    private func decode(_ set: FetchedRecordSet, into records: inout [ConsumerRecord]) throws(CorruptBatch) {
        let partition = set.partition, offset = set.from
        var next = offset
        var batches = RecordBatchIterator(set.bytes)
        var pendingAborts = set.aborted[...]
        var abortedProducers: Set<Int64> = []
        while let batch = batches.next() {
            guard batch.computeCRC() == batch.crc else {
                throw CorruptBatch(offset: next, KafkaClientError(.protocolViolation, "the record batch of \(partition) at offset \(batch.baseOffset) fails its CRC"))
            }
            while let first = pendingAborts.first, first.firstOffset <= batch.lastOffset {
                abortedProducers.insert(first.producerId)
                pendingAborts.removeFirst()
            }
            if batch.attributes.isControl {
                // An ABORT marker ends the producer's aborted transaction.
                if abortedProducers.contains(batch.producerId), EndTransactionMarker(controlBatch: batch)?.kind == .abort {
                    abortedProducers.remove(batch.producerId)
                }
            }
            if batch.attributes.isControl || batch.lastOffset < offset
                || (batch.attributes.isTransactional && abortedProducers.contains(batch.producerId)) {
                next = max(next, batch.lastOffset + 1)
                continue
            }
            let logAppendTime = batch.attributes.timestampType == .logAppendTime
            records.reserveCapacity(records.count + Int(batch.recordCount))
            let maxTimestamp = batch.maxTimestamp
            let count = records.count
            do {
                try batch.forEachRecordFields { recordOffset, timestamp, key, value, headers, _ in
                    guard recordOffset >= offset else { return }
                    records.append(ConsumerRecord(topic: partition.topic, partition: partition.partition, offset: recordOffset,
                                                  timestamp: logAppendTime ? maxTimestamp : timestamp, key: key, value: value, headers: headers))
                }
            } catch {
                records.removeSubrange(count...)  // a batch is handed out whole or not at all
                throw CorruptBatch(offset: next, KafkaClientError(.protocolViolation, "the record batch of \(partition) at offset \(batch.baseOffset) does not decode: \(error)"))
            }
            next = max(next, batch.lastOffset + 1)
        }
        if let error = batches.error {
            throw CorruptBatch(offset: next, KafkaClientError(.protocolViolation, "a record batch of \(partition) after offset \(next) is malformed: \(error)"))
        }
    }
}

/// A batch of a fetched partition that fails its CRC or does not parse; `offset` is where the
/// partition stays (the first offset not handed out).
struct CorruptBatch: Error {
    let offset: Int64
    let error: KafkaClientError

    init(offset: Int64, _ error: KafkaClientError) {
        self.offset = offset
        self.error = error
    }
}

/// One partition's records of a Fetch answer, from the offset it was fetched at.
struct FetchedRecordSet {
    let partition: TopicPartition
    let from: Int64
    let bytes: ByteBuffer
    /// The offset after the last complete batch (at least `from`): where the next Fetch starts.
    let next: Int64
    /// read_committed: the aborted transactions the broker listed, by first offset.
    var aborted: [FetchResponse.AbortedTransaction] = []

    /// Only batch headers are read here; a malformed batch ends the walk (`decode` reports it).
    init(partition: TopicPartition, from: Int64, bytes: ByteBuffer) {
        self.partition = partition
        self.from = from
        self.bytes = bytes
        next = Self.offset(after: bytes, from: from)
    }

    /// The offset after the last complete batch of `bytes` (at least `from`).
    static func offset(after bytes: ByteBuffer, from: Int64) -> Int64 {
        var next = from
        var batches = RecordBatchIterator(bytes)
        while let batch = batches.next() { next = max(next, batch.lastOffset + 1) }
        return next
    }
}

/// `for try await batch in consumer.batches`: what each poll fetched, handed out at once (as Java's
/// `poll()` returns them; the records are counted as consumed when their batch is handed out). The
/// records of a batch share the fetched bytes' storage: nothing is copied per record. Goes on where
/// `records` stopped, and the other way round.
public struct ConsumerRecordBatches: AsyncSequence, Sendable {
    public typealias Element = ArraySlice<ConsumerRecord>
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer

        public mutating func next() async throws -> ArraySlice<ConsumerRecord>? {
            while true {
                // A cancelled task's loop ends here, not after the records already fetched.
                if Task.isCancelled { return nil }
                if let batch = consumer.fetched.nextBatch() { return batch }
                guard try await consumer.poll() else { return nil }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}

/// `for try await record in consumer.records`: fetches ahead, hands records out one by one. A
/// record counts as consumed (for commits) once an iterator has returned it; a new iterator goes
/// on where the last one stopped.
public struct ConsumerRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer

        public mutating func next() async throws -> ConsumerRecord? {
            while true {
                // A cancelled task's loop ends here, not after the records already fetched.
                if Task.isCancelled { return nil }
                if let record = consumer.fetched.next() { return record }
                guard try await consumer.poll() else { return nil }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}
