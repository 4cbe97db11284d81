import KafkaClient
import KafkaWire
import NIOCore

struct TopicPartitionKey: Hashable, Sendable {
    var topic: String
    var partition: Int32
}

/// How a record's outcome reaches its sender: an awaiting `send` or a delivery report.
enum RecordCompletion {
    case waiter(CheckedContinuation<RecordMetadata, Error>)
    case report(ProducerMessageID)
}

/// One partition's batch: records encoded as they arrive, then sealed, sent and (maybe) retried.
/// Its producer epoch and base sequence are given when it is first sent and kept across retries
/// within that epoch, which is what lets the broker drop a retry it already wrote.
final class ProducerBatch {
    let partition: TopicPartitionKey
    var builder: RecordBatchBuilder
    var completions: [RecordCompletion] = []
    var timestamps: [Int64] = []
    /// Bytes of `buffer.memory` this batch holds until it completes.
    var reservedBytes = 0
    let createdAt: ContinuousClock.Instant
    let deadline: ContinuousClock.Instant
    var encoded: ByteBuffer?
    var producerEpoch: Int16 = -1
    var baseSequence: Int32 = -1
    var attempts = 0
    /// The last retriable error, reported if the batch runs out of time.
    var lastError: KafkaClientError?

    init(partition: TopicPartitionKey, capacity: Int, deliveryTimeout: Duration) {
        self.partition = partition
        builder = RecordBatchBuilder(capacity: capacity)
        createdAt = .now
        deadline = createdAt + deliveryTimeout
    }

    var recordCount: Int32 { builder.recordCount }
    var isStamped: Bool { baseSequence >= 0 }
}

/// A partition's queue: the open batch, closed batches waiting to go (oldest first; retried
/// batches go back in sequence order ahead of fresh ones) and the idempotence bookkeeping.
final class PartitionQueue {
    var open: ProducerBatch?
    var ready: [ProducerBatch] = []
    var inFlight = 0
    /// The sequence the next fresh batch gets, in the current epoch.
    var nextSequence: Int32 = 0
    /// The sequence after the last acknowledged batch, in the current epoch.
    var ackedSequence: Int32 = 0
    /// Not before this instant (retry backoff).
    var retryAfter: ContinuousClock.Instant?
    /// A batch is being retried: one batch in flight until the queue's retried batches are through.
    var recovering = false

    var isIdle: Bool { open == nil && ready.isEmpty && inFlight == 0 }

    /// Puts a batch that must be retried back ahead of the batches never sent, in sequence order.
    func requeue(_ batch: ProducerBatch) {
        var index = 0
        while index < ready.count, ready[index].isStamped,
              (ready[index].producerEpoch, ready[index].baseSequence) < (batch.producerEpoch, batch.baseSequence) {
            index += 1
        }
        ready.insert(batch, at: index)
        recovering = true
    }

    /// Recovery ends once no retried batch waits or is in flight.
    func endRecoveryIfDone() {
        if inFlight == 0 && ready.allSatisfy({ !$0.isStamped }) { recovering = false }
    }
}

extension Int32 {
    /// Kafka's sequence arithmetic wraps at Int32.max to 0.
    func sequenceAdvanced(by count: Int32) -> Int32 {
        Int32(truncatingIfNeeded: (Int64(self) + Int64(count)) % (Int64(Int32.max) + 1))
    }
}
