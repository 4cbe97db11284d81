import KafkaClient
import KafkaWire
import NIOCore

/// Fetching: starting positions (committed offset or auto.offset.reset), Fetch requests to each
/// partition's leader, and decoding of their record batches (all four codecs) into records.
extension KafkaConsumer {
    /// The next records, waiting up to fetch.max.wait.ms on the broker; empty when nothing came.
    /// Everything returned by earlier polls counts as consumed (what `commit()` writes).
    func poll() async throws -> [ConsumerRecord] {
        while !closed {
            if let stopError { throw stopError }
            let fetchable = assignment.subtracting(paused)
            guard !fetchable.isEmpty else {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            try await initializePositions(fetchable)
            let records = try await fetch(fetchable)
            if !records.isEmpty { return records }
        }
        return []
    }

    /// Records handed to the user: their positions are what a commit writes.
    func markConsumed(_ partition: TopicPartition, next offset: Int64) {
        guard assignment.contains(partition) else { return }
        consumed[partition] = offset
    }

    private func initializePositions(_ partitions: Set<TopicPartition>) async throws {
        let missing = partitions.filter { positions[$0] == nil }
        guard !missing.isEmpty else { return }
        if topicIds.isEmpty || missing.contains(where: { topicIds[$0.topic] == nil }) {
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
        let timestamp: Int64 = configuration.autoOffsetReset == .earliest ? -2 : -1
        let connection = try await client.anyConnection()
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        let response = try await connection.send(ListOffsetsRequest(replicaId: -1, topics: byTopic.map { topic, entries in
            .init(name: topic, partitions: entries.map { .init(partitionIndex: $0.partition, timestamp: timestamp) })
        }), timeout: requestTimeout)
        for topic in response.topics {
            for partition in topic.partitions {
                guard partition.errorCode == 0 else {
                    throw KafkaClientError(.broker(ErrorCode(rawValue: partition.errorCode)), "ListOffsets for \(topic.name)-\(partition.partitionIndex) failed: \(ErrorCode(rawValue: partition.errorCode))")
                }
                positions[TopicPartition(topic.name, partition.partitionIndex)] = partition.offset
            }
        }
    }

    /// One Fetch per leader for the partitions with positions; positions move past what it returns.
    private func fetch(_ partitions: Set<TopicPartition>) async throws -> [ConsumerRecord] {
        let metadata = await client.metadata
        var byLeader: [Int32: [TopicPartition]] = [:]
        for partition in partitions where positions[partition] != nil {
            let leader = metadata?.topics[partition.topic]?.partitions.first { $0.partition == partition.partition }?.leader ?? -1
            if leader < 0 {
                try await refreshTopics([partition.topic])
                continue
            }
            byLeader[leader, default: []].append(partition)
        }
        var records: [ConsumerRecord] = []
        for (leader, partitions) in byLeader {
            records += try await fetch(partitions, from: leader)
        }
        return records
    }

    private func fetch(_ partitions: [TopicPartition], from leader: Int32) async throws -> [ConsumerRecord] {
        let requested = Dictionary(uniqueKeysWithValues: partitions.map { ($0, positions[$0]!) })
        let generation = fetchGeneration
        let request = FetchRequest(
            replicaId: -1, maxWaitMs: Int32(configuration.fetchMaxWaitMs), minBytes: Int32(configuration.fetchMinBytes),
            maxBytes: Int32(configuration.fetchMaxBytes), isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
            topics: Dictionary(grouping: partitions, by: \.topic).map { topic, entries in
                .init(topic: topic, topicId: topicIds[topic] ?? .zero, partitions: entries.map {
                    .init(partition: $0.partition, currentLeaderEpoch: -1, fetchOffset: requested[$0]!, lastFetchedEpoch: -1,
                          logStartOffset: -1, partitionMaxBytes: Int32(configuration.maxPartitionFetchBytes))
                })
            })
        let connection: BrokerConnection
        let response: FetchResponse
        do {
            connection = try await client.connection(to: leader)
            response = try await connection.send(request, timeout: requestTimeout + .milliseconds(Int64(configuration.fetchMaxWaitMs)))
        } catch let error as KafkaClientError {
            if case .connection = error.kind {
                try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
                return []
            }
            throw error
        }
        guard response.errorCode == 0 else {
            throw KafkaClientError(.broker(ErrorCode(rawValue: response.errorCode)), "Fetch failed: \(ErrorCode(rawValue: response.errorCode))")
        }
        // A rebalance or seek while the fetch was out makes its answer stale.
        guard generation == fetchGeneration else { return [] }
        let names = Dictionary(topicIds.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        var records: [ConsumerRecord] = []
        for topic in response.responses {
            let name = topic.topic.isEmpty ? names[topic.topicId] ?? "" : topic.topic
            for data in topic.partitions {
                let partition = TopicPartition(name, data.partitionIndex)
                guard let fetchedFrom = requested[partition], positions[partition] == fetchedFrom else { continue }
                switch ErrorCode(rawValue: data.errorCode) {
                case .noError:
                    if let bytes = data.records {
                        let next = try decode(bytes, partition: partition, from: fetchedFrom, into: &records)
                        positions[partition] = next
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
        return records
    }

    /// Decodes complete batches (a trailing partial one is fetched again next time), skipping
    /// control batches and records before the fetch offset. Returns the next offset to fetch.
    private func decode(_ bytes: ByteBuffer, partition: TopicPartition, from offset: Int64, into records: inout [ConsumerRecord]) throws -> Int64 {
        var next = offset
        var batches = RecordBatchIterator(bytes)
        while let batch = batches.next() {
            guard batch.computeCRC() == batch.crc else {
                throw KafkaClientError(.protocolViolation, "a record batch of \(partition) at offset \(batch.baseOffset) fails its CRC")
            }
            defer { next = max(next, batch.lastOffset + 1) }
            if batch.attributes.isControl || batch.lastOffset < offset { continue }
            for record in try batch.records() where record.offset >= offset {
                records.append(ConsumerRecord(
                    topic: partition.topic, partition: partition.partition, offset: record.offset,
                    timestamp: batch.attributes.timestampType == .logAppendTime ? batch.maxTimestamp : record.timestamp,
                    key: record.key.map { Array($0.readableBytesView) }, value: record.value.map { Array($0.readableBytesView) },
                    headers: record.headers.map { ($0.key, $0.value.map { Array($0.readableBytesView) }) }))
            }
        }
        if let error = batches.error { throw KafkaClientError(.protocolViolation, "a record batch of \(partition) is malformed: \(error)") }
        return next
    }
}

/// `for try await record in consumer.records`: fetches ahead, hands records out one by one. Asking
/// for the next fetch marks everything returned before as consumed.
public struct ConsumerRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer
        var buffer: [ConsumerRecord] = []
        var index = 0

        public mutating func next() async throws -> ConsumerRecord? {
            if index == buffer.count {
                buffer = try await consumer.poll()
                index = 0
                if buffer.isEmpty { return nil }
            }
            let record = buffer[index]
            index += 1
            await consumer.markConsumed(record.topicPartition, next: record.offset + 1)
            return record
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}
