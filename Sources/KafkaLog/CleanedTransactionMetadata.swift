import KafkaWire

/// Which transaction markers a clean may drop (Kafka's CleanedTransactionMetadata). Read batch by
/// batch in offset order from the log start: a marker whose transaction kept no record (an aborted
/// one, whose records the cleaner removes, or a committed one compacted away) marks nothing any
/// more, and goes once its segment is past the delete horizon, as a tombstone does, so that a
/// reader that was behind still sees it for `delete.retention.ms`.
struct CleanedTransactionMetadata {
    /// Producers inside a transaction, with whether any of its records were kept.
    private var open: [Int64: Bool] = [:]

    /// A transactional record batch of `producerId`; `kept`: some of its records stay.
    mutating func dataRead(producerId: Int64, kept: Bool) {
        open[producerId] = (open[producerId] ?? false) || kept
    }

    /// A marker of `producerId`: whether the transaction it ends kept no record (then the marker is
    /// obsolete). A marker whose records are all before the log start is obsolete too.
    mutating func markerRead(producerId: Int64) -> Bool {
        !(open.removeValue(forKey: producerId) ?? false)
    }
}
