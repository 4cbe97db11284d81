import KafkaClient
import KafkaWire
@testable import Producers
import Testing

/// The transactional producer's states without a broker: which call fits where, what a failed
/// record or call does to the transaction, and how a timed-out end is resumed.
struct ProducerTransactionTests {
    static let orders = TopicPartition("orders", 0)

    static func refused(_ call: ProducerTransaction.Call, in transaction: ProducerTransaction) -> KafkaTransactionError? {
        do {
            try transaction.check(call)
            return nil
        } catch {
            return error
        }
    }

    static func open() -> ProducerTransaction {
        var transaction = ProducerTransaction()
        transaction.initialized()
        transaction.begin()
        transaction.added(orders)
        return transaction
    }

    @Test func callsOutOfOrderAreInvalidStateErrorsSayingWhy() {
        var transaction = ProducerTransaction()
        for call in [ProducerTransaction.Call.begin, .send, .sendOffsets, .commit, .abort] {
            let error = Self.refused(call, in: transaction)
            #expect(error?.kind == .invalidState)
            #expect(error?.message.contains("initTransactions() has not been called") == true)
        }
        #expect(Self.refused(.initTransactions, in: transaction) == nil)
        transaction.initialized()
        #expect(Self.refused(.initTransactions, in: transaction)?.message == "initTransactions() was called already")
        #expect(Self.refused(.send, in: transaction)?.message == "sending a record is not allowed: no transaction is open (call beginTransaction())")
        #expect(Self.refused(.begin, in: transaction) == nil)
        transaction.begin()
        #expect(Self.refused(.begin, in: transaction)?.message == "beginTransaction() is not allowed: a transaction is open")
        for call in [ProducerTransaction.Call.send, .sendOffsets, .commit, .abort] {
            #expect(Self.refused(call, in: transaction) == nil)
        }
    }

    @Test func recordsOfAPartitionWaitUntilTheCoordinatorHasIt() {
        var transaction = ProducerTransaction()
        transaction.initialized()
        transaction.begin()
        #expect(!transaction.accepts(Self.orders))
        transaction.added(Self.orders)
        #expect(transaction.accepts(Self.orders))
        #expect(!transaction.accepts(TopicPartition("orders", 1)))
        // An answer that comes after the transaction ended adds nothing to the next one.
        _ = transaction.ended()
        transaction.added(TopicPartition("late", 0))
        transaction.begin()
        #expect(!transaction.accepts(TopicPartition("late", 0)))
        #expect(!transaction.accepts(Self.orders), "each transaction adds its partitions anew")
    }

    @Test func aFailedRecordMakesTheCommitAnAbort() {
        var transaction = Self.open()
        transaction.batchFailed(KafkaTransactionError(.abortable, "MESSAGE_TOO_LARGE", code: .messageTooLarge), sequenced: true)
        transaction.batchFailed(KafkaTransactionError(.abortable, "second"), sequenced: false)
        #expect(transaction.phase == .inTransaction, "sends may go on; the commit is what fails")
        guard case .abort(let error) = transaction.flushedForCommit() else {
            Issue.record("a transaction with a failed record committed")
            return
        }
        #expect(error.kind == .abortable && error.code == .messageTooLarge, "the first failure is the one reported")
        #expect(transaction.phase == .abortable)
        #expect(Self.refused(.commit, in: transaction)?.kind == .abortable)
        #expect(Self.refused(.send, in: transaction)?.kind == .abortable)
        #expect(Self.refused(.abort, in: transaction) == nil)
        // The failed batch held a sequence: the next transaction starts in a new epoch.
        do {
            let answer = transaction.ended()
            #expect(answer)
        }
        transaction.epochBumped()
        #expect(transaction.phase == .ready && transaction.failure == nil)
        transaction.begin()
        do {
            let answer = transaction.flushedForCommit()
            #expect(answer == .endTransaction)
        }
        let bumps = transaction.ended()
        #expect(!bumps, "no failed batch: no new epoch")
    }

    @Test func fencedOrFatalEndsTheProducer() {
        var transaction = Self.open()
        let fenced = KafkaTransactionError(.fenced, "PRODUCER_FENCED", code: .producerFenced)
        transaction.batchFailed(fenced, sequenced: true)
        #expect(transaction.phase == .failed)
        for call in [ProducerTransaction.Call.initTransactions, .begin, .send, .sendOffsets, .commit, .abort] {
            #expect(Self.refused(call, in: transaction)?.kind == .fenced)
        }
    }

    @Test func anAbortableCallFailureOnlyCountsInsideTheTransaction() {
        var transaction = Self.open()
        transaction.callFailed(KafkaTransactionError(.invalidState, "not this"))
        do {
            let answer = transaction.flushedForCommit()
            #expect(answer == .endTransaction)
        }
        var failing = Self.open()
        failing.callFailed(KafkaTransactionError(.abortable, "TxnOffsetCommit failed"))
        if case .endTransaction = failing.flushedForCommit() { Issue.record("a failed offset commit was committed") }
    }

    @Test func nothingJoinsATransactionWhileItEnds() {
        var transaction = Self.open()
        transaction.endStarted()
        #expect(transaction.phase == .ending)
        #expect(Self.refused(.send, in: transaction)?.message == "sending a record is not allowed: the transaction is being committed or aborted")
        #expect(Self.refused(.sendOffsets, in: transaction)?.kind == .invalidState)
        #expect(!transaction.accepts(Self.orders), "a record waiting for the end does not go into its batches")
        // EndTxn refused (not fenced): the transaction can only be aborted.
        transaction.endFailed(KafkaTransactionError(.abortable, "EndTxn failed: INVALID_TXN_STATE", code: .invalidTxnState))
        #expect(transaction.phase == .abortable)
        #expect(Self.refused(.commit, in: transaction)?.kind == .abortable)
        #expect(Self.refused(.abort, in: transaction) == nil)
        // Fenced at the end: the producer is done.
        var fenced = Self.open()
        fenced.endStarted()
        fenced.endFailed(KafkaTransactionError(.fenced, "PRODUCER_FENCED", code: .producerFenced))
        #expect(fenced.phase == .failed && Self.refused(.abort, in: fenced)?.kind == .fenced)
    }

    @Test func aTimedOutEndIsResumedOnlyByTheSameCall() {
        var committing = Self.open()
        committing.endStarted()
        committing.endTimedOut(commit: true)
        #expect(committing.pendingEnd == true)
        #expect(Self.refused(.abort, in: committing)?.message == "a commit timed out: call commitTransaction() again")
        #expect(Self.refused(.commit, in: committing) == nil)
        _ = committing.ended()
        #expect(committing.pendingEnd == nil && committing.phase == .ready)

        var aborting = Self.open()
        aborting.endStarted()
        aborting.endTimedOut(commit: false)
        #expect(Self.refused(.commit, in: aborting)?.message == "an abort timed out: call abortTransaction() again")
        #expect(Self.refused(.abort, in: aborting) == nil)
    }

    @Test func aTransactionThatAddedNothingEndsWithoutTheCoordinator() {
        var transaction = ProducerTransaction()
        transaction.initialized()
        transaction.begin()
        #expect(!transaction.needsEndTxn, "nothing was added: the coordinator has no transaction to end")
        transaction.added(Self.orders)
        #expect(transaction.needsEndTxn)
        // Offsets alone are in the coordinator's transaction too; so is a partition whose
        // AddPartitionsToTxn went out (its answer may be lost).
        var other = ProducerTransaction()
        other.initialized()
        other.begin()
        other.markStarted()
        #expect(other.needsEndTxn)
        _ = other.ended()
        other.begin()
        #expect(!other.needsEndTxn, "each transaction starts anew")
    }

    @Test func versionTwoIsKeptFromInitialization() {
        var transaction = ProducerTransaction()
        #expect(!transaction.usesVersion2)
        transaction.initialized(version2: true)
        transaction.begin()
        #expect(transaction.usesVersion2)
        _ = transaction.ended()
        #expect(transaction.usesVersion2)
    }
}
