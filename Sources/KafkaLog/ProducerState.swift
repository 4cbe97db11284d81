import KafkaWire
import NIOCore

/// A batch an idempotent producer appended: enough to recognise a retry and answer it with the
/// offsets it got the first time.
public struct ProducerBatchMetadata: Equatable, Sendable {
    public var firstSequence: Int32
    public var lastSequence: Int32
    public var firstOffset: Int64
    public var lastOffset: Int64
}

/// One producer's state in one partition: its epoch, its last batches (Kafka keeps five) and the
/// transaction it has open here, if any.
public struct ProducerStateEntry: Equatable, Sendable {
    public static let retainedBatches = 5
    public var producerEpoch: Int16
    public var batches: [ProducerBatchMetadata]
    public var lastTimestamp: Int64
    /// The first offset of the producer's ongoing transaction in the partition, -1 without one.
    public var currentTxnFirstOffset: Int64 = -1
    /// The coordinator epoch of the last marker written for the producer, -1 before any.
    public var coordinatorEpoch: Int32 = -1

    public var lastSequence: Int32 { batches.last?.lastSequence ?? -1 }
}

/// Why an idempotent batch is refused (Kafka's ProducerAppendInfo rules).
public enum ProducerStateError: Error, Equatable, Sendable {
    /// The batch's epoch is older than the producer's current one.
    case invalidProducerEpoch(String)
    /// The sequence does not follow the last one appended.
    case outOfOrderSequence(String)
}

/// The idempotent producers of one partition. Checks each batch's producer epoch and sequence against
/// what was appended before, recognises retries of the last five batches, and survives restarts
/// through snapshot files (`<offset>.snapshot`) plus a re-read of the log after the snapshot.
public struct ProducerStateManager: Sendable {
    /// Written only through `setEntry`, which keeps `openTransactions` in step.
    public private(set) var producers: [Int64: ProducerStateEntry] = [:]
    /// The producers with a transaction open and its first offset, kept apart so that the last
    /// stable offset (asked by every fetch) costs a look at the few open transactions, not at every
    /// idempotent producer the partition knows.
    private var openTransactions: [Int64: Int64] = [:]

    public init() {}

    public enum Verdict: Equatable, Sendable {
        case append
        /// A retry of a batch already in the log: answer with its original offsets, append nothing.
        case duplicate(ProducerBatchMetadata)
    }

    /// Checks a batch before it is appended (nothing changes until `record`).
    public func check(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32) throws(ProducerStateError) -> Verdict {
        // A producer the partition has no state for (new, or its state expired) is accepted at any
        // epoch and sequence, as Kafka does since KIP-360.
        guard let entry = producers[producerId] else { return .append }
        if epoch < entry.producerEpoch {
            throw .invalidProducerEpoch("producer \(producerId) epoch \(epoch) is older than the current epoch \(entry.producerEpoch)")
        }
        if epoch == entry.producerEpoch,
           let original = entry.batches.first(where: { $0.firstSequence == firstSequence && $0.lastSequence == lastSequence }) {
            return .duplicate(original)
        }
        if epoch > entry.producerEpoch {
            guard firstSequence == 0 else {
                throw .outOfOrderSequence("producer \(producerId) starts epoch \(epoch) at sequence \(firstSequence), not 0")
            }
            return .append
        }
        let expected = entry.lastSequence == Int32.max ? 0 : entry.lastSequence + 1
        guard firstSequence == expected else {
            throw .outOfOrderSequence("producer \(producerId) sent sequence \(firstSequence), expected \(expected)")
        }
        return .append
    }

    /// Records an appended batch; a transactional one opens the producer's transaction in the
    /// partition when none is open. A batch without a sequence (the group coordinator's
    /// transactional offset commits) leaves the sequence bookkeeping alone.
    public mutating func record(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32,
                                firstOffset: Int64, lastOffset: Int64, timestamp: Int64, isTransactional: Bool = false) {
        var entry = producers[producerId] ?? ProducerStateEntry(producerEpoch: epoch, batches: [], lastTimestamp: timestamp)
        if epoch != entry.producerEpoch {
            entry.producerEpoch = epoch
            entry.batches = []
        }
        if firstSequence >= 0 {
            entry.batches.append(ProducerBatchMetadata(firstSequence: firstSequence, lastSequence: lastSequence,
                                                       firstOffset: firstOffset, lastOffset: lastOffset))
            if entry.batches.count > ProducerStateEntry.retainedBatches { entry.batches.removeFirst() }
        }
        if isTransactional && entry.currentTxnFirstOffset < 0 { entry.currentTxnFirstOffset = firstOffset }
        entry.lastTimestamp = max(entry.lastTimestamp, timestamp)
        setEntry(entry, for: producerId)
    }

    /// Stores an entry and keeps `openTransactions` in step with it.
    private mutating func setEntry(_ entry: ProducerStateEntry, for producerId: Int64) {
        producers[producerId] = entry
        if entry.currentTxnFirstOffset >= 0 { openTransactions[producerId] = entry.currentTxnFirstOffset } else { openTransactions[producerId] = nil }
    }

    /// Checks an end-of-transaction marker, or a batch the broker writes for a producer (transactional
    /// offsets): one of an older epoch than the producer's is a zombie's (Kafka's rule); a newer epoch
    /// is a coordinator fencing the producer.
    public func checkMarker(producerId: Int64, epoch: Int16) throws(ProducerStateError) {
        if let entry = producers[producerId], epoch < entry.producerEpoch {
            throw .invalidProducerEpoch("marker of producer \(producerId) has epoch \(epoch), older than the current epoch \(entry.producerEpoch)")
        }
    }

    /// Records a marker at `offset`: the producer's transaction in the partition ends. Returns the
    /// first offset of the transaction it ended, nil when none was open here.
    @discardableResult
    public mutating func completeTransaction(producerId: Int64, epoch: Int16, coordinatorEpoch: Int32, offset: Int64,
                                             timestamp: Int64) -> Int64? {
        var entry = producers[producerId] ?? ProducerStateEntry(producerEpoch: epoch, batches: [], lastTimestamp: timestamp)
        if epoch != entry.producerEpoch {
            // A bumped epoch starts its sequences at 0.
            entry.producerEpoch = epoch
            entry.batches = []
        }
        let first = entry.currentTxnFirstOffset
        entry.currentTxnFirstOffset = -1
        entry.coordinatorEpoch = coordinatorEpoch
        entry.lastTimestamp = max(entry.lastTimestamp, timestamp)
        setEntry(entry, for: producerId)
        return first >= 0 ? first : nil
    }

    /// The first offset of the earliest transaction still open: the last stable offset, when there is one.
    public var firstUnstableOffset: Int64? { openTransactions.values.min() }

    /// Replays a data batch header read back from the log (recovery).
    public mutating func replay(_ view: RecordBatchView) {
        guard view.producerId >= 0, !view.attributes.isControl else { return }
        record(producerId: view.producerId, epoch: view.producerEpoch, firstSequence: view.baseSequence,
               lastSequence: view.lastSequence, firstOffset: view.baseOffset, lastOffset: view.lastOffset,
               timestamp: view.maxTimestamp, isTransactional: view.attributes.isTransactional)
    }

    // MARK: Snapshots

    static let snapshotVersion: Int16 = 2

    /// Binary snapshot: version int16, count int32, per producer (id int64, epoch int16, lastTimestamp
    /// int64, since version 2 the open transaction's first offset int64 and the coordinator epoch
    /// int32, batch count int8, per batch firstSeq int32, lastSeq int32, firstOffset int64, lastOffset
    /// int64), then a CRC32C of everything before it. Version 1 (without the transaction) still reads.
    public func snapshot() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.snapshotVersion)
        buffer.writeInteger(Int32(producers.count))
        for (id, entry) in producers.sorted(by: { $0.key < $1.key }) {
            buffer.writeInteger(id)
            buffer.writeInteger(entry.producerEpoch)
            buffer.writeInteger(entry.lastTimestamp)
            buffer.writeInteger(entry.currentTxnFirstOffset)
            buffer.writeInteger(entry.coordinatorEpoch)
            buffer.writeInteger(Int8(entry.batches.count))
            for b in entry.batches {
                buffer.writeInteger(b.firstSequence)
                buffer.writeInteger(b.lastSequence)
                buffer.writeInteger(b.firstOffset)
                buffer.writeInteger(b.lastOffset)
            }
        }
        buffer.writeInteger(CRC32C.checksum(buffer))
        return buffer
    }

    public init(snapshot bytes: ByteBuffer) throws {
        guard bytes.readableBytes >= 10 else { throw LogError(.corrupt, "producer snapshot too short") }
        let body = bytes.getSlice(at: bytes.readerIndex, length: bytes.readableBytes - 4)!
        guard CRC32C.checksum(body) == bytes.getInteger(at: bytes.writerIndex - 4, as: UInt32.self) else {
            throw LogError(.corrupt, "producer snapshot CRC mismatch")
        }
        var reader = body
        guard let version = reader.readInteger(as: Int16.self), version == 1 || version == Self.snapshotVersion,
              let count = reader.readInteger(as: Int32.self), count >= 0 else { throw LogError(.corrupt, "producer snapshot header") }
        for _ in 0..<count {
            guard let id = reader.readInteger(as: Int64.self), let epoch = reader.readInteger(as: Int16.self),
                  let timestamp = reader.readInteger(as: Int64.self) else {
                throw LogError(.corrupt, "producer snapshot entry")
            }
            var txnFirstOffset: Int64 = -1, coordinatorEpoch: Int32 = -1
            if version >= 2 {
                guard let first = reader.readInteger(as: Int64.self), let epoch = reader.readInteger(as: Int32.self) else {
                    throw LogError(.corrupt, "producer snapshot entry")
                }
                (txnFirstOffset, coordinatorEpoch) = (max(first, -1), epoch)
            }
            guard let n = reader.readInteger(as: Int8.self), n >= 0 else { throw LogError(.corrupt, "producer snapshot entry") }
            var entry = ProducerStateEntry(producerEpoch: epoch, batches: [], lastTimestamp: timestamp,
                                           currentTxnFirstOffset: txnFirstOffset, coordinatorEpoch: coordinatorEpoch)
            for _ in 0..<n {
                guard let fs = reader.readInteger(as: Int32.self), let ls = reader.readInteger(as: Int32.self),
                      let fo = reader.readInteger(as: Int64.self), let lo = reader.readInteger(as: Int64.self) else {
                    throw LogError(.corrupt, "producer snapshot batch")
                }
                entry.batches.append(ProducerBatchMetadata(firstSequence: fs, lastSequence: ls, firstOffset: fo, lastOffset: lo))
            }
            setEntry(entry, for: id)
        }
    }
}
