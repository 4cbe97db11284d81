import KafkaLog
import KafkaWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The transaction coordinator of the single node (Kafka's, KIP-98 with KIP-360's epoch bumps and
/// KIP-890's server-side verification, transaction versions 1 and 2): hands transactional ids their
/// producer id and epoch, fencing older epochs (and, at version 2, moving to the next at every end); records the partitions and the group offsets each
/// transaction touches; ends a transaction by writing COMMIT or ABORT markers to every one of them;
/// aborts transactions that outlive their timeout and forgets idle ids.
///
/// The state is one table behind one lock, and every change is appended to `__transaction_state`
/// under it, so the log holds the changes in the order they were made. Produce verification reads
/// a view of it kept behind a lock of its own, so an append never stalls an event loop's Produce. Markers are written off the
/// lock (and off the event loops); meanwhile the transaction stands in PrepareCommit/PrepareAbort
/// and any other request for it is answered CONCURRENT_TRANSACTIONS. A restart finds a prepared
/// transaction in the log and finishes it: every transaction ends wholly committed or wholly aborted.
/// A request the coordinator refuses, with the Kafka error code it is answered with.
struct TransactionError: Error {
    let code: ErrorCode
    init(_ code: ErrorCode) { self.code = code }
}

public final class TransactionCoordinator: Sendable {
    let broker: Broker
    let groups: GroupCoordinator
    let logger: Logger
    let loop: EventLoop
    let blocking: BlockingExecutor
    let store: TransactionStateManager
    private let table: NIOLockedValueBox<Table>
    /// What `verify` reads for every transactional Produce, on the event loops: each id's producer,
    /// epoch and open partitions, replaced after each change. Its lock is held only for a dictionary
    /// access, never across the table's appends to `__transaction_state` or a producer-id block.
    private let verifyView: NIOLockedValueBox<[String: VerifyEntry]>
    private let timers = NIOLockedValueBox<[RepeatedTask]>([])

    struct Table {
        var transactions: [String: TransactionMetadata]
        /// Ids whose markers are being written now (a sweep must not start a second writer).
        var completing: Set<String> = []
    }

    /// One id as Produce verification sees it.
    struct VerifyEntry: Sendable {
        let producerId: Int64
        let producerEpoch: Int16
        /// The partitions of its open transaction; nil when none is open.
        let openPartitions: Set<TopicPartition>?

        init?(_ metadata: TransactionMetadata?) {
            guard let metadata else { return nil }
            producerId = metadata.producerId
            producerEpoch = metadata.producerEpoch
            openPartitions = metadata.state == .ongoing ? metadata.partitions : nil
        }

        /// Whether every Produce `other` lets through, this lets through too.
        func allowsAtLeast(_ other: VerifyEntry?) -> Bool {
            guard let other else { return true }
            guard producerId == other.producerId, producerEpoch == other.producerEpoch else { return false }
            guard let theirs = other.openPartitions else { return true }
            return openPartitions?.isSuperset(of: theirs) ?? false
        }
    }

    /// What a prepared transaction's end needs, taken under the lock.
    struct Completion: Sendable {
        let transactionalId: String
        let producerId: Int64
        let producerEpoch: Int16
        let commit: Bool
        let partitions: Set<TopicPartition>
        /// The id and epoch the transactional id has once this end is complete: a new id at epoch 0
        /// when the markers carry the last epoch (Int16.max), else the markers' own.
        let next: (producerId: Int64, producerEpoch: Int16)
    }

    public init(broker: Broker, groups: GroupCoordinator, loop: EventLoop, logger: Logger, blocking: BlockingExecutor = .inPlace) throws {
        self.broker = broker
        self.groups = groups
        self.loop = loop
        self.logger = logger
        self.blocking = blocking
        let topic = broker.topics.topic(TransactionStateManager.topic) ?? (try? broker.topics.create(
            name: TransactionStateManager.topic, partitions: 1, overrides: TransactionStateManager.topicConfigs, validateOnly: false))
        guard topic != nil, let log = broker.topics.log(TransactionStateManager.topic, 0) else {
            throw LogError(.io, "cannot open the \(TransactionStateManager.topic) log")
        }
        store = TransactionStateManager(log: log, logger: logger)
        let loaded = try store.load()
        table = NIOLockedValueBox(Table(transactions: loaded))
        verifyView = NIOLockedValueBox(loaded.compactMapValues(VerifyEntry.init))
        let open = loaded.values.filter { $0.state == .ongoing || $0.state.isPreparing }.count
        logger.info("transaction coordinator loaded \(loaded.count) transactional id(s), \(open) with a transaction open")
        // Transactions a crash left prepared are finished at once; open ones wait for their timeout.
        finishPrepared()
        let abortEvery = TimeAmount.milliseconds(broker.config.transactionAbortCheckIntervalMs)
        let expireEvery = TimeAmount.milliseconds(broker.config.transactionalIdExpiryCheckIntervalMs)
        let abortTask = loop.scheduleRepeatedTask(initialDelay: abortEvery, delay: abortEvery) { [weak self] _ in
            self?.abortTimedOut()
            self?.finishPrepared()
        }
        let expireTask = loop.scheduleRepeatedTask(initialDelay: expireEvery, delay: expireEvery) { [weak self] _ in
            self?.expireIdle()
        }
        timers.withLockedValue { $0 = [abortTask, expireTask] }
    }

    public func stop() {
        timers.withLockedValue { tasks in
            for task in tasks { task.cancel() }
            tasks = []
        }
    }

    func now() -> Int64 { PartitionLog.currentTimeMs() }

    /// Appends a change under the table's lock; an fsync it makes due is started off the loops.
    /// Produce verification sees a change that allows less (a transaction ending, a new epoch) before
    /// it is appended, so no write slips in meanwhile; one that allows more (partitions added) after.
    private func persist(_ metadata: TransactionMetadata?, id: String, in table: inout Table) throws {
        let entry = VerifyEntry(metadata)
        let before = verifyView.withLockedValue { view -> VerifyEntry? in
            let before = view[id]
            if !(entry?.allowsAtLeast(before) ?? false) { view[id] = entry }
            return before
        }
        let flushDue: Bool
        do {
            flushDue = try store.write(id, metadata, nowMs: now())
        } catch {
            verifyView.withLockedValue { $0[id] = before }
            throw error
        }
        if flushDue {
            let log = store.log, logger = self.logger
            blocking.run(on: loop) { try log.flush() }.whenFailure { logger.error("flushing \(TransactionStateManager.topic) failed: \($0)") }
        }
        table.transactions[id] = metadata
        verifyView.withLockedValue { $0[id] = entry }
    }

    // MARK: InitProducerId

    enum InitResult: Sendable {
        case assigned(producerId: Int64, epoch: Int16)
        case failed(ErrorCode)
    }

    /// A transactional producer's InitProducerId: a new id at epoch 0, or the id's epoch bumped (the
    /// older epoch is fenced). A transaction left open by the previous epoch is aborted first and
    /// the caller told to retry (CONCURRENT_TRANSACTIONS), as Kafka does.
    func initProducerId(transactionalId id: String, timeoutMs: Int32, producerId: Int64, producerEpoch: Int16,
                        version: Int16) -> InitResult {
        guard !id.isEmpty else { return .failed(.invalidRequest) }
        guard timeoutMs > 0, timeoutMs <= broker.config.transactionMaxTimeoutMs else { return .failed(.invalidTransactionTimeout) }
        let fenced: ErrorCode = version >= 4 ? .producerFenced : .invalidProducerEpoch
        let nowMs = now()
        var completion: Completion?
        let result = table.withLockedValue { table -> InitResult in
            do {
                guard var m = table.transactions[id], m.state != .dead else {
                    let newId = try broker.producerIds.allocate()
                    let m = TransactionMetadata(transactionalId: id, producerId: newId, producerEpoch: 0, timeoutMs: timeoutMs,
                                                state: .empty, lastUpdateTimestamp: nowMs)
                    try persist(m, id: id, in: &table)
                    return .assigned(producerId: newId, epoch: 0)
                }
                // KIP-360: a producer naming its current id and epoch may bump it; anything else is
                // a zombie, except a retry of the bump it already got.
                if producerId >= 0 {
                    let current = producerId == m.producerId && producerEpoch == m.producerEpoch
                    let retried = producerId == m.lastProducerId && producerEpoch == m.lastProducerEpoch
                        || (producerId == m.producerId && producerEpoch == m.lastProducerEpoch && m.lastProducerId < 0)
                    if retried && !current && (m.state == .empty || m.state == .completeAbort || m.state == .completeCommit) {
                        return .assigned(producerId: m.producerId, epoch: m.producerEpoch)
                    }
                    guard current else { return .failed(fenced) }
                }
                switch m.state {
                case .prepareCommit, .prepareAbort, .prepareEpochFence:
                    return .failed(.concurrentTransactions)
                case .ongoing:
                    // Fence the open transaction's producer and abort it with the new epoch.
                    m.lastProducerEpoch = -1
                    if m.producerEpoch < Int16.max { m.producerEpoch += 1 }
                    m.state = .prepareAbort
                    m.lastUpdateTimestamp = nowMs
                    try persist(m, id: id, in: &table)
                    completion = begin(m, commit: false, in: &table)
                    return .failed(.concurrentTransactions)
                case .empty, .completeCommit, .completeAbort, .dead:
                    if m.producerEpoch >= Int16.max - 1 {
                        // The epoch is exhausted: a new producer id starts again at 0.
                        m.lastProducerEpoch = m.producerEpoch
                        m.moveToProducerId(try broker.producerIds.allocate())
                    } else {
                        // Only a bump asked for with the current epoch can be retried with it (KIP-360):
                        // a new producer's bump leaves the old epoch nothing to claim.
                        m.lastProducerId = -1
                        m.lastProducerEpoch = producerId >= 0 ? m.producerEpoch : -1
                        m.producerEpoch += 1
                    }
                    m.timeoutMs = timeoutMs
                    m.state = .empty
                    m.partitions = []
                    m.startTimestamp = -1
                    m.lastUpdateTimestamp = nowMs
                    try persist(m, id: id, in: &table)
                    return .assigned(producerId: m.producerId, epoch: m.producerEpoch)
                }
            } catch {
                logger.error("InitProducerId for \(id) failed: \(error)")
                return .failed(.kafkaStorageError)
            }
        }
        if let completion { _ = complete(completion) }
        return result
    }

    // MARK: AddPartitionsToTxn, AddOffsetsToTxn

    /// Checks that the request comes from the id's current producer and that no end is under way.
    private func current(_ table: Table, _ id: String, producerId: Int64, producerEpoch: Int16, fenced: ErrorCode) -> Result<TransactionMetadata, TransactionError> {
        guard let m = table.transactions[id], m.state != .dead else { return .failure(TransactionError(.invalidProducerIdMapping)) }
        guard m.producerId == producerId else { return .failure(TransactionError(.invalidProducerIdMapping)) }
        guard m.producerEpoch == producerEpoch else { return .failure(TransactionError(fenced)) }
        guard !m.state.isPreparing else { return .failure(TransactionError(.concurrentTransactions)) }
        return .success(m)
    }

    /// Adds partitions to the id's transaction, opening it if none is open. With `verifyOnly`
    /// (AddPartitionsToTxn v4+ from a broker) nothing changes: each partition is answered with
    /// whether the open transaction has it. Partitions are known to exist (the caller checks).
    func addPartitions(transactionalId id: String, producerId: Int64, producerEpoch: Int16, partitions: [TopicPartition],
                       verifyOnly: Bool, fenced: ErrorCode) -> Result<[TopicPartition: ErrorCode], TransactionError> {
        let nowMs = now()
        return table.withLockedValue { table in
            let found = current(table, id, producerId: producerId, producerEpoch: producerEpoch, fenced: fenced)
            guard case .success(var m) = found else {
                if case .failure(let error) = found { return .failure(error) }
                return .failure(TransactionError(.unknownServerError))
            }
            if verifyOnly {
                return .success(Dictionary(partitions.map { tp in
                    (tp, m.state == .ongoing && m.partitions.contains(tp) ? ErrorCode.noError : .invalidTxnState)
                }, uniquingKeysWith: { a, _ in a }))
            }
            if m.state != .ongoing {
                m.state = .ongoing
                m.startTimestamp = nowMs
                m.partitions = []
            }
            let before = m.partitions.count
            m.partitions.formUnion(partitions)
            if m.partitions.count != before || table.transactions[id]?.state != .ongoing {
                m.lastUpdateTimestamp = nowMs
                do { try persist(m, id: id, in: &table) } catch {
                    logger.error("AddPartitionsToTxn for \(id) failed: \(error)")
                    return .failure(TransactionError(.kafkaStorageError))
                }
            }
            return .success(Dictionary(partitions.map { ($0, ErrorCode.noError) }, uniquingKeysWith: { a, _ in a }))
        }
    }

    /// KIP-890 verification: a transactional Produce to `tp` is allowed only from the id's current
    /// producer inside an open transaction that has the partition.
    func verify(transactionalId id: String, producerId: Int64, producerEpoch: Int16, partition tp: TopicPartition) -> ErrorCode? {
        guard let entry = verifyView.withLockedValue({ $0[id] }), entry.producerId == producerId else { return .invalidProducerIdMapping }
        guard producerEpoch == entry.producerEpoch else { return .invalidProducerEpoch }
        return entry.openPartitions?.contains(tp) == true ? nil : .invalidTxnState
    }

    // MARK: EndTxn

    enum EndResult: Sendable {
        /// Ended (or a retry of an end already made); the id's producer id and epoch now.
        case done(producerId: Int64, producerEpoch: Int16)
        case failed(ErrorCode)
        /// Markers are being written; the answer waits for them, and gives the id and epoch decided
        /// when the end was logged (not read afterwards: a new producer may have taken the id since).
        case completing(EventLoopFuture<Void>, producerId: Int64, producerEpoch: Int16)
    }

    /// EndTxn. `bumpEpoch` (EndTxn v5, transaction version 2, KIP-890 part 2): the end moves the id to
    /// the next epoch, its markers are written with it, and the answer gives it to the producer, so
    /// that a late write of the ended transaction (with the old epoch) is fenced rather than taken
    /// into the next one. An epoch that would pass Int16.max - 1 gets a new producer id at epoch 0.
    func endTxn(transactionalId id: String, producerId: Int64, producerEpoch: Int16, commit: Bool, fenced: ErrorCode,
                bumpEpoch: Bool = false) -> EndResult {
        let nowMs = now()
        var completion: Completion?
        let result = table.withLockedValue { table -> EndResult in
            guard let existing = table.transactions[id], existing.state != .dead else { return .failed(.invalidProducerIdMapping) }
            // A retry of an end already made is answered as it was: under version 2 it comes with the
            // epoch before the end's bump (and, past the last epoch, the id before the new one).
            let retried = bumpEpoch
                ? existing.lastProducerEpoch >= 0 && existing.lastProducerEpoch == producerEpoch
                    && ((existing.producerId == producerId && existing.producerEpoch == producerEpoch &+ 1)
                        || (existing.lastProducerId == producerId && producerEpoch == Int16.max - 1 && existing.producerEpoch == 0))
                : existing.producerId == producerId && existing.producerEpoch == producerEpoch
            if retried {
                switch (existing.state, commit) {
                case (.completeCommit, true), (.completeAbort, false): return .done(producerId: existing.producerId, producerEpoch: existing.producerEpoch)
                case (.prepareCommit, true), (.prepareAbort, false): return .failed(.concurrentTransactions)
                default: if bumpEpoch { return .failed(fenced) }
                }
            }
            guard existing.producerId == producerId else { return .failed(.invalidProducerIdMapping) }
            guard existing.producerEpoch == producerEpoch else { return .failed(fenced) }
            var m = existing
            if bumpEpoch && !commit && [.empty, .completeCommit, .completeAbort].contains(m.state) {
                // Version 2: an abort with nothing open still moves to the next epoch (the producer may
                // have sent what never reached the coordinator, and must not write with this epoch again).
                do {
                    let next = try bump(&m)
                    if next.producerEpoch == 0 { m.moveToProducerId(next.producerId) }
                    m.state = .completeAbort
                    m.lastUpdateTimestamp = nowMs
                    try persist(m, id: id, in: &table)
                } catch {
                    logger.error("EndTxn for \(id) failed: \(error)")
                    return .failed(.kafkaStorageError)
                }
                return .done(producerId: m.producerId, producerEpoch: m.producerEpoch)
            }
            switch m.state {
            case .ongoing:
                m.state = commit ? .prepareCommit : .prepareAbort
                var next: (Int64, Int16)?
                do {
                    if bumpEpoch { next = try bump(&m) }
                    m.lastUpdateTimestamp = nowMs
                    try persist(m, id: id, in: &table)
                } catch {
                    logger.error("EndTxn for \(id) failed: \(error)")
                    return .failed(.kafkaStorageError)
                }
                completion = begin(m, commit: commit, in: &table, next: next)
                let answer = next ?? (m.producerId, m.producerEpoch)
                return .done(producerId: answer.0, producerEpoch: answer.1)
            case .prepareCommit, .prepareAbort, .prepareEpochFence:
                return .failed(.concurrentTransactions)
            case .empty, .completeCommit, .completeAbort, .dead:
                // Nothing is open (or the other end was made): Kafka's INVALID_TXN_STATE.
                return .failed(.invalidTxnState)
            }
        }
        if let completion {
            return .completing(complete(completion), producerId: completion.next.producerId, producerEpoch: completion.next.producerEpoch)
        }
        return result
    }

    /// Version 2's bump at an end: the next epoch, which the markers carry. Epochs handed to
    /// producers stop at Int16.max - 1, so the markers may carry Int16.max; after that the id gets
    /// a new producer id at epoch 0 (allocated now, so the answer can give it). Returns the id and
    /// epoch the producer goes on with.
    private func bump(_ m: inout TransactionMetadata) throws -> (producerId: Int64, producerEpoch: Int16) {
        m.lastProducerEpoch = m.producerEpoch
        m.lastProducerId = -1
        // Saturating: an epoch read back from __transaction_state is not trusted to be below the last.
        m.producerEpoch = m.producerEpoch < Int16.max ? m.producerEpoch + 1 : Int16.max
        guard m.producerEpoch == Int16.max else { return (m.producerId, m.producerEpoch) }
        return (try broker.producerIds.allocate(), 0)
    }

    /// Marks the id as being completed; the caller starts `complete` once the lock is released.
    private func begin(_ m: TransactionMetadata, commit: Bool, in table: inout Table, next: (Int64, Int16)? = nil) -> Completion? {
        guard table.completing.insert(m.transactionalId).inserted else { return nil }
        return Completion(transactionalId: m.transactionalId, producerId: m.producerId, producerEpoch: m.producerEpoch,
                          commit: commit, partitions: m.partitions, next: next ?? (m.producerId, m.producerEpoch))
    }

    /// Writes the markers (data partitions off the loops, the offsets log on the group
    /// coordinator's), then records the transaction complete. A failure leaves it prepared: the
    /// next sweep tries again.
    private func complete(_ c: Completion) -> EventLoopFuture<Void> {
        let marker = EndTransactionMarker(c.commit ? .commit : .abort)
        let offsetsPartition = TopicPartition(OffsetStore.topic, 0)
        let broker = self.broker, logger = self.logger
        let written = blocking.run(on: loop) { () throws -> Void in
            var due: [PartitionLog] = []
            for tp in c.partitions.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) where tp != offsetsPartition {
                guard let log = broker.topics.log(tp.topic, tp.partition) else { continue }
                do throws(AppendError) {
                    if try log.appendMarker(marker, producerId: c.producerId, producerEpoch: c.producerEpoch).flushDue { due.append(log) }
                } catch {
                    switch error {
                    case .logDeleted: continue
                    case .producer(let problem):
                        // The partition knows a newer epoch: a later transaction of the id already ended this one here.
                        logger.warning("not writing a marker to \(tp): \(problem)")
                    default:
                        throw error
                    }
                }
            }
            for log in due { try log.flush() }
        }
        return written.flatMap { () -> EventLoopFuture<Void> in
            guard c.partitions.contains(offsetsPartition) else { return self.loop.makeSucceededVoidFuture() }
            return self.groups.completeTransaction(producerId: c.producerId, producerEpoch: c.producerEpoch, commit: c.commit)
        }.flatMapThrowing {
            try self.table.withLockedValue { table in
                table.completing.remove(c.transactionalId)
                guard var m = table.transactions[c.transactionalId], m.producerId == c.producerId, m.producerEpoch == c.producerEpoch,
                      m.state.isPreparing else { return }
                m.state = c.commit ? .completeCommit : .completeAbort
                m.partitions = []
                m.startTimestamp = -1
                m.lastUpdateTimestamp = self.now()
                if m.producerEpoch == Int16.max {
                    // Epochs are spent (the markers carried the last one): the next transaction has the new
                    // id decided when the end was logged (after a restart, one allocated now).
                    m.moveToProducerId(c.next.producerEpoch == 0 && c.next.producerId != c.producerId
                        ? c.next.producerId : try self.broker.producerIds.allocate())
                }
                try self.persist(m, id: c.transactionalId, in: &table)
            }
            logger.debug("transaction \(c.commit ? "committed" : "aborted")", metadata: [
                "transactionalId": "\(c.transactionalId)", "producerId": "\(c.producerId)", "partitions": "\(c.partitions.count)"])
        }.flatMapErrorThrowing { error in
            self.table.withLockedValue { _ = $0.completing.remove(c.transactionalId) }
            logger.error("ending the transaction of \(c.transactionalId) failed, retrying at the next check: \(error)")
            throw error
        }
    }

    // MARK: Sweeps

    /// Finishes every prepared transaction no writer is working on (after a restart, or a failed write).
    private func finishPrepared() {
        let pending = table.withLockedValue { table in
            table.transactions.values.filter { $0.state == .prepareCommit || $0.state == .prepareAbort }
                .compactMap { begin($0, commit: $0.state == .prepareCommit, in: &table) }
        }
        for completion in pending { _ = complete(completion) }
    }

    /// Aborts transactions open longer than their timeout, fencing their producer (its epoch is bumped).
    func abortTimedOut() {
        let nowMs = now()
        let aborting = table.withLockedValue { table -> [Completion] in
            var started: [Completion] = []
            for var m in table.transactions.values where m.state == .ongoing && nowMs - m.startTimestamp > Int64(m.timeoutMs) {
                m.lastProducerEpoch = -1
                if m.producerEpoch < Int16.max { m.producerEpoch += 1 }
                m.state = .prepareAbort
                m.lastUpdateTimestamp = nowMs
                do { try persist(m, id: m.transactionalId, in: &table) } catch {
                    logger.error("aborting the timed-out transaction of \(m.transactionalId) failed: \(error)")
                    continue
                }
                logger.info("aborting a transaction open longer than its timeout", metadata: [
                    "transactionalId": "\(m.transactionalId)", "timeoutMs": "\(m.timeoutMs)"])
                if let c = begin(m, commit: false, in: &table) { started.append(c) }
            }
            return started
        }
        for completion in aborting { _ = complete(completion) }
    }

    /// Forgets ids idle longer than transactional.id.expiration.ms (their tombstones go to the log).
    func expireIdle() {
        let nowMs = now(), expiration = broker.config.transactionalIdExpirationMs
        table.withLockedValue { table in
            for m in table.transactions.values where [.empty, .completeCommit, .completeAbort].contains(m.state)
                && nowMs - m.lastUpdateTimestamp > expiration {
                do {
                    try persist(nil, id: m.transactionalId, in: &table)
                    logger.info("expired transactional id \(m.transactionalId)")
                } catch {
                    logger.error("expiring transactional id \(m.transactionalId) failed: \(error)")
                }
            }
        }
    }

    // MARK: Admin

    func snapshot() -> [TransactionMetadata] {
        table.withLockedValue { Array($0.transactions.values) }
    }

    func metadata(_ id: String) -> TransactionMetadata? {
        table.withLockedValue { $0.transactions[id] }
    }
}
