import KafkaLog
import KafkaWire
import Logging
import NIOCore

/// A committed offset with what came with it.
public struct CommittedOffset: Equatable, Sendable {
    public var offset: Int64
    public var leaderEpoch: Int32
    public var metadata: String?
    public var commitTimestamp: Int64
}

/// Committed offsets, durable in the internal topic `__consumer_offsets` (one partition, compacted
/// as Kafka's): every commit appends a batch of records keyed by group/topic/partition, a deletion
/// or an expiry appends tombstones (null values), and start-up replays the log to rebuild the table.
/// The log cleaner keeps the latest record per key, so the log stays near the size of the live data.
///
///     key:   int16 version (1), string group, string topic, int32 partition
///     value: int16 version (1), int64 offset, int32 leader epoch, nullable string metadata, int64 commit time
final class OffsetStore {
    static let topic = "__consumer_offsets"
    private let log: PartitionLog
    private let logger: Logger
    private(set) var offsets: [String: [TopicPartition: CommittedOffset]] = [:]
    /// Offsets committed inside a transaction (TxnOffsetCommit), by producer id: in the log already,
    /// applied when the transaction's COMMIT marker is, dropped at its ABORT.
    private(set) var pendingTransactional: [Int64: [(group: String, tp: TopicPartition, offset: CommittedOffset)]] = [:]
    /// An append said flush.messages or flush.ms fell due; the coordinator fsyncs off its loop.
    private var flushDue = false

    private func noteFlush(_ result: AppendResult) {
        if result.flushDue { flushDue = true }
    }

    /// Starts the fsync an append asked for, on `blocking` (the caller is the coordinator's loop).
    func flushIfDue(using blocking: BlockingExecutor, on loop: EventLoop) {
        guard flushDue else { return }
        flushDue = false
        let log = self.log, logger = self.logger
        blocking.run(on: loop) { try log.flush() }.whenFailure { error in
            logger.error("flushing \(Self.topic) failed: \(error)")
        }
    }

    init(log: PartitionLog, logger: Logger) throws {
        self.log = log
        self.logger = logger
        try load()
    }

    /// Replays the log. A batch or record that does not decode is skipped with a log line: one bad
    /// record must not keep the broker from starting or lose the offsets around it.
    private func load() throws {
        try log.forEachBatch { view, next in
            do {
                if view.attributes.isControl {
                    if let marker = EndTransactionMarker(controlBatch: view) {
                        applyMarker(producerId: view.producerId, commit: marker.kind == .commit)
                    }
                } else if view.attributes.isTransactional {
                    for record in try view.records() where record.offset >= next {
                        guard let entry = Self.decode(key: record.key, value: record.value), let offset = entry.offset else {
                            logger.warning("skipping an undecodable transactional record at offset \(record.offset) of \(Self.topic)")
                            continue
                        }
                        pendingTransactional[view.producerId, default: []].append((entry.group, entry.tp, offset))
                    }
                } else {
                    for record in try view.records() where record.offset >= next {
                        if !apply(key: record.key, value: record.value) {
                            logger.warning("skipping an undecodable record at offset \(record.offset) of \(Self.topic)")
                        }
                    }
                }
            } catch {
                logger.warning("skipping the batch at offsets \(view.baseOffset)-\(view.lastOffset) of \(Self.topic): \(error)")
            }
        }
    }

    /// Applies one record; false when it does not decode (nothing changes then).
    @discardableResult
    private func apply(key: ByteBuffer?, value: ByteBuffer?) -> Bool {
        guard let entry = Self.decode(key: key, value: value) else { return false }
        set(entry.group, entry.tp, entry.offset)
        return true
    }

    private func set(_ group: String, _ tp: TopicPartition, _ committed: CommittedOffset?) {
        if let committed { offsets[group, default: [:]][tp] = committed } else {
            offsets[group]?[tp] = nil
            if offsets[group]?.isEmpty == true { offsets[group] = nil }
        }
    }

    /// A record's group, partition and offset (nil for a tombstone); nil when it does not decode.
    private static func decode(key: ByteBuffer?, value: ByteBuffer?) -> (group: String, tp: TopicPartition, offset: CommittedOffset?)? {
        guard var key, key.readInteger(as: Int16.self) == 1,
              let group = try? key.readKafkaString(compact: false), let topic = try? key.readKafkaString(compact: false),
              let partition = key.readInteger(as: Int32.self) else { return nil }
        let tp = TopicPartition(topic, partition)
        guard var value else { return (group, tp, nil) }
        // The metadata is nullable: a null must not read as a failure (`try?` would flatten it).
        let metadata: String?
        guard value.readInteger(as: Int16.self) == 1, let offset = value.readInteger(as: Int64.self),
              let epoch = value.readInteger(as: Int32.self) else { return nil }
        do { metadata = try value.readKafkaNullableString(compact: false) } catch { return nil }
        guard let timestamp = value.readInteger(as: Int64.self) else { return nil }
        return (group, tp, CommittedOffset(offset: offset, leaderEpoch: epoch, metadata: metadata, commitTimestamp: timestamp))
    }

    private func applyMarker(producerId: Int64, commit: Bool) {
        guard let pending = pendingTransactional.removeValue(forKey: producerId), commit else { return }
        for entry in pending { set(entry.group, entry.tp, entry.offset) }
    }

    /// The bytes a commit of these entries adds to the log (keys and values, before batch overhead).
    static func recordBytes(group: String, _ entries: [(TopicPartition, CommittedOffset)]) -> Int {
        entries.reduce(0) { total, e in
            total + 2 + (2 + group.utf8.count) + (2 + e.0.topic.utf8.count) + 4 + 2 + 8 + 4 + 2 + (e.1.metadata?.utf8.count ?? 0) + 8 + 16
        }
    }

    /// One commit may append at most this much (Kafka's message.max.bytes default: a larger commit
    /// is answered INVALID_COMMIT_OFFSET_SIZE, as Kafka does).
    static let maxCommitBytes = 1_048_588

    private static func key(_ group: String, _ tp: TopicPartition) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(Int16(1))
        key.writeKafkaString(group, compact: false)
        key.writeKafkaString(tp.topic, compact: false)
        key.writeInteger(tp.partition)
        return key
    }

    private static func value(_ c: CommittedOffset) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(Int16(1))
        value.writeInteger(c.offset)
        value.writeInteger(c.leaderEpoch)
        value.writeKafkaNullableString(c.metadata, compact: false)
        value.writeInteger(c.commitTimestamp)
        return value
    }

    /// Appends the entries (nil = delete) as one batch, then applies them.
    private func write(_ entries: [(String, TopicPartition, CommittedOffset?)], nowMs: Int64) throws {
        guard !entries.isEmpty else { return }
        let records = entries.enumerated().map { i, e in
            Record(offset: Int64(i), timestamp: nowMs, key: Self.key(e.0, e.1), value: e.2.map(Self.value))
        }
        noteFlush(try log.append(try RecordBatch(records: records).encoded(), nowMs: nowMs))
        for (group, tp, committed) in entries { set(group, tp, committed) }
    }

    /// TxnOffsetCommit: the offsets go to the log in a transactional batch of the producer and wait
    /// for the transaction's end.
    func commitTransactional(group: String, _ entries: [(TopicPartition, CommittedOffset)], producerId: Int64, producerEpoch: Int16,
                             nowMs: Int64) throws {
        guard !entries.isEmpty else { return }
        let records = entries.enumerated().map { i, e in
            Record(offset: Int64(i), timestamp: nowMs, key: Self.key(group, e.0), value: Self.value(e.1))
        }
        let batch = RecordBatch(isTransactional: true, producerId: producerId, producerEpoch: producerEpoch, records: records)
        noteFlush(try log.append(try batch.encoded(), origin: .coordinator, nowMs: nowMs))
        pendingTransactional[producerId, default: []] += entries.map { (group, $0.0, $0.1) }
    }

    /// EndTxn: the marker goes to the log, then a commit makes the producer's pending offsets the
    /// group's committed ones.
    func completeTransaction(producerId: Int64, producerEpoch: Int16, commit: Bool, nowMs: Int64) throws {
        noteFlush(try log.appendMarker(EndTransactionMarker(commit ? .commit : .abort), producerId: producerId,
                                       producerEpoch: producerEpoch, nowMs: nowMs))
        applyMarker(producerId: producerId, commit: commit)
    }

    /// Whether a transaction still open holds an offset for the group's partition (OffsetFetch's
    /// require_stable answers UNSTABLE_OFFSET_COMMIT then).
    func hasPendingTransactionalOffset(group: String, _ tp: TopicPartition) -> Bool {
        pendingTransactional.values.contains { $0.contains { $0.group == group && $0.tp == tp } }
    }

    func commit(group: String, _ entries: [(TopicPartition, CommittedOffset)], nowMs: Int64) throws {
        try write(entries.map { (group, $0.0, $0.1) }, nowMs: nowMs)
    }

    func delete(group: String, partitions: [TopicPartition]? = nil, nowMs: Int64) throws {
        let targets = partitions ?? Array((offsets[group] ?? [:]).keys)
        try write(targets.filter { offsets[group]?[$0] != nil }.map { (group, $0, nil) }, nowMs: nowMs)
    }

    /// Drops the offsets of groups that no member holds once offsets.retention.minutes passed since
    /// both the commit and the moment the group was last seen with members (`emptySince`, at the
    /// earliest the broker's start: membership is not kept across restarts, so a restart never
    /// makes a live group's offsets look old). Commit times come from the log: compared without
    /// subtracting them, so no stored value can overflow.
    func expire(retentionMs: Int64, activeGroups: Set<String>, emptySince: (String) -> Int64, nowMs: Int64) throws {
        var expired: [(String, TopicPartition, CommittedOffset?)] = []
        for (group, table) in offsets where !activeGroups.contains(group) {
            let since = emptySince(group)
            guard since < nowMs - retentionMs else { continue }
            for (tp, c) in table where c.commitTimestamp < nowMs - retentionMs {
                expired.append((group, tp, nil))
            }
        }
        try write(expired, nowMs: nowMs)
    }
}
