import KafkaWire

/// A segment as the cleaner sees it, taken under the partition's lock. The shared file is also the
/// segment's identity: held here, it cannot be freed and its address reused while compared.
public struct CleanableSegment: Sendable {
    let file: SegmentFile
    public let baseOffset: Int64
    public let nextOffset: Int64
    public let size: Int
    public let lastModifiedMs: Int64
    public let maxTimestamp: Int64
}

/// What the cleaner may work on in one log, taken under its lock: every segment but the active one
/// (never cleaned), where the active one starts, the log start and the log's settings.
public struct CleaningView: Sendable {
    public let topicPartition: TopicPartition
    public let segments: [CleanableSegment]
    public let activeBaseOffset: Int64
    public let logStartOffset: Int64
    public let config: LogConfig
    /// Records from here on may belong to a transaction still open: the cleaner leaves them be.
    public let lastStableOffset: Int64
    /// Every aborted transaction the log's indexes know, by first offset: their records go.
    public let abortedTransactions: [AbortedTransaction]
}

extension PartitionLog {
    /// The base offsets of the segments, the active one last.
    public var segmentBaseOffsets: [Int64] { state.withLock { $0.segments.map(\.baseOffset) } }

    /// Claims the log for a clean: false when it is deleted or being cleaned already.
    func beginCleaning() -> Bool {
        state.withLock { s in
            guard !s.deleted, !s.cleaning else { return false }
            s.cleaning = true
            return true
        }
    }

    func endCleaning() {
        state.withLock { $0.cleaning = false }
    }

    var isDeleted: Bool { state.withLock { $0.deleted } }

    /// The log as the cleaner may see it; nil once the log is deleted.
    public func cleaningView() throws -> CleaningView? {
        try state.withLock { s in
            guard !s.deleted else { return nil }
            let segments = try s.segments.dropLast().map { segment in
                CleanableSegment(file: segment.file, baseOffset: segment.baseOffset, nextOffset: segment.nextOffset, size: segment.size,
                                 lastModifiedMs: try segment.file.lastModifiedMs(), maxTimestamp: segment.maxTimestamp)
            }
            let aborted = s.segments.flatMap(\.txnIndex.entries).sorted { $0.firstOffset < $1.firstOffset }
            return CleaningView(topicPartition: topicPartition, segments: segments, activeBaseOffset: s.active.baseOffset,
                                logStartOffset: s.logStartOffset, config: s.config, lastStableOffset: s.lastStableOffset,
                                abortedTransactions: aborted)
        }
    }

    /// Writes a producer snapshot at the log end before a clean swaps segments in: a clean may drop
    /// an idempotent producer's batches, and a restart must not rebuild the producer's sequence
    /// state from what is left (it would take a retry for a new batch, or a new batch for a retry).
    /// The snapshot is written outside the lock; appends after its end are replayed at start-up.
    func snapshotProducersForCleaning() throws {
        let (bytes, end) = state.withLock { s in (s.producerState.snapshot(), s.active.nextOffset) }
        try LogState.storeProducerSnapshot(bytes, at: end, in: directory)
    }

    /// Puts the cleaned segment written at `base` (`<base>.log.cleaned`...) in place of `replaced`,
    /// consecutive segments of an earlier `cleaningView()`, with `SegmentSwap`'s crash-safe steps.
    /// Under the lock only renames and unlinks happen: appends and fetches wait no longer than that.
    /// Readers holding a replaced segment's file keep reading it (unlinked files stay readable).
    /// False, with the cleaned files removed, when the log changed meanwhile (retention or
    /// DeleteRecords removed a segment, or the log was deleted): the clean of this group is dropped.
    func replaceSegments(_ replaced: ArraySlice<CleanableSegment>, withCleanedAt base: Int64) throws -> Bool {
        let swapped = try state.withLock { s -> Bool in
            guard !s.deleted, let firstReplaced = replaced.first,
                  let first = s.segments.firstIndex(where: { $0.file === firstReplaced.file }),
                  first + replaced.count < s.segments.count,
                  zip(s.segments[first..<first + replaced.count], replaced).allSatisfy({ $0.file === $1.file }) else {
                try SegmentSwap.removeCleaned(directory, base)
                return false
            }
            try SegmentSwap.commit(directory, base)
            for segment in s.segments[first..<first + replaced.count] { try segment.delete() }
            try SegmentSwap.finish(directory, base)
            let cleaned = try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: s.config.indexIntervalBytes,
                                         create: false, loadIndexes: true)
            s.segments.replaceSubrange(first..<first + replaced.count, with: [cleaned])
            return true
        }
        if swapped { LogDirectory.syncDirectory(directory) }
        return swapped
    }
}
