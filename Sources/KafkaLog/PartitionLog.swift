#if canImport(Glibc)
import Glibc
#endif
import KafkaWire
import Logging
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
    /// A verified transactional batch whose transaction ended (a marker) before it was appended.
    case transactionEnded(String)
}

/// Who writes a batch: a client's batch is checked as Kafka's LogValidator checks it; the broker's
/// own (the group coordinator's transactional offset commits) carries a producer id without
/// sequences, which only opens the producer's transaction.
public enum AppendOrigin: Sendable {
    case client
    case coordinator
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
    public let file: SegmentFile
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
/// and end offsets, idempotent producer state, retention and flush policy. Its state has one owner,
/// a lock the compiler checks (`SendingLock`): segments never leave it (they are not Sendable); readers take a
/// `SegmentReadPlan` under it (a shared file, an indexed position, an end) and read the file outside
/// it, on ranges that are never rewritten.
public final class PartitionLog: Sendable {
    public let topicPartition: TopicPartition
    public let directory: String
    let logger: Logger
    let state: SendingLock<LogState>

    public var logStartOffset: Int64 { state.withLock { $0.logStartOffset } }
    /// The next offset to be assigned (the high watermark on a single node).
    public var logEndOffset: Int64 { state.withLock { $0.active.nextOffset } }
    public var config: LogConfig {
        get { state.withLock { $0.config } }
        set { state.withLock { $0.config = newValue } }
    }
    public var sizeInBytes: Int { state.withLock { $0.segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    public var recoveryPointOffset: Int64 { state.withLock { $0.recoveryPoint } }
    /// The idempotent producers the partition keeps state for (DescribeProducers).
    public var producers: [Int64: ProducerStateEntry] { state.withLock { $0.producerState.producers } }
    /// The end of what read_committed readers see: the first offset of the earliest open
    /// transaction, else the log end. Never moves back.
    public var lastStableOffset: Int64 { state.withLock { $0.lastStableOffset } }

    /// Opens the partition's directory. `clean` says the broker stopped cleanly: indexes are then
    /// trusted; otherwise every segment from the recovery point on is re-read, its CRCs checked, torn
    /// or corrupt tails truncated and indexes rebuilt (`LogLoader`).
    public init(directory: String, topicPartition: TopicPartition, config: LogConfig, logStartOffset: Int64?,
                recoveryPoint: Int64?, clean: Bool, logger: Logger, nowMs: Int64 = currentTimeMs()) throws {
        self.directory = directory
        self.topicPartition = topicPartition
        self.logger = logger
        let segments = try LogLoader(directory: directory, config: config, logger: logger)
            .load(logStartOffset: logStartOffset, recoveryPoint: recoveryPoint ?? 0, clean: clean)
        var loaded = LogState(directory: directory, topicPartition: topicPartition, logger: logger, segments: segments,
                              logStartOffset: logStartOffset, recoveryPoint: recoveryPoint ?? 0, config: config, nowMs: nowMs)
        try loaded.loadProducerState(trustedUpTo: clean ? nil : recoveryPoint ?? 0)
        if !clean { loaded.recoveryPoint = loaded.active.nextOffset }
        state = SendingLock(loaded)
    }

    public static func currentTimeMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    // MARK: Append

    /// Validates, stamps and appends the batches of a produce request (already sized to the request),
    /// with one write. Each batch gets the next offsets; nothing is appended if any batch is refused.
    /// Starts the verification of a transactional batch of `producerId` (KIP-890): ask the
    /// transaction coordinator after this, then pass the token to `append`.
    public func beginVerification(producerId: Int64) -> UInt64 {
        state.withLock { $0.markerCounts[producerId, default: 0] }
    }

    public func append(_ records: ByteBuffer, origin: AppendOrigin = .client, verification: UInt64? = nil,
                       nowMs: Int64 = currentTimeMs()) throws(AppendError) -> AppendResult {
        var records = records
        let config = self.config
        // Pass 1: split and validate without the lock.
        var iterator = RecordBatchIterator(records)
        var positions: [(position: Int, view: RecordBatchView)] = []
        var position = 0
        while let view = iterator.next() {
            try Self.validate(view, config: config, origin: origin, nowMs: nowMs)
            if config.cleanupCompact { try Self.requireKeys(view, topicPartition: topicPartition) }
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

        let appended = try state.withLock { (s: inout LogState) throws(AppendError) -> (AppendResult, [@Sendable () -> Void]) in
            // A produce that found the log just before its topic was deleted.
            guard !s.deleted else { throw .logDeleted("\(topicPartition) was deleted") }
            if let verification, let first = positions.first, s.markerCounts[first.view.producerId, default: 0] != verification {
                throw .transactionEnded("the transaction of producer \(first.view.producerId) ended while its batch was verified")
            }
            var nextOffset = s.active.nextOffset
            let totalSize = position
            let lastOffsetAfter = nextOffset + positions.reduce(0) { $0 + Int64($1.view.lastOffsetDelta) + 1 } - 1
            if let active = s.segments.last, active.size > 0,
               active.size + totalSize > config.segmentBytes || lastOffsetAfter - active.baseOffset > Int64(Int32.max)
                || nowMs - active.createdMs >= config.rollAfterMs {
                do { try s.roll(at: nextOffset) } catch { throw .storage("\(error)") }
            }
            let segment = s.active
            var producers = s.producerState
            var summaries: [BatchSummary] = []
            var headers = [UInt8](repeating: 0, count: 16 * positions.count)
            for (index, entry) in positions.enumerated() {
                let v = entry.view
                let base = nextOffset
                let last = base + Int64(v.lastOffsetDelta)
                if v.producerId >= 0 && origin == .coordinator {
                    // A zombie's late write (an epoch older than the partition knows) is refused.
                    do throws(ProducerStateError) {
                        try producers.checkMarker(producerId: v.producerId, epoch: v.producerEpoch)
                    } catch {
                        throw .producer(error)
                    }
                    producers.record(producerId: v.producerId, epoch: v.producerEpoch, firstSequence: -1, lastSequence: -1,
                                     firstOffset: base, lastOffset: last, timestamp: v.maxTimestamp,
                                     isTransactional: v.attributes.isTransactional)
                } else if v.producerId >= 0 {
                    // Idempotence: a retry of one of the producer's last batches is answered, not appended.
                    do throws(ProducerStateError) {
                        let verdict = try producers.check(producerId: v.producerId, epoch: v.producerEpoch,
                                                      firstSequence: v.baseSequence, lastSequence: v.lastSequence)
                        if case .duplicate(let original) = verdict {
                            guard positions.count == 1 else {
                                throw ProducerStateError.outOfOrderSequence("a retried batch came with other batches in one request")
                            }
                            return (AppendResult(firstOffset: original.firstOffset, lastOffset: original.lastOffset,
                                                 logAppendTime: config.logAppendTime ? nowMs : -1,
                                                 logStartOffset: s.logStartOffset, recordCount: 0), [])
                        }
                    } catch {
                        throw .producer(error)
                    }
                    producers.record(producerId: v.producerId, epoch: v.producerEpoch, firstSequence: v.baseSequence,
                                     lastSequence: v.lastSequence, firstOffset: base, lastOffset: last, timestamp: v.maxTimestamp,
                                     isTransactional: v.attributes.isTransactional)
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
            s.producerState = producers
            let count = positions.reduce(0) { $0 + Int($1.view.recordCount) }
            s.unflushedMessages += Int64(count)
            // flush.messages / flush.ms: the caller fsyncs (`flush()`) before it answers, off the event loop.
            let flushDue = s.unflushedMessages >= config.flushMessages || nowMs - s.lastFlushMs >= config.flushMs
            let listeners = Array(s.appendListeners.values)
            s.appendListeners = [:]
            return (AppendResult(firstOffset: summaries.first!.baseOffset, lastOffset: summaries.last!.lastOffset,
                                 logAppendTime: config.logAppendTime ? nowMs : -1, logStartOffset: s.logStartOffset, recordCount: count,
                                 flushDue: flushDue), listeners)
        }
        // Called once the lock is released, so a listener may read the log.
        for listener in appended.1 { listener() }
        return appended.0
    }

    /// Appends the marker that ends `producerId`'s transaction in this partition (the transaction
    /// coordinator's EndTxn), whether or not the producer wrote here: Kafka writes one to every
    /// partition of the transaction. A marker from an older epoch than the producer's is refused.
    public func appendMarker(_ marker: EndTransactionMarker, producerId: Int64, producerEpoch: Int16,
                             nowMs: Int64 = currentTimeMs()) throws(AppendError) -> AppendResult {
        var bytes = marker.batch(producerId: producerId, producerEpoch: producerEpoch, timestamp: nowMs)
        let size = bytes.readableBytes
        let appended = try state.withLock { (s: inout LogState) throws(AppendError) -> (AppendResult, [@Sendable () -> Void]) in
            guard !s.deleted else { throw .logDeleted("\(topicPartition) was deleted") }
            s.markerCounts[producerId, default: 0] &+= 1
            do throws(ProducerStateError) {
                try s.producerState.checkMarker(producerId: producerId, epoch: producerEpoch)
            } catch {
                throw .producer(error)
            }
            let offset = s.active.nextOffset
            if let active = s.segments.last, active.size > 0,
               active.size + size > s.config.segmentBytes || offset - active.baseOffset >= Int64(Int32.max)
                || nowMs - active.createdMs >= s.config.rollAfterMs {
                do { try s.roll(at: offset) } catch { throw .storage("\(error)") }
            }
            // Neither the base offset nor the leader epoch is covered by the CRC.
            bytes.setInteger(offset, at: bytes.readerIndex)
            bytes.setInteger(Int32(0), at: bytes.readerIndex + 12)
            let segment = s.active
            do {
                try bytes.withUnsafeReadableBytes { raw in
                    try segment.append(pieces: [raw], batches: [BatchSummary(baseOffset: offset, lastOffset: offset, maxTimestamp: nowMs, size: size)])
                }
                try s.completeTransaction(producerId: producerId, epoch: producerEpoch, marker: marker, offset: offset,
                                          timestamp: nowMs, in: segment)
            } catch {
                throw .storage("\(error)")
            }
            s.unflushedMessages += 1
            let flushDue = s.unflushedMessages >= s.config.flushMessages || nowMs - s.lastFlushMs >= s.config.flushMs
            let listeners = Array(s.appendListeners.values)
            s.appendListeners = [:]
            return (AppendResult(firstOffset: offset, lastOffset: offset, logAppendTime: -1, logStartOffset: s.logStartOffset,
                                 recordCount: 1, flushDue: flushDue), listeners)
        }
        for listener in appended.1 { listener() }
        return appended.0
    }

    /// The aborted transactions a read_committed fetch from `offset` up to `upperBound` (its last
    /// stable offset) must be told of.
    public func abortedTransactions(from offset: Int64, upTo upperBound: Int64) -> [AbortedTransaction] {
        state.withLock { $0.abortedTransactions(from: offset, upTo: upperBound) }
    }

    /// A compacted topic keeps the latest record per key: a record without one is refused, with Kafka's
    /// message. The cleaner goes by each record's offset, so those must be the batch's own, in order
    /// (Kafka's inner offset check): a record claiming a later offset would make the cleaner drop
    /// the key's real updates up to it. The only append path that decodes records (compacted topics only).
    static func requireKeys(_ view: RecordBatchView, topicPartition: TopicPartition) throws(AppendError) {
        var keyless = false, misplaced: Int64? = nil, expected: Int64 = 0
        do {
            try view.forEachRecordFields { offset, _, key, _, _, _ in
                if key == nil { keyless = true }
                if offset != expected, misplaced == nil { misplaced = offset }
                expected += 1
            }
        } catch {
            throw .corruptMessage("records of the batch do not decode: \(error)")
        }
        if keyless {
            throw .invalidRecord("Compacted topic cannot accept message without key in topic partition \(topicPartition).")
        }
        if let misplaced {
            throw .invalidRecord("Inner record offset delta \(misplaced) does not follow its predecessor in topic partition \(topicPartition).")
        }
    }

    /// The checks Kafka's LogValidator makes on a v2 batch from a client, without touching records.
    static func validate(_ view: RecordBatchView, config: LogConfig, origin: AppendOrigin = .client, nowMs: Int64) throws(AppendError) {
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
        guard !view.attributes.isTransactional || view.producerId >= 0 else {
            throw .invalidRecord("a transactional batch needs a producer id")
        }
        guard view.producerId < 0 || view.baseSequence >= 0 || origin == .coordinator else {
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

    /// Calls `listener` once the log ends beyond `offset` (long-poll fetches wait this way): at once, and
    /// nil, when it already does; else at the next append, and a token that removes it when the wait ends
    /// otherwise. Checking the end and registering under one lock leaves no gap for an append to slip
    /// through between a reader's look at the log and its listening.
    public func onAppend(beyond offset: Int64, _ listener: @escaping @Sendable () -> Void) -> UInt64? {
        let token: UInt64? = state.withLock { s in
            guard s.active.nextOffset <= offset else { return nil }
            s.nextListenerId += 1
            s.appendListeners[s.nextListenerId] = listener
            return s.nextListenerId
        }
        if token == nil { listener() }
        return token
    }

    public func removeAppendListener(_ token: UInt64) {
        state.withLock { _ = $0.appendListeners.removeValue(forKey: token) }
    }

    public var appendListenerCount: Int { state.withLock { $0.appendListeners.count } }

    // MARK: Read

    /// The range to send for a fetch at `offset`: whole batches from the one holding the offset, up to
    /// `maxBytes` (the last one possibly cut, as Kafka sends it), and at least the first batch whole
    /// when `minOneBatch`. With `upTo` (a read_committed fetch's last stable offset) nothing from the
    /// batch holding that offset on is sent.
    public func read(from offset: Int64, maxBytes: Int, minOneBatch: Bool, upTo bound: Int64? = nil) throws -> LogReadResult {
        // Under the lock: where to look (the index lookup) and how far each segment's bytes go. The
        // file is read outside it, only below those ends, which appends never rewrite.
        let (start, end, candidates) = state.withLock { s -> (Int64, Int64, [SegmentReadPlan]) in
            // The last segment whose base offset is <= offset, then onwards if it ends before the offset.
            let first = s.segments.lastIndex(where: { $0.baseOffset <= offset }) ?? 0
            let plans = s.segments[first...].enumerated().map { i, segment in
                SegmentReadPlan(segment, from: i == 0 ? segment.indexedPosition(atOrBefore: offset) : 0)
            }
            return (s.logStartOffset, s.active.nextOffset, plans)
        }
        guard offset >= start, offset <= end else { return .offsetOutOfRange }
        guard offset < min(end, bound ?? end) else { return .empty }
        for plan in candidates {
            var limit = plan.limit
            if let (position, batch) = try LogSegment.find(offset: offset, in: plan.file, from: plan.from, limit: limit) {
                if let bound, bound < end,
                   let (stop, _) = try LogSegment.find(offset: bound, in: plan.file, from: position, limit: limit) {
                    limit = stop
                    guard limit > position else { return .empty }
                }
                let available = limit - position
                let wanted = minOneBatch ? max(maxBytes, batch.size) : maxBytes
                let length = min(available, wanted)
                // Without the first batch whole there is nothing a client can use: send nothing.
                if length < batch.size && !minOneBatch { return .empty }
                return .slice(LogReadSlice(file: plan.file, position: position, length: length))
            }
        }
        return .empty
    }

    /// Hands `body` every complete batch from the log start on, in order, with the first offset not yet
    /// handed out (a batch may begin before it: its records below it were seen already). The broker's
    /// own stores rebuild their tables this way at start-up; a megabyte is read at a time.
    public func forEachBatch(_ body: (RecordBatchView, _ from: Int64) -> Void) throws {
        var next = logStartOffset
        while case .slice(let slice) = try read(from: next, maxBytes: 1 << 20, minOneBatch: true) {
            var iterator = RecordBatchIterator(try slice.file.read(at: slice.position, length: slice.length))
            var progressed = false
            while let view = iterator.next() {
                body(view, next)
                next = view.lastOffset + 1
                progressed = true
            }
            if !progressed { break }
        }
    }

    /// The first offset whose record timestamp is >= `timestamp`, with that record's timestamp.
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        let (start, candidates) = state.withLock { s -> (Int64, [SegmentReadPlan]) in
            (s.logStartOffset, s.segments.filter { $0.maxTimestamp >= timestamp }.map {
                SegmentReadPlan($0, from: $0.indexedPosition(forTimestamp: timestamp))
            })
        }
        for plan in candidates {
            guard let (position, batch) = try LogSegment.find(timestamp: timestamp, in: plan.file, from: plan.from, limit: plan.limit) else { continue }
            let bytes = try plan.file.read(at: position, length: batch.size)
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
        let best = state.withLock { s -> (SegmentReadPlan, Int64)? in
            guard let segment = s.segments.filter({ $0.offsetOfMaxTimestamp >= 0 }).max(by: { $0.maxTimestamp < $1.maxTimestamp }) else { return nil }
            let offset = segment.offsetOfMaxTimestamp
            return (SegmentReadPlan(segment, from: segment.indexedPosition(atOrBefore: offset)), offset)
        }
        guard let (plan, offset) = best,
              let (position, batch) = try LogSegment.find(offset: offset, in: plan.file, from: plan.from, limit: plan.limit) else { return nil }
        let view = try RecordBatchView(unchecked: try plan.file.read(at: position, length: batch.size))
        if view.attributes.timestampType == .logAppendTime { return (view.baseOffset, view.maxTimestamp) }
        let record = try view.records().first { $0.timestamp == view.maxTimestamp }
        return (record?.offset ?? view.lastOffset, view.maxTimestamp)
    }

    // MARK: Log start, retention, flush

    /// DeleteRecords: moves the log start offset (never backwards, never past the end) and drops the
    /// segments wholly before it.
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        try state.withLock { s in
            let end = s.active.nextOffset
            guard offset <= end else { throw LogError(.invalidRequest, "offset \(offset) is past the log end \(end)") }
            if offset > s.logStartOffset { s.logStartOffset = offset }
            let start = s.logStartOffset
            _ = try s.deleteSegments { _, next in next.map { $0.baseOffset <= start } ?? false }
            return s.logStartOffset
        }
    }

    /// Deletes old segments per retention.ms and retention.bytes; the active segment stays. Returns
    /// how many segments went.
    @discardableResult
    public func applyRetention(nowMs: Int64 = currentTimeMs()) throws -> Int {
        try state.withLock { s in
            let config = s.config
            // cleanup.policy=compact alone keeps every segment until the cleaner rewrites it.
            guard config.cleanupDelete else { return 0 }
            var total = Int64(s.segments.reduce(0) { $0 + $1.size })
            return try s.deleteSegments { segment, next in
                guard next != nil else { return false }
                // Kafka's largest timestamp: the records', else (none, or a segment the cleaner
                // emptied) when the segment was last written.
                let largest = segment.maxTimestamp >= 0 ? segment.maxTimestamp : ((try? segment.file.lastModifiedMs()) ?? nowMs)
                if config.retentionMs >= 0, nowMs - largest > config.retentionMs {
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

    /// fsyncs everything appended so far and moves the recovery point past it. Blocks for as long as
    /// the disk takes, but without the partition's lock: appends and reads go on meanwhile.
    public func flush(nowMs: Int64 = currentTimeMs()) throws {
        let (files, upTo) = try state.withLock { s in try s.flushPlan(nowMs: nowMs) }
        for file in files { try file.sync() }
        state.withLock { $0.recoveryPoint = max($0.recoveryPoint, upTo) }
    }

    /// Applies flush.ms when no append came to trigger it.
    public func flushIfDue(nowMs: Int64 = currentTimeMs()) throws {
        let due = state.withLock { $0.unflushedMessages > 0 && nowMs - $0.lastFlushMs >= $0.config.flushMs }
        if due { try flush(nowMs: nowMs) }
    }

    /// Writes indexes and the producer snapshot; `sync` forces everything to disk (clean shutdown).
    public func close(sync: Bool) throws {
        try state.withLock { s in
            for segment in s.segments { try segment.flush(sync: sync) }
            if sync { s.recoveryPoint = s.active.nextOffset }
            try s.writeProducerSnapshot()
        }
    }

    /// Removes the partition's files (topic deletion).
    /// The segment list stays (a reader holding a slice keeps valid descriptors); appends are refused.
    /// A clean in progress sees the deletion at its next chunk and stops; its files are written in
    /// this directory, so the removal waits for it (deletions run off the event loops).
    public func delete() throws {
        state.withLock { $0.deleted = true }
        while state.withLock({ $0.cleaning }) { usleep(1_000) }
        try state.withLock { _ in try LogDirectory.removeTree(directory) }
    }
}

/// Where a reader looks in one segment, taken under the partition's lock: the segment's shared file,
/// the indexed position to scan from and the end of the bytes it may read.
struct SegmentReadPlan: Sendable {
    let file: SegmentFile
    let from: Int
    let limit: Int

    init(_ segment: LogSegment, from: Int) {
        file = segment.file
        self.from = from
        limit = segment.size
    }
}
