import KafkaClient
import KafkaWire
import NIOCore

/// The sender: ready batches grouped by leader into ProduceRequests, answers turned into
/// completions, retries and the idempotent producer's sequence bookkeeping.
extension KafkaProducer {
    /// Sends what may go now: per leader, while it has fewer than max.in.flight requests, one
    /// request holding the oldest ready batch of each of its partitions (up to max.request.size).
    func drain() {
        let now = ContinuousClock.now
        if now - metadataRefreshedAt > .milliseconds(configuration.metadataMaxAgeMs) {
            metadataRefreshedAt = now
            scheduleMetadataRefresh(after: 0)
        }
        let idempotent = configuration.enableIdempotence
        if idempotent && producerId < 0 { return notifyIfIdle() }
        let maxInFlight = configuration.maxInFlightRequestsPerConnection
        var byLeader: [Int32: [PartitionQueue]] = [:]
        var nextWake: ContinuousClock.Instant?
        var needsMetadata = false
        for (key, queue) in partitions {
            guard let next = nextBatch(of: queue, now: now) else { continue }
            // Past delivery.timeout.ms: closed, so it fails below like a ready batch.
            if next === queue.open && next.deadline <= now { close(queue) }
            expireUnsent(queue, now: now)
            guard nextBatch(of: queue, now: now) != nil else { continue }
            if let after = queue.retryAfter, after > now {
                nextWake = min(nextWake ?? after, after)
                continue
            }
            guard let leader = cluster.leader(of: key) else {
                needsMetadata = true
                continue
            }
            byLeader[leader, default: []].append(queue)
        }
        for (leader, queues) in byLeader {
            guard let connection = connections[leader], connection.isActive else {
                connect(to: leader)
                continue
            }
            while inFlightRequests[leader, default: 0] < maxInFlight {
                var batches: [ProducerBatch] = []
                var size = 0
                for queue in queues {
                    guard queue.inFlight < (queue.recovering ? 1 : maxInFlight), let batch = nextBatch(of: queue, now: now) else { continue }
                    let batchSize = batch.encoded?.readableBytes ?? batch.builder.sizeInBytes
                    guard batches.isEmpty || size + batchSize <= configuration.maxRequestSize else { continue }
                    if queue.ready.isEmpty { close(queue) }
                    queue.ready.removeFirst()
                    do {
                        try seal(batch, in: queue)
                    } catch {
                        fail(batch, KafkaClientError(.protocolViolation, "encoding a batch for \(batch.partition.topic)-\(batch.partition.partition) failed: \(error)"))
                        continue
                    }
                    queue.inFlight += 1
                    batch.attempts += 1
                    batches.append(batch)
                    size += batchSize
                }
                if batches.isEmpty { break }
                inFlightRequests[leader, default: 0] += 1
                write(batches, to: leader, on: connection)
            }
        }
        if needsMetadata { scheduleMetadataRefresh() }
        if let nextWake { scheduleWake(at: nextWake) }
        notifyIfIdle()
    }

    /// The batch a partition sends next: its oldest closed batch, else its open batch once linger.ms has
    /// passed. As in Kafka's accumulator, an open batch is closed only when it is taken, so while the
    /// sender cannot take it (max.in.flight reached) the records that follow still join it.
    private func nextBatch(of queue: PartitionQueue, now: ContinuousClock.Instant) -> ProducerBatch? {
        if let first = queue.ready.first { return first }
        guard let open = queue.open, now - open.createdAt >= .milliseconds(configuration.lingerMs) else { return nil }
        return open
    }

    /// Gives a batch its bytes and, with idempotence, its epoch and sequence (kept on a retry in the
    /// same epoch; a batch of an older epoch gets the next sequence of the current one).
    private func seal(_ batch: ProducerBatch, in queue: PartitionQueue) throws {
        let stamp = configuration.enableIdempotence && (!batch.isStamped || batch.producerEpoch != producerEpoch)
        if stamp {
            batch.producerEpoch = producerEpoch
            batch.baseSequence = queue.nextSequence
            queue.nextSequence = queue.nextSequence.sequenceAdvanced(by: batch.recordCount)
        }
        if batch.encoded == nil {
            // Built with its producer fields: the CRC is computed once.
            batch.encoded = try batch.contents.builder.build(
                compression: configuration.compression, producerId: batch.isStamped ? producerId : -1,
                producerEpoch: batch.isStamped ? batch.producerEpoch : -1, baseSequence: batch.baseSequence,
                isTransactional: transactionalId != nil)
        } else if stamp {
            RecordBatchBuilder.restamp(&batch.encoded!, producerId: producerId, producerEpoch: producerEpoch, baseSequence: batch.baseSequence)
        }
    }

    /// Fails the waiting batches whose delivery.timeout.ms passed before they could go out.
    private func expireUnsent(_ queue: PartitionQueue, now: ContinuousClock.Instant) {
        while let batch = queue.ready.first, batch.deadline <= now {
            queue.ready.removeFirst()
            if batch.isStamped && batch.producerEpoch == producerEpoch { bumpEpoch() }
            let cause = batch.lastError.map { ": \($0.message)" } ?? " (no leader for the partition)"
            fail(batch, KafkaClientError(.timeout, "delivery.timeout.ms (\(configuration.deliveryTimeoutMs) ms) passed for \(batch.partition.topic)-\(batch.partition.partition)\(cause)"))
        }
        queue.endRecoveryIfDone()
    }

    /// Writes one ProduceRequest now (so sequences reach the broker in order); its answer comes back
    /// through the ordered outcome stream.
    private func write(_ batches: [ProducerBatch], to leader: Int32, on connection: BrokerConnection) {
        nextRequestId += 1
        let id = nextRequestId
        pendingRequests[id] = (leader, batches)
        var topics: [String: [ProduceRequest.PartitionProduceData]] = [:]
        for batch in batches {
            topics[batch.partition.topic, default: []].append(.init(index: batch.partition.partition, records: batch.encoded))
        }
        let request = ProduceRequest(transactionalId: configuration.transactionalId, acks: configuration.acks, timeoutMs: Int32(configuration.requestTimeoutMs), topicData: topics.map {
            .init(name: $0.key, topicId: cluster.topicId(of: $0.key), partitionData: $0.value)
        })
        let outcomes = outcomeStream()
        do {
            if configuration.acks == 0 {
                try connection.writeWithoutResponse(request) { result in
                    outcomes.yield((id, result.map { nil }))
                }
            } else {
                try connection.write(request, version: try produceVersion(on: connection),
                                     timeout: .milliseconds(Int64(configuration.requestTimeoutMs) + 1000)) { result in
                    outcomes.yield((id, result.map { $0 }))
                }
            }
        } catch {
            outcomes.yield((id, .failure(error as? KafkaClientError ?? KafkaClientError(.connection, "\(error)"))))
        }
    }

    /// The Produce version for this producer: v12+ adds partitions to a transaction by itself
    /// (KIP-890 part 2), so a transactional producer speaking version 1 stays at v11, as Java's does.
    private func produceVersion(on connection: BrokerConnection) throws -> Int16 {
        let negotiated = try connection.negotiatedVersion(of: ProduceRequest.self)
        return transactionalId != nil && !transaction.usesVersion2 ? min(negotiated, 11) : negotiated
    }

    /// Answers arrive on the connection's event loop in request order; one task hands them to the
    /// actor in that same order (a task per answer would not keep it).
    private func outcomeStream() -> AsyncStream<ProduceOutcome>.Continuation {
        if let outcomes { return outcomes }
        let (stream, continuation) = AsyncStream.makeStream(of: ProduceOutcome.self)
        outcomes = continuation
        Task { [weak self] in
            for await (id, result) in stream {
                guard let self else { return }
                await self.handle(id, result)
            }
        }
        return continuation
    }

    private func handle(_ id: Int, _ result: Result<ProduceResponse?, KafkaClientError>) {
        guard let (leader, batches) = pendingRequests.removeValue(forKey: id) else { return }
        inFlightRequests[leader, default: 1] -= 1
        var answers: [TopicPartition: ProduceResponse.PartitionProduceResponse] = [:]
        var failure: KafkaClientError?
        switch result {
        case .success(let response?):
            for topic in response.responses {
                // Produce v13 names topics by id.
                let name = cluster.topicName(topic.name, id: topic.topicId)
                for partition in topic.partitionResponses {
                    answers[TopicPartition(name, partition.index)] = partition
                }
            }
        case .success(nil):
            break
        case .failure(let error):
            failure = error
        }
        for batch in batches {
            guard let queue = partitions[batch.partition] else { continue }
            queue.inFlight -= 1
            if let failure {
                handleError(batch, in: queue, failure)
            } else if configuration.acks == 0 {
                complete(batch, .success((-1, -1)))
            } else if let answer = answers[batch.partition] {
                handle(batch, in: queue, answer)
            } else {
                handleError(batch, in: queue, KafkaClientError(.protocolViolation, "the produce response lacks \(batch.partition.topic)-\(batch.partition.partition)"))
            }
        }
        drain()
    }

    /// Opens the connection to a leader (one attempt at a time), then drains; a failure holds the
    /// leader's batches back for a backoff and is what they report if they time out.
    private func connect(to leader: Int32) {
        guard !connecting.contains(leader) else { return }
        connecting.insert(leader)
        Task {
            do {
                connections[leader] = try await client.connection(to: leader)
            } catch {
                let failure = error as? KafkaClientError ?? KafkaClientError(.connection, "\(error)")
                configuration.logger.warning("cannot reach the leader, retrying after retry.backoff.ms",
                                             metadata: ["broker": "\(leader)", "error": "\(failure.message)"])
                let retryAfter = ContinuousClock.now + .milliseconds(configuration.retryBackoffMs)
                for (key, queue) in partitions where cluster.leader(of: key) == leader && (queue.open != nil || !queue.ready.isEmpty) {
                    (queue.ready.first ?? queue.open)?.lastError = failure
                    queue.retryAfter = retryAfter
                }
                scheduleMetadataRefresh()
            }
            connecting.remove(leader)
            drain()
        }
    }

    private func handle(_ batch: ProducerBatch, in queue: PartitionQueue,
                        _ answer: ProduceResponse.PartitionProduceResponse) {
        let code = ErrorCode(rawValue: answer.errorCode)
        // A duplicate is a retry of a batch the broker already has: delivered.
        guard code == .noError || code == .duplicateSequenceNumber else {
            let detail = answer.errorMessage.map { ": \($0)" } ?? ""
            return handleError(batch, in: queue, KafkaClientError(.broker(code), "produce to \(batch.partition.topic)-\(batch.partition.partition) failed: \(code)\(detail)"))
        }
        if batch.isStamped && batch.producerEpoch == producerEpoch {
            queue.ackedSequence = batch.baseSequence.sequenceAdvanced(by: batch.recordCount)
        }
        queue.endRecoveryIfDone()
        complete(batch, .success((answer.baseOffset, answer.logAppendTimeMs)))
    }

    private func handleError(_ batch: ProducerBatch, in queue: PartitionQueue, _ error: KafkaClientError) {
        let now = ContinuousClock.now
        let decision = BatchFailurePolicy.decide(
            error,
            batch: .init(isStamped: batch.isStamped, producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence,
                         attempts: batch.attempts, pastDeliveryTimeout: now >= batch.deadline),
            producer: .init(idempotent: configuration.enableIdempotence, transactional: transactionalId != nil,
                            currentEpoch: producerEpoch, ackedSequence: queue.ackedSequence, retries: configuration.retries))
        if decision.refreshesMetadata { scheduleMetadataRefresh() }
        if decision.bumpsEpoch { bumpEpoch() }
        batch.lastError = error
        switch decision.outcome {
        case .retry:
            configuration.logger.debug("retrying a batch", metadata: [
                "partition": "\(batch.partition)", "attempt": "\(batch.attempts)", "error": "\(error.message)"])
            client.meters?.count("kafka_producer_retries_total", ("topic", batch.partition.topic))
            queue.requeue(batch)
            queue.retryAfter = now + .milliseconds(configuration.retryBackoffMs)
        case .fail(let timedOut):
            let final = timedOut
                ? KafkaClientError(.timeout, "delivery.timeout.ms (\(configuration.deliveryTimeoutMs) ms) passed: \(error.message)")
                : error
            configuration.logger.error("a batch failed for good", metadata: [
                "partition": "\(batch.partition)", "records": "\(batch.recordCount)", "error": "\(final.message)"])
            fail(batch, final)
            queue.endRecoveryIfDone()
        }
    }

    func fail(_ batch: ProducerBatch, _ error: KafkaClientError) {
        // In a transaction a lost record means the transaction cannot commit.
        if transactionalId != nil {
            fail(transaction: transactionError(for: error), sequenced: batch.isStamped)
        }
        complete(batch, .failure(error))
    }

    // MARK: Timers

    /// One metadata refresh at a time, for the topics with waiting batches; then drain again.
    func scheduleMetadataRefresh(after backoff: Int? = nil) {
        guard !metadataRefreshScheduled else { return }
        metadataRefreshScheduled = true
        let topics = Array(Set(partitions.keys.map(\.topic)))
        let backoff = backoff ?? configuration.retryBackoffMs
        Task {
            try? await Task.sleep(for: .milliseconds(backoff))
            if let metadata = try? await client.refreshMetadata(topics: topics) { absorb(metadata) }
            metadataRefreshScheduled = false
            drain()
        }
    }

    /// Drains again at `instant` (the end of a retry backoff).
    func scheduleWake(at instant: ContinuousClock.Instant) {
        if let scheduled = wakeScheduled, scheduled <= instant { return }
        wakeScheduled = instant
        Task {
            try? await Task.sleep(until: instant)
            if wakeScheduled == instant { wakeScheduled = nil }
            drain()
        }
    }
}

typealias ProduceOutcome = (id: Int, result: Result<ProduceResponse?, KafkaClientError>)
