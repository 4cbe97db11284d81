import NIOCore

/// Reads a record's fields from a raw view of a batch's records section. One view serves every
/// record of the batch: reading field by field through `ByteBuffer` costs an exclusivity check per
/// varint, which was a fifth of the consumer's profile.
struct RawRecordReader {
    let raw: UnsafeRawBufferPointer
    var at: Int
    let end: Int

    var remaining: Int { end - at }

    mutating func int8() throws -> Int8 {
        guard at < end else { throw KafkaWireError.truncated(1, 0) }
        defer { at += 1 }
        return Int8(bitPattern: raw[at])
    }

    /// An unsigned LEB128 value of at most `bits` bits (32: 5 bytes, 64: 10 bytes).
    private mutating func unsigned(bits: UInt64) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let lastShift = bits == 32 ? 28 : 63
        let lastMax: UInt8 = bits == 32 ? 0x0F : 0x01
        while true {
            guard at < end else { throw KafkaWireError.truncated(1, 0) }
            let byte = raw[at]
            at += 1
            if shift == lastShift && byte > lastMax {
                throw KafkaWireError(.malformedVarint, bits == 32 ? "unsigned varint longer than 32 bits" : "unsigned varlong longer than 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// A zigzag varint (32 bits).
    mutating func varint() throws -> Int32 {
        let raw = UInt32(truncatingIfNeeded: try unsigned(bits: 32))
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A zigzag varlong (64 bits).
    mutating func varlong() throws -> Int64 {
        let raw = try unsigned(bits: 64)
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Varint-length-prefixed bytes (-1 for null), returned as their position in the view.
    mutating func bytes() throws -> Range<Int>? {
        let length = Int(try varint())
        if length == -1 { return nil }
        guard length >= 0 else { throw KafkaWireError(.corruptRecordBatch, "negative length \(length) in a record") }
        guard length <= remaining else { throw KafkaWireError.truncated(length, remaining) }
        defer { at += length }
        return at..<at + length
    }
}

extension Record {
    /// Decodes the record at `position` of `raw`, the readable bytes of `buffer`; key, value and
    /// header values are slices of `buffer`. Moves `position` past the record.
    @usableFromInline
    static func decoded(from raw: UnsafeRawBufferPointer, at position: inout Int, of buffer: ByteBuffer, baseOffset: Int64,
                        baseTimestamp: Int64) throws -> Record {
        var reader = RawRecordReader(raw: raw, at: position, end: raw.count)
        let length = Int(try reader.varint())
        guard length >= 0, length <= reader.remaining else {
            throw KafkaWireError(.corruptRecordBatch, "record length \(length) with \(reader.remaining) bytes left")
        }
        var body = RawRecordReader(raw: raw, at: reader.at, end: reader.at + length)
        func slice(_ range: Range<Int>?) -> ByteBuffer? {
            range.map { buffer.getSlice(at: buffer.readerIndex + $0.lowerBound, length: $0.count)! }
        }
        let attributes = try body.int8()
        let timestamp = baseTimestamp &+ (try body.varlong())
        let offset = baseOffset &+ Int64(try body.varint())
        let key = slice(try body.bytes())
        let value = slice(try body.bytes())
        let headerCount = Int(try body.varint())
        guard headerCount >= 0, headerCount <= body.remaining else {
            throw KafkaWireError(.corruptRecordBatch, "\(headerCount) headers in \(body.remaining) bytes")
        }
        var headers: [RecordHeader] = []
        if headerCount > 0 {
            headers.reserveCapacity(headerCount)
            for _ in 0..<headerCount {
                guard let name = try body.bytes() else { throw KafkaWireError(.corruptRecordBatch, "null header key") }
                let key = String(decoding: UnsafeRawBufferPointer(rebasing: raw[name]), as: UTF8.self)
                headers.append(RecordHeader(key: key, value: slice(try body.bytes())))
            }
        }
        guard body.remaining == 0 else {
            throw KafkaWireError(.corruptRecordBatch, "\(body.remaining) bytes left in a record")
        }
        position = body.end
        // The memberwise initialiser (see `Record`): an explicit one would copy the record out.
        return Record(offset: offset, timestamp: timestamp, key: key, value: value, headers: headers, attributes: attributes)
    }
}
