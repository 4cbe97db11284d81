import KafkaClient
import KafkaWire
import NIOCore

/// Who hears of each record of a batch, and its timestamp, in record order — run-length encoded,
/// because a `produce(contentsOf:)` call fills a batch with consecutive message ids and one
/// timestamp: nothing is stored per record.
struct RecordCompletions {
    /// Records whose outcome goes to the delivery reports, a run of consecutive ids at a time.
    private(set) var reportRuns: [DeliveryReportBatch.Run] = []
    /// Records an awaiting `send` waits for, with their index in the batch.
    private(set) var waiters: [(index: Int, continuation: CheckedContinuation<RecordMetadata, Error>)] = []
    private(set) var timestamps = TimestampRuns()
    private(set) var count = 0

    mutating func appendReport(_ id: ProducerMessageID, timestamp: Int64) {
        appendReports((id.rawValue, 1, timestamp))
    }

    /// `reports.count` records with consecutive ids from `reports.firstId`, all with one timestamp.
    mutating func appendReports(_ reports: (firstId: UInt64, count: Int, timestamp: Int64)) {
        guard reports.count > 0 else { return }
        let last = reportRuns.count - 1
        if last >= 0, reportRuns[last].firstIndex + reportRuns[last].count == count,
           reportRuns[last].firstId &+ UInt64(reportRuns[last].count) == reports.firstId {
            reportRuns[last].count += reports.count
        } else {
            reportRuns.append(DeliveryReportBatch.Run(firstIndex: count, firstId: reports.firstId, count: reports.count))
        }
        timestamps.append(reports.timestamp, at: count)
        count += reports.count
    }

    mutating func appendWaiter(_ continuation: CheckedContinuation<RecordMetadata, Error>, timestamp: Int64) {
        waiters.append((count, continuation))
        timestamps.append(timestamp, at: count)
        count += 1
    }
}

/// Timestamps by record index, one entry per run of equal timestamps.
struct TimestampRuns: Sendable {
    private var starts: [Int] = []
    private var values: [Int64] = []

    mutating func append(_ timestamp: Int64, at index: Int) {
        if values.last != timestamp {
            starts.append(index)
            values.append(timestamp)
        }
    }

    /// The timestamp of the record at `index`.
    subscript(index: Int) -> Int64 {
        values[starts.runContaining(index)]
    }

    /// Timestamps read at ascending indexes, each in O(1).
    struct Cursor: Sendable {
        let runs: TimestampRuns
        var run = 0

        init(_ runs: TimestampRuns) {
            self.runs = runs
        }

        /// The timestamp of the record at `index`, no lower than the last one asked for.
        mutating func value(at index: Int) -> Int64 {
            while run + 1 < runs.starts.count, runs.starts[run + 1] <= index { run += 1 }
            return runs.values[run]
        }
    }
}

/// What an open batch holds: the records encoded so far, who hears of each, and the bytes of
/// `buffer.memory` they hold until the batch completes.
struct BatchContents {
    var builder: RecordBatchBuilder
    var completions = RecordCompletions()
    var reservedBytes = 0

    mutating func append(timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [(String, [UInt8]?)], reserved: Int,
                         completion: (inout RecordCompletions, Int64) -> Void) {
        builder.append(timestamp: timestamp, key: key, value: value, headers: headers)
        completion(&completions, timestamp)
        reservedBytes += reserved
    }

}

/// One partition's batch: records encoded as they arrive, then sealed, sent and (maybe) retried.
/// Its producer epoch and base sequence are given when it is first sent and kept across retries
/// within that epoch, which is what lets the broker drop a retry it already wrote.
final class ProducerBatch {
    let partition: TopicPartition
    /// One stored struct for what grows per record: one exclusivity check per record, not three.
    var contents: BatchContents
    let createdAt: ContinuousClock.Instant
    let deadline: ContinuousClock.Instant
    var encoded: ByteBuffer?
    var producerEpoch: Int16 = -1
    var baseSequence: Int32 = -1
    var attempts = 0
    /// The last retriable error, reported if the batch runs out of time.
    var lastError: KafkaClientError?

    init(partition: TopicPartition, buffer: ByteBuffer, capacity: Int, deliveryTimeout: Duration) {
        self.partition = partition
        contents = BatchContents(builder: RecordBatchBuilder(reusing: buffer, capacity: capacity))
        createdAt = .now
        deadline = createdAt + deliveryTimeout
    }

    /// The contents for a run of appends, with one exclusivity check for the run.
    func withContents<R>(_ body: (inout BatchContents) -> R) -> R {
        body(&contents)
    }

    var builder: RecordBatchBuilder { contents.builder }
    var completions: RecordCompletions { contents.completions }
    var reservedBytes: Int { contents.reservedBytes }
    var recordCount: Int32 { contents.builder.recordCount }
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
