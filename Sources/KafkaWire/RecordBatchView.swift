import NIOCore

/// Record batch v2 (magic 2) header layout, from Kafka's message format documentation:
///
///     offset  field                 type
///          0  baseOffset            int64
///          8  batchLength           int32   bytes after this field
///         12  partitionLeaderEpoch  int32
///         16  magic                 int8    always 2
///         17  crc                   uint32  CRC32C of attributes..end
///         21  attributes            int16
///         23  lastOffsetDelta       int32
///         27  baseTimestamp         int64
///         35  maxTimestamp          int64
///         43  producerId            int64
///         51  producerEpoch         int16
///         53  baseSequence          int32
///         57  recordCount           int32
///         61  records...
public enum RecordBatchLayout {
    public static let baseOffset = 0
    public static let batchLength = 8
    public static let partitionLeaderEpoch = 12
    public static let magic = 16
    public static let crc = 17
    public static let attributes = 21
    public static let lastOffsetDelta = 23
    public static let baseTimestamp = 27
    public static let maxTimestamp = 35
    public static let producerId = 43
    public static let producerEpoch = 51
    public static let baseSequence = 53
    public static let recordCount = 57
    public static let headerSize = 61
    /// baseOffset and batchLength come before what batchLength counts.
    public static let logOverhead = 12
}

/// Attribute bits of a v2 batch.
public struct RecordBatchAttributes: Hashable, Sendable {
    public var rawValue: Int16

    public init(rawValue: Int16) { self.rawValue = rawValue }

    public init(compression: CompressionCodec = .none, timestampType: TimestampType = .createTime,
                isTransactional: Bool = false, isControl: Bool = false) {
        rawValue = compression.rawValue
        if timestampType == .logAppendTime { rawValue |= 0x08 }
        if isTransactional { rawValue |= 0x10 }
        if isControl { rawValue |= 0x20 }
    }

    /// nil for the unused codec ids 5-7.
    public var compression: CompressionCodec? { CompressionCodec(rawValue: rawValue & 0x07) }
    public var timestampType: TimestampType { rawValue & 0x08 != 0 ? .logAppendTime : .createTime }
    public var isTransactional: Bool { rawValue & 0x10 != 0 }
    public var isControl: Bool { rawValue & 0x20 != 0 }
    public var hasDeleteHorizon: Bool { rawValue & 0x40 != 0 }

    public func with(timestampType: TimestampType) -> RecordBatchAttributes {
        RecordBatchAttributes(rawValue: timestampType == .logAppendTime ? rawValue | 0x08 : rawValue & ~0x08)
    }
}

public enum TimestampType: Sendable {
    case createTime, logAppendTime
}

/// A zero-copy view of one v2 record batch: the header is read in place, records stay encoded.
/// The broker validates and re-stamps batches through this view without decoding records.
public struct RecordBatchView: Sendable {
    /// Exactly the batch's bytes, from baseOffset to its last record.
    public private(set) var buffer: ByteBuffer

    /// Checks the header (size, magic) and the CRC of `bytes`, which must hold exactly one batch.
    public init(validating bytes: ByteBuffer) throws {
        try self.init(unchecked: bytes)
        guard computeCRC() == crc else {
            throw KafkaWireError(.corruptRecordBatch, "CRC mismatch: stored \(crc), computed \(computeCRC())")
        }
    }

    /// Checks the header only, leaving the CRC to the caller.
    public init(unchecked bytes: ByteBuffer) throws {
        guard bytes.readableBytes >= RecordBatchLayout.magic + 1 else {
            throw KafkaWireError(.corruptRecordBatch, "\(bytes.readableBytes) bytes is shorter than a batch header")
        }
        let magic: Int8 = bytes.getInteger(at: bytes.readerIndex + RecordBatchLayout.magic)!
        guard magic == 2 else {
            if magic == 0 || magic == 1 {
                throw KafkaWireError(.unsupportedMagic, "message format v\(magic) (magic \(magic)) is not supported; Kafka 4 accepts record batch v2 only")
            }
            throw KafkaWireError(.corruptRecordBatch, "unknown magic \(magic)")
        }
        guard bytes.readableBytes >= RecordBatchLayout.headerSize else {
            throw KafkaWireError(.corruptRecordBatch, "\(bytes.readableBytes) bytes is shorter than a v2 batch header")
        }
        let length: Int32 = bytes.getInteger(at: bytes.readerIndex + RecordBatchLayout.batchLength)!
        guard Int(length) + RecordBatchLayout.logOverhead == bytes.readableBytes else {
            throw KafkaWireError(.corruptRecordBatch, "batchLength \(length) does not match \(bytes.readableBytes) bytes")
        }
        buffer = bytes
        guard recordCount >= 0 else { throw KafkaWireError(.corruptRecordBatch, "negative record count \(recordCount)") }
    }

    private func field<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        buffer.getInteger(at: buffer.readerIndex + offset)!
    }

    public var sizeInBytes: Int { buffer.readableBytes }

    /// The smallest encoded record: length, attributes, timestamp and offset deltas, key and value
    /// lengths and header count, one byte each.
    public static let minimumRecordSize = 7
    public var baseOffset: Int64 { field(RecordBatchLayout.baseOffset) }
    public var batchLength: Int32 { field(RecordBatchLayout.batchLength) }
    public var partitionLeaderEpoch: Int32 { field(RecordBatchLayout.partitionLeaderEpoch) }
    public var magic: Int8 { field(RecordBatchLayout.magic) }
    public var crc: UInt32 { field(RecordBatchLayout.crc) }
    public var attributes: RecordBatchAttributes { RecordBatchAttributes(rawValue: field(RecordBatchLayout.attributes)) }
    public var lastOffsetDelta: Int32 { field(RecordBatchLayout.lastOffsetDelta) }
    public var baseTimestamp: Int64 { field(RecordBatchLayout.baseTimestamp) }
    public var maxTimestamp: Int64 { field(RecordBatchLayout.maxTimestamp) }
    public var producerId: Int64 { field(RecordBatchLayout.producerId) }
    public var producerEpoch: Int16 { field(RecordBatchLayout.producerEpoch) }
    public var baseSequence: Int32 { field(RecordBatchLayout.baseSequence) }
    public var recordCount: Int32 { field(RecordBatchLayout.recordCount) }
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    /// The sequence of the last record, wrapping at Int32.max as Kafka's does.
    public var lastSequence: Int32 {
        baseSequence < 0 ? -1 : Int32(truncatingIfNeeded: (Int64(baseSequence) + Int64(lastOffsetDelta)) % (Int64(Int32.max) + 1))
    }

    /// The CRC32C of attributes through the end, as it should be stored.
    public func computeCRC() -> UInt32 {
        buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatchLayout.attributes...])) }
    }

    /// The encoded records (compressed when the batch is), after the header.
    public var recordsSection: ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + RecordBatchLayout.headerSize, length: sizeInBytes - RecordBatchLayout.headerSize)!
    }

    // MARK: In-place rewrites

    /// baseOffset and partitionLeaderEpoch lie outside the CRC: rewriting them costs no checksum.
    public mutating func setBaseOffset(_ offset: Int64) {
        buffer.setInteger(offset, at: buffer.readerIndex + RecordBatchLayout.baseOffset)
    }

    public mutating func setPartitionLeaderEpoch(_ epoch: Int32) {
        buffer.setInteger(epoch, at: buffer.readerIndex + RecordBatchLayout.partitionLeaderEpoch)
    }

    /// Stamps LogAppendTime (or sets the max timestamp): a covered field, so the CRC is recomputed,
    /// but only when something changed.
    public mutating func setMaxTimestamp(_ timestamp: Int64, timestampType: TimestampType) {
        let newAttributes = attributes.with(timestampType: timestampType)
        guard timestamp != maxTimestamp || newAttributes != attributes else { return }
        buffer.setInteger(timestamp, at: buffer.readerIndex + RecordBatchLayout.maxTimestamp)
        buffer.setInteger(newAttributes.rawValue, at: buffer.readerIndex + RecordBatchLayout.attributes)
        buffer.setInteger(computeCRC(), at: buffer.readerIndex + RecordBatchLayout.crc)
    }

    // MARK: Records

    /// Decompresses (bounded by `limit`) and decodes every record.
    public func records(decompressionLimit: Int = Compression.defaultLimit) throws -> [Record] {
        var records: [Record] = []
        // recordCount is the sender's claim: reserve no more than the batch's bytes could hold.
        records.reserveCapacity(min(Int(recordCount), sizeInBytes / Self.minimumRecordSize))
        try forEachRecord(decompressionLimit: decompressionLimit) { records.append($0) }
        return records
    }

    /// Decompresses (bounded by `limit`) and hands each record to `body` as it is decoded.
    public func forEachRecord(decompressionLimit: Int = Compression.defaultLimit, _ body: (consuming Record) throws -> Void) throws {
        try forEachRecordFields(decompressionLimit: decompressionLimit) { offset, timestamp, key, value, headers, attributes in
            try body(Record(offset: offset, timestamp: timestamp, key: key, value: value, headers: headers, attributes: attributes))
        }
    }

    /// Decompresses (bounded by `limit`) and hands each record's fields to `body` as they are
    /// decoded, for a reader that keeps records in its own form (the consumer's `ConsumerRecord`).
    /// Inlined into the reader: handing over a whole `Record` built in another module cost a copy
    /// of it, or, returned through memory, store-forwarding stalls on reloading it (a third of the
    /// consumer's decode).
    @inlinable
    public func forEachRecordFields(
        decompressionLimit: Int = Compression.defaultLimit,
        _ body: (_ offset: Int64, _ timestamp: Int64, _ key: consuming ByteBuffer?, _ value: consuming ByteBuffer?,
                 _ headers: consuming [RecordHeader], _ attributes: Int8) throws -> Void
    ) throws {
        guard let codec = attributes.compression else {
            throw KafkaWireError(.compression, "unknown compression codec id \(attributes.rawValue & 0x07)")
        }
        let section = try Compression.decompress(recordsSection, codec: codec, limit: decompressionLimit)
        let count = Int(recordCount)
        guard count <= section.readableBytes else {
            throw KafkaWireError(.corruptRecordBatch, "\(count) records in \(section.readableBytes) bytes")
        }
        // Read once: each header read through `ByteBuffer` costs a dynamic exclusivity check, and
        // per record those were a tenth of the consumer's profile.
        let baseOffset = baseOffset, baseTimestamp = baseTimestamp
        try section.withUnsafeReadableBytes { raw in
            var position = 0
            for _ in 0..<count {
                try Record.decodeFields(from: raw, at: &position, of: section, baseOffset: baseOffset, baseTimestamp: baseTimestamp, body)
            }
            guard position == raw.count else {
                throw KafkaWireError(.corruptRecordBatch, "\(raw.count - position) bytes left after \(count) records")
            }
        }
    }
}

/// Splits concatenated batches (a produce request's or a fetch response's records) without copying.
/// A fetch may end in a partial batch: `next()` stops there and `remainder` holds it.
public struct RecordBatchIterator: IteratorProtocol, Sequence {
    public private(set) var remainder: ByteBuffer
    /// Set when a complete batch was malformed; iteration stops there.
    public private(set) var error: KafkaWireError?

    public init(_ records: ByteBuffer) {
        remainder = records
    }

    public mutating func next() -> RecordBatchView? {
        guard error == nil, remainder.readableBytes >= RecordBatchLayout.logOverhead,
              let length: Int32 = remainder.getInteger(at: remainder.readerIndex + RecordBatchLayout.batchLength) else {
            return nil
        }
        guard length >= 0 else {
            error = KafkaWireError(.corruptRecordBatch, "negative batchLength \(length)")
            return nil
        }
        let size = Int(length) + RecordBatchLayout.logOverhead
        guard size <= remainder.readableBytes else { return nil }
        let bytes = remainder.readSlice(length: size)!
        do {
            return try RecordBatchView(unchecked: bytes)
        } catch let e as KafkaWireError {
            error = e
            return nil
        } catch {
            return nil
        }
    }
}
