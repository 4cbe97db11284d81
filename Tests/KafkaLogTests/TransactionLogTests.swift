import Foundation
@testable import KafkaLog
import KafkaWire
import NIOCore
import Testing

/// Transactions in one partition's log: open transactions hold the last stable offset, markers
/// end them, aborts land in the transaction index, and all of it survives restarts and cleans.
@Suite struct TransactionLogTests {
    static let tp = TopicPartition("txn", 0)

    /// A transactional batch of `producerId` with one record per (key, value).
    static func txnBatch(_ entries: [(String, String)], producerId: Int64, epoch: Int16 = 0, sequence: Int32) -> ByteBuffer {
        let records = entries.enumerated().map { i, e in
            Record(offset: Int64(i), timestamp: 1_700_000_000_000, key: ByteBuffer(string: e.0), value: ByteBuffer(string: e.1))
        }
        return try! RecordBatch(isTransactional: true, producerId: producerId, producerEpoch: epoch, baseSequence: sequence,
                                records: records).encoded()
    }

    static func open(_ dir: TemporaryDirectory, config: LogConfig = config(), clean: Bool = false, recoveryPoint: Int64? = nil) throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/txn-0", topicPartition: tp, config: config, logStartOffset: nil,
                         recoveryPoint: recoveryPoint, clean: clean, logger: testLogger)
    }

    /// The records a read_committed reader keeps: the fetch path bounded by the last stable offset,
    /// then the aborted transactions' records dropped as a consumer drops them.
    static func committedValues(_ log: PartitionLog) throws -> [String] {
        let stable = log.lastStableOffset
        guard case .slice(let slice) = try log.read(from: 0, maxBytes: 1 << 24, minOneBatch: true, upTo: stable) else { return [] }
        let aborted = log.abortedTransactions(from: 0, upTo: stable)
        var values: [String] = []
        for batch in try RecordBatch.decodeAll(try slice.file.read(at: slice.position, length: slice.length)) where !batch.isControl {
            #expect(batch.records.last!.offset < stable)
            let isAborted = batch.isTransactional && aborted.contains {
                $0.producerId == batch.producerId && $0.firstOffset <= batch.baseOffset && batch.baseOffset < $0.lastOffset
            }
            if !isAborted { values += batch.records.map { String(buffer: $0.value!) } }
        }
        return values
    }

    @Test func anOpenTransactionHoldsTheLastStableOffsetUntilItsMarker() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        _ = try log.append(clientBatch(count: 2))
        _ = try log.append(Self.txnBatch([("a", "1")], producerId: 7, sequence: 0))
        _ = try log.append(clientBatch(count: 1))
        #expect(log.lastStableOffset == 2 && log.logEndOffset == 4)
        #expect(log.producers[7]?.currentTxnFirstOffset == 2)
        // A read_committed fetch from the last stable offset gets nothing yet.
        guard case .empty = try log.read(from: 2, maxBytes: 1 << 20, minOneBatch: true, upTo: log.lastStableOffset) else {
            Issue.record("a read_committed fetch passed the last stable offset")
            return
        }
        let marker = try log.appendMarker(EndTransactionMarker(.commit), producerId: 7, producerEpoch: 0)
        #expect(marker.firstOffset == 4 && log.lastStableOffset == 5 && log.producers[7]?.currentTxnFirstOffset == -1)
        #expect(log.abortedTransactions(from: 0, upTo: 5).isEmpty)
        #expect(try Self.committedValues(log).count == 4)
    }

    @Test func anAbortIsIndexedAndItsRecordsAreDroppedByReaders() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        _ = try log.append(Self.txnBatch([("a", "kept")], producerId: 1, sequence: 0))
        _ = try log.append(Self.txnBatch([("b", "gone")], producerId: 2, sequence: 0))
        _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 2, producerEpoch: 0)
        #expect(log.lastStableOffset == 0)  // producer 1 is still open
        _ = try log.appendMarker(EndTransactionMarker(.commit), producerId: 1, producerEpoch: 0)
        #expect(log.lastStableOffset == 4)
        #expect(log.abortedTransactions(from: 0, upTo: 4) == [AbortedTransaction(producerId: 2, firstOffset: 1, lastOffset: 2, lastStableOffset: 0)])
        // A fetch past the abort's marker is not told of it.
        #expect(log.abortedTransactions(from: 3, upTo: 4).isEmpty)
        #expect(try Self.committedValues(log) == ["kept"])
        #expect(FileManager.default.fileExists(atPath: dir.path + "/txn-0/" + LogSegment.fileName(0, ".txnindex")))
    }

    @Test func anAbortWhoseMarkerIsInALaterSegmentThanTheLastStableOffsetIsStillListed() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir, config: config(segmentBytes: 300))
        _ = try log.append(Self.txnBatch([("a", "aborted")], producerId: 1, sequence: 0))
        _ = try log.append(Self.txnBatch([("b", "open")], producerId: 2, sequence: 0))  // holds the LSO at 1
        for _ in 0..<6 { _ = try log.append(clientBatch(count: 1, valueSize: 80)) }
        _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 1, producerEpoch: 0)
        #expect(log.segmentCount > 1 && log.lastStableOffset == 1)
        // The fetch below the LSO holds producer 1's record: the abort must be listed with it.
        #expect(log.abortedTransactions(from: 0, upTo: log.lastStableOffset).map(\.producerId) == [1])
    }

    @Test func aBatchVerifiedBeforeItsTransactionEndedIsNotAppendedAfterTheMarker() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        let first = log.beginVerification(producerId: 4)
        _ = try log.append(Self.txnBatch([("a", "1")], producerId: 4, sequence: 0), verification: first)
        // A late batch: verified while the transaction was open, the marker written before it arrives.
        let late = log.beginVerification(producerId: 4)
        _ = try log.appendMarker(EndTransactionMarker(.commit), producerId: 4, producerEpoch: 0)
        #expect(throws: AppendError.self) { try log.append(Self.txnBatch([("a", "2")], producerId: 4, sequence: 1), verification: late) }
        // It would have opened a transaction nobody ends, holding the last stable offset for ever.
        #expect(log.lastStableOffset == log.logEndOffset)
        // Another producer's marker does not disturb a verification.
        let other = log.beginVerification(producerId: 4)
        _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 5, producerEpoch: 0)
        _ = try log.append(Self.txnBatch([("a", "3")], producerId: 4, sequence: 1), verification: other)
    }

    @Test func aMarkerFromAnOlderEpochIsRefusedAndANewerOneFencesTheProducer() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        _ = try log.append(Self.txnBatch([("a", "1")], producerId: 3, epoch: 5, sequence: 0))
        #expect(throws: AppendError.self) { try log.appendMarker(EndTransactionMarker(.abort), producerId: 3, producerEpoch: 4) }
        // The coordinator fencing the producer writes the abort with the bumped epoch...
        _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 3, producerEpoch: 6)
        #expect(log.producers[3]?.producerEpoch == 6)
        // ...and the zombie's next batch, at the old epoch, is refused.
        #expect(throws: AppendError.self) { try log.append(Self.txnBatch([("a", "2")], producerId: 3, epoch: 5, sequence: 1)) }
        // The new epoch starts its sequences at 0.
        _ = try log.append(Self.txnBatch([("a", "3")], producerId: 3, epoch: 6, sequence: 0))
    }

    @Test func openTransactionsAndAbortsSurviveACleanRestartAndACrash() throws {
        for clean in [true, false] {
            let dir = TemporaryDirectory()
            var log = try Self.open(dir)
            _ = try log.append(Self.txnBatch([("a", "aborted")], producerId: 1, sequence: 0))
            _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 1, producerEpoch: 0)
            _ = try log.append(Self.txnBatch([("b", "open")], producerId: 2, sequence: 0))
            _ = try log.append(clientBatch(count: 1))
            if clean { try log.close(sync: true) }
            // A crash: no snapshot at the end, the recovery point at 0 (everything is re-read).
            log = try Self.open(dir, clean: clean, recoveryPoint: clean ? nil : 0)
            #expect(log.lastStableOffset == 2, "clean: \(clean)")
            #expect(log.producers[2]?.currentTxnFirstOffset == 2)
            #expect(log.abortedTransactions(from: 0, upTo: 10).map(\.producerId) == [1])
            _ = try log.appendMarker(EndTransactionMarker(.commit), producerId: 2, producerEpoch: 0)
            #expect(try Self.committedValues(log).count == 2)  // "open" and the plain record
        }
    }

    @Test func aDamagedTransactionIndexIsRebuiltFromTheLog() throws {
        let dir = TemporaryDirectory()
        var log = try Self.open(dir)
        _ = try log.append(Self.txnBatch([("a", "x")], producerId: 1, sequence: 0))
        _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 1, producerEpoch: 0)
        try log.close(sync: true)
        let path = dir.path + "/txn-0/" + LogSegment.fileName(0, ".txnindex")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[0] = 0x7f  // an unknown entry version
        try bytes.write(to: URL(fileURLWithPath: path))
        log = try Self.open(dir, clean: true)
        #expect(log.abortedTransactions(from: 0, upTo: 2) == [AbortedTransaction(producerId: 1, firstOffset: 0, lastOffset: 1, lastStableOffset: 2)])
    }

    @Test func aSnapshotOfTheFirstVersionStillLoads() throws {
        var v1 = ByteBuffer()
        v1.writeInteger(Int16(1))
        v1.writeInteger(Int32(1))
        v1.writeInteger(Int64(9))  // producer id
        v1.writeInteger(Int16(2))  // epoch
        v1.writeInteger(Int64(123))  // last timestamp
        v1.writeInteger(Int8(1))
        for value in [Int32(0), Int32(4)] { v1.writeInteger(value) }
        for value in [Int64(10), Int64(14)] { v1.writeInteger(value) }
        v1.writeInteger(CRC32C.checksum(v1))
        let state = try ProducerStateManager(snapshot: v1)
        #expect(state.producers[9]?.lastSequence == 4 && state.producers[9]?.currentTxnFirstOffset == -1)
    }

    /// A compacted log of small segments that the cleaner takes at once, in a log manager.
    static func compactedLog(_ dir: TemporaryDirectory, segmentBytes: Int, deleteRetentionMs: Int64? = nil) throws
        -> (logs: LogManager, log: PartitionLog, config: LogConfig) {
        let logs = try LogManager(directory: dir.path, logger: testLogger)
        var c = config(segmentBytes: segmentBytes, indexIntervalBytes: 64)
        c.cleanupCompact = true
        c.cleanupDelete = false
        c.minCleanableDirtyRatio = 0.01
        if let deleteRetentionMs { c.deleteRetentionMs = deleteRetentionMs }
        try logs.loadAll { [c] _ in c }
        return (logs, try logs.createLog(tp, config: c), c)
    }

    @Test func theCleanerDropsAbortedRecordsAndNeverLetsThemHideACommittedValue() throws {
        let dir = TemporaryDirectory()
        let (logs, log, _) = try Self.compactedLog(dir, segmentBytes: 400)
        var sequence: Int32 = 0
        for round in 0..<6 {
            _ = try log.append(Self.txnBatch([("k", "committed-\(round)")], producerId: 1, sequence: sequence))
            _ = try log.appendMarker(EndTransactionMarker(.commit), producerId: 1, producerEpoch: 0)
            // A later, aborted write of the same key: it must neither stay nor win.
            _ = try log.append(Self.txnBatch([("k", "aborted-\(round)")], producerId: 1, sequence: sequence + 1))
            _ = try log.appendMarker(EndTransactionMarker(.abort), producerId: 1, producerEpoch: 0)
            sequence += 2
        }
        // An open transaction: the cleaner stops before it.
        _ = try log.append(Self.txnBatch([("k", "open")], producerId: 2, sequence: 0))
        for _ in 0..<8 { _ = try log.append(clientBatch(count: 1, valueSize: 40, tag: "pad")) }
        let openAt = log.producers[2]!.currentTxnFirstOffset
        let report = try #require(LogCleaner(logs: logs, config: CleanerConfig(), logger: testLogger).cleanDirtiest())
        #expect(report.endOffset <= openAt)
        let left = try readAll(log).filter { String(buffer: $0.key!) == "k" }.map { String(buffer: $0.value!) }
        #expect(!left.contains { $0.hasPrefix("aborted") })
        #expect(left.contains("committed-5") && left.contains("open"))
        #expect(log.lastStableOffset == openAt)
    }

    /// Every batch of the log, read through the fetch path (a read ends at its segment's end).
    static func allBatches(_ log: PartitionLog) throws -> [RecordBatch] {
        var batches: [RecordBatch] = []
        var next = log.logStartOffset
        while case .slice(let slice) = try log.read(from: next, maxBytes: 1 << 24, minOneBatch: true) {
            let read = try RecordBatch.decodeAll(try slice.file.read(at: slice.position, length: slice.length))
            guard let last = read.last else { break }
            batches += read.filter { $0.baseOffset >= next }
            next = last.baseOffset + Int64(last.lastOffsetDelta ?? Int32(last.records.count - 1)) + 1
        }
        return batches
    }

    @Test func aMarkerWhoseTransactionKeptNoRecordGoesAfterTheDeleteHorizon() throws {
        let dir = TemporaryDirectory()
        let (logs, log, c) = try Self.compactedLog(dir, segmentBytes: 300, deleteRetentionMs: 0)
        let cleaner = LogCleaner(logs: logs, config: CleanerConfig(), logger: testLogger)
        func markers() throws -> [Int64] { try Self.allBatches(log).filter(\.isControl).map(\.baseOffset) }
        func pad(_ tag: String) throws { for i in 0..<6 { _ = try log.append(clientBatch(count: 1, valueSize: 40, tag: "\(tag)-\(i)")) } }
        /// The records of keys "a" and "b" left in the log, aborted or not.
        func values() throws -> [String] {
            try readAll(log).filter { $0.key.map { ["a", "b"].contains(String(buffer: $0)) } ?? false }.map { String(buffer: $0.value!) }
        }

        // Producer 1 commits "a" = "old"; a first clean keeps record and marker (and makes their
        // segments cleaned ones, past the delete horizon from now on: delete.retention.ms is 0).
        _ = try log.append(Self.txnBatch([("a", "old")], producerId: 1, sequence: 0))
        let replaced = try log.appendMarker(EndTransactionMarker(.commit), producerId: 1, producerEpoch: 0).firstOffset
        try pad("first")
        _ = try #require(cleaner.cleanDirtiest())
        #expect(try markers() == [replaced])

        // Then commits "a" = "new", and aborts "b".
        _ = try log.append(Self.txnBatch([("a", "new")], producerId: 1, sequence: 1))
        let kept = try log.appendMarker(EndTransactionMarker(.commit), producerId: 1, producerEpoch: 0).firstOffset
        _ = try log.append(Self.txnBatch([("b", "gone")], producerId: 1, sequence: 2))
        let aborted = try log.appendMarker(EndTransactionMarker(.abort), producerId: 1, producerEpoch: 0).firstOffset
        try pad("second")
        usleep(5_000)
        // This clean removes "old" and the aborted "b", and keeps every marker: a marker goes only in
        // a clean after the one that removed its transaction's last record, and from a cleaned segment.
        _ = try #require(cleaner.cleanDirtiest())
        #expect(try markers() == [replaced, kept, aborted])
        #expect(try values() == ["new"])

        try pad("third")
        usleep(5_000)
        _ = try #require(cleaner.cleanDirtiest())
        // The replaced commit's and the abort's transactions have no record left: their markers go.
        // The marker of the kept "new" stays.
        #expect(try markers() == [kept])
        #expect(try values() == ["new"])
        #expect(log.lastStableOffset == log.logEndOffset)

        // After a restart the log holds the same, and no transaction is open.
        let end = log.logEndOffset
        try logs.shutdown()
        let reopened = try Self.open(dir, config: c, clean: true)
        #expect(reopened.logEndOffset == end && reopened.lastStableOffset == end)
        #expect(try Self.allBatches(reopened).filter(\.isControl).map(\.baseOffset) == [kept])
        #expect(reopened.producers[1]?.currentTxnFirstOffset ?? -1 == -1)
    }
}
