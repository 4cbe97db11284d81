import KafkaClient

/// The outcome of one record sent with `produce`.
public struct DeliveryReport: Sendable {
    public var id: ProducerMessageID
    public var topic: String
    public var result: Result<RecordMetadata, KafkaClientError>
}

/// The delivery reports of one batch — records of one partition acknowledged (or failed) together —
/// as a collection. Nothing is stored per record: a report is made when it is read, from the batch's
/// base offset and its runs of consecutive message ids.
public struct DeliveryReportBatch: RandomAccessCollection, Sendable {
    /// Records `firstIndex..<firstIndex+count` of the batch have the ids `firstId...`.
    struct Run: Sendable {
        var firstIndex: Int
        var firstId: UInt64
        var count: Int
    }

    public let topic: String
    public let partition: Int32
    /// Where the batch's first record landed and the broker's LogAppendTime (-1 for CreateTime), or why it failed.
    let outcome: Result<(baseOffset: Int64, logAppendTime: Int64), KafkaClientError>
    let runs: [Run]
    /// Where each run starts in this collection.
    private let runStarts: [Int]
    let timestamps: TimestampRuns
    public let endIndex: Int
    public var startIndex: Int { 0 }

    init(topic: String, partition: Int32, outcome: Result<(baseOffset: Int64, logAppendTime: Int64), KafkaClientError>,
         runs: [Run], timestamps: TimestampRuns) {
        self.topic = topic
        self.partition = partition
        self.outcome = outcome
        self.runs = runs
        self.timestamps = timestamps
        var starts: [Int] = []
        starts.reserveCapacity(runs.count)
        var total = 0
        for run in runs {
            starts.append(total)
            total += run.count
        }
        runStarts = starts
        endIndex = total
    }

    /// The error every record of the batch failed with, nil when it was delivered.
    public var error: KafkaClientError? {
        if case .failure(let error) = outcome { return error }
        return nil
    }

    public subscript(position: Int) -> DeliveryReport {
        precondition(position >= 0 && position < endIndex, "DeliveryReportBatch index out of range")
        let run = runStarts.runContaining(position)
        return report(run: run, step: position - runStarts[run]) { timestamps[$0] }
    }

    /// The report of the record `step` places into run `run`; `createTime` gives the CreateTime of the
    /// record at an index of the batch.
    @inline(__always)
    func report(run: Int, step: Int, createTime: (_ index: Int) -> Int64) -> DeliveryReport {
        let index = runs[run].firstIndex + step
        let id = ProducerMessageID(rawValue: runs[run].firstId + UInt64(step))
        let created = createTime(index)
        return DeliveryReport(id: id, topic: topic, result: outcome.map { answer in
            RecordMetadata(topic: topic, partition: partition, batch: answer, index: index, createTime: created)
        })
    }
}

extension DeliveryReportBatch {
    /// Reads the reports in order, walking the runs: O(1) per report, where the subscript searches
    /// the runs (reading every report by index was a tenth of a 100-byte producer's profile).
    public struct Iterator: IteratorProtocol {
        let batch: DeliveryReportBatch
        var run = 0
        /// The next report's place in its run.
        var step = 0
        var timestamps: TimestampRuns.Cursor

        public mutating func next() -> DeliveryReport? {
            while run < batch.runs.count, step == batch.runs[run].count {
                run += 1
                step = 0
            }
            guard run < batch.runs.count else { return nil }
            step += 1
            return batch.report(run: run, step: step - 1) { timestamps.value(at: $0) }
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(batch: self, timestamps: TimestampRuns.Cursor(timestamps))
    }
}

extension RecordMetadata {
    /// Where the record at `index` of an acknowledged batch landed: the batch's base offset plus the
    /// index (-1 without an answer, acks=0), stamped with the broker's LogAppendTime when it set one.
    init(topic: String, partition: Int32, batch answer: (baseOffset: Int64, logAppendTime: Int64), index: Int, createTime: Int64) {
        self.init(topic: topic, partition: partition, offset: answer.baseOffset < 0 ? -1 : answer.baseOffset + Int64(index),
                  timestamp: answer.logAppendTime >= 0 ? answer.logAppendTime : createTime)
    }
}

extension Array where Element == Int {
    /// In ascending run starts (the first 0), the run that holds `index`: the last start at or
    /// before it (binary search; usually there is a single run).
    func runContaining(_ index: Int) -> Int {
        var low = 0, high = count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if self[middle] <= index { low = middle } else { high = middle - 1 }
        }
        return low
    }
}

/// The delivery reports of a producer, in the order the broker acknowledged them. Ends after `close()`.
/// Reports travel a batch at a time (one hand-over per acknowledged batch, not per record); `batches`
/// reads them that way, which spares a suspension point per record.
public struct DeliveryReports: AsyncSequence, Sendable {
    public typealias Element = DeliveryReport
    let stream: AsyncStream<DeliveryReportBatch>

    /// The same reports, one batch of a partition at a time. Iterate either this or the reports, not both.
    public var batches: AsyncStream<DeliveryReportBatch> { stream }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var batches: AsyncStream<DeliveryReportBatch>.AsyncIterator
        var current: DeliveryReportBatch.Iterator?

        public mutating func next() async -> DeliveryReport? {
            while true {
                if let report = current?.next() { return report }
                guard let batch = await batches.next() else { return nil }
                current = batch.makeIterator()
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(batches: stream.makeAsyncIterator()) }
}
