import NIOCore

/// A fully decoded v2 record batch: header fields and records. Encoding computes the deltas,
/// compresses and writes the CRC; `RecordBatchView` is the zero-copy alternative for the header alone.
public struct RecordBatch: Hashable, Sendable {
    public var baseOffset: Int64
    public var partitionLeaderEpoch: Int32
    public var compression: CompressionCodec
    public var timestampType: TimestampType
    public var isTransactional: Bool
    public var isControl: Bool
    /// Normally the last record's offset delta; a compacted batch may keep a larger one.
    public var lastOffsetDelta: Int32?
    public var baseTimestamp: Int64?
    public var maxTimestamp: Int64?
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var records: [Record]

    public init(baseOffset: Int64 = 0, partitionLeaderEpoch: Int32 = -1, compression: CompressionCodec = .none,
                timestampType: TimestampType = .createTime, isTransactional: Bool = false, isControl: Bool = false,
                lastOffsetDelta: Int32? = nil, baseTimestamp: Int64? = nil, maxTimestamp: Int64? = nil,
                producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1, records: [Record]) {
        self.baseOffset = baseOffset
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.compression = compression
        self.timestampType = timestampType
        self.isTransactional = isTransactional
        self.isControl = isControl
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.records = records
    }

    public init(_ view: RecordBatchView, decompressionLimit: Int = Compression.defaultLimit) throws {
        let attributes = view.attributes
        guard let codec = attributes.compression else {
            throw KafkaWireError(.compression, "unknown compression codec id \(attributes.rawValue & 0x07)")
        }
        self.init(baseOffset: view.baseOffset, partitionLeaderEpoch: view.partitionLeaderEpoch, compression: codec,
                  timestampType: attributes.timestampType, isTransactional: attributes.isTransactional,
                  isControl: attributes.isControl, lastOffsetDelta: view.lastOffsetDelta,
                  baseTimestamp: view.baseTimestamp, maxTimestamp: view.maxTimestamp, producerId: view.producerId,
                  producerEpoch: view.producerEpoch, baseSequence: view.baseSequence,
                  records: try view.records(decompressionLimit: decompressionLimit))
    }

    /// Decodes every complete batch in `bytes`, validating each CRC.
    public static func decodeAll(_ bytes: ByteBuffer, decompressionLimit: Int = Compression.defaultLimit) throws -> [RecordBatch] {
        var iterator = RecordBatchIterator(bytes)
        var batches: [RecordBatch] = []
        while let view = iterator.next() {
            batches.append(try RecordBatch(try RecordBatchView(validating: view.buffer), decompressionLimit: decompressionLimit))
        }
        if let error = iterator.error { throw error }
        return batches
    }

    /// Writes the batch: header, (compressed) records, then the CRC over attributes..end.
    public func write(into buffer: inout ByteBuffer) throws {
        let firstTimestamp = baseTimestamp ?? records.first?.timestamp ?? -1
        let start = buffer.writerIndex
        buffer.writeInteger(baseOffset)
        buffer.writeInteger(Int32(0))  // batchLength, set below
        buffer.writeInteger(partitionLeaderEpoch)
        buffer.writeInteger(Int8(2))
        buffer.writeInteger(UInt32(0))  // crc, set below
        let attributes = RecordBatchAttributes(compression: compression, timestampType: timestampType,
                                               isTransactional: isTransactional, isControl: isControl)
        buffer.writeInteger(attributes.rawValue)
        buffer.writeInteger(lastOffsetDelta ?? Int32(truncatingIfNeeded: (records.last?.offset ?? baseOffset) &- baseOffset))
        buffer.writeInteger(firstTimestamp)
        buffer.writeInteger(maxTimestamp ?? records.map(\.timestamp).max() ?? firstTimestamp)
        buffer.writeInteger(producerId)
        buffer.writeInteger(producerEpoch)
        buffer.writeInteger(baseSequence)
        buffer.writeInteger(Int32(truncatingIfNeeded: records.count))
        if compression == .none {
            for r in records { r.write(into: &buffer, baseOffset: baseOffset, baseTimestamp: firstTimestamp) }
        } else {
            var plain = ByteBuffer()
            for r in records { r.write(into: &plain, baseOffset: baseOffset, baseTimestamp: firstTimestamp) }
            var compressed = try Compression.compress(plain, codec: compression)
            buffer.writeBuffer(&compressed)
        }
        let size = buffer.writerIndex - start
        buffer.setInteger(Int32(size - RecordBatchLayout.logOverhead), at: start + RecordBatchLayout.batchLength)
        let crcStart = start - buffer.readerIndex + RecordBatchLayout.attributes
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[crcStart...])) }
        buffer.setInteger(crc, at: start + RecordBatchLayout.crc)
    }

    public func encoded() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try write(into: &buffer)
        return buffer
    }
}
