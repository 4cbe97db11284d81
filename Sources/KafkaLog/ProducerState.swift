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

/// One producer's state in one partition: its epoch and its last batches (Kafka keeps five).
public struct ProducerStateEntry: Equatable, Sendable {
    public static let retainedBatches = 5
    public var producerEpoch: Int16
    public var batches: [ProducerBatchMetadata]
    public var lastTimestamp: Int64

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
    public private(set) var producers: [Int64: ProducerStateEntry] = [:]

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

    /// Records an appended batch.
    public mutating func record(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32,
                                firstOffset: Int64, lastOffset: Int64, timestamp: Int64) {
        var entry = producers[producerId] ?? ProducerStateEntry(producerEpoch: epoch, batches: [], lastTimestamp: timestamp)
        if epoch != entry.producerEpoch {
            entry = ProducerStateEntry(producerEpoch: epoch, batches: [], lastTimestamp: timestamp)
        }
        entry.batches.append(ProducerBatchMetadata(firstSequence: firstSequence, lastSequence: lastSequence,
                                                   firstOffset: firstOffset, lastOffset: lastOffset))
        if entry.batches.count > ProducerStateEntry.retainedBatches { entry.batches.removeFirst() }
        entry.lastTimestamp = max(entry.lastTimestamp, timestamp)
        producers[producerId] = entry
    }

    /// Replays a batch header read back from the log (recovery).
    public mutating func replay(_ view: RecordBatchView) {
        guard view.producerId >= 0, !view.attributes.isControl else { return }
        record(producerId: view.producerId, epoch: view.producerEpoch, firstSequence: view.baseSequence,
               lastSequence: view.lastSequence, firstOffset: view.baseOffset, lastOffset: view.lastOffset,
               timestamp: view.maxTimestamp)
    }

    // MARK: Snapshots

    static let snapshotVersion: Int16 = 1

    /// Binary snapshot: version int16, count int32, per producer (id int64, epoch int16, lastTimestamp
    /// int64, batch count int8, per batch firstSeq int32, lastSeq int32, firstOffset int64, lastOffset
    /// int64), then a CRC32C of everything before it.
    public func snapshot() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.snapshotVersion)
        buffer.writeInteger(Int32(producers.count))
        for (id, entry) in producers.sorted(by: { $0.key < $1.key }) {
            buffer.writeInteger(id)
            buffer.writeInteger(entry.producerEpoch)
            buffer.writeInteger(entry.lastTimestamp)
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
        guard reader.readInteger(as: Int16.self) == Self.snapshotVersion, let count = reader.readInteger(as: Int32.self),
              count >= 0 else { throw LogError(.corrupt, "producer snapshot header") }
        for _ in 0..<count {
            guard let id = reader.readInteger(as: Int64.self), let epoch = reader.readInteger(as: Int16.self),
                  let timestamp = reader.readInteger(as: Int64.self), let n = reader.readInteger(as: Int8.self), n >= 0 else {
                throw LogError(.corrupt, "producer snapshot entry")
            }
            var entry = ProducerStateEntry(producerEpoch: epoch, batches: [], lastTimestamp: timestamp)
            for _ in 0..<n {
                guard let fs = reader.readInteger(as: Int32.self), let ls = reader.readInteger(as: Int32.self),
                      let fo = reader.readInteger(as: Int64.self), let lo = reader.readInteger(as: Int64.self) else {
                    throw LogError(.corrupt, "producer snapshot batch")
                }
                entry.batches.append(ProducerBatchMetadata(firstSequence: fs, lastSequence: ls, firstOffset: fo, lastOffset: lo))
            }
            producers[id] = entry
        }
    }
}
