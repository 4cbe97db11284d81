import KafkaWire

/// Which transaction markers a clean may drop (Kafka's CleanedTransactionMetadata). Read batch by
/// batch in offset order from the log start: a marker is obsolete once no batch of its transaction
/// is left in the log (an aborted one's records, which a clean removes, or a committed one's,
/// compacted away), so it goes in a clean after the one that removed the last of them, never in
/// the same one: a group of segments the log changed under is not swapped in, and its records must
/// never be left without their marker. Like a tombstone it also waits for the delete horizon, so a
/// reader that was behind still sees it for `delete.retention.ms`.
struct CleanedTransactionMetadata {
    /// Producers with a batch of their current transaction read in this clean.
    private var open: Set<Int64> = []

    /// A transactional record batch of `producerId` was read (whatever of it this clean keeps).
    mutating func dataRead(producerId: Int64) {
        open.insert(producerId)
    }

    /// A marker of `producerId`: whether no batch of the transaction it ends was read (then the
    /// marker is obsolete). A marker whose records are all before the log start is obsolete too.
    mutating func markerRead(producerId: Int64) -> Bool {
        open.remove(producerId) == nil
    }
}
