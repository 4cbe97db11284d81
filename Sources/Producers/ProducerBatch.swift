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

/// Who hears of each record of a batch, and its timestamp, in record order — run-length encoded,
/// because a `produce(contentsOf:)` call fills a batch with consecutive message ids and one
/// timestamp: nothing is stored per record.
struct RecordCompletions {
    enum Run {
        case reports(first: UInt64, count: Int)
        case waiter(CheckedContinuation<RecordMetadata, Error>)
    }
    /// Closed runs; the run of reports being extended lives in the two scalars below (no enum work per record).
    private var runs: [Run] = []
    private var openFirst: UInt64 = 0
    private var openCount = 0
    /// (index of the first record with this timestamp, timestamp)
    private var timestamps: [(start: Int, timestamp: Int64)] = []
    private(set) var count = 0

    mutating func append(_ completion: RecordCompletion, timestamp: Int64) {
        switch completion {
        case .report(let id):
            if openCount > 0 && openFirst &+ UInt64(openCount) == id.rawValue {
                openCount += 1
            } else {
                closeRun()
                openFirst = id.rawValue
                openCount = 1
            }
        case .waiter(let continuation):
            closeRun()
            runs.append(.waiter(continuation))
        }
        if count == 0 || timestamps[timestamps.count - 1].timestamp != timestamp { timestamps.append((count, timestamp)) }
        count += 1
    }

    private mutating func closeRun() {
        guard openCount > 0 else { return }
        runs.append(.reports(first: openFirst, count: openCount))
        openCount = 0
    }

    /// Every record's completion with its index and timestamp, in order.
    func forEach(_ body: (Int, RecordCompletion, Int64) -> Void) {
        var index = 0
        var stamp = 0
        func timestamp() -> Int64 {
            while stamp + 1 < timestamps.count && timestamps[stamp + 1].start <= index { stamp += 1 }
            return timestamps[stamp].timestamp
        }
        func reports(_ first: UInt64, _ length: Int) {
            for k in 0..<length {
                body(index, .report(ProducerMessageID(rawValue: first + UInt64(k))), timestamp())
                index += 1
            }
        }
        for run in runs {
            switch run {
            case .waiter(let continuation):
                body(index, .waiter(continuation), timestamp())
                index += 1
            case .reports(let first, let length):
                reports(first, length)
            }
        }
        reports(openFirst, openCount)
    }
}

/// One partition's batch: records encoded as they arrive, then sealed, sent and (maybe) retried.
/// Its producer epoch and base sequence are given when it is first sent and kept across retries
/// within that epoch, which is what lets the broker drop a retry it already wrote.
final class ProducerBatch {
    let partition: TopicPartitionKey
    var builder: RecordBatchBuilder
    var completions = RecordCompletions()
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
