#if canImport(Glibc)
import Glibc
#endif
import KafkaWire
import Logging
import NIOPosix

/// The cleaner's broker settings (Kafka's `log.cleaner.*`).
public struct CleanerConfig: Sendable {
    /// log.cleaner.enable
    public var enabled = true
    /// log.cleaner.threads
    public var threads = 1
    /// log.cleaner.io.max.bytes.per.second, shared by the threads
    public var ioMaxBytesPerSecond = Double.greatestFiniteMagnitude
    /// log.cleaner.dedupe.buffer.size, shared by the threads
    public var dedupeBufferSize = 134_217_728
    /// log.cleaner.backoff.ms: the sleep when no log needs cleaning
    public var backoffMs: Int64 = 15_000

    public init() {}
}

/// What one clean did.
public struct CleanReport: Sendable {
    public let topicPartition: TopicPartition
    public let firstDirtyOffset: Int64
    /// Where the next clean's dirty section starts.
    public let endOffset: Int64
    public let dirtyRatio: Double
    public let stats: CleanerStats
    public let elapsedMs: Int64
}

/// Keeps compacted logs compacted (Kafka's LogCleaner and LogCleanerManager): threads of its own,
/// off the event loops, each taking the dirtiest compacted log that is due (its dirty share past
/// `min.cleanable.dirty.ratio`, or a dirty record older than `max.compaction.lag.ms`) and cleaning
/// it (`Cleaner`). Where each log's dirty section starts survives restarts in
/// `cleaner-offset-checkpoint` (`LogManager`). A log whose clean fails is left alone until the next
/// start, with an error naming it, as Kafka marks a partition uncleanable.
public final class LogCleaner: Sendable {
    let logs: LogManager
    let config: CleanerConfig
    let logger: Logger
    private let pool: NIOThreadPool

    private struct State {
        var inProgress: Set<TopicPartition> = []
        var uncleanable: Set<TopicPartition> = []
        var stopping = false
        var started = false
    }
    private let state = SendingLock(State())

    public init(logs: LogManager, config: CleanerConfig, logger: Logger) {
        self.logs = logs
        self.config = config
        self.logger = logger
        pool = NIOThreadPool(numberOfThreads: max(config.threads, 1))
    }

    /// Starts the cleaner threads (none when log.cleaner.enable is false or threads is 0).
    public func start() {
        guard config.enabled, config.threads > 0 else { return }
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        guard first else { return }
        pool.start()
        for _ in 0..<config.threads {
            pool.submit { [self] _ in runLoop() }
        }
    }

    /// Stops the threads: a clean in progress is abandoned at its next chunk (its files removed).
    public func shutdown() async throws {
        let started = state.withLock { s -> Bool in
            s.stopping = true
            return s.started
        }
        if started { try await pool.shutdownGracefully() }
    }

    var isStopping: Bool { state.withLock { $0.stopping } }

    private func runLoop() {
        while !isStopping {
            if cleanDirtiest() != nil { continue }
            // Nothing due: wait log.cleaner.backoff.ms, waking for a stop.
            var waited: Int64 = 0
            while waited < config.backoffMs, !isStopping {
                let step = min(config.backoffMs - waited, 50)
                usleep(UInt32(step * 1000))
                waited += step
            }
        }
    }

    // MARK: Choosing a log

    /// What makes a log due, computed from a view of it.
    struct Candidate {
        let log: PartitionLog
        let view: CleaningView
        let firstDirty: Int64
        let firstUncleanable: Int64
        let ratio: Double
    }

    /// The log's dirty section and whether it is due (Kafka's LogCleanerManager rules).
    func candidate(_ log: PartitionLog, nowMs: Int64) throws -> Candidate? {
        guard let view = try log.cleaningView(), view.config.cleanupCompact else { return nil }
        var firstDirty = logs.firstDirtyOffset(view.topicPartition) ?? view.logStartOffset
        // A checkpoint below the log start (retention moved it) or past the log (a log recreated)
        // starts over from the log start.
        if firstDirty < view.logStartOffset || firstDirty > view.activeBaseOffset { firstDirty = view.logStartOffset }
        // Nothing past the last stable offset: an open transaction's records may yet be aborted.
        var firstUncleanable = min(view.activeBaseOffset, view.lastStableOffset)
        let lag = view.config.minCompactionLagMs
        if lag > 0, let young = view.segments.first(where: { $0.nextOffset > firstDirty && $0.maxTimestamp > nowMs - lag }) {
            firstUncleanable = min(firstUncleanable, young.baseOffset)
        }
        var dirty = 0, clean = 0
        for segment in view.segments {
            if segment.nextOffset <= firstDirty { clean += segment.size }
            else if segment.baseOffset < firstUncleanable { dirty += segment.size }
        }
        guard dirty > 0, firstDirty < firstUncleanable else { return nil }
        let ratio = Double(dirty) / Double(dirty + clean)
        var due = ratio >= view.config.minCleanableDirtyRatio
        if !due, view.config.maxCompactionLagMs < Int64.max,
           let first = view.segments.first(where: { $0.nextOffset > firstDirty && $0.size > 0 }),
           let timestamp = try first.file.readInteger(at: RecordBatchLayout.baseTimestamp, as: Int64.self), timestamp >= 0 {
            due = nowMs - timestamp > view.config.maxCompactionLagMs
        }
        guard due else { return nil }
        return Candidate(log: log, view: view, firstDirty: firstDirty, firstUncleanable: firstUncleanable, ratio: ratio)
    }

    // MARK: Cleaning

    /// Cleans the dirtiest due log, if any; nil when none is due. Threads call it in a loop; tests
    /// and tools call it to clean now.
    @discardableResult
    public func cleanDirtiest(nowMs: Int64 = PartitionLog.currentTimeMs()) -> CleanReport? {
        let skip = state.withLock { $0.inProgress.union($0.uncleanable) }
        var best: Candidate?
        for (tp, log) in logs.all where !skip.contains(tp) && log.config.cleanupCompact {
            do {
                if let c = try candidate(log, nowMs: nowMs), c.ratio > best?.ratio ?? -1 { best = c }
            } catch {
                logger.warning("cannot judge \(tp) for cleaning: \(error)")
            }
        }
        guard let chosen = best else { return nil }
        let tp = chosen.view.topicPartition
        let claimed = state.withLock { s -> Bool in
            guard !s.stopping, s.inProgress.insert(tp).inserted else { return false }
            return true
        }
        guard claimed else { return nil }
        defer { _ = state.withLock { $0.inProgress.remove(tp) } }
        guard chosen.log.beginCleaning() else { return nil }
        defer { chosen.log.endCleaning() }
        return clean(chosen, nowMs: nowMs)
    }

    private func clean(_ chosen: Candidate, nowMs: Int64) -> CleanReport? {
        let tp = chosen.view.topicPartition
        let threads = max(config.threads, 1)
        let cleaner = Cleaner(dedupeBufferSize: config.dedupeBufferSize / threads,
                              ioMaxBytesPerSecond: config.ioMaxBytesPerSecond / Double(threads),
                              shouldStop: { [self, log = chosen.log] in isStopping || log.isDeleted })
        let started = Throttler.nowSeconds()
        var stats = CleanerStats()
        do {
            let end = try cleaner.clean(chosen.log, view: chosen.view, firstDirty: chosen.firstDirty,
                                        firstUncleanable: chosen.firstUncleanable, nowMs: nowMs, stats: &stats)
            // A log replaced meanwhile (deleted and created again) is not the one cleaned.
            guard logs.log(tp) === chosen.log else { return nil }
            try logs.recordCleaned(tp, upTo: end)
            let elapsed = Int64((Throttler.nowSeconds() - started) * 1000)
            let report = CleanReport(topicPartition: tp, firstDirtyOffset: chosen.firstDirty, endOffset: end, dirtyRatio: chosen.ratio,
                                     stats: stats, elapsedMs: elapsed)
            logger.info("cleaned \(tp): offsets \(chosen.firstDirty)-\(end) mapped (\(stats.mapEntries) keys), read \(stats.bytesRead) bytes, wrote \(stats.bytesWritten), removed \(stats.recordsRemoved) of \(stats.recordsRead) records and \(stats.markersRemoved) obsolete transaction markers, \(stats.segmentsBefore) → \(stats.segmentsAfter) segments, dirty ratio \(Self.percent(chosen.ratio)), \(elapsed) ms")
            return report
        } catch is CleanerStopped {
            logger.info("clean of \(tp) abandoned: \(chosen.log.isDeleted ? "the partition was deleted" : "the cleaner is stopping")")
        } catch {
            // A log deleted under the cleaner is not a failure.
            if chosen.log.isDeleted { return nil }
            state.withLock { _ = $0.uncleanable.insert(tp) }
            logger.error("cleaning \(tp) failed; it is not cleaned again until the broker restarts: \(error)")
        }
        return nil
    }

    static func percent(_ ratio: Double) -> String {
        "\(Int((ratio * 1000).rounded()) / 10).\(Int((ratio * 1000).rounded()) % 10) %"
    }
}
