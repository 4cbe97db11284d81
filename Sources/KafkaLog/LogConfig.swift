import KafkaWire

/// Per-partition log settings, named after the Kafka topic configs they implement.
public struct LogConfig: Sendable, Equatable {
    /// segment.bytes
    public var segmentBytes: Int = 1_073_741_824
    /// index.interval.bytes
    public var indexIntervalBytes: Int = 4096
    /// retention.ms (-1: keep forever)
    public var retentionMs: Int64 = 604_800_000
    /// retention.bytes (-1: no size limit)
    public var retentionBytes: Int64 = -1
    /// flush.messages: fsync after this many messages (Long.MAX: leave it to the page cache)
    public var flushMessages: Int64 = Int64.max
    /// flush.ms
    public var flushMs: Int64 = Int64.max
    /// max.message.bytes: the largest record batch accepted
    public var maxMessageBytes: Int = 1_048_588
    /// message.timestamp.type: LogAppendTime makes the broker stamp batches
    public var logAppendTime = false
    /// message.timestamp.before.max.ms / after.max.ms
    public var timestampBeforeMaxMs: Int64 = Int64.max
    public var timestampAfterMaxMs: Int64 = 3_600_000
    /// cleanup.policy: `delete` removes old segments by retention.ms/bytes; `compact` keeps the latest
    /// record per key (records must have keys); both may be set.
    public var cleanupDelete = true
    public var cleanupCompact = false
    /// segment.ms: the active segment rolls once it is this old, so its data becomes cleanable.
    public var segmentMs: Int64 = 604_800_000
    /// min.cleanable.dirty.ratio: the cleaner takes a log once this share of it is dirty (not yet cleaned).
    public var minCleanableDirtyRatio: Double = 0.5
    /// min.compaction.lag.ms: records at least this old may be compacted; newer ones are left alone.
    public var minCompactionLagMs: Int64 = 0
    /// max.compaction.lag.ms: a dirty record older than this makes the log due whatever its ratio
    /// (and rolls the active segment, so the record becomes cleanable).
    public var maxCompactionLagMs: Int64 = Int64.max
    /// delete.retention.ms: how long a tombstone stays readable once it has been through a clean.
    public var deleteRetentionMs: Int64 = 86_400_000

    public init() {}

    /// How old the active segment may grow: segment.ms, and for a compacted log also
    /// max.compaction.lag.ms, so that no record waits longer than that to become cleanable (KIP-354).
    public var rollAfterMs: Int64 { cleanupCompact ? min(segmentMs, maxCompactionLagMs) : segmentMs }
}

extension TopicPartition {
    /// Parses a log directory's name (`<topic>-<partition>`, as Kafka names them); topic names may
    /// contain '-', so the partition is after the last one.
    public init?(directoryName: String) {
        // Only the canonical form: "x-05" or "x-+5" would parse to a partition whose directory is
        // another name.
        guard let dash = directoryName.lastIndex(of: "-"), dash != directoryName.startIndex else { return nil }
        let digits = directoryName[directoryName.index(after: dash)...]
        guard let partition = Int32(digits), partition >= 0, String(partition) == digits else { return nil }
        self.init(String(directoryName[..<dash]), partition)
    }
}
