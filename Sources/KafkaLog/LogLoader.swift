import KafkaWire
import Logging

/// Opens a partition directory's segments at start-up (Kafka's LogLoader): finishes or rolls back an
/// interrupted clean (`SegmentSwap`), removes leftovers of interrupted writes, skips files that are not segments, trusts segments below the recovery point
/// after a clean stop and recovers the rest (CRCs checked, torn or corrupt tails truncated, indexes
/// rebuilt), and drops a segment that no longer follows its predecessor.
struct LogLoader {
    let directory: String
    let config: LogConfig
    let logger: Logger

    /// The segments in offset order; never empty (an empty directory gets one at the log start).
    func load(logStartOffset: Int64?, recoveryPoint point: Int64, clean: Bool) throws -> [LogSegment] {
        try LogDirectory.create(directory)
        // A clean interrupted by a crash is rolled back or completed before the segments are read.
        try SegmentSwap.recover(directory, logger: logger)
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
        return opened
    }
}
