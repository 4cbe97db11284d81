import NIOCore

/// Where one record lies in a batch's (decompressed) records section, with what the log cleaner
/// judges it by: its offset, its key and whether it has a value (a null value is a tombstone).
public struct RecordSpan: Sendable {
    /// The record's bytes (its length prefix included) in the section.
    public var range: Range<Int>
    public var offset: Int64
    /// The key's bytes in the section; nil for a record without a key.
    public var key: Range<Int>?
    public var isTombstone: Bool
}

extension RecordBatchView {
    /// Walks the records of `section` (this batch's records, decompressed) without decoding headers
    /// or copying anything, handing `body` each record's span and the raw section. The count is the
    /// batch's claim, checked against the bytes as it goes; record offsets must ascend within the
    /// batch's range (a record claiming another offset is corrupt data, not an update).
    public func forEachRecordSpan(in section: ByteBuffer,
                                  _ body: (RecordSpan, UnsafeRawBufferPointer) throws -> Void) throws {
        let count = Int(recordCount)
        guard count <= section.readableBytes else {
            throw KafkaWireError(.corruptRecordBatch, "\(count) records in \(section.readableBytes) bytes")
        }
        let baseOffset = baseOffset, lastOffset = lastOffset
        try section.withUnsafeReadableBytes { raw in
            var position = 0
            var previous = baseOffset &- 1
            for _ in 0..<count {
                var reader = RawRecordReader(raw: raw, at: position, end: raw.count)
                let length = Int(try reader.varint())
                guard length >= 0, length <= reader.remaining else {
                    throw RawRecordReader.corrupt("record length \(length) with \(reader.remaining) bytes left")
                }
                let end = reader.at + length
                var fields = RawRecordReader(raw: raw, at: reader.at, end: end)
                _ = try fields.int8()
                _ = try fields.varlong()
                let offset = baseOffset &+ Int64(try fields.varint())
                guard offset > previous, offset <= lastOffset else {
                    throw RawRecordReader.corrupt("record offset \(offset) out of order in a batch of offsets \(baseOffset)-\(lastOffset)")
                }
                previous = offset
                let key = try fields.bytes()
                let value = try fields.bytes()
                try body(RecordSpan(range: position..<end, offset: offset, key: key, isTombstone: value == nil), raw)
                position = end
            }
            guard position == raw.count else {
                throw KafkaWireError(.corruptRecordBatch, "\(raw.count - position) bytes left after \(count) records")
            }
        }
    }

    /// The records section, decompressed with the batch's codec (bounded by `limit`).
    public func decompressedRecords(limit: Int = Compression.defaultLimit) throws -> ByteBuffer {
        guard let codec = attributes.compression else {
            throw KafkaWireError(.compression, "unknown compression codec id \(attributes.rawValue & 0x07)")
        }
        return try Compression.decompress(recordsSection, codec: codec, limit: limit)
    }

    /// This batch with only some of its records: `records` are their encoded bytes back to back,
    /// compressed here with the batch's codec. Every header field is kept (base offset, last offset
    /// delta, timestamps, producer id, epoch and base sequence), so offsets and the producer's
    /// sequence range survive; the count, length and CRC are the new ones.
    public func keeping(records: ByteBuffer, count: Int32) throws -> ByteBuffer {
        guard let codec = attributes.compression else {
            throw KafkaWireError(.compression, "unknown compression codec id \(attributes.rawValue & 0x07)")
        }
        var section = try Compression.compress(records, codec: codec)
        var batch = ByteBuffer()
        batch.reserveCapacity(RecordBatchLayout.headerSize + section.readableBytes)
        batch.writeImmutableBuffer(buffer.getSlice(at: buffer.readerIndex, length: RecordBatchLayout.headerSize)!)
        batch.writeBuffer(&section)
        batch.setInteger(Int32(batch.readableBytes - RecordBatchLayout.logOverhead), at: RecordBatchLayout.batchLength)
        batch.setInteger(count, at: RecordBatchLayout.recordCount)
        let crc = batch.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatchLayout.attributes...])) }
        batch.setInteger(crc, at: RecordBatchLayout.crc)
        return batch
    }
}
