#if canImport(Glibc)
import Glibc
#endif
import KafkaWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Why an append is refused. The request layer turns each into its Kafka error code.
public enum AppendError: Error, Sendable {
    case corruptMessage(String)
    case messageTooLarge(String)
    case invalidRecord(String)
    case invalidTimestamp(String)
    case unsupportedMagic(String)
    case producer(ProducerStateError)
    /// The append alone is larger than a whole segment (RECORD_LIST_TOO_LARGE).
    case recordListTooLarge(String)
    case storage(String)
    /// The partition was deleted while the request was on its way.
    case logDeleted(String)
}

public struct AppendResult: Sendable {
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The broker's timestamp when the topic uses LogAppendTime, else -1.
    public var logAppendTime: Int64
    public var logStartOffset: Int64
    public var recordCount: Int
    /// flush.messages or flush.ms says the log is due an fsync: call `flush()` (it blocks) before answering.
    public var flushDue = false
}

/// What a fetch reads: a byte range of one segment file, sent as is.
public struct LogReadSlice: Sendable {
    public let segment: LogSegment
    public let position: Int
    public let length: Int
}

public enum LogReadResult: Sendable {
    case offsetOutOfRange
    /// Nothing at this offset yet (the offset is the log end).
    case empty
    case slice(LogReadSlice)
}

/// A partition's log (Kafka's UnifiedLog, single replica): an ordered list of segments, the log start
/// and end offsets, idempotent producer state, retention and flush policy. Thread-safe: every public
/// method holds the partition's lock, and file reads for fetches happen outside it on ranges that are
/// never rewritten.
public final class PartitionLog: @unchecked Sendable {
    public let topicPartition: TopicPartition
    public let directory: String
    private let lock = NIOLock()
    /// Never empty: the last is the active segment (deletion and retention always keep one).
    private var segments: [LogSegment]
    private var active: LogSegment { segments[segments.count - 1] }
    /// Set by `delete()`: the files are gone and appends are refused.
    private var deleted = false
    private var _logStartOffset: Int64
    private var _config: LogConfig
    private var producerState = ProducerStateManager()
    private var unflushedMessages: Int64 = 0
    private var lastFlushMs: Int64
    private var recoveryPoint: Int64
    private var appendListeners: [UInt64: @Sendable () -> Void] = [:]
    private var nextListenerId: UInt64 = 0
    let logger: Logger

    public var logStartOffset: Int64 { lock.withLock { _logStartOffset } }
    /// The next offset to be assigned (the high watermark on a single node).
    public var logEndOffset: Int64 { lock.withLock { active.nextOffset } }
    public var config: LogConfig {
        get { lock.withLock { _config } }
        set { lock.withLock { _config = newValue } }
    }
    public var sizeInBytes: Int { lock.withLock { segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { lock.withLock { segments.count } }
    public var recoveryPointOffset: Int64 { lock.withLock { recoveryPoint } }

    /// Opens the partition's directory. `clean` says the broker stopped cleanly: indexes are then
    /// trusted; otherwise every segment from the recovery point on is re-read, its CRCs checked, torn
    /// or corrupt tails truncated and indexes rebuilt.
    public init(directory: String, topicPartition: TopicPartition, config: LogConfig, logStartOffset: Int64?,
                recoveryPoint: Int64?, clean: Bool, logger: Logger, nowMs: Int64 = currentTimeMs()) throws {
        self.directory = directory
        self.topicPartition = topicPartition
        self._config = config
        self.logger = logger
        lastFlushMs = nowMs
        try LogDirectory.create(directory)
        let names = try LogDirectory.list(directory)
        // Leftovers of an interrupted atomic write or segment deletion go first.
        for name in names where name.hasSuffix(".tmp") || name.hasSuffix(".deleted") {
            try LogDirectory.remove(directory + "/" + name)
        }
        var bases: [Int64] = []
        for name in names where name.hasSuffix(".log") {
            guard let base = LogSegment.baseOffset(fromFileName: name, suffix: ".log") else {
                logger.warning("ignoring \(directory)/\(name): not a segment name (20 digits of a base offset, then .log)")
                continue
            }
            bases.append(base)
        }
        bases.sort()
        var opened: [LogSegment] = []
        let point = recoveryPoint ?? 0
        for (i, base) in bases.enumerated() {
            let nextBase = i + 1 < bases.count ? bases[i + 1] : nil
            // A segment wholly below the recovery point was flushed: trust it even after a crash.
            let trusted = clean || (nextBase.map { $0 <= point } ?? false)
            let hasIndex = LogDirectory.exists(directory + "/" + LogSegment.fileName(base, ".index"))
            var needsRecovery = !(trusted && hasIndex)
            var segment: LogSegment
            do {
                segment = try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                                         create: false, loadIndexes: !needsRecovery)
            } catch let error as LogError where error.kind == .corrupt {
                // Even a trusted segment's index may be damaged (a disk error, a hand edit): the log is
                // the truth, so the index is rebuilt from it rather than refusing to start.
                logger.warning("index of segment \(base) in \(directory) is corrupt, rebuilding it: \(error)")
                segment = try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                                         create: false, loadIndexes: false)
                needsRecovery = true
            }
            if needsRecovery {
                let cut: Int
                do {
                    cut = try segment.recover(maxBatchSize: max(config.maxMessageBytes, 1 << 20) * 2 + RecordBatchLayout.headerSize)
                } catch let error as LogError where error.kind == .corrupt {
                    logger.warning("rebuilding index of \(segment.path): \(error)")
                    segment = try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                                             create: false, loadIndexes: false)
                    cut = try segment.recover(maxBatchSize: Int.max)
                }
                if cut > 0 {
                    logger.warning("recovery truncated \(cut) bytes of torn or corrupt data", metadata: ["segment": "\(segment.path)"])
                }
            }
            // A segment after a truncated one cannot follow it: its offsets would leave a gap or overlap.
            if let previous = opened.last, segment.baseOffset < previous.nextOffset || (previous.size > 0 && segment.size == 0) {
                logger.warning("deleting segment \(segment.path) that no longer follows its predecessor")
                try segment.delete()
                continue
            }
            opened.append(segment)
        }
        if opened.isEmpty {
            let base = max(logStartOffset ?? 0, 0)
            opened.append(try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                                         create: true, loadIndexes: false))
        }
        segments = opened
        let end = opened.last!.nextOffset
        _logStartOffset = min(max(logStartOffset ?? opened.first!.baseOffset, opened.first!.baseOffset), end)
        self.recoveryPoint = min(point, end)
        try loadProducerState()
        if !clean { self.recoveryPoint = end }
    }

    public static func currentTimeMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    // MARK: Append

    /// Validates, stamps and appends the batches of a produce request (already sized to the request),
    /// with one write. Each batch gets the next offsets; nothing is appended if any batch is refused.
    public func append(_ records: ByteBuffer, nowMs: Int64 = currentTimeMs()) throws(AppendError) -> AppendResult {
        var records = records
        let config = self.config
        // Pass 1: split and validate without the lock.
        var iterator = RecordBatchIterator(records)
        var positions: [(position: Int, view: RecordBatchView)] = []
        var position = 0
        while let view = iterator.next() {
            try Self.validate(view, config: config, nowMs: nowMs)
            positions.append((position, view))
            position += view.sizeInBytes
        }
        if let error = iterator.error {
            if error.code == .unsupportedMagic { throw .unsupportedMagic(error.message) }
            throw .corruptMessage(error.message)
        }
        guard iterator.remainder.readableBytes == 0 else {
            throw .corruptMessage("\(iterator.remainder.readableBytes) trailing bytes do not form a complete batch")
        }
        // Produce v3+ carries exactly one batch per partition (Kafka's ProduceRequest.validateRecords).
        guard positions.count == 1 else {
            throw .invalidRecord(positions.isEmpty ? "a produce must carry one record batch per partition"
                                                   : "a produce must carry one record batch per partition, not \(positions.count)")
        }
        guard position <= config.segmentBytes else {
            throw .recordListTooLarge("\(position) bytes do not fit in a segment of segment.bytes \(config.segmentBytes)")
        }
        if config.logAppendTime {
            // Rewriting covered fields means rewriting the CRC; this is the only path that touches the bytes.
            for (index, entry) in positions.enumerated() {
                var view = entry.view
                view.setMaxTimestamp(nowMs, timestampType: .logAppendTime)
                records.setBuffer(view.buffer, at: records.readerIndex + entry.position)
                positions[index].view = view
            }
        }

        // Called once the lock is released (defers run last to first), so a listener may read the log.
        var listeners: [@Sendable () -> Void] = []
        defer { for listener in listeners { listener() } }
        lock.lock()
        defer { lock.unlock() }
        do {
            // A produce that found the log just before its topic was deleted.
            guard !deleted else { throw .logDeleted("\(topicPartition) was deleted") }
            var nextOffset = active.nextOffset
            let totalSize = position
            let lastOffsetAfter = nextOffset + positions.reduce(0) { $0 + Int64($1.view.lastOffsetDelta) + 1 } - 1
            if let active = segments.last, active.size > 0,
               active.size + totalSize > config.segmentBytes || lastOffsetAfter - active.baseOffset > Int64(Int32.max) {
                do { try roll(at: nextOffset) } catch { throw .storage("\(error)") }
            }
            let segment = active
            var state = producerState
            var summaries: [BatchSummary] = []
            var headers = [UInt8](repeating: 0, count: 16 * positions.count)
            for (index, entry) in positions.enumerated() {
                let v = entry.view
                let base = nextOffset
                let last = base + Int64(v.lastOffsetDelta)
                if v.producerId >= 0 {
                    // Idempotence: a retry of one of the producer's last batches is answered, not appended.
                    do throws(ProducerStateError) {
                        let verdict = try state.check(producerId: v.producerId, epoch: v.producerEpoch,
                                                      firstSequence: v.baseSequence, lastSequence: v.lastSequence)
                        if case .duplicate(let original) = verdict {
                            guard positions.count == 1 else {
                                throw ProducerStateError.outOfOrderSequence("a retried batch came with other batches in one request")
                            }
                            return AppendResult(firstOffset: original.firstOffset, lastOffset: original.lastOffset,
                                                logAppendTime: config.logAppendTime ? nowMs : -1,
                                                logStartOffset: _logStartOffset, recordCount: 0)
                        }
                    } catch {
                        throw .producer(error)
                    }
                    state.record(producerId: v.producerId, epoch: v.producerEpoch, firstSequence: v.baseSequence,
                                 lastSequence: v.lastSequence, firstOffset: base, lastOffset: last, timestamp: v.maxTimestamp)
                }
                withUnsafeBytes(of: base.bigEndian) { headers.replaceSubrange(index * 16..<index * 16 + 8, with: $0) }
                withUnsafeBytes(of: v.batchLength.bigEndian) { headers.replaceSubrange(index * 16 + 8..<index * 16 + 12, with: $0) }
                withUnsafeBytes(of: Int32(0).bigEndian) { headers.replaceSubrange(index * 16 + 12..<index * 16 + 16, with: $0) }
                summaries.append(BatchSummary(baseOffset: base, lastOffset: last, maxTimestamp: v.maxTimestamp, size: v.sizeInBytes))
                nextOffset = last + 1
            }
            // One pwritev: per batch, the rewritten 16-byte prefix (offset, length, leader epoch) then the rest.
            do {
                try headers.withUnsafeBytes { headerBytes in
                    try records.withUnsafeReadableBytes { body in
                        var pieces: [UnsafeRawBufferPointer] = []
                        pieces.reserveCapacity(positions.count * 2)
                        for (index, entry) in positions.enumerated() {
                            pieces.append(UnsafeRawBufferPointer(rebasing: headerBytes[index * 16..<index * 16 + 16]))
                            pieces.append(UnsafeRawBufferPointer(rebasing: body[entry.position + 16..<entry.position + entry.view.sizeInBytes]))
                        }
                        try segment.append(pieces: pieces, batches: summaries)
                    }
                }
            } catch {
                throw .storage("\(error)")
            }
            producerState = state
            let count = positions.reduce(0) { $0 + Int($1.view.recordCount) }
            unflushedMessages += Int64(count)
            // flush.messages / flush.ms: the caller fsyncs (`flush()`) before it answers, off the event loop.
            let flushDue = unflushedMessages >= config.flushMessages || nowMs - lastFlushMs >= config.flushMs
            listeners = Array(appendListeners.values)
            appendListeners = [:]
            return AppendResult(firstOffset: summaries.first!.baseOffset, lastOffset: summaries.last!.lastOffset,
                                logAppendTime: config.logAppendTime ? nowMs : -1, logStartOffset: _logStartOffset, recordCount: count,
                                flushDue: flushDue)
        }
    }

    /// The checks Kafka's LogValidator makes on a v2 batch from a client, without touching records.
    static func validate(_ view: RecordBatchView, config: LogConfig, nowMs: Int64) throws(AppendError) {
        guard view.baseOffset == 0 else {
            throw .invalidRecord("the baseOffset of a record batch from a client should be 0, not \(view.baseOffset)")
        }
        guard view.sizeInBytes <= config.maxMessageBytes else {
            throw .messageTooLarge("batch of \(view.sizeInBytes) bytes exceeds max.message.bytes \(config.maxMessageBytes)")
        }
        guard view.computeCRC() == view.crc else {
            throw .corruptMessage("batch CRC \(view.crc) does not match its contents (\(view.computeCRC()))")
        }
        guard view.recordCount > 0, view.lastOffsetDelta == view.recordCount - 1 else {
            throw .invalidRecord("batch has \(view.recordCount) records but lastOffsetDelta \(view.lastOffsetDelta)")
        }
        // The count is stored as sent (records are not decoded here), and readers size work by it:
        // an uncompressed batch must have the bytes for that many records; a compressed one must
        // not claim more than its codec may decompress to.
        let recordBytes = view.sizeInBytes - RecordBatchLayout.headerSize
        let room = view.attributes.compression == CompressionCodec.none ? recordBytes : Compression.defaultLimit
        guard Int(view.recordCount) <= room / RecordBatchView.minimumRecordSize else {
            throw .invalidRecord("Incorrect declared batch size, premature EOF reached: \(view.recordCount) records claimed in \(recordBytes) bytes")
        }
        guard !view.attributes.isControl else { throw .invalidRecord("clients may not produce control batches") }
        guard view.producerId < 0 || view.baseSequence >= 0 else {
            throw .invalidRecord("an idempotent batch (producer \(view.producerId)) needs a base sequence")
        }
        guard view.attributes.compression != nil else { throw .corruptMessage("unknown compression codec") }
        if !config.logAppendTime {
            guard view.attributes.timestampType == .createTime else {
                throw .invalidTimestamp("producers should not set the timestamp type to LogAppendTime")
            }
            let maxTimestamp = view.maxTimestamp
            // Compared as differences, so a bound near Int64.max saturates instead of overflowing.
            if maxTimestamp >= 0, maxTimestamp.subtractingReportingOverflow(nowMs).partialValue > config.timestampAfterMaxMs,
               maxTimestamp > nowMs {
                throw .invalidTimestamp("timestamp \(maxTimestamp) is more than message.timestamp.after.max.ms ahead of the broker's clock")
            }
            let first = view.baseTimestamp
            if first >= 0, first < nowMs, nowMs - first > config.timestampBeforeMaxMs {
                throw .invalidTimestamp("timestamp \(first) is more than message.timestamp.before.max.ms behind the broker's clock")
            }
        }
    }

    /// Starts a new active segment at `offset` (lock held).
    private func roll(at offset: Int64) throws {
        try active.flush(sync: false)
        segments.append(try LogSegment(directory: directory, baseOffset: offset, indexIntervalBytes: _config.indexIntervalBytes,
                                       create: true, loadIndexes: false))
        logger.debug("rolled new segment", metadata: ["partition": "\(topicPartition)", "baseOffset": "\(offset)"])
    }

    /// Calls `listener` once the log ends beyond `offset` (long-poll fetches wait this way): at once, and
    /// nil, when it already does; else at the next append, and a token that removes it when the wait ends
    /// otherwise. Checking the end and registering under one lock leaves no gap for an append to slip
    /// through between a reader's look at the log and its listening.
    public func onAppend(beyond offset: Int64, _ listener: @escaping @Sendable () -> Void) -> UInt64? {
        let token: UInt64? = lock.withLock {
            guard active.nextOffset <= offset else { return nil }
            nextListenerId += 1
            appendListeners[nextListenerId] = listener
            return nextListenerId
        }
        if token == nil { listener() }
        return token
    }

    public func removeAppendListener(_ token: UInt64) {
        lock.withLock { _ = appendListeners.removeValue(forKey: token) }
    }

    public var appendListenerCount: Int { lock.withLock { appendListeners.count } }

    // MARK: Read

    /// The range to send for a fetch at `offset`: whole batches from the one holding the offset, up to
    /// `maxBytes` (the last one possibly cut, as Kafka sends it), and at least the first batch whole
    /// when `minOneBatch`.
    public func read(from offset: Int64, maxBytes: Int, minOneBatch: Bool) throws -> LogReadResult {
        // Under the lock: where to look (the index lookup) and how far each segment's bytes go. The
        // file is read outside it, only below those ends, which appends never rewrite.
        let (start, end, candidates) = lock.withLock { () -> (Int64, Int64, [SegmentReadPlan]) in
            // The last segment whose base offset is <= offset, then onwards if it ends before the offset.
            let first = segments.lastIndex(where: { $0.baseOffset <= offset }) ?? 0
            let plans = segments[first...].enumerated().map { i, segment in
                SegmentReadPlan(segment: segment, from: i == 0 ? segment.indexedPosition(atOrBefore: offset) : 0, limit: segment.size)
            }
            return (_logStartOffset, active.nextOffset, plans)
        }
        guard offset >= start, offset <= end else { return .offsetOutOfRange }
        guard offset < end else { return .empty }
        for plan in candidates {
            let segment = plan.segment, limit = plan.limit
            if let (position, batch) = try segment.find(offset: offset, from: plan.from, maxPosition: limit) {
                let available = limit - position
                let wanted = minOneBatch ? max(maxBytes, batch.size) : maxBytes
                let length = min(available, wanted)
                // Without the first batch whole there is nothing a client can use: send nothing.
                if length < batch.size && !minOneBatch { return .empty }
                return .slice(LogReadSlice(segment: segment, position: position, length: length))
            }
        }
        return .empty
    }

    /// The first offset whose record timestamp is >= `timestamp`, with that record's timestamp.
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        let (start, candidates) = lock.withLock { () -> (Int64, [SegmentReadPlan]) in
            (_logStartOffset, segments.filter { $0.maxTimestamp >= timestamp }.map {
                SegmentReadPlan(segment: $0, from: $0.indexedPosition(forTimestamp: timestamp), limit: $0.size)
            })
        }
        for plan in candidates {
            let segment = plan.segment
            guard let (position, batch) = try segment.find(timestamp: timestamp, from: plan.from, maxPosition: plan.limit) else { continue }
            let bytes = try segment.read(at: position, length: batch.size)
            let view = try RecordBatchView(unchecked: bytes)
            if view.attributes.timestampType == .logAppendTime {
                return (max(view.baseOffset, start), view.maxTimestamp)
            }
            for record in try view.records() where record.timestamp >= timestamp && record.offset >= start {
                return (record.offset, record.timestamp)
            }
        }
        return nil
    }

    /// The offset and timestamp of the first record with the largest timestamp (ListOffsets -3):
    /// the segment knows the batch, the batch's records tell which one (KAFKA-16310).
    public func maxTimestampOffset() throws -> (offset: Int64, timestamp: Int64)? {
        let best = lock.withLock { () -> (SegmentReadPlan, Int64)? in
            guard let segment = segments.filter({ $0.offsetOfMaxTimestamp >= 0 }).max(by: { $0.maxTimestamp < $1.maxTimestamp }) else { return nil }
            let offset = segment.offsetOfMaxTimestamp
            return (SegmentReadPlan(segment: segment, from: segment.indexedPosition(atOrBefore: offset), limit: segment.size), offset)
        }
        guard let (plan, offset) = best,
              let (position, batch) = try plan.segment.find(offset: offset, from: plan.from, maxPosition: plan.limit) else { return nil }
        let segment = plan.segment
        let view = try RecordBatchView(unchecked: try segment.read(at: position, length: batch.size))
        if view.attributes.timestampType == .logAppendTime { return (view.baseOffset, view.maxTimestamp) }
        let record = try view.records().first { $0.timestamp == view.maxTimestamp }
        return (record?.offset ?? view.lastOffset, view.maxTimestamp)
    }

    // MARK: Log start, retention, flush

    /// DeleteRecords: moves the log start offset (never backwards, never past the end) and drops the
    /// segments wholly before it.
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        try lock.withLock {
            let end = active.nextOffset
            guard offset <= end else { throw LogError(.invalidRequest, "offset \(offset) is past the log end \(end)") }
            if offset > _logStartOffset { _logStartOffset = offset }
            _ = try deleteSegmentsLocked { segment, next in next != nil && next!.baseOffset <= self._logStartOffset }
            return _logStartOffset
        }
    }

    /// Deletes old segments per retention.ms and retention.bytes; the active segment stays. Returns
    /// how many segments went.
    @discardableResult
    public func applyRetention(nowMs: Int64 = currentTimeMs()) throws -> Int {
        try lock.withLock {
            let config = _config
            var total = Int64(segments.reduce(0) { $0 + $1.size })
            return try deleteSegmentsLocked { segment, next in
                guard next != nil else { return false }
                if config.retentionMs >= 0, segment.maxTimestamp >= 0 || segment.size > 0,
                   nowMs - segment.maxTimestamp > config.retentionMs {
                    total -= Int64(segment.size)
                    return true
                }
                if config.retentionBytes >= 0, total - Int64(segment.size) >= config.retentionBytes {
                    total -= Int64(segment.size)
                    return true
                }
                return false
            }
        }
    }

    /// Deletes leading segments while `shouldDelete(segment, next)` says so (lock held).
    private func deleteSegmentsLocked(_ shouldDelete: (LogSegment, LogSegment?) -> Bool) throws -> Int {
        var deleted = 0
        while segments.count > 1, shouldDelete(segments[0], segments[1]) {
            let segment = segments.removeFirst()
            try segment.delete()
            deleted += 1
        }
        if deleted > 0 {
            _logStartOffset = max(_logStartOffset, segments[0].baseOffset)
            logger.info("deleted \(deleted) old segment(s)", metadata: ["partition": "\(topicPartition)", "logStartOffset": "\(_logStartOffset)"])
        }
        return deleted
    }

    /// fsyncs everything appended so far and moves the recovery point past it. Blocks for as long as
    /// the disk takes, but without the partition's lock: appends and reads go on meanwhile.
    public func flush(nowMs: Int64 = currentTimeMs()) throws {
        let (files, upTo) = try lock.withLock { try flushPlanLocked(nowMs: nowMs) }
        for file in files { try file.flush() }
        lock.withLock { recoveryPoint = max(recoveryPoint, upTo) }
    }

    /// Applies flush.ms when no append came to trigger it.
    public func flushIfDue(nowMs: Int64 = currentTimeMs()) throws {
        let due = lock.withLock { unflushedMessages > 0 && nowMs - lastFlushMs >= _config.flushMs }
        if due { try flush(nowMs: nowMs) }
    }

    /// Writes the pending index entries (page cache) of every segment with data past the recovery
    /// point and returns the files to fsync and the offset they make durable (lock held).
    private func flushPlanLocked(nowMs: Int64) throws -> ([LogFile], Int64) {
        var files: [LogFile] = []
        for segment in segments where segment.nextOffset > recoveryPoint || segment === active {
            try segment.flush(sync: false)
            files += segment.files
        }
        unflushedMessages = 0
        lastFlushMs = nowMs
        return (files, active.nextOffset)
    }

    /// Writes indexes and the producer snapshot; `sync` forces everything to disk (clean shutdown).
    public func close(sync: Bool) throws {
        try lock.withLock {
            for segment in segments { try segment.flush(sync: sync) }
            if sync { recoveryPoint = active.nextOffset }
            try writeProducerSnapshotLocked()
        }
    }

    // MARK: Producer state persistence

    private func writeProducerSnapshotLocked() throws {
        let end = active.nextOffset
        let name = LogSegment.fileName(end, ".snapshot")
        let bytes = producerState.snapshot()
        let file = try LogFile(path: directory + "/" + name + ".tmp", create: true)
        try file.truncate(to: 0)
        try file.append(bytes)
        try file.flush()
        try LogDirectory.rename(directory + "/" + name + ".tmp", directory + "/" + name)
        for old in try LogDirectory.list(directory) where old.hasSuffix(".snapshot") && old != name {
            try LogDirectory.remove(directory + "/" + old)
        }
    }

    /// The newest snapshot at or below the log end, then the batches after it replayed from the log.
    private func loadProducerState() throws {
        let end = active.nextOffset
        let snapshots = try LogDirectory.list(directory).filter { $0.hasSuffix(".snapshot") }
            .compactMap { name in LogSegment.baseOffset(fromFileName: name, suffix: ".snapshot").map { ($0, name) } }.sorted { $0.0 < $1.0 }
        var from = segments.first!.baseOffset
        producerState = ProducerStateManager()
        for (offset, name) in snapshots.reversed() where offset <= end {
            let file = try LogFile(path: directory + "/" + name, create: false)
            if let state = try? ProducerStateManager(snapshot: try file.read(at: 0, length: file.size)) {
                producerState = state
                from = offset
                break
            }
            logger.warning("ignoring corrupt producer snapshot \(name)")
        }
        guard from < end else { return }
        for segment in segments where segment.nextOffset > from {
            var position = try segment.find(offset: from)?.position ?? segment.size
            while position < segment.size {
                guard let length = try segment.log.readInteger(at: position + RecordBatchLayout.batchLength, as: Int32.self) else { break }
                let bytes = try segment.read(at: position, length: min(RecordBatchLayout.headerSize, Int(length) + 12))
                guard bytes.readableBytes == RecordBatchLayout.headerSize else { break }
                var header = bytes
                // Header-only view: the batch length field is made to match the bytes read.
                header.setInteger(Int32(RecordBatchLayout.headerSize - RecordBatchLayout.logOverhead), at: RecordBatchLayout.batchLength)
                if let view = try? RecordBatchView(unchecked: header), view.lastOffset >= from {
                    producerState.replay(view)
                }
                position += Int(length) + RecordBatchLayout.logOverhead
            }
        }
    }

    /// Removes the partition's files (topic deletion).
    /// The segment list stays (a reader holding a slice keeps valid descriptors); appends are refused.
    public func delete() throws {
        try lock.withLock {
            deleted = true
            try LogDirectory.removeTree(directory)
        }
    }
}

/// Where a reader looks in one segment, taken under the partition's lock: the indexed position to
/// scan from and the end of the bytes it may read.
struct SegmentReadPlan {
    let segment: LogSegment
    let from: Int
    let limit: Int
}
