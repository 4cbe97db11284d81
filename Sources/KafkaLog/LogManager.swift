import KafkaWire
import Logging
import NIOConcurrencyHelpers

/// The log directory (`log.dirs`): one directory per partition named `<topic>-<partition>`, and
/// Kafka's checkpoint files beside them:
///
///     recovery-point-offset-checkpoint   offsets below which every partition's data is on disk
///     log-start-offset-checkpoint        each partition's log start offset (DeleteRecords, retention)
///     cleaner-offset-checkpoint          where each compacted partition's dirty section starts
///     .kafka_cleanshutdown               present only after a clean shutdown
///
/// Checkpoint format (Kafka's): a version line `0`, a count line, then `<topic> <partition> <offset>`.
public final class LogManager: Sendable {
    public static let recoveryPointFile = "recovery-point-offset-checkpoint"
    public static let logStartOffsetFile = "log-start-offset-checkpoint"
    public static let cleanShutdownFile = ".kafka_cleanshutdown"
    public static let cleanerCheckpointFile = "cleaner-offset-checkpoint"

    public let directory: String
    /// The open partitions: the lock is the only way to them.
    private let logs = NIOLockedValueBox<[TopicPartition: PartitionLog]>([:])
    private let logger: Logger
    /// Whether the previous run ended with a clean shutdown (decided when loading).
    public var wasCleanShutdown: Bool { cleanShutdown.withLockedValue { $0 } }
    private let cleanShutdown = NIOLockedValueBox(false)
    /// The first offset each compacted partition's cleaner has not cleaned; written on each change
    /// under the same lock, so two cleaner threads never write the file at once.
    private let firstDirtyOffsets = NIOLockedValueBox<[TopicPartition: Int64]>([:])

    public init(directory: String, logger: Logger) throws {
        self.directory = directory
        self.logger = logger
        try LogDirectory.create(directory)
    }

    public var all: [TopicPartition: PartitionLog] { logs.withLockedValue { $0 } }

    public func log(_ tp: TopicPartition) -> PartitionLog? { logs.withLockedValue { $0[tp] } }

    /// Opens every partition directory. Without the clean-shutdown marker, partitions are recovered
    /// from their recovery points. `config` gives each topic's log settings.
    public func loadAll(config: (String) -> LogConfig) throws {
        let markerPath = directory + "/" + Self.cleanShutdownFile
        let clean = LogDirectory.exists(markerPath)
        cleanShutdown.withLockedValue { $0 = clean }
        let recoveryPoints = readCheckpoint(Self.recoveryPointFile)
        let startOffsets = readCheckpoint(Self.logStartOffsetFile)
        let cleaned = readCheckpoint(Self.cleanerCheckpointFile)
        var loaded: [TopicPartition: PartitionLog] = [:]
        for name in try LogDirectory.list(directory) where LogDirectory.isDirectory(directory + "/" + name) {
            guard let tp = TopicPartition(directoryName: name) else { continue }
            let log = try PartitionLog(directory: directory + "/" + name, topicPartition: tp, config: config(tp.topic),
                                       logStartOffset: startOffsets[tp], recoveryPoint: recoveryPoints[tp], clean: clean,
                                       logger: logger)
            loaded[tp] = log
        }
        logs.withLockedValue { $0 = loaded }
        firstDirtyOffsets.withLockedValue { $0 = cleaned.filter { loaded[$0.key] != nil } }
        // The marker speaks for one run only: from here on a crash must trigger recovery.
        try LogDirectory.remove(markerPath)
        if !clean && !loaded.isEmpty {
            logger.warning("no clean-shutdown marker: recovered \(loaded.count) partition(s) from their recovery points")
        }
        try checkpoint()
    }

    public func createLog(_ tp: TopicPartition, config: LogConfig) throws -> PartitionLog {
        try logs.withLockedValue { logs in
            if let existing = logs[tp] { return existing }
            let log = try PartitionLog(directory: directory + "/" + tp.description, topicPartition: tp, config: config,
                                       logStartOffset: 0, recoveryPoint: 0, clean: true, logger: logger)
            logs[tp] = log
            return log
        }
    }

    /// Forgets a partition without touching its files (a directory the broker will not serve).
    public func unload(_ tp: TopicPartition) {
        logs.withLockedValue { _ = $0.removeValue(forKey: tp) }
    }

    public func deleteLog(_ tp: TopicPartition) throws {
        let log = logs.withLockedValue { $0.removeValue(forKey: tp) }
        try log?.delete()
        try firstDirtyOffsets.withLockedValue { offsets in
            guard offsets.removeValue(forKey: tp) != nil else { return }
            try writeCheckpoint(Self.cleanerCheckpointFile, offsets)
        }
    }

    /// Where the cleaner's next dirty section of `tp` starts, nil before its first clean.
    public func firstDirtyOffset(_ tp: TopicPartition) -> Int64? {
        firstDirtyOffsets.withLockedValue { $0[tp] }
    }

    /// Records a clean of `tp` up to `offset` in `cleaner-offset-checkpoint`.
    public func recordCleaned(_ tp: TopicPartition, upTo offset: Int64) throws {
        try firstDirtyOffsets.withLockedValue { offsets in
            offsets[tp] = offset
            try writeCheckpoint(Self.cleanerCheckpointFile, offsets)
        }
    }

    /// Writes both checkpoint files atomically.
    public func checkpoint() throws {
        let current = all
        try writeCheckpoint(Self.recoveryPointFile, current.mapValues { $0.recoveryPointOffset })
        try writeCheckpoint(Self.logStartOffsetFile, current.mapValues { $0.logStartOffset })
    }

    /// Clean shutdown: flush everything, write checkpoints, then the marker.
    public func shutdown() throws {
        for log in all.values { try log.close(sync: true) }
        try checkpoint()
        try LogDirectory.writeAtomically("{\"version\":0,\"brokerEpoch\":0}", to: directory + "/" + Self.cleanShutdownFile)
    }

    func writeCheckpoint(_ name: String, _ offsets: [TopicPartition: Int64]) throws {
        var text = "0\n\(offsets.count)\n"
        for (tp, offset) in offsets.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
            text += "\(tp.topic) \(tp.partition) \(offset)\n"
        }
        try LogDirectory.writeAtomically(text, to: directory + "/" + name)
    }

    /// Reads a checkpoint; a missing or corrupt one yields nothing (recovery then starts from zero).
    func readCheckpoint(_ name: String) -> [TopicPartition: Int64] {
        guard let text = try? LogDirectory.readText(directory + "/" + name) else { return [:] }
        let lines = text.split(separator: "\n")
        // The count is compared without arithmetic on it: a count of Int.max must not overflow.
        guard lines.count >= 2, lines[0] == "0", let count = Int(lines[1]), count >= 0, lines.count - 2 == count else {
            logger.warning("corrupt checkpoint file \(name): ignored, partitions will be recovered from their segments")
            return [:]
        }
        var result: [TopicPartition: Int64] = [:]
        for line in lines.dropFirst(2) {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let partition = Int32(fields[1]), partition >= 0, let offset = Int64(fields[2]), offset >= 0 else {
                logger.warning("corrupt checkpoint file \(name): ignored")
                return [:]
            }
            result[TopicPartition(String(fields[0]), partition)] = offset
        }
        return result
    }
}
