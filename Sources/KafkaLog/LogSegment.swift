import KafkaWire
import NIOCore

/// What the log needs of a batch it appends: where its offsets and timestamps end.
public struct BatchSummary: Sendable {
    public var baseOffset: Int64
    public var lastOffset: Int64
    public var maxTimestamp: Int64
    public var size: Int

    public init(baseOffset: Int64, lastOffset: Int64, maxTimestamp: Int64, size: Int) {
        self.baseOffset = baseOffset
        self.lastOffset = lastOffset
        self.maxTimestamp = maxTimestamp
        self.size = size
    }
}

/// A segment of a partition's log: `<20-digit base offset>.log` with its `.index` and `.timeindex`,
/// and a `.txnindex` once a transaction aborts in it. The segment holds record batches back to
/// back, exactly as they travel on the wire.
public final class LogSegment {
    public let baseOffset: Int64
    public let directory: String
    let log: LogFile
    let offsetIndex: OffsetIndex
    let timeIndex: TimeIndex
    /// The transactions aborted by markers in this segment.
    let txnIndex: TransactionIndex
    /// The `.txnindex` did not read back: the producer state replay rebuilds it from the whole log.
    private(set) var txnIndexLost = false
    let indexIntervalBytes: Int
    private var bytesSinceLastIndexEntry = 0
    /// The largest record timestamp in the segment and the offset of the batch that has it.
    public private(set) var maxTimestamp: Int64 = -1
    public private(set) var offsetOfMaxTimestamp: Int64 = -1
    /// One past the last offset held (the base offset while empty).
    public private(set) var nextOffset: Int64
    /// When the segment was created or, for one found at start, opened: segment.ms counts from here.
    public let createdMs: Int64 = PartitionLog.currentTimeMs()

    public static func fileName(_ baseOffset: Int64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The base offset a file of the segment is named after (`<20 digits><suffix>`), nil for any
    /// other name. Offsets past `maxBaseOffset` are refused so that appends can never overflow.
    public static func baseOffset(fromFileName name: String, suffix: String) -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let digits = name.dropLast(suffix.count)
        guard digits.utf8.count == 20, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let offset = Int64(digits), offset <= maxBaseOffset else { return nil }
        return offset
    }

    /// Offsets stay far below Int64.max: a segment may hold up to Int32.max offsets past its base.
    public static let maxBaseOffset = Int64.max / 2

    public var size: Int { log.size }
    public var path: String { log.path }

    /// The suffixes of a segment's files.
    static let fileSuffixes = [".log", ".index", ".timeindex", ".txnindex"]

    /// Opens (or creates) the segment's files. With `loadIndexes` the index files are trusted (clean
    /// shutdown); otherwise call `recover()` before use. `suffix` names a segment being written
    /// beside the log (the cleaner's `.cleaned`).
    public init(directory: String, baseOffset: Int64, indexIntervalBytes: Int, create: Bool, loadIndexes: Bool, suffix: String = "") throws {
        self.directory = directory
        self.baseOffset = baseOffset
        self.indexIntervalBytes = indexIntervalBytes
        log = try LogFile(path: directory + "/" + Self.fileName(baseOffset, ".log") + suffix, create: create)
        offsetIndex = try OffsetIndex(path: directory + "/" + Self.fileName(baseOffset, ".index") + suffix, baseOffset: baseOffset, load: loadIndexes)
        timeIndex = try TimeIndex(path: directory + "/" + Self.fileName(baseOffset, ".timeindex") + suffix, baseOffset: baseOffset, load: loadIndexes)
        let txnPath = directory + "/" + Self.fileName(baseOffset, ".txnindex") + suffix
        do {
            txnIndex = try TransactionIndex(path: txnPath)
        } catch let error as LogError where error.kind == .corrupt {
            try LogDirectory.remove(txnPath)
            txnIndex = try TransactionIndex(path: txnPath)
            txnIndexLost = true
        }
        nextOffset = baseOffset
        if loadIndexes {
            if let last = timeIndex.lastEntry {
                maxTimestamp = last.timestamp
                offsetOfMaxTimestamp = last.offset
            }
            // The indexes are sparse: read the headers after the last entry to find the end.
            let start = offsetIndex.lastEntry?.position ?? 0
            try scanHeaders(from: start) { summary, _ in
                nextOffset = summary.lastOffset + 1
                if summary.maxTimestamp > maxTimestamp {
                    maxTimestamp = summary.maxTimestamp
                    offsetOfMaxTimestamp = summary.lastOffset
                }
                return true
            }
        }
    }

    /// Appends batches already validated and given their offsets. `pieces` are their bytes (one
    /// `pwritev`); `batches` describe them in order.
    public func append(pieces: [UnsafeRawBufferPointer], batches: [BatchSummary]) throws {
        var position = log.size
        try log.append(pieces)
        for batch in batches {
            track(batch, at: position)
            position += batch.size
        }
    }

    /// Index bookkeeping for a batch now in the file (Kafka's rule: an entry once more than
    /// `index.interval.bytes` were written since the last one; a time entry when the max grows).
    private func track(_ batch: BatchSummary, at position: Int) {
        if batch.maxTimestamp > maxTimestamp {
            maxTimestamp = batch.maxTimestamp
            offsetOfMaxTimestamp = batch.lastOffset
        }
        if bytesSinceLastIndexEntry > indexIntervalBytes {
            offsetIndex.append(offset: batch.lastOffset, position: position)
            timeIndex.maybeAppend(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp)
            bytesSinceLastIndexEntry = 0
        }
        bytesSinceLastIndexEntry += batch.size
        nextOffset = batch.lastOffset + 1
    }

    /// The segment's data file, for readers outside the partition's lock.
    public var file: SegmentFile { log.file }

    /// Reads batch headers from `position` to the end, calling `visit` with each batch's summary and
    /// position until it returns false. Stops quietly at a truncated tail.
    func scanHeaders(from position: Int, _ visit: (BatchSummary, Int) throws -> Bool) throws {
        try Self.scanHeaders(file, from: position, limit: log.size, visit)
    }

    /// The same over a shared file, below `limit` (an end taken under the partition's lock).
    static func scanHeaders(_ file: SegmentFile, from position: Int, limit end: Int, _ visit: (BatchSummary, Int) throws -> Bool) throws {
        var position = position
        while position + RecordBatchLayout.headerSize <= end {
            var header = try file.read(at: position, length: RecordBatchLayout.headerSize)
            guard let base = header.getInteger(at: 0, as: Int64.self),
                  let length = header.getInteger(at: RecordBatchLayout.batchLength, as: Int32.self),
                  let delta = header.getInteger(at: RecordBatchLayout.lastOffsetDelta, as: Int32.self),
                  let maxTimestamp = header.getInteger(at: RecordBatchLayout.maxTimestamp, as: Int64.self),
                  length >= 0 else { return }
            header.clear()
            let size = Int(length) + RecordBatchLayout.logOverhead
            guard position + size <= end else { return }
            guard try visit(BatchSummary(baseOffset: base, lastOffset: base + Int64(delta), maxTimestamp: maxTimestamp, size: size), position) else { return }
            position += size
        }
    }

    /// Where to start scanning for `offset`: the indexed position at or before it (in memory; the
    /// caller holds the partition's lock).
    func indexedPosition(atOrBefore offset: Int64) -> Int { offsetIndex.lookup(offset).position }

    /// Where to start scanning for the first record at or after `timestamp` (lock held).
    func indexedPosition(forTimestamp timestamp: Int64) -> Int { offsetIndex.lookup(timeIndex.lookup(timestamp)).position }

    /// The position and base offset of the first batch whose last offset is >= `offset`, nil if none.
    /// Without `from`, the index is consulted (only with the partition's lock held, or by the owner).
    public func find(offset: Int64) throws -> (position: Int, batch: BatchSummary)? {
        try Self.find(offset: offset, in: file, from: offsetIndex.lookup(offset).position, limit: log.size)
    }

    /// `find(offset:)` over a shared file, from an indexed position and below an end taken under the lock.
    static func find(offset: Int64, in file: SegmentFile, from: Int, limit: Int) throws -> (position: Int, batch: BatchSummary)? {
        var found: (Int, BatchSummary)?
        try scanHeaders(file, from: from, limit: limit) { summary, position in
            if summary.lastOffset >= offset {
                found = (position, summary)
                return false
            }
            return true
        }
        return found
    }

    /// The first offset whose batch's max timestamp is >= `timestamp`, with the batch's position.
    static func find(timestamp: Int64, in file: SegmentFile, from: Int, limit: Int) throws -> (position: Int, batch: BatchSummary)? {
        var found: (Int, BatchSummary)?
        try scanHeaders(file, from: from, limit: limit) { summary, position in
            if summary.maxTimestamp >= timestamp {
                found = (position, summary)
                return false
            }
            return true
        }
        return found
    }

    public func read(at position: Int, length: Int) throws -> ByteBuffer {
        try log.read(at: position, length: length)
    }

    /// Rebuilds the indexes by reading every batch, checking its header and CRC, and truncates the
    /// segment at the first batch that is torn or corrupt. Returns the bytes cut off.
    public func recover(maxBatchSize: Int) throws -> Int {
        try offsetIndex.reset()
        try timeIndex.reset()
        bytesSinceLastIndexEntry = 0
        maxTimestamp = -1
        offsetOfMaxTimestamp = -1
        nextOffset = baseOffset
        var position = 0
        let size = log.size
        while position < size {
            guard position + RecordBatchLayout.headerSize <= size,
                  let length = try log.readInteger(at: position + RecordBatchLayout.batchLength, as: Int32.self),
                  length >= Int32(RecordBatchLayout.headerSize - RecordBatchLayout.logOverhead),
                  Int(length) + RecordBatchLayout.logOverhead <= maxBatchSize,
                  position + Int(length) + RecordBatchLayout.logOverhead <= size else { break }
            let bytes = try log.read(at: position, length: Int(length) + RecordBatchLayout.logOverhead)
            guard let view = try? RecordBatchView(validating: bytes), view.baseOffset >= nextOffset,
                  view.lastOffsetDelta >= 0 else { break }
            let summary = BatchSummary(baseOffset: view.baseOffset, lastOffset: view.lastOffset,
                                       maxTimestamp: view.maxTimestamp, size: view.sizeInBytes)
            track(summary, at: position)
            position += summary.size
        }
        let cut = size - position
        if cut > 0 { try log.truncate(to: position) }
        return cut
    }

    public func flush(sync: Bool) throws {
        if sync { try log.flush() }
        try offsetIndex.flush(sync: sync)
        try timeIndex.flush(sync: sync)
        if sync { try txnIndex.syncFile?.sync() }
    }

    /// Deletes the segment's files, the indexes first (a crash in between leaves a log whose index
    /// is rebuilt, never an index beside another log). Open descriptors (a fetch being sent) stay
    /// valid until closed.
    public func delete() throws {
        try txnIndex.delete()
        try LogDirectory.remove(offsetIndex.file.path)
        try LogDirectory.remove(timeIndex.file.path)
        try LogDirectory.remove(log.path)
    }

    /// The files an fsync of the segment covers: the log and its indexes.
    var syncFiles: [SegmentFile] { [log.file, offsetIndex.file.file, timeIndex.file.file] + (txnIndex.syncFile.map { [$0] } ?? []) }
}
