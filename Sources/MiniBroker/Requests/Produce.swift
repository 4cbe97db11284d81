import KafkaLog
import KafkaWire
import NIOCore

// Produce: each partition's batch goes to its log, validated and stamped there.

extension RequestDispatcher {
    /// Appends every partition's batch; partitions whose flush.messages or flush.ms fell due are
    /// fsynced off the event loop before the answer goes out (Kafka flushes in the append path too).
    func produce(_ request: ProduceRequest, version: Int16, eventLoop: EventLoop, context: RequestContext = RequestContext()) -> EventLoopFuture<BrokerResponse> {
        // Transaction version 2: Produce v12+ adds its partitions to the open transaction itself.
        if let (id, producerId, epoch, partitions) = implicitAdditions(request, version: version, context: context) {
            return addImplicitly(id, producerId, epoch, partitions, version: version, on: eventLoop).flatMap { [self] failed in
                // A refused addition answers for its partitions, in the words a producer acts on.
                let refused = failed.map { code in Dictionary(uniqueKeysWithValues: partitions.map { ($0, Self.produceError(forAddition: code)) }) }
                return appendAndAnswer(request, version: version, eventLoop: eventLoop, context: context, refused: refused ?? [:])
            }
        }
        return appendAndAnswer(request, version: version, eventLoop: eventLoop, context: context)
    }

    /// The partitions of a transaction version 2 Produce whose transactional batches go to a
    /// partition its open transaction does not have yet; nil when there are none (or the request is
    /// not one: below v12, transaction.version below 2, not transactional, not allowed).
    private func implicitAdditions(_ request: ProduceRequest, version: Int16, context: RequestContext)
        -> (String, Int64, Int16, [TopicPartition])? {
        guard version >= 12, let id = request.transactionalId, broker.features.transactionsV2Enabled,
              permits(context, .write, .transactionalId, id) else { return nil }
        var producer: (id: Int64, epoch: Int16)?
        var missing: [TopicPartition] = []
        for topicData in request.topicData {
            let topic = version >= 13 ? broker.topics.topic(id: topicData.topicId) : broker.topics.topic(topicData.name)
            guard let topic, !TopicRegistry.isInternal(topic.name), permits(context, .write, .topic, topic.name) else { continue }
            for data in topicData.partitionData where Self.isTransactional(data.records) {
                guard data.index >= 0, data.index < topic.partitionCount, let (producerId, epoch) = Self.producer(of: data.records) else { continue }
                if producer == nil { producer = (producerId, epoch) }
                guard producer! == (producerId, epoch) else { continue }
                let tp = TopicPartition(topic.name, data.index)
                if transactions.verify(transactionalId: id, producerId: producerId, producerEpoch: epoch, partition: tp) == .invalidTxnState {
                    missing.append(tp)
                }
            }
        }
        guard let producer, !missing.isEmpty else { return nil }
        return (id, producer.id, producer.epoch, missing)
    }

    /// Kafka's mapping of a failed implicit AddPartitionsToTxn for Produce: a coordinator that is
    /// busy or moving is retriable (NOT_ENOUGH_REPLICAS, which every producer retries), a newer epoch
    /// fences; anything else aborts the transaction.
    static func produceError(forAddition code: ErrorCode) -> ErrorCode {
        switch code {
        case .concurrentTransactions, .coordinatorLoadInProgress, .coordinatorNotAvailable, .notCoordinator: return .notEnoughReplicas
        case .invalidProducerEpoch, .producerFenced: return .invalidProducerEpoch
        case .invalidProducerIdMapping, .invalidTxnState: return code
        default: return .transactionAbortable
        }
    }

    private func appendAndAnswer(_ request: ProduceRequest, version: Int16, eventLoop: EventLoop, context: RequestContext,
                                 refused: [TopicPartition: ErrorCode] = [:]) -> EventLoopFuture<BrokerResponse> {
        var due: [(topic: Int, partition: Int, log: PartitionLog)] = []
        let (responses, anyFailed) = appendAll(request, version: version, context: context, refused: refused, due: &due)
        guard !due.isEmpty else { return eventLoop.makeSucceededFuture(Self.answer(request.acks, responses, anyFailed)) }
        let flushing = due, acks = request.acks
        return blocking.run(on: eventLoop) { [logger] () -> BrokerResponse in
            var responses = responses, anyFailed = anyFailed
            for (t, p, log) in flushing {
                do { try log.flush() } catch {
                    logger.error("flushing \(log.topicPartition) failed: \(error)")
                    let index = responses[t].partitionResponses[p].index
                    responses[t].partitionResponses[p] = .init(index: index, errorCode: ErrorCode.kafkaStorageError.rawValue, baseOffset: -1,
                                                               logAppendTimeMs: -1, logStartOffset: -1,
                                                               errorMessage: version >= 8 ? "fsync of \(log.topicPartition) failed" : nil)
                    anyFailed = true
                }
            }
            return Self.answer(acks, responses, anyFailed)
        }
    }

    private static func answer(_ acks: Int16, _ responses: [ProduceResponse.TopicProduceResponse], _ anyFailed: Bool) -> BrokerResponse {
        if acks == 0 {
            // The client hears nothing; Kafka closes the connection so that it notices a failure.
            return anyFailed ? .close("acks=0 produce failed") : .none
        }
        return .message(ProduceResponse(responses: responses, throttleTimeMs: 0))
    }

    private func appendAll(_ request: ProduceRequest, version: Int16, context: RequestContext, refused: [TopicPartition: ErrorCode],
                           due: inout [(topic: Int, partition: Int, log: PartitionLog)]) -> ([ProduceResponse.TopicProduceResponse], Bool) {
        typealias PartitionResponse = ProduceResponse.PartitionProduceResponse
        func failure(_ index: Int32, _ code: ErrorCode, _ message: String? = nil, logStart: Int64 = -1) -> PartitionResponse {
            PartitionResponse(index: index, errorCode: code.rawValue, baseOffset: -1, logAppendTimeMs: -1,
                              logStartOffset: logStart, errorMessage: message)
        }
        // A transactional batch without a transactional id fails the whole request (Kafka's rule).
        let hasTransactional = request.topicData.contains { $0.partitionData.contains { Self.isTransactional($0.records) } }
        // So does a transactional id the principal may not WRITE.
        let wholeRequestError: ErrorCode? = ![-1, 0, 1].contains(request.acks) ? .invalidRequiredAcks
            : (hasTransactional && request.transactionalId == nil ? .transactionalIdAuthorizationFailed : nil)
            ?? (request.transactionalId.map { permits(context, .write, .transactionalId, $0) } == false ? .transactionalIdAuthorizationFailed : nil)

        var anyFailed = false
        let responses = request.topicData.enumerated().map { t, topicData -> ProduceResponse.TopicProduceResponse in
            let topic = version >= 13 ? broker.topics.topic(id: topicData.topicId) : broker.topics.topic(topicData.name)
            let writable = (topic?.name ?? (version >= 13 ? nil : topicData.name)).map { permits(context, .write, .topic, $0) } ?? true
            let partitions = topicData.partitionData.enumerated().map { p, data -> PartitionResponse in
                if let code = wholeRequestError { return failure(data.index, code) }
                guard writable else { return failure(data.index, .topicAuthorizationFailed) }
                guard let topic else { return failure(data.index, version >= 13 ? .unknownTopicId : .unknownTopicOrPartition) }
                guard let log = broker.topics.log(topic.name, data.index) else { return failure(data.index, .unknownTopicOrPartition) }
                // Only the broker writes its internal topics (Kafka: "Cannot append to internal topic").
                if TopicRegistry.isInternal(topic.name) {
                    return failure(data.index, .invalidTopicException, version >= 8 ? "Cannot append to internal topic \(topic.name)" : nil)
                }
                guard let records = data.records else {
                    return failure(data.index, .invalidRecord, "a produce must carry one record batch per partition", logStart: log.logStartOffset)
                }
                if let code = refused[TopicPartition(topic.name, data.index)] {
                    return failure(data.index, code, version >= 8 ? "adding \(topic.name)-\(data.index) to the transaction failed: \(code)" : nil,
                                   logStart: log.logStartOffset)
                }
                // KIP-890: a transactional batch goes only to a partition its open transaction has, and
                // only if that transaction has not ended (a marker) by the time it is appended.
                var verification: UInt64?
                if let transactionalId = request.transactionalId, Self.isTransactional(records),
                   let (producerId, epoch) = Self.producer(of: records) {
                    verification = log.beginVerification(producerId: producerId)
                    if let code = transactions.verify(transactionalId: transactionalId, producerId: producerId, producerEpoch: epoch,
                                                      partition: TopicPartition(topic.name, data.index)) {
                        let message = code == .invalidProducerEpoch
                            ? "producer \(producerId) epoch \(epoch) is not the current epoch of transactional id \(transactionalId)"
                            : "\(topic.name)-\(data.index) is not in an open transaction of transactional id \(transactionalId) (producer \(producerId), epoch \(epoch))"
                        return failure(data.index, code == .invalidProducerEpoch ? .invalidProducerEpoch : .invalidTxnState,
                                       version >= 8 ? message : nil, logStart: log.logStartOffset)
                    }
                }
                do throws(AppendError) {
                    let result = try log.append(records, verification: verification)
                    if result.flushDue { due.append((t, p, log)) }
                    broker.metrics.appended(topic: topic.name, bytes: records.readableBytes, records: Int64(result.recordCount))
                    return PartitionResponse(index: data.index, errorCode: 0, baseOffset: result.firstOffset,
                                             logAppendTimeMs: result.logAppendTime, logStartOffset: result.logStartOffset)
                } catch {
                    let (code, message) = Self.errorCode(for: error)
                    // Errors about the data itself keep the log start offset; the rest report -1 (Kafka's split).
                    let keepsStart = [ErrorCode.invalidRecord, .invalidTimestamp, .outOfOrderSequenceNumber, .invalidProducerEpoch].contains(code)
                    if case .storage = error { logger.error("append to \(topic.name)-\(data.index) failed: \(message)") }
                    return failure(data.index, code, version >= 8 ? message : nil, logStart: keepsStart ? log.logStartOffset : -1)
                }
            }
            if partitions.contains(where: { $0.errorCode != 0 }) { anyFailed = true }
            return .init(name: topicData.name, topicId: topic?.id ?? topicData.topicId, partitionResponses: partitions)
        }
        return (responses, anyFailed)
    }

    /// The producer id and epoch of the first batch of a records field (read in place).
    static func producer(of records: ByteBuffer?) -> (id: Int64, epoch: Int16)? {
        guard let records, let id = records.getInteger(at: records.readerIndex + RecordBatchLayout.producerId, as: Int64.self),
              let epoch = records.getInteger(at: records.readerIndex + RecordBatchLayout.producerEpoch, as: Int16.self) else { return nil }
        return (id, epoch)
    }

    /// Whether the first batch of a records field has the transactional attribute (read in place).
    static func isTransactional(_ records: ByteBuffer?) -> Bool {
        guard let records, let attributes = records.getInteger(at: records.readerIndex + RecordBatchLayout.attributes, as: Int16.self),
              records.readableBytes >= RecordBatchLayout.headerSize else { return false }
        return RecordBatchAttributes(rawValue: attributes).isTransactional
    }

    /// The Kafka error code and message for a refused append.
    static func errorCode(for error: AppendError) -> (ErrorCode, String) {
        switch error {
        case .corruptMessage(let m): return (.corruptMessage, m)
        case .messageTooLarge(let m): return (.messageTooLarge, m)
        case .invalidRecord(let m): return (.invalidRecord, m)
        case .invalidTimestamp(let m): return (.invalidTimestamp, m)
        case .unsupportedMagic(let m): return (.invalidRecord, m)
        case .recordListTooLarge(let m): return (.recordListTooLarge, m)
        case .producer(.invalidProducerEpoch(let m)): return (.invalidProducerEpoch, m)
        case .producer(.outOfOrderSequence(let m)): return (.outOfOrderSequenceNumber, m)
        case .storage(let m): return (.kafkaStorageError, m)
        case .logDeleted(let m): return (.unknownTopicOrPartition, m)
        case .transactionEnded(let m): return (.invalidTxnState, m)
        }
    }
}
