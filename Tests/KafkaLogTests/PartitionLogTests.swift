import Foundation
import KafkaLog
import KafkaWire
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite struct PartitionLogTests {
    func open(_ dir: TemporaryDirectory, _ config: LogConfig = config(), clean: Bool = true,
              recoveryPoint: Int64? = nil, start: Int64? = nil) throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/t-0", topicPartition: TopicPartition("t", 0), config: config,
                         logStartOffset: start, recoveryPoint: recoveryPoint, clean: clean, logger: testLogger)
    }

    @Test func appendAssignsOffsetsAndReadsBackAcrossSegmentRolls() throws {
        let dir = TemporaryDirectory()
        let log = try open(dir, config(segmentBytes: 8_000, indexIntervalBytes: 1_000))
        var expected: [String] = []
        for b in 0..<40 {
            let result = try log.append(clientBatch(count: 5, tag: "b\(b)"))
            #expect(result.firstOffset == Int64(b * 5) && result.lastOffset == Int64(b * 5 + 4))
            expected += (0..<5).map { "b\(b)-\($0)-" }
        }
        #expect(log.logEndOffset == 200)
        #expect(log.segmentCount >= 3)  // ~26 KB in 8 KB segments
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/t-0")
        #expect(files.contains("00000000000000000000.log") && files.contains("00000000000000000000.index")
                && files.contains("00000000000000000000.timeindex"))
        let records = try readAll(log)
        #expect(records.map(\.offset) == Array(0..<200))
        #expect(records.map { String(buffer: $0.value!).prefix(while: { $0 != "x" }) }.map(String.init) == expected)
        // A fetch from inside a batch returns that whole batch.
        guard case .slice(let slice) = try log.read(from: 7, maxBytes: 1, minOneBatch: true) else {
            Issue.record("no data at offset 7")
            return
        }
        let batches = try RecordBatch.decodeAll(try slice.file.read(at: slice.position, length: slice.length))
        #expect(batches.first?.baseOffset == 5 && batches.first?.records.count == 5)
    }

    /// A waiting fetch listens for the log to grow beyond where it was when the fetch read it: an append
    /// in between calls the listener at once rather than leaving it for the next append.
    @Test(.timeLimit(.minutes(1))) func appendListenersFireOnceTheLogGrowsBeyondAnOffset() throws {
        let dir = TemporaryDirectory()
        let log = try open(dir)
        _ = try log.append(clientBatch(count: 3))
        let seen = log.logEndOffset
        let calls = NIOLockedValueBox(0)
        let endSeenByListener = NIOLockedValueBox<Int64>(-1)
        // The listener reads the log: it is called once the append has released the log's lock.
        let waiting = log.onAppend(beyond: seen) {
            calls.withLockedValue { $0 += 1 }
            endSeenByListener.withLockedValue { $0 = log.logEndOffset }
        }
        #expect(waiting != nil && calls.withLockedValue { $0 } == 0 && log.appendListenerCount == 1)
        _ = try log.append(clientBatch(count: 2))
        #expect(calls.withLockedValue { $0 } == 1 && log.appendListenerCount == 0)
        #expect(endSeenByListener.withLockedValue { $0 } == 5)
        _ = try log.append(clientBatch(count: 2))
        #expect(calls.withLockedValue { $0 } == 1, "called once, not at every append")

        // Listening with an end the log has already passed: called at once, nothing registered.
        let late = log.onAppend(beyond: seen) { calls.withLockedValue { $0 += 1 } }
        #expect(late == nil && calls.withLockedValue { $0 } == 2 && log.appendListenerCount == 0)

        // A listener removed before any append is never called.
        let removed = try #require(log.onAppend(beyond: log.logEndOffset) { calls.withLockedValue { $0 += 100 } })
        log.removeAppendListener(removed)
        _ = try log.append(clientBatch(count: 1))
        #expect(calls.withLockedValue { $0 } == 2)
    }

    @Test func readBoundaries() throws {
        let dir = TemporaryDirectory()
        let log = try open(dir)
        _ = try log.append(clientBatch(count: 3))
        guard case .empty = try log.read(from: 3, maxBytes: 100, minOneBatch: true) else { Issue.record("end not empty"); return }
        guard case .offsetOutOfRange = try log.read(from: 4, maxBytes: 100, minOneBatch: true) else { Issue.record("past end"); return }
        guard case .offsetOutOfRange = try log.read(from: -1, maxBytes: 100, minOneBatch: true) else { Issue.record("negative"); return }
        // Too small a limit without minOneBatch: nothing rather than a torn batch.
        guard case .empty = try log.read(from: 0, maxBytes: 10, minOneBatch: false) else { Issue.record("partial sent"); return }
    }

    @Test func validationRefusesBadBatches() throws {
        let dir = TemporaryDirectory()
        var small = config()
        small.maxMessageBytes = 500
        let log = try open(dir, small)
        #expect(throws: AppendError.self) { try log.append(clientBatch(count: 10)) }  // > 500 bytes
        var corrupt = clientBatch(count: 1)
        corrupt.setInteger(UInt8(0x42), at: corrupt.writerIndex - 1)
        #expect(throws: AppendError.self) { try log.append(corrupt) }
        var old = clientBatch(count: 1)
        old.setInteger(Int8(1), at: RecordBatchLayout.magic)
        #expect(throws: AppendError.self) { try log.append(old) }
        #expect(throws: AppendError.self) { try log.append(ByteBuffer(bytes: [1, 2, 3])) }
        #expect(log.logEndOffset == 0)
        #expect(try log.append(clientBatch(count: 1, valueSize: 10)).firstOffset == 0)
    }

    @Test func logAppendTimeStampsTheBatch() throws {
        let dir = TemporaryDirectory()
        var c = config()
        c.logAppendTime = true
        let log = try open(dir, c)
        let result = try log.append(clientBatch(count: 2), nowMs: 1_800_000_000_000)
        #expect(result.logAppendTime == 1_800_000_000_000)
        guard case .slice(let slice) = try log.read(from: 0, maxBytes: 1 << 20, minOneBatch: true) else { return }
        let view = try RecordBatchView(validating: try slice.file.read(at: slice.position, length: slice.length))
        #expect(view.attributes.timestampType == .logAppendTime && view.maxTimestamp == 1_800_000_000_000)
    }

    @Test func restartAfterCleanCloseKeepsEverything() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try open(dir, config(segmentBytes: 5_000, indexIntervalBytes: 500))
            for b in 0..<30 { _ = try log.append(clientBatch(count: 4, tag: "r\(b)")) }
            try log.close(sync: true)
        }
        let reopened = try open(dir, config(segmentBytes: 5_000, indexIntervalBytes: 500), clean: true)
        #expect(reopened.logEndOffset == 120)
        #expect(try readAll(reopened).map(\.offset) == Array(0..<120))
        #expect(try reopened.append(clientBatch(count: 1)).firstOffset == 120)
    }

    @Test func recoveryTruncatesATornTail() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try open(dir)
            for _ in 0..<10 { _ = try log.append(clientBatch(count: 3)) }
            try log.close(sync: false)
        }
        // Cut the last batch in half, as a crash mid-write would.
        let path = dir.path + "/t-0/00000000000000000000.log"
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        truncate(path, off_t(size - 100))
        let log = try open(dir, clean: false, recoveryPoint: 0)
        #expect(log.logEndOffset == 27)
        #expect(try readAll(log).map(\.offset) == Array(0..<27))
        #expect(try log.append(clientBatch(count: 1)).firstOffset == 27)
    }

    @Test func recoveryTruncatesGarbageAndZeroFill() throws {
        for garbage in [[UInt8](repeating: 0, count: 4096), (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) }] {
            let dir = TemporaryDirectory()
            do {
                let log = try open(dir)
                for _ in 0..<5 { _ = try log.append(clientBatch(count: 2)) }
                try log.close(sync: false)
            }
            let handle = FileHandle(forWritingAtPath: dir.path + "/t-0/00000000000000000000.log")!
            handle.seekToEndOfFile()
            handle.write(Data(garbage))
            handle.closeFile()
            let log = try open(dir, clean: false, recoveryPoint: 0)
            #expect(log.logEndOffset == 10)
            #expect(try readAll(log).count == 10)
        }
    }

    @Test func corruptBatchInTheMiddleCutsTheRest() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try open(dir)
            for _ in 0..<6 { _ = try log.append(clientBatch(count: 2)) }
            try log.close(sync: false)
        }
        // Flip a byte inside the fourth batch: its CRC fails, so it and what follows are dropped.
        let path = dir.path + "/t-0/00000000000000000000.log"
        let batchSize = clientBatch(count: 2).readableBytes
        let handle = FileHandle(forUpdatingAtPath: path)!
        handle.seek(toFileOffset: UInt64(batchSize * 3 + 70))
        handle.write(Data([0xEE]))
        handle.closeFile()
        let log = try open(dir, clean: false, recoveryPoint: 0)
        #expect(log.logEndOffset == 6)
    }

    @Test func truncatedOrGarbageIndexIsRebuilt() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try open(dir, config(indexIntervalBytes: 300))
            for _ in 0..<20 { _ = try log.append(clientBatch(count: 2)) }
            try log.close(sync: true)
        }
        // An index whose size is not a multiple of 8 is corrupt; unclean start rebuilds it.
        let index = dir.path + "/t-0/00000000000000000000.index"
        truncate(index, 13)
        let log = try open(dir, config(indexIntervalBytes: 300), clean: false, recoveryPoint: 0)
        #expect(log.logEndOffset == 40)
        #expect(try readAll(log, from: 33).first?.offset == 33)
    }

    @Test func corruptIndexOfACleanlyStoppedLogIsRebuiltNotFatal() throws {
        let dir = TemporaryDirectory()
        let settings = config(segmentBytes: 4_000, indexIntervalBytes: 300)
        do {
            let log = try open(dir, settings)
            for _ in 0..<30 { _ = try log.append(clientBatch(count: 2)) }
            #expect(log.segmentCount >= 3)
            try log.close(sync: true)
        }
        // After a clean stop indexes are trusted: one truncated mid-entry, one with a zero-filled tail.
        truncate(dir.path + "/t-0/00000000000000000000.index", 13)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/t-0").filter { $0.hasSuffix(".index") }.sorted()
        let second = dir.path + "/t-0/" + files[1]
        let handle = FileHandle(forWritingAtPath: second)!
        handle.seekToEndOfFile()
        handle.write(Data(count: 64))
        handle.closeFile()
        let log = try open(dir, settings, clean: true)
        #expect(log.logEndOffset == 60)
        #expect(try readAll(log).map(\.offset) == Array(0..<60))
        for offset: Int64 in [1, 25, 41, 59] { #expect(try readAll(log, from: offset).first?.offset == offset) }
    }

    @Test func retentionBySizeAndTimeDeletesWholeOldSegments() throws {
        let dir = TemporaryDirectory()
        var c = config(segmentBytes: 3_000)
        c.retentionBytes = 6_000
        c.retentionMs = -1
        let log = try open(dir, c)
        for _ in 0..<30 { _ = try log.append(clientBatch(count: 3)) }
        let before = log.segmentCount
        let deleted = try log.applyRetention()
        #expect(deleted > 0 && log.segmentCount == before - deleted)
        #expect(log.sizeInBytes <= 6_000 + 3_000)
        #expect(log.logStartOffset > 0)
        #expect(try readAll(log).first?.offset == log.logStartOffset)
        // Time: everything older than a minute goes, except the active segment.
        var t = c
        t.retentionBytes = -1
        t.retentionMs = 60_000
        log.config = t
        _ = try log.applyRetention(nowMs: 1_700_000_000_000 + 10 * 60_000)
        #expect(log.segmentCount == 1)
    }

    @Test func deleteRecordsMovesTheLogStart() throws {
        let dir = TemporaryDirectory()
        let log = try open(dir, config(segmentBytes: 2_000))
        for _ in 0..<20 { _ = try log.append(clientBatch(count: 2)) }
        #expect(try log.deleteRecords(before: 25) == 25)
        #expect(try readAll(log).first?.offset == 25)
        guard case .offsetOutOfRange = try log.read(from: 10, maxBytes: 100, minOneBatch: true) else {
            Issue.record("offset below the log start was served")
            return
        }
        #expect(throws: LogError.self) { try log.deleteRecords(before: 1000) }
        #expect(try log.deleteRecords(before: 5) == 25)  // never backwards
    }

    @Test func offsetsForTimestamps() throws {
        let dir = TemporaryDirectory()
        let log = try open(dir, config(indexIntervalBytes: 200))
        for b in 0..<10 { _ = try log.append(clientBatch(count: 3, timestamp: 1_000 + Int64(b) * 100)) }
        // Batch b holds timestamps 1000+100b ... +2.
        #expect(try log.offset(forTimestamp: 0)?.offset == 0)
        #expect(try log.offset(forTimestamp: 1_501)?.offset == 16)
        #expect(try log.offset(forTimestamp: 1_503)?.offset == 18)
        #expect(try log.offset(forTimestamp: 99_999) == nil)
        // Batch 9 holds 1900, 1901, 1902 at offsets 27-29: the record with the max timestamp is 29.
        #expect(try log.maxTimestampOffset()?.timestamp == 1_902)
        #expect(try log.maxTimestampOffset()?.offset == 29)
    }

    @Test func idempotentProducerRetriesAreNotAppendedTwice() throws {
        let dir = TemporaryDirectory()
        let log = try open(dir)
        let first = try log.append(clientBatch(count: 3, producerId: 7, epoch: 0, sequence: 0))
        let second = try log.append(clientBatch(count: 2, producerId: 7, epoch: 0, sequence: 3))
        // A retry of the first batch gets its original offsets back and appends nothing.
        let retry = try log.append(clientBatch(count: 3, producerId: 7, epoch: 0, sequence: 0))
        #expect(retry.firstOffset == first.firstOffset && retry.lastOffset == first.lastOffset)
        #expect(log.logEndOffset == 5 && second.firstOffset == 3)
        // A gap in the sequence is refused.
        #expect(throws: AppendError.self) { try log.append(clientBatch(count: 1, producerId: 7, epoch: 0, sequence: 9)) }
        // An older epoch is fenced; a new epoch starts at 0.
        _ = try log.append(clientBatch(count: 1, producerId: 7, epoch: 1, sequence: 0))
        #expect(throws: AppendError.self) { try log.append(clientBatch(count: 1, producerId: 7, epoch: 0, sequence: 5)) }
        // A producer the partition has no state for is accepted at any sequence (KIP-360).
        #expect(try log.append(clientBatch(count: 1, producerId: 8, epoch: 0, sequence: 4)).recordCount == 1)
        // Two batches in one produce are refused, as is a batch with a base offset set by the client.
        var two = clientBatch(count: 1)
        two.writeImmutableBuffer(clientBatch(count: 1))
        #expect(throws: AppendError.self) { try log.append(two) }
        var offsetSet = clientBatch(count: 1)
        offsetSet.setInteger(Int64(5), at: 0)
        #expect(throws: AppendError.self) { try log.append(offsetSet) }
    }

    @Test func producerStateSurvivesRestartCleanOrNot() throws {
        for clean in [true, false] {
            let dir = TemporaryDirectory()
            do {
                let log = try open(dir)
                _ = try log.append(clientBatch(count: 3, producerId: 42, epoch: 2, sequence: 0))
                _ = try log.append(clientBatch(count: 3, producerId: 42, epoch: 2, sequence: 3))
                if clean { try log.close(sync: true) }
            }
            let log = try open(dir, clean: clean, recoveryPoint: 0)
            let retry = try log.append(clientBatch(count: 3, producerId: 42, epoch: 2, sequence: 3))
            #expect(retry.firstOffset == 3 && log.logEndOffset == 6, "clean: \(clean)")
            #expect(try log.append(clientBatch(count: 1, producerId: 42, epoch: 2, sequence: 6)).firstOffset == 6)
        }
    }
}
