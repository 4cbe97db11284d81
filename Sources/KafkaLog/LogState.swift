import KafkaWire
import Logging
import NIOCore

/// Everything of a partition's log that changes, owned by the partition's mutex (`PartitionLog`):
/// the segments (the last is the active one; never empty), the log start offset, the idempotent
/// producers, flush bookkeeping and the waiting long polls.
struct LogState {
    let directory: String
    let topicPartition: TopicPartition
    let logger: Logger
    var segments: [LogSegment]
    var active: LogSegment { segments[segments.count - 1] }
    /// Set by `delete()`: the files are gone and appends are refused.
    var deleted = false
    /// A cleaner is writing files in the directory (`beginCleaning`); `delete()` waits for it.
    var cleaning = false
    var logStartOffset: Int64
    var config: LogConfig
    var producerState = ProducerStateManager()
    var unflushedMessages: Int64 = 0
    var lastFlushMs: Int64
    var recoveryPoint: Int64
    var appendListeners: [UInt64: @Sendable () -> Void] = [:]
    /// KIP-890: markers written per producer since start. A transactional produce notes the count
    /// before it asks the coordinator and appends only if it is unchanged: a marker in between ended
    /// the transaction the coordinator vouched for, and the batch would open one nobody would end.
    var markerCounts: [Int64: UInt64] = [:]
    var nextListenerId: UInt64 = 0

    init(directory: String, topicPartition: TopicPartition, logger: Logger, segments: [LogSegment], logStartOffset: Int64?,
         recoveryPoint: Int64, config: LogConfig, nowMs: Int64) {
        self.directory = directory
        self.topicPartition = topicPartition
        self.logger = logger
        self.segments = segments
        self.config = config
        lastFlushMs = nowMs
        let first = segments[0].baseOffset, end = segments[segments.count - 1].nextOffset
        self.logStartOffset = min(max(logStartOffset ?? first, first), end)
        self.recoveryPoint = min(recoveryPoint, end)
    }

    /// Starts a new active segment at `offset`.
    mutating func roll(at offset: Int64) throws {
        try active.flush(sync: false)
        segments.append(try LogSegment(directory: directory, baseOffset: offset, indexIntervalBytes: config.indexIntervalBytes,
                                       create: true, loadIndexes: false))
        logger.debug("rolled new segment", metadata: ["partition": "\(topicPartition)", "baseOffset": "\(offset)"])
    }

    /// Deletes leading segments while `shouldDelete(segment, next)` says so; the active one stays.
    mutating func deleteSegments(_ shouldDelete: (LogSegment, LogSegment?) -> Bool) throws -> Int {
        var deleted = 0
        while segments.count > 1, shouldDelete(segments[0], segments[1]) {
            let segment = segments.removeFirst()
            try segment.delete()
            deleted += 1
        }
        if deleted > 0 {
            logStartOffset = max(logStartOffset, segments[0].baseOffset)
            logger.info("deleted \(deleted) old segment(s)", metadata: ["partition": "\(topicPartition)", "logStartOffset": "\(logStartOffset)"])
        }
        return deleted
    }

    /// Writes the pending index entries (page cache) of every segment with data past the recovery
    /// point and returns the files to fsync and the offset they make durable.
    mutating func flushPlan(nowMs: Int64) throws -> ([SegmentFile], Int64) {
        var files: [SegmentFile] = []
        for segment in segments where segment.nextOffset > recoveryPoint || segment === active {
            try segment.flush(sync: false)
            files += segment.syncFiles
        }
        unflushedMessages = 0
        lastFlushMs = nowMs
        return (files, active.nextOffset)
    }

    // MARK: Producer state persistence

    func writeProducerSnapshot() throws {
        try Self.storeProducerSnapshot(producerState.snapshot(), at: active.nextOffset, in: directory)
    }

    /// Writes `<end>.snapshot` atomically and removes the older ones (one written meanwhile for a
    /// later end, by a close while the cleaner writes its own, stays).
    static func storeProducerSnapshot(_ bytes: ByteBuffer, at end: Int64, in directory: String) throws {
        let name = LogSegment.fileName(end, ".snapshot")
        let file = try LogFile(path: directory + "/" + name + ".tmp", create: true)
        try file.truncate(to: 0)
        try file.append(bytes)
        try file.flush()
        try LogDirectory.rename(directory + "/" + name + ".tmp", directory + "/" + name)
        for old in try LogDirectory.list(directory) {
            guard let offset = LogSegment.baseOffset(fromFileName: old, suffix: ".snapshot"), offset < end else { continue }
            try LogDirectory.remove(directory + "/" + old)
        }
    }

    /// Where read_committed readers stop: the first offset of the earliest open transaction, else
    /// the log end.
    var lastStableOffset: Int64 { producerState.firstUnstableOffset ?? active.nextOffset }

    /// Ends `producerId`'s transaction with the marker appended at `offset` into the active segment;
    /// an abort is written to the segment's transaction index.
    mutating func completeTransaction(producerId: Int64, epoch: Int16, marker: EndTransactionMarker, offset: Int64,
                                      timestamp: Int64, in segment: LogSegment) throws {
        // The abort is indexed before the transaction is closed: an index write that fails leaves the
        // transaction open (its records stay hidden) and the coordinator writes the marker again.
        if marker.kind == .abort, let first = producerState.producers[producerId]?.currentTxnFirstOffset, first >= 0 {
            var after = producerState
            after.completeTransaction(producerId: producerId, epoch: epoch, coordinatorEpoch: marker.coordinatorEpoch,
                                      offset: offset, timestamp: timestamp)
            try segment.txnIndex.append(AbortedTransaction(producerId: producerId, firstOffset: first, lastOffset: offset,
                                                           lastStableOffset: after.firstUnstableOffset ?? offset + 1))
        }
        producerState.completeTransaction(producerId: producerId, epoch: epoch, coordinatorEpoch: marker.coordinatorEpoch,
                                          offset: offset, timestamp: timestamp)
    }

    /// The aborted transactions a read_committed fetch from `offset` up to `upperBound` may meet:
    /// those whose marker is at or after `offset` and whose records start before `upperBound`. A
    /// marker may lie far past `upperBound` (another producer's open transaction holds the last
    /// stable offset back), so every later segment's index is looked at: the entries are few.
    func abortedTransactions(from offset: Int64, upTo upperBound: Int64) -> [AbortedTransaction] {
        let first = segments.lastIndex(where: { $0.baseOffset <= offset }) ?? 0
        var found: [AbortedTransaction] = []
        for segment in segments[first...] {
            for entry in segment.txnIndex.entries where entry.lastOffset >= offset && entry.firstOffset < upperBound {
                found.append(entry)
            }
        }
        return found
    }

    /// The newest snapshot at or below the log end, then the batches after it replayed from the log:
    /// data batches update the producers' sequences and open transactions, markers close them and
    /// rebuild the transaction indexes from the snapshot on. A transaction index that did not read
    /// back makes the replay start at the log's first segment, without a snapshot.
    mutating func loadProducerState(trustedUpTo limit: Int64? = nil) throws {
        // After an unclean stop only what was fsynced is trusted: a snapshot past the recovery point
        // may describe index entries (.txnindex) that did not reach the disk.
        let end = min(active.nextOffset, limit ?? Int64.max)
        let snapshots = try LogDirectory.list(directory).filter { $0.hasSuffix(".snapshot") }
            .compactMap { name in LogSegment.baseOffset(fromFileName: name, suffix: ".snapshot").map { ($0, name) } }.sorted { $0.0 < $1.0 }
        var from = segments[0].baseOffset
        producerState = ProducerStateManager()
        let indexLost = segments.contains { $0.txnIndexLost }
        if indexLost { logger.warning("a transaction index of \(topicPartition) was damaged: rebuilding them all from the log") }
        for (offset, name) in snapshots.reversed() where offset <= end && !indexLost {
            let file = try LogFile(path: directory + "/" + name, create: false)
            if let state = try? ProducerStateManager(snapshot: try file.read(at: 0, length: file.size)) {
                producerState = state
                from = offset
                break
            }
            logger.warning("ignoring corrupt producer snapshot \(name)")
        }
        for segment in segments where segment.nextOffset > from || segment.txnIndex.entries.contains(where: { $0.lastOffset >= from }) {
            try segment.txnIndex.truncate(from: from)
        }
        guard from < active.nextOffset else { return }
        for segment in segments where segment.nextOffset > from {
            var position = try segment.find(offset: from)?.position ?? segment.size
            while position < segment.size {
                // A length that cannot be a batch's ends the replay of this segment (it would loop or run back).
                guard let length = try segment.log.readInteger(at: position + RecordBatchLayout.batchLength, as: Int32.self),
                      Int(length) >= RecordBatchLayout.headerSize - RecordBatchLayout.logOverhead else { break }
                let bytes = try segment.read(at: position, length: RecordBatchLayout.headerSize)
                guard bytes.readableBytes == RecordBatchLayout.headerSize else { break }
                var header = bytes
                // Header-only view: the batch length field is made to match the bytes read.
                header.setInteger(Int32(RecordBatchLayout.headerSize - RecordBatchLayout.logOverhead), at: RecordBatchLayout.batchLength)
                if let view = try? RecordBatchView(unchecked: header), view.lastOffset >= from {
                    if view.attributes.isControl {
                        // A marker is read whole (it is one small record) to learn commit or abort.
                        let whole = try segment.read(at: position, length: Int(length) + RecordBatchLayout.logOverhead)
                        if let full = try? RecordBatchView(unchecked: whole), let marker = EndTransactionMarker(controlBatch: full) {
                            try completeTransaction(producerId: full.producerId, epoch: full.producerEpoch, marker: marker,
                                                    offset: full.baseOffset, timestamp: full.maxTimestamp, in: segment)
                        }
                    } else {
                        producerState.replay(view)
                    }
                }
                position += Int(length) + RecordBatchLayout.logOverhead
            }
        }
    }
}
