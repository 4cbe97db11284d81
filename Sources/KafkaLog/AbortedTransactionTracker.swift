import KafkaWire

/// Tells, batch by batch in offset order, which transactional batches belong to an aborted
/// transaction (Kafka's cleaner does the same with the transaction index): a producer's
/// transactional batches from an aborted transaction's first offset up to its marker are aborted.
struct AbortedTransactionTracker {
    private let aborted: [AbortedTransaction]
    private var next = 0
    /// Producers inside an aborted transaction, with the offset of the marker that ends it.
    private var open: [Int64: Int64] = [:]

    /// `aborted` ordered by first offset.
    init(_ aborted: [AbortedTransaction]) {
        self.aborted = aborted
    }

    /// Whether `batch` is a record batch of an aborted transaction. Call for every batch in order.
    mutating func isAborted(_ batch: RecordBatchView) -> Bool {
        while next < aborted.count, aborted[next].firstOffset <= batch.baseOffset {
            if aborted[next].lastOffset >= batch.baseOffset { open[aborted[next].producerId] = aborted[next].lastOffset }
            next += 1
        }
        guard batch.attributes.isTransactional, let marker = open[batch.producerId] else { return false }
        if batch.attributes.isControl {
            if marker == batch.baseOffset { open[batch.producerId] = nil }
            return false
        }
        return batch.baseOffset < marker
    }
}
