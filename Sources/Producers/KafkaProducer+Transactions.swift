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
public struct KafkaTransactionError: Error, CustomStringConvertible, Sendable {
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

/// Where a transactional producer is (Kafka's TransactionManager states, simplified).
struct ProducerTransaction {
    enum Phase: Equatable {
        /// `initTransactions()` not called yet.
        case uninitialized
        case ready
        case inTransaction
        /// The transaction failed; only `abortTransaction()` may follow.
        case abortable
        /// Fenced or fatal: every call fails with this error.
        case failed
    }

    var phase = Phase.uninitialized
    /// The partitions the coordinator has in the open transaction.
    var partitions: Set<TopicPartition> = []
    /// AddPartitionsToTxn requests on their way, shared by every record waiting for one.
    var adding: [TopicPartition: Task<Void, Error>] = [:]
    /// Why the open transaction cannot commit (a batch failed for good), or why the producer is done.
    var failure: KafkaTransactionError?
    /// A batch with a sequence failed for good: its sequence gap stays in the partition, so after the
    /// abort the producer asks for the next epoch (KIP-360), which restarts every sequence at 0.
    var needsEpochBump = false
    /// A commit (true) or abort (false) whose EndTxn timed out: only the same call may follow.
    var pendingEnd: Bool?
}

extension KafkaProducer {
    /// The highest versions of transaction version 1 (KIP-890's version 2 changes what EndTxn v5,
    /// AddPartitionsToTxn v5 and TxnOffsetCommit v5 mean): the client speaks version 1 with every broker.
    static let transactionVersion1: [ApiKey: Int16] = [.endTxn: 4, .addPartitionsToTxn: 3, .txnOffsetCommit: 4, .addOffsetsToTxn: 4]

    var transactionalId: String? { configuration.transactionalId }

    /// Registers the transactional id with its coordinator and gets the producer id and epoch,
    /// fencing any older producer with the same id (whose open transaction the coordinator aborts).
    /// Call once, before the first transaction.
    public func initTransactions() async throws {
        guard let id = transactionalId else {
            throw KafkaTransactionError(.invalidState, "initTransactions() needs a transactionalId in the configuration")
        }
        if transaction.phase == .failed, let failure = transaction.failure { throw failure }
        guard transaction.phase == .uninitialized else {
            throw KafkaTransactionError(.invalidState, "initTransactions() was called already")
        }
        let response = try await coordinatorRequest("InitProducerId") {
            InitProducerIdRequest(transactionalId: id, transactionTimeoutMs: Int32(self.configuration.transactionTimeoutMs))
        } code: { ErrorCode(rawValue: $0.errorCode) }
        producerId = response.producerId
        producerEpoch = response.producerEpoch
        for queue in partitions.values {
            queue.nextSequence = 0
            queue.ackedSequence = 0
        }
        transaction.phase = .ready
        configuration.logger.info("transactions initialized", metadata: [
            "transactionalId": "\(id)", "producerId": "\(producerId)", "epoch": "\(producerEpoch)"])
    }

    /// Starts a transaction: the records sent until `commitTransaction()` or `abortTransaction()`
    /// become visible to read_committed consumers together, or not at all.
    public func beginTransaction() throws {
        try requirePhase(.ready, "beginTransaction()")
        transaction.phase = .inTransaction
        transaction.partitions = []
        transaction.failure = nil
    }

    /// Commits the consumer's `offsets` (the next offset to read, per partition) as part of the
    /// transaction: they count for the group only if the transaction commits. `groupMetadata` comes
    /// from the consumer (`KafkaConsumer.groupMetadata()`), so that a consumer thrown out of its group
    /// cannot commit.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartition: Int64], groupMetadata: ConsumerGroupMetadata) async throws {
        try requirePhase(.inTransaction, "sendOffsetsToTransaction(_:groupMetadata:)")
        guard let id = transactionalId else { return }
        let pid = producerId, epoch = producerEpoch
        do {
            _ = try await coordinatorRequest("AddOffsetsToTxn") {
                AddOffsetsToTxnRequest(transactionalId: id, producerId: pid, producerEpoch: epoch, groupId: groupMetadata.groupId)
            } code: { ErrorCode(rawValue: $0.errorCode) }
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
            if error.kind == .abortable, transaction.phase == .inTransaction { fail(transaction: error) }
            throw error
        }
    }

    /// Sends what is buffered, then commits. If a record of the transaction failed, nothing is
    /// committed: the call throws an `abortable` error and the transaction must be aborted.
    public func commitTransaction() async throws {
        try requirePhase(.inTransaction, "commitTransaction()", allowingAbortable: false)
        if let pending = transaction.pendingEnd {
            guard pending else { throw KafkaTransactionError(.invalidState, "an abort timed out: call abortTransaction() again") }
            return try await endTransaction(commit: true)
        }
        await flush()
        if let failure = transaction.failure {
            transaction.phase = .abortable
            throw KafkaTransactionError(.abortable, "the transaction cannot commit: \(failure.message)", code: failure.code)
        }
        try await endTransaction(commit: true)
    }

    /// Aborts the transaction: its records are never shown to read_committed consumers and its
    /// offsets never committed. What is buffered is sent first (and aborted with the rest).
    public func abortTransaction() async throws {
        try requirePhase(.inTransaction, "abortTransaction()", allowingAbortable: true)
        if transaction.pendingEnd == true { throw KafkaTransactionError(.invalidState, "a commit timed out: call commitTransaction() again") }
        await flush()
        try await endTransaction(commit: false)
    }

    private func endTransaction(commit: Bool) async throws {
        guard let id = transactionalId else { return }
        let pid = producerId, epoch = producerEpoch
        if !transaction.partitions.isEmpty || commit {
            do {
                _ = try await coordinatorRequest("EndTxn") {
                    EndTxnRequest(transactionalId: id, producerId: pid, producerEpoch: epoch, committed: commit)
                } code: { ErrorCode(rawValue: $0.errorCode) }
            } catch let error as KafkaTransactionError where error.kind == .timedOut {
                transaction.pendingEnd = commit
                throw error
            }
        }
        transaction.pendingEnd = nil
        transaction.phase = .ready
        transaction.partitions = []
        transaction.failure = nil
        if transaction.needsEpochBump {
            // KIP-360: the current id and epoch ask for the next epoch; sequences restart at 0.
            let timeout = Int32(configuration.transactionTimeoutMs)
            let response = try await coordinatorRequest("InitProducerId") {
                InitProducerIdRequest(transactionalId: id, transactionTimeoutMs: timeout, producerId: pid, producerEpoch: epoch)
            } code: { ErrorCode(rawValue: $0.errorCode) }
            producerId = response.producerId
            producerEpoch = response.producerEpoch
            for queue in partitions.values {
                queue.nextSequence = 0
                queue.ackedSequence = 0
            }
            transaction.needsEpochBump = false
            configuration.logger.info("moved to the next epoch after a failed batch", metadata: ["epoch": "\(producerEpoch)"])
        }
    }

    private func requirePhase(_ phase: ProducerTransaction.Phase, _ call: String, allowingAbortable: Bool = false) throws {
        guard transactionalId != nil else {
            throw KafkaTransactionError(.invalidState, "\(call) needs a transactionalId in the configuration")
        }
        if transaction.phase == .failed, let failure = transaction.failure { throw failure }
        if transaction.phase == phase || (allowingAbortable && transaction.phase == .abortable) { return }
        let state: String
        switch transaction.phase {
        case .uninitialized: state = "initTransactions() has not been called"
        case .ready: state = "no transaction is open (call beginTransaction())"
        case .inTransaction: state = "a transaction is open"
        case .abortable: state = "the transaction failed and must be aborted: \(transaction.failure?.message ?? "")"
        case .failed: state = "the producer failed"
        }
        throw KafkaTransactionError(transaction.phase == .abortable ? .abortable : .invalidState, "\(call) is not allowed: \(state)")
    }

    /// A record of a transactional producer may be appended only inside a transaction.
    func checkTransactionalSend() throws {
        guard transactionalId != nil else { return }
        try requirePhase(.inTransaction, "sending a record", allowingAbortable: false)
    }

    /// Adds `partition` to the open transaction before its first record goes into a batch.
    func addToTransaction(_ partition: TopicPartition) async throws {
        guard let id = transactionalId, !transaction.partitions.contains(partition) else { return }
        let task: Task<Void, Error>
        if let existing = transaction.adding[partition] {
            task = existing
        } else {
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
            transaction.adding[partition] = task
        }
        do {
            try await task.value
            transaction.adding[partition] = nil
            if transaction.phase == .inTransaction { transaction.partitions.insert(partition) }
        } catch let error as KafkaTransactionError {
            transaction.adding[partition] = nil
            if error.kind == .abortable, transaction.phase == .inTransaction { fail(transaction: error) }
            throw error
        }
    }

    /// A batch of the open transaction failed for good: the transaction can only be aborted.
    func fail(transaction error: KafkaTransactionError) {
        if error.kind == .fenced || error.kind == .fatal {
            transaction.phase = .failed
            transaction.failure = error
            configuration.logger.error("the transactional producer cannot go on", metadata: ["error": "\(error.message)"])
            return
        }
        if transaction.failure == nil { transaction.failure = error }
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
        return try await retrying(name, make, code: code) { [client] timeout in try await client.transactionCoordinator(of: id, timeout: timeout).connection }
    }

    /// TxnOffsetCommit to the group's coordinator (`retrying`); any partition's error is the answer's.
    private func commitTransactionalOffsets(_ request: TxnOffsetCommitRequest, group: String) async throws {
        _ = try await retrying("TxnOffsetCommit for group '\(group)'", { request }, code: { response in
            response.topics.lazy.flatMap(\.partitions).map { ErrorCode(rawValue: $0.errorCode) }.first { $0 != .noError } ?? .noError
        }) { [client] timeout in try await client.groupCoordinator(of: group, timeout: timeout).connection }
    }

    /// Sends a request to a coordinator `find` locates, finding it again and retrying while the
    /// answer says to (a coordinator moving or loading, a previous transaction still completing),
    /// for up to `maxBlockMs`, at transaction version 1's versions. Other errors are classified
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
                if let cap = Self.transactionVersion1[R.apiKey] { version = min(version, cap) }
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
