import Foundation
@testable import KafkaLog
import KafkaWire
import NIOCore
import Testing

/// The log cleaner on logs driven directly: what a clean keeps, how it survives a crash at each of
/// its steps, and what readers and idempotent producers see.
@Suite struct LogCleanerTests {
    static let tp = TopicPartition("table", 0)

    /// A batch as a client sends it, one record per (key, value); a nil value is a tombstone.
    static func keyed(_ entries: [(String, String?)], compression: CompressionCodec = .none, producerId: Int64 = -1,
                      epoch: Int16 = -1, sequence: Int32 = -1, timestamp: Int64 = 1_700_000_000_000) -> ByteBuffer {
        let records = entries.enumerated().map { i, e in
            Record(offset: Int64(i), timestamp: timestamp, key: ByteBuffer(string: e.0), value: e.1.map { ByteBuffer(string: $0) })
        }
        return try! RecordBatch(compression: compression, producerId: producerId, producerEpoch: epoch, baseSequence: sequence,
                                records: records).encoded()
    }

    static func compactConfig(segmentBytes: Int = 2_000) -> LogConfig {
        var c = config(segmentBytes: segmentBytes, indexIntervalBytes: 256)
        c.cleanupCompact = true
        c.cleanupDelete = false
        c.minCleanableDirtyRatio = 0.01
        return c
    }

    /// Every record's (offset, key, value) read through the fetch path, with each batch's CRC checked.
    static func contents(_ log: PartitionLog) throws -> [(Int64, String, String?)] {
        var out: [(Int64, String, String?)] = []
        var next = log.logStartOffset
        while case .slice(let slice) = try log.read(from: next, maxBytes: 1 << 20, minOneBatch: true) {
            var iterator = RecordBatchIterator(try slice.file.read(at: slice.position, length: slice.length))
            var progressed = false
            while let view = iterator.next() {
                _ = try RecordBatchView(validating: view.buffer)
                for r in try view.records() where r.offset >= next {
                    out.append((r.offset, String(buffer: r.key!), r.value.map { String(buffer: $0) }))
                }
                next = view.lastOffset + 1
                progressed = true
            }
            if !progressed { break }
        }
        return out
    }

    /// What a compacted log must hold: the last record of each key, at its offset, in offset order.
    static func latest(_ written: [(Int64, String, String?)]) -> [(Int64, String, String?)] {
        var last: [String: (Int64, String, String?)] = [:]
        for w in written { last[w.1] = w }
        return last.values.sorted { $0.0 < $1.0 }
    }

    static func same(_ a: [(Int64, String, String?)], _ b: [(Int64, String, String?)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 }
    }

    /// Appends `batches` rounds of updates to `keys` keys (every codec in turn) and returns what was written.
    static func fill(_ log: PartitionLog, keys: Int, batches: Int, tombstoneEvery: Int = 0, prefix: String = "key") throws -> [(Int64, String, String?)] {
        var written: [(Int64, String, String?)] = []
        let codecs: [CompressionCodec] = [.none, .gzip, .snappy, .lz4, .zstd]
        for b in 0..<batches {
            let entries: [(String, String?)] = (0..<5).map { i in
                let key = "\(prefix)-\((b * 5 + i) * 7 % keys)"
                let tombstone = tombstoneEvery > 0 && (b * 5 + i) % tombstoneEvery == 0
                return (key, tombstone ? nil : "value-\(b)-\(i)")
            }
            let result = try log.append(keyed(entries, compression: codecs[b % codecs.count]))
            for (i, e) in entries.enumerated() { written.append((result.firstOffset + Int64(i), e.0, e.1)) }
        }
        return written
    }

    func manager(_ dir: TemporaryDirectory) throws -> LogManager {
        let logs = try LogManager(directory: dir.path, logger: testLogger)
        try logs.loadAll { _ in Self.compactConfig() }
        return logs
    }

    func cleaner(_ logs: LogManager, dedupeBufferSize: Int = 1 << 20) -> LogCleaner {
        var c = CleanerConfig()
        c.dedupeBufferSize = dedupeBufferSize
        return LogCleaner(logs: logs, config: c, logger: testLogger)
    }

    @Test func aCleanKeepsTheLatestRecordOfEachKeyAtItsOffsetInEveryCodec() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        let log = try logs.createLog(Self.tp, config: Self.compactConfig())
        let written = try Self.fill(log, keys: 20, batches: 120)
        let segmentsBefore = log.segmentCount, sizeBefore = log.sizeInBytes
        let report = try #require(cleaner(logs).cleanDirtiest())
        #expect(report.stats.recordsRemoved > 0 && report.stats.mapEntries == 20)
        let expected = Self.latest(written.filter { $0.0 < report.endOffset }) + written.filter { $0.0 >= report.endOffset }
        let got = try Self.contents(log)
        // Everything below the active segment is compacted; the active segment is left as written.
        #expect(Self.same(got, expected))
        #expect(Set(got.filter { $0.0 < report.endOffset }.map(\.1)).count == got.filter { $0.0 < report.endOffset }.count)
        #expect(log.sizeInBytes < sizeBefore / 3)
        #expect(logs.firstDirtyOffset(Self.tp) == report.endOffset)
        // The log goes on from where it was, and nothing is due until new dirty data arrives.
        #expect(log.logEndOffset == Int64(written.count))
        #expect(try log.append(Self.keyed([("key-1", "after")])).firstOffset == Int64(written.count))
        #expect(cleaner(logs).cleanDirtiest() == nil)
        // Groups are sized by the segments they replace (as Kafka's): full segments are rewritten
        // one for one, and the next clean merges the small cleaned ones.
        #expect(log.segmentCount == segmentsBefore)
        let more = try Self.fill(log, keys: 20, batches: 30)
        let second = try #require(cleaner(logs).cleanDirtiest())
        #expect(log.segmentCount < segmentsBefore)
        let all = written + [(Int64(written.count), "key-1", "after")] + more
        let compacted = try Self.contents(log)
        #expect(Self.same(compacted, Self.latest(all.filter { $0.0 < second.endOffset }) + all.filter { $0.0 >= second.endOffset }))
        // A restart reads the same log and the same checkpoint.
        try logs.shutdown()
        let reopened = try manager(dir)
        let again = try #require(reopened.log(Self.tp))
        #expect(Self.same(try Self.contents(again), compacted))
        #expect(reopened.firstDirtyOffset(Self.tp) == second.endOffset)
    }

    @Test func tombstonesStayUntilTheyHaveBeenThroughACleanAndDeleteRetentionPassed() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        var config = Self.compactConfig()
        config.deleteRetentionMs = 60_000
        let log = try logs.createLog(Self.tp, config: config)
        var written = try Self.fill(log, keys: 10, batches: 40, tombstoneEvery: 3)
        let now = PartitionLog.currentTimeMs()
        try #require(cleaner(logs).cleanDirtiest(nowMs: now) != nil)
        let firstPass = try Self.contents(log)
        #expect(firstPass.contains { $0.2 == nil }, "tombstones are kept by the clean that finds them")
        // New dirty data (other keys), cleaned while delete.retention.ms has not passed: tombstones stay.
        written += try Self.fill(log, keys: 10, batches: 40, prefix: "other")
        try #require(cleaner(logs).cleanDirtiest(nowMs: now + 1_000) != nil)
        #expect(try Self.contents(log).contains { $0.2 == nil })
        // Later than delete.retention.ms after the segments were written: the cleaned ones lose them.
        written += try Self.fill(log, keys: 10, batches: 40, tombstoneEvery: 7, prefix: "third")
        let report = try #require(cleaner(logs).cleanDirtiest(nowMs: now + 120_000))
        let got = try Self.contents(log)
        let cleaned = got.filter { $0.0 < report.firstDirtyOffset }
        #expect(!cleaned.isEmpty && !cleaned.contains { $0.2 == nil })
        // Nothing else changed: every key's latest value, a tombstone only where still dirty.
        let live = Self.latest(written.filter { $0.0 < report.endOffset }).filter { $0.2 != nil || $0.0 >= report.firstDirtyOffset }
        #expect(Self.same(got.filter { $0.0 < report.endOffset }, live))
    }

    @Test func minCompactionLagLeavesYoungSegmentsAndMaxLagForcesALowRatio() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        var config = Self.compactConfig()
        config.minCompactionLagMs = 3_600_000
        let log = try logs.createLog(Self.tp, config: config)
        let now = PartitionLog.currentTimeMs()
        _ = try Self.fill(log, keys: 5, batches: 60)  // timestamps of 2023: old enough
        #expect(cleaner(logs).cleanDirtiest(nowMs: now) != nil)
        // Fresh records are younger than the lag: left alone.
        for i in 0..<60 { _ = try log.append(Self.keyed([("key-\(i % 5)", "fresh-\(i)")], timestamp: now)) }
        #expect(cleaner(logs).cleanDirtiest(nowMs: now) == nil)
        #expect(cleaner(logs).cleanDirtiest(nowMs: now + 7_200_000) != nil)
        // A ratio that is never reached, but a dirty record older than max.compaction.lag.ms.
        config.minCompactionLagMs = 0
        config.minCleanableDirtyRatio = 1.0
        config.maxCompactionLagMs = 60_000
        log.config = config
        for i in 0..<60 { _ = try log.append(Self.keyed([("key-\(i % 5)", "again-\(i)")], timestamp: now)) }
        #expect(cleaner(logs).cleanDirtiest(nowMs: now) == nil)
        #expect(cleaner(logs).cleanDirtiest(nowMs: now + 120_000) != nil)
    }

    @Test func aSmallDedupeBufferCleansInSeveralPassesToTheSameResult() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        let log = try logs.createLog(Self.tp, config: Self.compactConfig())
        let written = try Self.fill(log, keys: 200, batches: 100)
        // 16 slots: 14 keys a pass.
        let small = cleaner(logs, dedupeBufferSize: 16 * 24)
        var passes = 0
        while let report = small.cleanDirtiest(), passes < 100 {
            passes += 1
            #expect(report.stats.mapEntries <= 14)
        }
        #expect(passes > 5)
        let end = try #require(logs.firstDirtyOffset(Self.tp))
        let got = try Self.contents(log)
        #expect(Self.same(got, Self.latest(written.filter { $0.0 < end }) + written.filter { $0.0 >= end }))
    }

    @Test func idempotentProducersKeepTheirSequencesThroughACleanAndACrash() throws {
        let dir = TemporaryDirectory()
        var batches: [(first: Int64, last: Int64)] = []
        do {
            let logs = try manager(dir)
            let log = try logs.createLog(Self.tp, config: Self.compactConfig(segmentBytes: 400))
            for b in 0..<40 {
                let result = try log.append(Self.keyed([("a", "\(b)"), ("b", "\(b)")], producerId: 9, epoch: 1, sequence: Int32(b * 2)))
                batches.append((result.firstOffset, result.lastOffset))
            }
            _ = try log.append(Self.keyed([("c", "other producer")]))
            try #require(cleaner(logs).cleanDirtiest() != nil)
            // No close: a crash. Producer 9's earlier batches are gone from the log.
            #expect(try Self.contents(log).filter { $0.1 == "a" }.count < 5)
        }
        let logs = try LogManager(directory: dir.path, logger: testLogger)
        try logs.loadAll { _ in Self.compactConfig() }
        let log = try #require(logs.log(Self.tp))
        // A retry of one of the last five batches, the cleaned-away ones included, gets its offsets back.
        for b in [39, 37] {
            let retry = try log.append(Self.keyed([("a", "\(b)"), ("b", "\(b)")], producerId: 9, epoch: 1, sequence: Int32(b * 2)))
            #expect(retry.firstOffset == batches[b].first && retry.lastOffset == batches[b].last && retry.recordCount == 0)
        }
        #expect(try log.append(Self.keyed([("a", "40")], producerId: 9, epoch: 1, sequence: 80)).recordCount == 1)
        #expect(throws: AppendError.self) { try log.append(Self.keyed([("a", "x")], producerId: 9, epoch: 1, sequence: 90)) }
    }

    @Test func aReaderHoldingAReplacedSegmentKeepsReadingItsBytes() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        let log = try logs.createLog(Self.tp, config: Self.compactConfig())
        _ = try Self.fill(log, keys: 3, batches: 50)
        guard case .slice(let held) = try log.read(from: 0, maxBytes: 1 << 20, minOneBatch: true) else {
            Issue.record("nothing to read")
            return
        }
        let before = try held.file.read(at: held.position, length: held.length)
        try #require(cleaner(logs).cleanDirtiest() != nil)
        let after = try held.file.read(at: held.position, length: held.length)
        #expect(before == after)
        let batches = try RecordBatch.decodeAll(after)
        #expect(!batches.isEmpty && batches.allSatisfy { $0.baseOffset >= 0 })
    }

    @Test(.timeLimit(.minutes(1))) func theCleanerThreadsRunBesideAppendsAndReads() async throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        let log = try logs.createLog(Self.tp, config: Self.compactConfig())
        var c = CleanerConfig()
        c.threads = 2
        c.backoffMs = 1
        let cleaner = LogCleaner(logs: logs, config: c, logger: testLogger)
        cleaner.start()
        var written: [(Int64, String, String?)] = []
        for round in 0..<20 {
            written += try Self.fill(log, keys: 30, batches: 25, prefix: "k")
            // Every read sees each batch whole and valid, whatever the cleaner swapped meanwhile.
            let seen = try Self.contents(log)
            #expect(seen.last?.0 == written.last?.0, "round \(round)")
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.0 < $1.0 })
        }
        var waited = 0
        while logs.firstDirtyOffset(Self.tp) != log.segmentBaseOffsets.last, waited < 200 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        try await cleaner.shutdown()
        let end = try #require(logs.firstDirtyOffset(Self.tp))
        #expect(end == log.segmentBaseOffsets.last)
        #expect(Self.same(try Self.contents(log), Self.latest(written.filter { $0.0 < end }) + written.filter { $0.0 >= end }))
    }

    @Test func aGroupTheLogChangedUnderLeavesTheDirtySectionWhereItWas() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        var config = Self.compactConfig()
        config.cleanupDelete = true
        let log = try logs.createLog(Self.tp, config: config)
        _ = try Self.fill(log, keys: 10, batches: 60, tombstoneEvery: 4)
        let view = try #require(try log.cleaningView())
        // DeleteRecords (or retention) removes the first segment after the cleaner took its view.
        _ = try log.deleteRecords(before: view.segments[1].baseOffset)
        var stats = CleanerStats()
        let cleaner = Cleaner(dedupeBufferSize: 1 << 20, ioMaxBytesPerSecond: .greatestFiniteMagnitude, shouldStop: { false })
        let next = try cleaner.clean(log, view: view, firstDirty: 0, firstUncleanable: view.activeBaseOffset, nowMs: 0, stats: &stats)
        #expect(stats.groupsDropped == 1 && next == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/table-0")
        #expect(!names.contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") || $0.hasSuffix(".swapend") })
    }

    @Test func recordsClaimingOffsetsOtherThanTheirOwnAreRefusedOnACompactedTopic() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        let log = try logs.createLog(Self.tp, config: Self.compactConfig())
        // Three records whose offset deltas say 0, 0, 2: the second would claim the first's offset.
        let records = [0, 0, 2].map { Record(offset: Int64($0), timestamp: 1, key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v")) }
        let batch = try RecordBatch(records: records).encoded()
        #expect(throws: AppendError.self) { try log.append(batch) }
        #expect(log.logEndOffset == 0)
    }

    @Test func aSegmentTheCleanerEmptiedIsStillDeletedByTimeRetention() throws {
        let dir = TemporaryDirectory()
        let logs = try manager(dir)
        var config = Self.compactConfig(segmentBytes: 200)
        config.cleanupDelete = true
        config.retentionMs = 60_000
        let log = try logs.createLog(Self.tp, config: config)
        // Small segments of the same two keys: the clean empties the first ones.
        for round in 0..<6 { _ = try log.append(Self.keyed([("a", "\(round)"), ("b", "\(round)")])) }
        let segments = log.segmentCount, size = log.sizeInBytes
        try #require(cleaner(logs).cleanDirtiest() != nil)
        #expect(segments > 2 && log.segmentCount == segments && log.sizeInBytes <= size / 2)
        // Far past retention.ms: the emptied segments go like the others (by when they were written).
        try log.applyRetention(nowMs: PartitionLog.currentTimeMs() + 3_600_000)
        #expect(log.segmentCount == 1)
    }

    // MARK: Crash safety

    /// The log's directory as it was before a clean, and the same clean's cleaned segment: a crash
    /// between the steps is played by putting the cleaned files back under their step's names.
    struct Crash {
        let dir = TemporaryDirectory()
        let before: [(Int64, String, String?)]
        let after: [(Int64, String, String?)]
        let copy: String
        let cleanedBase: Int64
        let following: Int64

        init() throws {
            let logs = try LogManager(directory: dir.path, logger: testLogger)
            try logs.loadAll { _ in LogCleanerTests.compactConfig(segmentBytes: 1 << 20) }
            var config = LogCleanerTests.compactConfig(segmentBytes: 1 << 20)
            config.segmentMs = 1
            let log = try logs.createLog(LogCleanerTests.tp, config: config)
            // Three segments (segment.ms=1 rolls each append), then an active one.
            for round in 0..<3 {
                _ = try log.append(LogCleanerTests.keyed((0..<4).map { ("k\($0)", "r\(round)-\($0)") }))
                usleep(3_000)
            }
            _ = try log.append(LogCleanerTests.keyed([("k0", "active")]))
            try log.flush()
            before = try LogCleanerTests.contents(log)
            let directory = dir.path + "/table-0"
            copy = dir.path + "/copy"
            try FileManager.default.copyItem(atPath: directory, toPath: copy)
            let report = try #require(LogCleaner(logs: logs, config: CleanerConfig(), logger: testLogger).cleanDirtiest())
            #expect(report.stats.segmentsAfter == 1)
            after = try LogCleanerTests.contents(log)
            cleanedBase = 0
            following = report.endOffset
            try logs.shutdown()
        }

        /// Opens the copy after placing the cleaned files under `state` (".cleaned" or ".swap").
        func reopen(cleanedAs state: String?, withEnd: Bool = true, dropOld: [Int64] = [], keepIndexes: Bool = true) throws -> [(Int64, String, String?)] {
            let fm = FileManager.default
            let source = dir.path + "/table-0/" + LogSegment.fileName(cleanedBase, "")
            let target = copy + "/" + LogSegment.fileName(cleanedBase, "")
            if let state {
                for suffix in keepIndexes ? [".log", ".index", ".timeindex"] : [".log"] {
                    try? fm.removeItem(atPath: target + suffix + state)
                    try fm.copyItem(atPath: source + suffix, toPath: target + suffix + state)
                }
                if withEnd { try "\(following)\n".write(toFile: target + ".swapend" + state, atomically: false, encoding: .utf8) }
            }
            for base in dropOld {
                for suffix in [".log", ".index", ".timeindex"] { try? fm.removeItem(atPath: copy + "/" + LogSegment.fileName(base, suffix)) }
            }
            let log = try PartitionLog(directory: copy, topicPartition: LogCleanerTests.tp, config: LogCleanerTests.compactConfig(),
                                       logStartOffset: nil, recoveryPoint: 0, clean: false, logger: testLogger)
            let contents = try LogCleanerTests.contents(log)
            let names = try fm.contentsOfDirectory(atPath: copy)
            #expect(!names.contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") || $0.hasSuffix(".swapend") }, "\(names)")
            return contents
        }
    }

    @Test func aCrashBeforeTheCommitLeavesTheOldSegments() throws {
        let crash = try Crash()
        #expect(!Self.same(crash.before, crash.after))
        // Killed while writing the cleaned files, or with the indexes renamed but not the log.
        #expect(Self.same(try crash.reopen(cleanedAs: ".cleaned"), crash.before))
        let partial = try Crash()
        let target = partial.copy + "/" + LogSegment.fileName(0, ".index") + ".swap"
        try FileManager.default.copyItem(atPath: partial.dir.path + "/table-0/" + LogSegment.fileName(0, ".index"), toPath: target)
        #expect(Self.same(try partial.reopen(cleanedAs: nil), partial.before))
    }

    @Test func aCrashAfterTheCommitFinishesTheSwap() throws {
        // Committed, nothing replaced yet: every old segment in the range goes.
        let crash = try Crash()
        #expect(Self.same(try crash.reopen(cleanedAs: ".swap"), crash.after))
        // Committed and part of the old segments unlinked, the indexes not renamed.
        let partial = try Crash()
        let bases = try FileManager.default.contentsOfDirectory(atPath: partial.copy).compactMap {
            LogSegment.baseOffset(fromFileName: $0, suffix: ".log")
        }.sorted()
        #expect(bases.count == 4)
        #expect(Self.same(try partial.reopen(cleanedAs: ".swap", dropOld: [bases[0], bases[1]], keepIndexes: false), partial.after))
    }
}
