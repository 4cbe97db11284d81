import KafkaClient
import KafkaWire
import NIOCore

/// Why a transactional call failed, sorted by what the caller must do next (Kafka's split):
/// - `fenced`: another producer with the same `transactionalId` took over, or the broker aborted
///   this one's transaction past its timeout. This producer can do nothing more: close it.
/// - `abortable`: this transaction cannot commit (a record failed, a coordinator refused). Call
///   `abortTransaction()`, then start again with `beginTransaction()`.
/// - `invalidState`: the call does not fit the transaction's state (`beginTransaction` twice,
///   sending outside a transaction, no `initTransactions`). A programming error.
/// - `timedOut`: the commit or abort did not complete within `maxBlockMs` (the coordinator may still
///   be writing its markers). Call the same method again; nothing else is allowed meanwhile.
/// - `fatal`: anything else the producer cannot recover from (an unsupported broker, an
///   authorization failure).
public struct KafkaTransactionError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case fenced
        case abortable
        case invalidState
        case timedOut
        case fatal
    }

    public let kind: Kind
    public let message: String
    /// The broker's error code, when the broker said no.
    public let code: ErrorCode?

    public init(_ kind: Kind, _ message: String, code: ErrorCode? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
    }

    public var description: String { "\(kind): \(message)" }
}

extension KafkaProducer {
    /// The highest versions of transaction version 1 (KIP-890's version 2 changes what EndTxn v5,
    /// AddPartitionsToTxn v5 and TxnOffsetCommit v5 mean), spoken when the cluster has not finalized
    /// version 2, and of version 2 (where AddPartitionsToTxn and AddOffsetsToTxn are not sent).
    static let transactionVersion1: [ApiKey: Int16] = [.endTxn: 4, .addPartitionsToTxn: 3, .txnOffsetCommit: 4, .addOffsetsToTxn: 4]
    static let transactionVersion2: [ApiKey: Int16] = [.endTxn: 5, .addPartitionsToTxn: 3, .txnOffsetCommit: 5, .addOffsetsToTxn: 4]

    /// Whether the cluster serves transaction version 2: `transaction.version` finalized at 2 or
    /// more, and EndTxn v5.
    private func clusterServesTransactionVersion2() async -> Bool {
        guard let connection = try? await client.anyConnection() else { return false }
        return (connection.finalizedFeatures["transaction.version"] ?? 0) >= 2 && (connection.version(of: .endTxn) ?? 0) >= 5
    }

    var transactionalId: String? { configuration.transactionalId }

    /// Registers the transactional id with its coordinator and gets the producer id and epoch,
    /// fencing any older producer with the same id (whose open transaction the coordinator aborts).
    /// Call once, before the first transaction.
    public func initTransactions() async throws {
        guard let id = transactionalId else {
            throw KafkaTransactionError(.invalidState, "initTransactions() needs a transactionalId in the configuration")
        }
        try transaction.check(.initTransactions)
        let response = try await coordinatorRequest("InitProducerId") {
            InitProducerIdRequest(transactionalId: id, transactionTimeoutMs: Int32(self.configuration.transactionTimeoutMs))
        } code: { ErrorCode(rawValue: $0.errorCode) }
        adopt(producerId: response.producerId, epoch: response.producerEpoch)
        transaction.initialized(version2: await clusterServesTransactionVersion2())
        configuration.logger.info("transactions initialized", metadata: [
            "transactionalId": "\(id)", "producerId": "\(producerId)", "epoch": "\(producerEpoch)"])
    }

    /// Starts a transaction: the records sent until `commitTransaction()` or `abortTransaction()`
    /// become visible to read_committed consumers together, or not at all.
    public func beginTransaction() throws {
        try requireTransactional(.begin)
        transaction.begin()
    }

    /// Commits the consumer's `offsets` (the next offset to read, per partition) as part of the
    /// transaction: they count for the group only if the transaction commits. `groupMetadata` comes
    /// from the consumer (`KafkaConsumer.groupMetadata()`), so that a consumer thrown out of its group
    /// cannot commit.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartition: Int64], groupMetadata: ConsumerGroupMetadata) async throws {
        try requireTransactional(.sendOffsets)
        guard let id = transactionalId else { return }
        let pid = producerId, epoch = producerEpoch
        transaction.markStarted()
        do {
            // Version 2: the TxnOffsetCommit adds the offsets to the transaction itself.
            if !transaction.usesVersion2 {
                _ = try await coordinatorRequest("AddOffsetsToTxn") {
                    AddOffsetsToTxnRequest(transactionalId: id, producerId: pid, producerEpoch: epoch, groupId: groupMetadata.groupId)
                } code: { ErrorCode(rawValue: $0.errorCode) }
            }
            let byTopic = Dictionary(grouping: offsets, by: { $0.key.topic })
            let request = TxnOffsetCommitRequest(
                transactionalId: id, groupId: groupMetadata.groupId, producerId: pid, producerEpoch: epoch,
                generationId: groupMetadata.generationId, memberId: groupMetadata.memberId, groupInstanceId: groupMetadata.groupInstanceId,
                topics: byTopic.keys.sorted().map { topic in
                    .init(name: topic, partitions: byTopic[topic, default: []].sorted { $0.key.partition < $1.key.partition }.map {
                        .init(partitionIndex: $0.key.partition, committedOffset: $0.value, committedLeaderEpoch: -1, committedMetadata: nil)
                    })
                })
            try await commitTransactionalOffsets(request, group: groupMetadata.groupId)
        } catch let error as KafkaTransactionError {
            transaction.callFailed(error)
            throw error
        }
    }

    /// Sends what is buffered, then commits. If a record of the transaction failed, nothing is
    /// committed: the call throws an `abortable` error and the transaction must be aborted.
    public func commitTransaction() async throws {
        try requireTransactional(.commit)
        // A commit whose EndTxn timed out is sent again as it was.
        if transaction.pendingEnd == true { return try await endTransaction(commit: true) }
        transaction.endStarted()
        await flush()
        if case .abort(let error) = transaction.flushedForCommit() { throw error }
        try await endTransaction(commit: true)
    }

    /// Aborts the transaction: its records are never shown to read_committed consumers and its
    /// offsets never committed. What is buffered is sent first (and aborted with the rest).
    public func abortTransaction() async throws {
        try requireTransactional(.abort)
        if transaction.pendingEnd == nil {
            transaction.endStarted()
            await flush()
        }
        try await endTransaction(commit: false)
    }

    private func endTransaction(commit: Bool) async throws {
        guard let id = transactionalId else { return }
        let pid = producerId, epoch = producerEpoch
        // Version 2: the end itself moves the producer to its next epoch (or a new id).
        var movedByTheEnd = false
        if transaction.needsEndTxn {
            let response: EndTxnResponse
            do {
                response = try await coordinatorRequest("EndTxn") {
                    EndTxnRequest(transactionalId: id, producerId: pid, producerEpoch: epoch, committed: commit)
                } code: { ErrorCode(rawValue: $0.errorCode) }
            } catch let error as KafkaTransactionError {
                if error.kind == .timedOut { transaction.endTimedOut(commit: commit) } else { transaction.endFailed(error) }
                throw error
            }
            if transaction.usesVersion2 && response.producerId >= 0 && response.producerEpoch >= 0 {
                adopt(producerId: response.producerId, epoch: response.producerEpoch)
                movedByTheEnd = true
            }
        }
        let needsEpochBump = transaction.ended()
        if movedByTheEnd {
            transaction.epochBumped()
        } else if needsEpochBump {
            // KIP-360: the current id and epoch ask for the next epoch; sequences restart at 0.
            let timeout = Int32(configuration.transactionTimeoutMs)
            let response = try await coordinatorRequest("InitProducerId") {
                InitProducerIdRequest(transactionalId: id, transactionTimeoutMs: timeout, producerId: pid, producerEpoch: epoch)
            } code: { ErrorCode(rawValue: $0.errorCode) }
            adopt(producerId: response.producerId, epoch: response.producerEpoch)
            transaction.epochBumped()
            configuration.logger.info("moved to the next epoch after a failed batch", metadata: ["epoch": "\(producerEpoch)"])
        }
        transaction.useVersion2(await clusterServesTransactionVersion2())
    }

    /// `call` is allowed: the producer is transactional and its transaction is where the call fits.
    private func requireTransactional(_ call: ProducerTransaction.Call) throws {
        guard transactionalId != nil else {
            throw KafkaTransactionError(.invalidState, "\(call.name) needs a transactionalId in the configuration")
        }
        try transaction.check(call)
    }

    /// A record of a transactional producer may be appended only inside a transaction.
    func checkTransactionalSend() throws {
        guard transactionalId != nil else { return }
        try transaction.check(.send)
    }

    /// A producer id and epoch from the coordinator: every partition's sequences start again at 0.
    private func adopt(producerId id: Int64, epoch: Int16) {
        producerId = id
        producerEpoch = epoch
        for queue in partitions.values {
            queue.nextSequence = 0
            queue.ackedSequence = 0
        }
    }

    /// Adds `partition` to the open transaction before its first record goes into a batch (under
    /// version 2 the Produce request adds it: nothing is sent here).
    func addToTransaction(_ partition: TopicPartition) async throws {
        guard let id = transactionalId, !transaction.partitions.contains(partition) else { return }
        if transaction.usesVersion2 {
            transaction.added(partition)
            return
        }
        let task: Task<Void, Error>
        if let existing = addingToTransaction[partition] {
            task = existing
        } else {
            transaction.markStarted()
            let pid = producerId, epoch = producerEpoch
            task = Task {
                let response = try await self.coordinatorRequest("AddPartitionsToTxn") {
                    AddPartitionsToTxnRequest(v3AndBelowTransactionalId: id, v3AndBelowProducerId: pid, v3AndBelowProducerEpoch: epoch,
                                              v3AndBelowTopics: [.init(name: partition.topic, partitions: [partition.partition])])
                } code: { response in
                    ErrorCode(rawValue: response.resultsByTopicV3AndBelow.lazy.flatMap(\.resultsByPartition)
                        .first { $0.partitionErrorCode != 0 }?.partitionErrorCode ?? 0)
                }
                _ = response
            }
            addingToTransaction[partition] = task
        }
        do {
            try await task.value
            addingToTransaction[partition] = nil
            transaction.added(partition)
        } catch let error as KafkaTransactionError {
            addingToTransaction[partition] = nil
            transaction.callFailed(error)
            throw error
        }
    }

    /// Something of the open transaction failed: it can only be aborted, or (fenced, fatal) the producer is done.
    func fail(transaction error: KafkaTransactionError, sequenced: Bool = false) {
        let wasFailed = transaction.phase == .failed
        transaction.batchFailed(error, sequenced: sequenced)
        if transaction.phase == .failed && !wasFailed {
            configuration.logger.error("the transactional producer cannot go on", metadata: ["error": "\(error.message)"])
        }
    }

    /// Classifies a batch's final error in a transaction.
    func transactionError(for error: KafkaClientError) -> KafkaTransactionError {
        if case .broker(let code) = error.kind {
            return Self.classify(code, "a record of the transaction failed: \(error.message)")
        }
        return KafkaTransactionError(.abortable, "a record of the transaction failed: \(error.message)")
    }

    /// Kafka's sorting of the transaction errors.
    static func classify(_ code: ErrorCode, _ message: String) -> KafkaTransactionError {
        switch code {
        case .producerFenced, .invalidProducerEpoch, .transactionalIdAuthorizationFailed:
            return KafkaTransactionError(.fenced, message, code: code)
        case .invalidProducerIdMapping, .unsupportedVersion, .unsupportedForMessageFormat, .clusterAuthorizationFailed,
             .invalidTransactionTimeout, .transactionalIdNotFound:
            return KafkaTransactionError(.fatal, message, code: code)
        default:
            return KafkaTransactionError(.abortable, message, code: code)
        }
    }

    /// Sends a request to the transaction coordinator (`retrying`).
    func coordinatorRequest<R: KafkaRequest>(_ name: String, _ make: @escaping @Sendable () -> R,
                                             code: @escaping @Sendable (R.Response) -> ErrorCode) async throws -> R.Response {
        guard let id = transactionalId else { throw KafkaTransactionError(.invalidState, "\(name) needs a transactionalId") }
        return try await retrying(name, make, code: code) { [client, lane] timeout in try await client.transactionCoordinator(of: id, timeout: timeout, lane: lane).connection }
    }

    /// TxnOffsetCommit to the group's coordinator (`retrying`); any partition's error is the answer's.
    private func commitTransactionalOffsets(_ request: TxnOffsetCommitRequest, group: String) async throws {
        _ = try await retrying("TxnOffsetCommit for group '\(group)'", { request }, code: { response in
            response.topics.lazy.flatMap(\.partitions).map { ErrorCode(rawValue: $0.errorCode) }.first { $0 != .noError } ?? .noError
        }) { [client, lane] timeout in try await client.groupCoordinator(of: group, timeout: timeout, lane: lane).connection }
    }

    /// Sends a request to a coordinator `find` locates, finding it again and retrying while the
    /// answer says to (a coordinator moving or loading, a previous transaction still completing),
    /// for up to `maxBlockMs`, at the versions of the transaction version in use. Other errors are classified
    /// (`classify`); a fenced or fatal one ends the producer.
    private func retrying<R: KafkaRequest>(_ name: String, _ make: @escaping @Sendable () -> R,
                                           code: @escaping @Sendable (R.Response) -> ErrorCode,
                                           find: @escaping @Sendable (TimeAmount) async throws -> BrokerConnection) async throws -> R.Response {
        let deadline = ContinuousClock.now + .milliseconds(configuration.maxBlockMs)
        let timeout = TimeAmount.milliseconds(Int64(configuration.requestTimeoutMs))
        var lastProblem = ""
        while ContinuousClock.now < deadline {
            do {
                let connection = try await find(timeout)
                var version = try connection.negotiatedVersion(of: R.self)
                let caps = transaction.usesVersion2 ? Self.transactionVersion2 : Self.transactionVersion1
                if let cap = caps[R.apiKey] { version = min(version, cap) }
                let response = try await connection.send(make(), version: version, timeout: timeout)
                let error = code(response)
                switch error {
                case .noError:
                    return response
                case .concurrentTransactions, .coordinatorLoadInProgress, .notCoordinator, .coordinatorNotAvailable, .requestTimedOut:
                    lastProblem = "\(error)"
                default:
                    let failure = Self.classify(error, "\(name) failed: \(error)")
                    if failure.kind == .fenced || failure.kind == .fatal { fail(transaction: failure) }
                    throw failure
                }
            } catch let error as KafkaClientError where error.isRetriable {
                lastProblem = error.message
            }
            try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
        }
        let kind: KafkaTransactionError.Kind = R.apiKey == .endTxn ? .timedOut : .abortable
        throw KafkaTransactionError(kind, "\(name) did not succeed within max.block.ms (\(configuration.maxBlockMs) ms): \(lastProblem)")
    }
}
