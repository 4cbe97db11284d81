import KafkaWire
import Logging
import NIOCore

/// What one clean did: the cleaner's log line and the benchmarks report it.
public struct CleanerStats: Sendable {
    public var bytesRead = 0
    public var bytesWritten = 0
    public var recordsRead = 0
    public var recordsRemoved = 0
    /// Transaction markers dropped: their transactions kept no record and they were past the delete horizon.
    public var markersRemoved = 0
    public var mapEntries = 0
    public var segmentsBefore = 0
    public var segmentsAfter = 0
    /// Groups not swapped in because the log changed meanwhile (retention, DeleteRecords, deletion).
    public var groupsDropped = 0
}

/// Thrown when the cleaner is told to stop in the middle of a clean: the clean is abandoned and its
/// files removed; the log is as it was.
struct CleanerStopped: Error {}

/// Cleans one compacted log (Kafka's Cleaner). Two passes over the files, neither under the log's
/// lock: the dirty section (from the first offset not yet cleaned to the first one that may not
/// be, `firstUncleanable`) is read into a key → latest offset map; then the log's segments from
/// the start up to the map's end are rewritten in groups no larger than a segment, keeping a
/// record when no later record has its key, when it is past the map, and, for a tombstone, until
/// it has been through a clean and `delete.retention.ms` has passed. Records of aborted
/// transactions go; a transaction marker goes like a tombstone once its transaction kept no record. Offsets and batch headers
/// (producer id, epoch, sequences, timestamps) are kept; a batch losing some records is rebuilt
/// with its codec. Each group is swapped in on its own (`PartitionLog.replaceSegments`).
///
/// Owned by one cleaner thread; not shared.
final class Cleaner {
    let dedupeBufferSize: Int
    private var throttler: Throttler
    private let shouldStop: () -> Bool
    /// Bytes read from a segment in one go.
    static let readChunk = 1 << 20
    /// Cleaned bytes gathered before one write.
    static let writeChunk = 1 << 20

    init(dedupeBufferSize: Int, ioMaxBytesPerSecond: Double, shouldStop: @escaping () -> Bool) {
        self.dedupeBufferSize = dedupeBufferSize
        throttler = Throttler(bytesPerSecond: ioMaxBytesPerSecond)
        self.shouldStop = shouldStop
    }

    /// Cleans `log` from `firstDirty`; returns the offset the next clean's dirty section starts at.
    func clean(_ log: PartitionLog, view: CleaningView, firstDirty: Int64, firstUncleanable: Int64,
               nowMs: Int64, stats: inout CleanerStats) throws -> Int64 {
        let (map, end) = try buildOffsetMap(view, from: firstDirty, to: firstUncleanable, stats: &stats)
        stats.mapEntries = map.count
        stats.segmentsBefore = view.segments.count
        try log.snapshotProducersForCleaning()
        let groups = Self.groups(view.segments, below: end, maxBytes: view.config.segmentBytes)
        var groupIndex = 0
        var transactions = (aborted: AbortedTransactionTracker(view.abortedTransactions), cleaned: CleanedTransactionMetadata())
        for group in groups {
            groupIndex += group.count
            let following = groupIndex < view.segments.count ? view.segments[groupIndex].baseOffset : view.activeBaseOffset
            try cleanGroup(group, of: log, config: view.config, map: map, transactions: &transactions, firstDirty: firstDirty,
                           following: following, nowMs: nowMs, stats: &stats)
        }
        stats.segmentsAfter = view.segments.count - groups.reduce(0) { $0 + $1.count - 1 }
        // A group left as it was (the log changed under it) still holds dirty records: the dirty
        // section starts where it did, or a later clean would take them for clean and drop a
        // tombstone that hides one of them.
        return stats.groupsDropped > 0 ? firstDirty : end
    }

    // MARK: Pass 1: the offset map

    /// Maps every key of the dirty section to its latest offset. A map that fills up ends the
    /// section early: the returned end is the first offset not mapped.
    private func buildOffsetMap(_ view: CleaningView, from firstDirty: Int64, to firstUncleanable: Int64,
                                stats: inout CleanerStats) throws -> (OffsetMap, Int64) {
        let map = OffsetMap(bufferBytes: dedupeBufferSize, expectedEntries: Int(clamping: firstUncleanable - firstDirty))
        var end = firstUncleanable
        var full = false
        // Records of aborted transactions are not mapped: they must not hide a key's committed value.
        var aborted = AbortedTransactionTracker(view.abortedTransactions)
        for segment in view.segments where segment.nextOffset > firstDirty && segment.baseOffset < firstUncleanable {
            stats.bytesRead += try forEachBatch(in: segment) { batch in
                let isAborted = aborted.isAborted(batch)
                guard batch.lastOffset >= firstDirty else { return true }
                guard batch.baseOffset < firstUncleanable else { return false }
                guard !batch.attributes.isControl, !isAborted else { return true }
                let section = try batch.decompressedRecords()
                try batch.forEachRecordSpan(in: section) { span, raw in
                    guard !full, span.offset >= firstDirty, span.offset < firstUncleanable, let key = span.key else { return }
                    if !map.put(KeyHash(UnsafeRawBufferPointer(rebasing: raw[key])), offset: span.offset) {
                        full = true
                        end = span.offset
                    }
                }
                return !full
            }
            if full { break }
        }
        return (map, end)
    }

    // MARK: Pass 2: rewriting

    /// Consecutive segments from the log start whose base is below `end`, grouped so that each
    /// group's bytes fit a segment and its offsets an index's 32-bit relative offsets.
    static func groups(_ segments: [CleanableSegment], below end: Int64, maxBytes: Int) -> [ArraySlice<CleanableSegment>] {
        let cleanable = segments.prefix { $0.baseOffset < end }
        var groups: [ArraySlice<CleanableSegment>] = []
        var start = cleanable.startIndex
        while start < cleanable.endIndex {
            var next = start + 1
            var bytes = cleanable[start].size
            while next < cleanable.endIndex, bytes + cleanable[next].size <= maxBytes,
                  cleanable[next].nextOffset - cleanable[start].baseOffset <= Int64(Int32.max) {
                bytes += cleanable[next].size
                next += 1
            }
            groups.append(cleanable[start..<next])
            start = next
        }
        return groups
    }

    /// Writes what survives of `group` to `<base>.log.cleaned`, fsyncs it and swaps it in.
    private func cleanGroup(_ group: ArraySlice<CleanableSegment>, of log: PartitionLog, config: LogConfig, map: OffsetMap,
                            transactions: inout (aborted: AbortedTransactionTracker, cleaned: CleanedTransactionMetadata),
                            firstDirty: Int64, following: Int64, nowMs: Int64, stats: inout CleanerStats) throws {
        guard let base = group.first?.baseOffset else { return }
        let directory = log.directory
        try SegmentSwap.removeCleaned(directory, base)
        do {
            let cleaned = try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                                         create: true, loadIndexes: false, suffix: SegmentSwap.cleanedSuffix)
            var output = BatchWriter()
            for segment in group {
                // A tombstone goes once its segment has been through a clean and delete.retention.ms
                // has passed since the segment was last written.
                let dropTombstones = segment.nextOffset <= firstDirty && nowMs - segment.lastModifiedMs > config.deleteRetentionMs
                stats.bytesRead += try forEachBatch(in: segment) { batch in
                    let isAborted = transactions.aborted.isAborted(batch)
                    if batch.attributes.isControl {
                        let obsolete = batch.attributes.isTransactional && transactions.cleaned.markerRead(producerId: batch.producerId)
                        if obsolete && dropTombstones {
                            stats.markersRemoved += 1
                            return true
                        }
                    }
                    try output.add(batch, map: map, aborted: isAborted, dropTombstones: dropTombstones, stats: &stats)
                    if batch.attributes.isTransactional && !batch.attributes.isControl {
                        transactions.cleaned.dataRead(producerId: batch.producerId)
                    }
                    if output.pendingBytes >= Self.writeChunk {
                        let written = try output.write(to: cleaned)
                        stats.bytesWritten += written
                        throttler.record(written)
                    }
                    return true
                }
            }
            stats.bytesWritten += try output.write(to: cleaned)
            try cleaned.flush(sync: true)
            try cleaned.log.file.setLastModified(ms: group.map(\.lastModifiedMs).max() ?? nowMs)
            try SegmentSwap.writeEnd(directory, base, end: following)
        } catch {
            try? SegmentSwap.removeCleaned(directory, base)
            throw error
        }
        if try !log.replaceSegments(group, withCleanedAt: base) { stats.groupsDropped += 1 }
    }

    // MARK: Reading

    /// A batch the cleaner rewrites must be whole (its CRC: a rewrite would stamp a valid one on
    /// damaged data) and inside its segment's offsets.
    static func check(_ batch: RecordBatchView, in segment: CleanableSegment) throws {
        guard batch.computeCRC() == batch.crc else {
            throw LogError(.corrupt, "\(segment.file.path): the batch at offset \(batch.baseOffset) fails its CRC")
        }
        guard batch.baseOffset >= segment.baseOffset, batch.lastOffsetDelta >= 0, batch.lastOffset < segment.nextOffset else {
            throw LogError(.corrupt, "\(segment.file.path): a batch claims offsets \(batch.baseOffset)-\(batch.lastOffset) outside the segment's")
        }
    }

    /// Hands `body` the segment's batches in order, reading a chunk at a time, until it returns
    /// false. Checks for a stop and holds to the I/O rate between chunks. Returns the bytes read.
    private func forEachBatch(in segment: CleanableSegment, _ body: (RecordBatchView) throws -> Bool) throws -> Int {
        var position = 0
        while position + RecordBatchLayout.logOverhead <= segment.size {
            if shouldStop() { throw CleanerStopped() }
            let chunk = try segment.file.read(at: position, length: min(Self.readChunk, segment.size - position))
            var iterator = RecordBatchIterator(chunk)
            var consumed = 0
            while let batch = iterator.next() {
                consumed += batch.sizeInBytes
                try Self.check(batch, in: segment)
                guard try body(batch) else { return position + consumed }
            }
            if let error = iterator.error {
                throw LogError(.corrupt, "\(segment.file.path) at \(position + consumed): \(error.message)")
            }
            if consumed == 0 {
                // One batch larger than a chunk: read it whole.
                guard let length = try segment.file.readInteger(at: position + RecordBatchLayout.batchLength, as: Int32.self),
                      length >= 0, position + Int(length) + RecordBatchLayout.logOverhead <= segment.size else {
                    throw LogError(.corrupt, "\(segment.file.path): a batch at \(position) runs past the segment's end")
                }
                let size = Int(length) + RecordBatchLayout.logOverhead
                let batch = try RecordBatchView(unchecked: try segment.file.read(at: position, length: size))
                consumed = size
                try Self.check(batch, in: segment)
                guard try body(batch) else { return position + consumed }
            }
            position += consumed
            throttler.record(consumed)
        }
        return position
    }
}

/// Gathers the cleaned batches of a group and writes them to the cleaned segment in large pieces.
struct BatchWriter {
    private var pending = ByteBuffer()
    private var summaries: [BatchSummary] = []
    /// Reused for every batch: the byte ranges of the records it keeps, and their bytes.
    private var keptRanges: [Range<Int>] = []
    private var kept = ByteBuffer()

    var pendingBytes: Int { pending.readableBytes }

    /// Adds what survives of `batch`: the batch as it is when every record stays, its surviving
    /// records in a rebuilt batch when some go, nothing when none stays or the batch belongs to an
    /// aborted transaction. Control batches (transaction markers) given here stay whole (the caller
    /// drops obsolete ones).
    mutating func add(_ batch: RecordBatchView, map: OffsetMap, aborted: Bool = false, dropTombstones: Bool, stats: inout CleanerStats) throws {
        guard !batch.attributes.isControl else { return append(batch.buffer, like: batch) }
        if aborted {
            stats.recordsRead += Int(batch.recordCount)
            stats.recordsRemoved += Int(batch.recordCount)
            return
        }
        let section = try batch.decompressedRecords()
        keptRanges.removeAll(keepingCapacity: true)
        var total = 0
        try batch.forEachRecordSpan(in: section) { span, raw in
            total += 1
            if Self.keeps(span, raw, map: map, dropTombstones: dropTombstones) { keptRanges.append(span.range) }
        }
        stats.recordsRead += total
        stats.recordsRemoved += total - keptRanges.count
        if keptRanges.count == total { return append(batch.buffer, like: batch) }
        guard !keptRanges.isEmpty else { return }
        kept.clear()
        section.withUnsafeReadableBytes { raw in
            for range in keptRanges { kept.writeBytes(UnsafeRawBufferPointer(rebasing: raw[range])) }
        }
        append(try batch.keeping(records: kept, count: Int32(keptRanges.count)), like: batch)
    }

    /// Kafka's rule: a record without a key goes (a compacted topic cannot place it), an older
    /// record of a key mapped at a later offset goes, an expired tombstone goes; the rest stays.
    static func keeps(_ span: RecordSpan, _ raw: UnsafeRawBufferPointer, map: OffsetMap, dropTombstones: Bool) -> Bool {
        guard let key = span.key else { return false }
        if let latest = map.get(KeyHash(UnsafeRawBufferPointer(rebasing: raw[key]))), span.offset < latest { return false }
        return !(span.isTombstone && dropTombstones)
    }

    private mutating func append(_ bytes: ByteBuffer, like batch: RecordBatchView) {
        summaries.append(BatchSummary(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, maxTimestamp: batch.maxTimestamp,
                                      size: bytes.readableBytes))
        pending.writeImmutableBuffer(bytes)
    }

    /// Appends the gathered batches to `segment`; returns the bytes written.
    mutating func write(to segment: LogSegment) throws -> Int {
        let bytes = pending.readableBytes
        guard bytes > 0 else { return 0 }
        try pending.withUnsafeReadableBytes { try segment.append(pieces: [$0], batches: summaries) }
        pending.clear()
        summaries.removeAll(keepingCapacity: true)
        return bytes
    }
}
