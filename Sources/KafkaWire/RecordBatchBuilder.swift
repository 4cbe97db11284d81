import NIOCore

/// Builds a v2 record batch as records arrive, the way Kafka's MemoryRecordsBuilder does: each
/// record is encoded straight into one growing buffer behind a reserved header, so a producer
/// allocates nothing per record. `build` fills the header in place (uncompressed) or compresses the
/// records section once, and `restamp` rewrites the producer fields of a built batch for a retry.
public struct RecordBatchBuilder: Sendable {
    private var buffer: ByteBuffer
    public private(set) var recordCount: Int32 = 0
    public private(set) var firstTimestamp: Int64 = -1
    public private(set) var maxTimestamp: Int64 = -1

    public init(capacity: Int = 16_384) {
        self.init(reusing: ByteBuffer(), capacity: capacity)
    }

    /// A builder writing into `buffer`'s storage (cleared) — a producer hands back the buffer of a
    /// batch it finished with, which spares allocating and page-faulting a fresh one per batch.
    public init(reusing buffer: ByteBuffer, capacity: Int = 16_384) {
        self.buffer = buffer
        self.buffer.clear()
        self.buffer.reserveCapacity(RecordBatchLayout.headerSize + capacity)
        self.buffer.writeRepeatingByte(0, count: RecordBatchLayout.headerSize)
    }

    /// The batch's size so far, uncompressed, header included.
    public var sizeInBytes: Int { buffer.readableBytes }

    /// What a record with these fields will add to the batch, at most.
    @inlinable
    public static func estimatedSize(keyCount: Int?, valueCount: Int?, headers: [(String, [UInt8]?)]) -> Int {
        var size = 5 + 1 + 10 + 5 + 5 + (keyCount ?? 0) + 5 + (valueCount ?? 0) + 5
        for header in headers { size += 10 + header.0.utf8.count + (header.1?.count ?? 0) }
        return size
    }

    /// Appends a record; its offset delta is its position in the batch. The record is written with
    /// one buffer access (a write per field would pay an exclusivity check each).
    public mutating func append(timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [(String, [UInt8]?)] = []) {
        if recordCount == 0 { firstTimestamp = timestamp }
        maxTimestamp = Swift.max(maxTimestamp, timestamp)
        let timestampDelta = timestamp &- firstTimestamp
        let offsetDelta = recordCount
        var size = 1 + ByteBuffer.varlongSize(timestampDelta) + ByteBuffer.varlongSize(Int64(offsetDelta))
        size += Self.bytesSize(key) + Self.bytesSize(value) + ByteBuffer.varlongSize(Int64(headers.count))
        for header in headers {
            size += ByteBuffer.varlongSize(Int64(header.0.utf8.count)) + header.0.utf8.count + Self.bytesSize(header.1)
        }
        let total = ByteBuffer.varlongSize(Int64(size)) + size
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            // Each helper returns the position after what it wrote: nothing mutable is captured,
            // which would cost a dynamic exclusivity check per field.
            var at = Self.putVarlong(Int64(size), at: out.baseAddress!)
            at.storeBytes(of: 0, as: UInt8.self)  // attributes
            at = Self.putVarlong(timestampDelta, at: at + 1)
            at = Self.putVarlong(Int64(offsetDelta), at: at)
            at = Self.putField(key, at: at)
            at = Self.putField(value, at: at)
            at = Self.putVarlong(Int64(headers.count), at: at)
            for header in headers {
                var name = header.0
                at = Self.putVarlong(Int64(name.utf8.count), at: at)
                let nameAt = at
                at = name.withUTF8 { Self.putBytes(UnsafeRawBufferPointer($0), at: nameAt) }
                at = Self.putField(header.1, at: at)
            }
            return at - out.baseAddress!
        }
        recordCount += 1
    }

    private static func putVarlong(_ value: Int64, at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        at + ByteBuffer.encodeUnsignedVarlong(UInt64(bitPattern: (value << 1) ^ (value >> 63)), into: at)
    }

    private static func putBytes(_ bytes: UnsafeRawBufferPointer, at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return at }
        at.copyMemory(from: base, byteCount: bytes.count)
        return at + bytes.count
    }

    /// A record's key or value: its length (-1 for null) and its bytes.
    private static func putField(_ value: [UInt8]?, at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard let value else { return putVarlong(-1, at: at) }
        let after = putVarlong(Int64(value.count), at: at)
        return value.withUnsafeBytes { putBytes($0, at: after) }
    }

    /// The finished batch (base offset 0) with the producer's identity and first sequence, marked
    /// transactional for a transactional producer.
    /// Hands the builder's bytes over: afterwards the builder keeps its counts but no records (its
    /// buffer would otherwise share storage with the batch, and filling in the header would copy it).
    public mutating func build(compression: CompressionCodec = .none, producerId: Int64 = -1, producerEpoch: Int16 = -1,
                               baseSequence: Int32 = -1, isTransactional: Bool = false) throws -> ByteBuffer {
        var batch: ByteBuffer
        defer { buffer = Self.spent }
        if compression == .none {
            batch = buffer
            buffer = Self.spent
        } else {
            var compressed = try Compression.compress(buffer.getSlice(at: buffer.readerIndex + RecordBatchLayout.headerSize,
                                                                      length: buffer.readableBytes - RecordBatchLayout.headerSize)!,
                                                      codec: compression)
            batch = ByteBuffer()
            batch.reserveCapacity(RecordBatchLayout.headerSize + compressed.readableBytes)
            batch.writeRepeatingByte(0, count: RecordBatchLayout.headerSize)
            batch.writeBuffer(&compressed)
        }
        let start = batch.readerIndex
        batch.setInteger(Int64(0), at: start + RecordBatchLayout.baseOffset)
        batch.setInteger(Int32(batch.readableBytes - RecordBatchLayout.logOverhead), at: start + RecordBatchLayout.batchLength)
        batch.setInteger(Int32(-1), at: start + RecordBatchLayout.partitionLeaderEpoch)
        batch.setInteger(Int8(2), at: start + RecordBatchLayout.magic)
        batch.setInteger(RecordBatchAttributes(compression: compression, isTransactional: isTransactional).rawValue,
                         at: start + RecordBatchLayout.attributes)
        batch.setInteger(recordCount - 1, at: start + RecordBatchLayout.lastOffsetDelta)
        batch.setInteger(firstTimestamp, at: start + RecordBatchLayout.baseTimestamp)
        batch.setInteger(maxTimestamp, at: start + RecordBatchLayout.maxTimestamp)
        batch.setInteger(recordCount, at: start + RecordBatchLayout.recordCount)
        Self.restamp(&batch, producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence)
        return batch
    }

    /// What a built builder holds instead of its records.
    private static let spent = ByteBuffer()

    /// Rewrites producer id, epoch and base sequence of a built batch and its CRC.
    public static func restamp(_ batch: inout ByteBuffer, producerId: Int64, producerEpoch: Int16, baseSequence: Int32) {
        let start = batch.readerIndex
        batch.setInteger(producerId, at: start + RecordBatchLayout.producerId)
        batch.setInteger(producerEpoch, at: start + RecordBatchLayout.producerEpoch)
        batch.setInteger(baseSequence, at: start + RecordBatchLayout.baseSequence)
        let crc = batch.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatchLayout.attributes...])) }
        batch.setInteger(crc, at: start + RecordBatchLayout.crc)
    }

    private static func bytesSize(_ bytes: [UInt8]?) -> Int {
        guard let bytes else { return 1 }
        return ByteBuffer.varlongSize(Int64(bytes.count)) + bytes.count
    }
}
