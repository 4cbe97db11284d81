import KafkaLog
import KafkaWire
import NIOCore

// The transaction APIs: InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions, translated to the
// transaction coordinator. (TxnOffsetCommit goes to the group coordinator.)

extension RequestDispatcher {
    func initTransactionalProducerId(_ request: InitProducerIdRequest, transactionalId: String, version: Int16) -> InitProducerIdResponse {
        func failure(_ code: ErrorCode) -> InitProducerIdResponse {
            InitProducerIdResponse(throttleTimeMs: 0, errorCode: code.rawValue, producerId: -1, producerEpoch: -1)
        }
        // KIP-939's two-phase commit is not offered (Kafka's answer when it is not enabled).
        if request.enable2Pc { return failure(.transactionalIdAuthorizationFailed) }
        switch transactions.initProducerId(transactionalId: transactionalId, timeoutMs: request.transactionTimeoutMs,
                                           producerId: request.producerId, producerEpoch: request.producerEpoch, version: version) {
        case .assigned(let id, let epoch):
            return InitProducerIdResponse(throttleTimeMs: 0, errorCode: 0, producerId: id, producerEpoch: epoch)
        case .failed(let code):
            logger.debug("InitProducerId refused", metadata: ["transactionalId": "\(transactionalId)", "error": "\(code)"])
            return failure(code)
        }
    }

    /// PRODUCER_FENCED came with these versions; older clients get INVALID_PRODUCER_EPOCH (Kafka's rule).
    private static func fenced(_ version: Int16) -> ErrorCode { version >= 2 ? .producerFenced : .invalidProducerEpoch }

    func addPartitionsToTxn(_ request: AddPartitionsToTxnRequest, version: Int16, context: RequestContext = RequestContext()) -> AddPartitionsToTxnResponse {
        typealias TopicResult = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        if version <= 3 {
            // WRITE on the transactional id, then on each topic; a refused topic leaves the rest not attempted.
            let id = request.v3AndBelowTransactionalId
            let deniedTopics = Set(request.v3AndBelowTopics.map(\.name).filter { !permits(context, .write, .topic, $0) })
            let idAllowed = permits(context, .write, .transactionalId, id)
            if !idAllowed || !deniedTopics.isEmpty {
                return AddPartitionsToTxnResponse(throttleTimeMs: 0, resultsByTopicV3AndBelow: request.v3AndBelowTopics.map { t in
                    let code: ErrorCode = !idAllowed ? .transactionalIdAuthorizationFailed
                        : deniedTopics.contains(t.name) ? .topicAuthorizationFailed : .operationNotAttempted
                    return TopicResult(name: t.name, resultsByPartition: t.partitions.map { .init(partitionIndex: $0, partitionErrorCode: code.rawValue) })
                })
            }
            let results = addPartitions(request.v3AndBelowTransactionalId, request.v3AndBelowProducerId, request.v3AndBelowProducerEpoch,
                                        request.v3AndBelowTopics, verifyOnly: false, version: version)
            return AddPartitionsToTxnResponse(throttleTimeMs: 0, resultsByTopicV3AndBelow: results)
        }
        // v4+: a batch of transactions (brokers verifying for KIP-890), each answered on its own; a broker's call.
        guard permitsCluster(context, .clusterAction) else {
            return AddPartitionsToTxnResponse(throttleTimeMs: 0, errorCode: ErrorCode.clusterAuthorizationFailed.rawValue)
        }
        let results = request.transactions.map { t in
            AddPartitionsToTxnResponse.AddPartitionsToTxnResult(
                transactionalId: t.transactionalId,
                topicResults: addPartitions(t.transactionalId, t.producerId, t.producerEpoch, t.topics, verifyOnly: t.verifyOnly, version: version))
        }
        return AddPartitionsToTxnResponse(throttleTimeMs: 0, errorCode: 0, resultsByTransaction: results)
    }

    private func addPartitions(_ id: String, _ producerId: Int64, _ epoch: Int16, _ topics: [AddPartitionsToTxnRequest.AddPartitionsToTxnTopic],
                               verifyOnly: Bool, version: Int16) -> [AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult] {
        func answer(_ code: (TopicPartition) -> ErrorCode) -> [AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult] {
            topics.map { t in
                .init(name: t.name, resultsByPartition: t.partitions.map { .init(partitionIndex: $0, partitionErrorCode: code(TopicPartition(t.name, $0)).rawValue) })
            }
        }
        // Partitions that cannot be in a transaction fail the request; the rest are not attempted.
        var refused: [TopicPartition: ErrorCode] = [:]
        var partitions: [TopicPartition] = []
        for t in topics {
            for p in t.partitions {
                let tp = TopicPartition(t.name, p)
                if TopicRegistry.isInternal(t.name) {
                    refused[tp] = .topicAuthorizationFailed
                } else if let topic = broker.topics.topic(t.name), p >= 0, p < topic.partitionCount {
                    partitions.append(tp)
                } else {
                    refused[tp] = .unknownTopicOrPartition
                }
            }
        }
        if !refused.isEmpty { return answer { refused[$0] ?? .operationNotAttempted } }
        switch transactions.addPartitions(transactionalId: id, producerId: producerId, producerEpoch: epoch, partitions: partitions,
                                          verifyOnly: verifyOnly, fenced: Self.fenced(version)) {
        case .success(let codes): return answer { codes[$0] ?? .noError }
        case .failure(let error): return answer { _ in error.code }
        }
    }

    func addOffsetsToTxn(_ request: AddOffsetsToTxnRequest, version: Int16) -> AddOffsetsToTxnResponse {
        guard !request.groupId.isEmpty else { return AddOffsetsToTxnResponse(throttleTimeMs: 0, errorCode: ErrorCode.invalidGroupId.rawValue) }
        // Every group's offsets live in the one partition of __consumer_offsets.
        let result = transactions.addPartitions(transactionalId: request.transactionalId, producerId: request.producerId,
                                                producerEpoch: request.producerEpoch, partitions: [TopicPartition(OffsetStore.topic, 0)],
                                                verifyOnly: false, fenced: Self.fenced(version))
        switch result {
        case .success: return AddOffsetsToTxnResponse(throttleTimeMs: 0, errorCode: 0)
        case .failure(let error):
            logger.debug("AddOffsetsToTxn refused", metadata: ["transactionalId": "\(request.transactionalId)", "error": "\(error.code)"])
            return AddOffsetsToTxnResponse(throttleTimeMs: 0, errorCode: error.code.rawValue)
        }
    }

    /// TxnOffsetCommit goes to the group coordinator once the transaction coordinator confirms that
    /// the producer's open transaction has the offsets (AddOffsetsToTxn): a zombie's or a late retry's
    /// offsets are refused instead of waiting, pending, for another transaction's COMMIT. Under
    /// transaction version 2 (v5) the request itself adds the offsets to the transaction.
    func txnOffsetCommit(_ request: TxnOffsetCommitRequest, version: Int16, eventLoop: EventLoop) -> EventLoopFuture<BrokerResponse> {
        let offsets = TopicPartition(OffsetStore.topic, 0)
        @Sendable func refuse(_ refused: ErrorCode) -> BrokerResponse {
            let code = refused == .invalidProducerEpoch || refused == .producerFenced ? Self.fenced(version) : refused
            return .message(TxnOffsetCommitResponse(throttleTimeMs: 0, topics: request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code.rawValue) })
            }))
        }
        let refused = transactions.verify(transactionalId: request.transactionalId, producerId: request.producerId,
                                          producerEpoch: request.producerEpoch, partition: offsets)
        if refused == .invalidTxnState && version >= 5 {
            return addImplicitly(request.transactionalId, request.producerId, request.producerEpoch, [offsets], version: version,
                                 on: eventLoop).flatMap { [self] failed in
                if let failed { return eventLoop.makeSucceededFuture(refuse(failed)) }
                return coordinator.txnOffsetCommit(request, version: version).map { .message($0) }
            }
        }
        if let refused {
            logger.debug("TxnOffsetCommit refused", metadata: ["transactionalId": "\(request.transactionalId)", "error": "\(refused)"])
            return eventLoop.makeSucceededFuture(refuse(refused))
        }
        return coordinator.txnOffsetCommit(request, version: version).map { .message($0) }
    }

    /// Transaction version 2 adds partitions to the open transaction (starting it if none is) with
    /// the request that writes to them (Produce v12+, TxnOffsetCommit v5), not AddPartitionsToTxn.
    /// The coordinator's append runs off the event loop. Nil when added, else the error to answer.
    func addImplicitly(_ id: String, _ producerId: Int64, _ epoch: Int16, _ partitions: [TopicPartition], version: Int16,
                       on eventLoop: EventLoop) -> EventLoopFuture<ErrorCode?> {
        let transactions = self.transactions
        return blocking.run(on: eventLoop) { () -> ErrorCode? in
            switch transactions.addPartitions(transactionalId: id, producerId: producerId, producerEpoch: epoch, partitions: partitions,
                                              verifyOnly: false, fenced: .invalidProducerEpoch) {
            case .success(let codes): return codes.values.first { $0 != .noError }
            case .failure(let error): return error.code
            }
        }
    }

    /// EndTxn; v5 is transaction version 2's: the end bumps the epoch and the answer carries the
    /// producer id and epoch the next transaction uses.
    func endTxn(_ request: EndTxnRequest, version: Int16, eventLoop: EventLoop) -> EventLoopFuture<BrokerResponse> {
        @Sendable func answer(_ code: ErrorCode, _ producerId: Int64 = -1, _ producerEpoch: Int16 = -1) -> BrokerResponse {
            .message(EndTxnResponse(throttleTimeMs: 0, errorCode: code.rawValue, producerId: producerId, producerEpoch: producerEpoch))
        }
        let id = request.transactionalId
        let transactions = self.transactions, logger = self.logger, fenced = Self.fenced(version)
        // The coordinator logs the end (an append to __transaction_state, at version 2 maybe a new
        // producer-id block) off the event loop.
        return blocking.run(on: eventLoop) {
            transactions.endTxn(transactionalId: id, producerId: request.producerId, producerEpoch: request.producerEpoch,
                                commit: request.committed, fenced: fenced, bumpEpoch: version >= 5)
        }.flatMap { result in
            switch result {
            case .done(let producerId, let producerEpoch): return eventLoop.makeSucceededFuture(answer(.noError, producerId, producerEpoch))
            case .failed(let code):
                logger.debug("EndTxn refused", metadata: ["transactionalId": "\(id)", "error": "\(code)"])
                return eventLoop.makeSucceededFuture(answer(code))
            case .completing(let written, let producerId, let producerEpoch):
                // The markers are written; a failure leaves the transaction to the coordinator's retries,
                // and the client to retry its EndTxn (answered CONCURRENT_TRANSACTIONS meanwhile).
                return written.hop(to: eventLoop).map { answer(.noError, producerId, producerEpoch) }.recover { _ in answer(.concurrentTransactions) }
            }
        }
    }

    func describeTransactions(_ request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
        DescribeTransactionsResponse(throttleTimeMs: 0, transactionStates: request.transactionalIds.map { id in
            guard let m = transactions.metadata(id) else {
                return .init(errorCode: ErrorCode.transactionalIdNotFound.rawValue, transactionalId: id, transactionState: "",
                             transactionTimeoutMs: 0, transactionStartTimeMs: -1, producerId: -1, producerEpoch: -1, topics: [])
            }
            return .init(errorCode: 0, transactionalId: id, transactionState: m.state.name, transactionTimeoutMs: m.timeoutMs,
                         transactionStartTimeMs: m.startTimestamp, producerId: m.producerId, producerEpoch: m.producerEpoch,
                         topics: m.partitionsByTopic.map { .init(topic: $0.topic, partitions: $0.partitions) })
        })
    }

    static let maxTransactionalIdPatternBytes = 1000

    func listTransactions(_ request: ListTransactionsRequest, version: Int16) -> ListTransactionsResponse {
        let known = Set(TransactionState.allCases.map(\.name))
        let states = Set(request.stateFilters)
        let producerIds = Set(request.producerIdFilters)
        let nowMs = PartitionLog.currentTimeMs()
        // v2's pattern is a regular expression the whole id must match (Kafka's). A client's pattern is
        // bounded (a transactional id is a short name; 1,000 characters say more than any needs).
        var pattern: Regex<AnyRegexOutput>?
        if version >= 2, let text = request.transactionalIdPattern, !text.isEmpty {
            guard text.utf8.count <= Self.maxTransactionalIdPatternBytes, let compiled = try? Regex(text) else {
                return ListTransactionsResponse(throttleTimeMs: 0, errorCode: ErrorCode.invalidRegularExpression.rawValue,
                                                unknownStateFilters: [], transactionStates: [])
            }
            pattern = compiled
        }
        let listed = transactions.snapshot().filter { m in
            (states.isEmpty || states.contains(m.state.name)) && (producerIds.isEmpty || producerIds.contains(m.producerId))
                && (request.durationFilter < 0 || (m.state == .ongoing && nowMs - m.startTimestamp >= request.durationFilter))
                && (pattern.map { (try? $0.wholeMatch(in: m.transactionalId)) != nil } ?? true)
        }.sorted { $0.transactionalId < $1.transactionalId }
        return ListTransactionsResponse(throttleTimeMs: 0, errorCode: 0, unknownStateFilters: states.subtracting(known).sorted(),
                                        transactionStates: listed.map { .init(transactionalId: $0.transactionalId, producerId: $0.producerId,
                                                                              transactionState: $0.state.name) })
    }
}

// WriteTxnMarkers: markers written on request — an administrator aborting a hanging transaction
// (kafka-transactions.sh --abort), as Kafka's partition leaders accept them.
extension RequestDispatcher {
    func writeTxnMarkers(_ request: WriteTxnMarkersRequest, eventLoop: EventLoop) -> EventLoopFuture<BrokerResponse> {
        typealias Partition = WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult
        let offsetsPartition = TopicPartition(OffsetStore.topic, 0)
        let written = blocking.run(on: eventLoop) { () -> [[[ErrorCode?]]] in
            // nil: the offsets log's marker, written by the group coordinator below.
            request.markers.map { marker in
                let kind = EndTransactionMarker(marker.transactionResult ? .commit : .abort, coordinatorEpoch: marker.coordinatorEpoch)
                return marker.topics.map { t in
                    t.partitionIndexes.map { p -> ErrorCode? in
                        if TopicPartition(t.name, p) == offsetsPartition { return nil }
                        guard let log = self.broker.topics.log(t.name, p) else { return .unknownTopicOrPartition }
                        do throws(AppendError) {
                            let result = try log.appendMarker(kind, producerId: marker.producerId, producerEpoch: marker.producerEpoch)
                            if result.flushDue { try? log.flush() }
                            return .noError
                        } catch {
                            return Self.errorCode(for: error).0
                        }
                    }
                }
            }
        }
        return written.flatMap { codes -> EventLoopFuture<BrokerResponse> in
            var pending: [EventLoopFuture<(Int, ErrorCode)>] = []
            for (m, marker) in request.markers.enumerated() where codes[m].contains(where: { $0.contains(nil) }) {
                pending.append(self.coordinator.completeTransaction(producerId: marker.producerId, producerEpoch: marker.producerEpoch,
                                                                    commit: marker.transactionResult)
                    .map { (m, ErrorCode.noError) }
                    .recover { error in (m, (error as? AppendError).map { Self.errorCode(for: $0).0 } ?? .kafkaStorageError) }
                    .hop(to: eventLoop))
            }
            return EventLoopFuture.whenAllSucceed(pending, on: eventLoop).map { offsetResults in
                let offsetCodes = Dictionary(offsetResults, uniquingKeysWith: { a, _ in a })
                return .message(WriteTxnMarkersResponse(markers: request.markers.enumerated().map { m, marker in
                    .init(producerId: marker.producerId, topics: marker.topics.enumerated().map { t, topic in
                        .init(name: topic.name, partitions: topic.partitionIndexes.enumerated().map { p, index in
                            Partition(partitionIndex: index, errorCode: (codes[m][t][p] ?? offsetCodes[m] ?? .unknownServerError).rawValue)
                        })
                    })
                }))
            }
        }
    }
}
