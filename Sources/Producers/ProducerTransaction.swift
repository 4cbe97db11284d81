import KafkaClient
import KafkaWire

/// Where a transactional producer is (Kafka's TransactionManager states, simplified), as a state
/// machine: the producer asks it whether a call may go (`check`) and tells it what happened; no I/O,
/// so every rule is tested without a broker (`ProducerTransactionTests`).
struct ProducerTransaction {
    enum Phase: Equatable {
        /// `initTransactions()` not called yet.
        case uninitialized
        case ready
        case inTransaction
        /// `commitTransaction()` or `abortTransaction()` is under way: nothing more joins the transaction.
        case ending
        /// The transaction failed; only `abortTransaction()` may follow.
        case abortable
        /// Fenced or fatal: every call fails with this error.
        case failed
    }

    /// The calls of the transactional API, and sending a record.
    enum Call: Equatable {
        case initTransactions
        case begin
        case send
        case sendOffsets
        case commit
        case abort

        var name: String {
            switch self {
            case .initTransactions: return "initTransactions()"
            case .begin: return "beginTransaction()"
            case .send: return "sending a record"
            case .sendOffsets: return "sendOffsetsToTransaction(_:groupMetadata:)"
            case .commit: return "commitTransaction()"
            case .abort: return "abortTransaction()"
            }
        }
    }

    private(set) var phase = Phase.uninitialized
    /// The partitions the coordinator has in the open transaction.
    private(set) var partitions: Set<TopicPartition> = []
    /// Why the open transaction cannot commit (a batch failed for good), or why the producer is done.
    private(set) var failure: KafkaTransactionError?
    /// A batch with a sequence failed for good: its sequence gap stays in the partition, so after the
    /// abort the producer asks for the next epoch (KIP-360), which restarts every sequence at 0.
    private(set) var needsEpochBump = false
    /// A commit (true) or abort (false) whose EndTxn timed out: only the same call may follow.
    private(set) var pendingEnd: Bool?
    /// Partitions or offsets were (or may have been) added to the open transaction, so the coordinator
    /// has it open and its end goes there; a transaction that added nothing ends here (as Java's).
    private(set) var started = false
    /// Transaction version 2 (KIP-890 part 2), when the cluster finalized it: partitions and offsets
    /// join the transaction with the requests that write them, and every end moves to the next epoch.
    /// Decided at initialization and again after each end (never in the middle of a transaction).
    private(set) var usesVersion2 = false

    /// Whether `call` may go now; if not, the error to throw.
    func check(_ call: Call) throws(KafkaTransactionError) {
        if phase == .failed, let failure { throw failure }
        switch call {
        case .initTransactions:
            guard phase == .uninitialized else { throw KafkaTransactionError(.invalidState, "initTransactions() was called already") }
            return
        case .begin:
            try require(.ready, call)
        case .send, .sendOffsets:
            try require(.inTransaction, call)
        case .commit:
            if pendingEnd == false { throw KafkaTransactionError(.invalidState, "an abort timed out: call abortTransaction() again") }
            if pendingEnd == true { return }
            try require(.inTransaction, call)
        case .abort:
            if pendingEnd == true { throw KafkaTransactionError(.invalidState, "a commit timed out: call commitTransaction() again") }
            if pendingEnd == false || phase == .abortable { return }
            try require(.inTransaction, call)
        }
    }

    private func require(_ wanted: Phase, _ call: Call) throws(KafkaTransactionError) {
        guard phase != wanted else { return }
        let state: String
        switch phase {
        case .uninitialized: state = "initTransactions() has not been called"
        case .ready: state = "no transaction is open (call beginTransaction())"
        case .inTransaction: state = "a transaction is open"
        case .ending: state = "the transaction is being committed or aborted"
        case .abortable: state = "the transaction failed and must be aborted: \(failure?.message ?? "")"
        case .failed: state = "the producer failed"
        }
        throw KafkaTransactionError(phase == .abortable ? .abortable : .invalidState, "\(call.name) is not allowed: \(state)")
    }

    /// InitProducerId answered: transactions may begin, at transaction version 2 if `version2`.
    mutating func initialized(version2: Bool = false) {
        phase = .ready
        usesVersion2 = version2
    }

    mutating func begin() {
        phase = .inTransaction
        partitions = []
        started = false
        failure = nil
    }

    /// A partition or the group's offsets are about to be added (counted before the request: an
    /// answer lost on the way leaves them in the coordinator's transaction all the same).
    mutating func markStarted() {
        started = true
    }

    /// Whether records of `partition` may be batched now (the coordinator has it in the open transaction).
    func accepts(_ partition: TopicPartition) -> Bool {
        phase == .inTransaction && partitions.contains(partition)
    }

    /// AddPartitionsToTxn answered for `partition` (version 2: the partition's first record is batched).
    mutating func added(_ partition: TopicPartition) {
        guard phase == .inTransaction else { return }
        partitions.insert(partition)
        started = true
    }

    /// Something of the open transaction failed: fenced or fatal ends the producer; anything else
    /// means the transaction can only be aborted (the first failure is the one reported).
    mutating func fail(_ error: KafkaTransactionError) {
        if error.kind == .fenced || error.kind == .fatal {
            phase = .failed
            failure = error
            return
        }
        if failure == nil { failure = error }
    }

    /// A batch of the open transaction failed for good; `sequenced`: it held a sequence, whose gap
    /// needs the next epoch.
    mutating func batchFailed(_ error: KafkaTransactionError, sequenced: Bool) {
        fail(error)
        if sequenced { needsEpochBump = true }
    }

    /// A call made in the transaction failed with an abortable error: the transaction cannot commit.
    mutating func callFailed(_ error: KafkaTransactionError) {
        if error.kind == .abortable && phase == .inTransaction { fail(error) }
    }

    /// A commit or abort begins: from now on nothing joins the transaction (what is buffered is sent).
    mutating func endStarted() {
        if phase == .inTransaction || phase == .abortable { phase = .ending }
    }

    /// EndTxn failed with `error` (not a timeout): fenced or fatal ends the producer; anything else
    /// leaves the transaction to be aborted.
    mutating func endFailed(_ error: KafkaTransactionError) {
        if error.kind == .fenced || error.kind == .fatal {
            fail(error)
            return
        }
        pendingEnd = nil
        phase = .abortable
        if failure == nil { failure = error }
    }

    enum CommitStep: Equatable {
        /// Send EndTxn(commit).
        case endTransaction
        /// A record failed: nothing is committed; the transaction must be aborted.
        case abort(KafkaTransactionError)
    }

    /// Everything buffered was sent (the commit's flush): commit, unless a record failed.
    mutating func flushedForCommit() -> CommitStep {
        guard let failure else { return .endTransaction }
        phase = .abortable
        return .abort(KafkaTransactionError(.abortable, "the transaction cannot commit: \(failure.message)", code: failure.code))
    }

    /// Whether ending the transaction needs an EndTxn: one that added neither a partition nor offsets
    /// has nothing for the coordinator to end (a commit of it commits nothing).
    var needsEndTxn: Bool { started }

    /// EndTxn timed out: only the same call may follow (the coordinator may still be writing markers).
    mutating func endTimedOut(commit: Bool) {
        pendingEnd = commit
    }

    /// The transaction ended (committed or aborted). Returns whether the producer must move to the
    /// next epoch before the next transaction (`epochBumped()` once it has).
    mutating func ended() -> Bool {
        pendingEnd = nil
        phase = .ready
        partitions = []
        started = false
        failure = nil
        return needsEpochBump
    }

    mutating func epochBumped() {
        needsEpochBump = false
    }

    /// The cluster's transaction version as of now, for the next transaction.
    mutating func useVersion2(_ version2: Bool) {
        if phase == .ready { usesVersion2 = version2 }
    }
}
