import NIOCore

/// Reads a record's fields from a raw view of a batch's records section. One view serves every
/// record of the batch: reading field by field through `ByteBuffer` costs an exclusivity check per
/// varint, which was a fifth of the consumer's profile.
///
/// Inlinable, with `Record.decodeFields`, so the decoder is specialised into its reader: called
/// across the module boundary, each record was returned through memory and reloaded with wider,
/// unaligned moves than it was stored with (store-forwarding stalls were a third of the consumer's
/// decode). The error paths stay out of line.
@usableFromInline
struct RawRecordReader {
    @usableFromInline let raw: UnsafeRawBufferPointer
    @usableFromInline var at: Int
    @usableFromInline let end: Int

    @inlinable
    init(raw: UnsafeRawBufferPointer, at: Int, end: Int) {
        self.raw = raw
        self.at = at
        self.end = end
    }

    @inlinable
    var remaining: Int { end - at }

    @inlinable
    mutating func int8() throws -> Int8 {
        guard at < end else { throw KafkaWireError.truncated(1, 0) }
        defer { at += 1 }
        return Int8(bitPattern: raw[at])
    }

    /// An unsigned LEB128 value of at most `bits` bits (32: 5 bytes, 64: 10 bytes).
    @inlinable
    mutating func unsigned(bits: UInt64) throws -> UInt64 {
        // A small record's varints fit in one byte (deltas, header count) or two (its length and
        // its value's up to 8 KiB); longer ones take the general loop.
        if at < end {
            let first = raw[at]
            if first < 0x80 {
                at += 1
                return UInt64(first)
            }
            if at + 1 < end, raw[at + 1] < 0x80 {
                defer { at += 2 }
                return UInt64(first & 0x7F) | UInt64(raw[at + 1]) << 7
            }
        }
        return try multiByteUnsigned(bits: bits)
    }

    @usableFromInline
    mutating func multiByteUnsigned(bits: UInt64) throws -> UInt64 {
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
    @inlinable
    mutating func varint() throws -> Int32 {
        let raw = UInt32(truncatingIfNeeded: try unsigned(bits: 32))
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A zigzag varlong (64 bits).
    @inlinable
    mutating func varlong() throws -> Int64 {
        let raw = try unsigned(bits: 64)
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Varint-length-prefixed bytes (-1 for null), returned as their position in the view.
    @inlinable
    mutating func bytes() throws -> Range<Int>? {
        let length = Int(try varint())
        if length == -1 { return nil }
        guard length >= 0, length <= remaining else { throw RawRecordReader.badLength(length, remaining) }
        defer { at += length }
        return at..<at + length
    }

    @usableFromInline @inline(never)
    static func badLength(_ length: Int, _ remaining: Int) -> KafkaWireError {
        length < 0 ? KafkaWireError(.corruptRecordBatch, "negative length \(length) in a record") : .truncated(length, remaining)
    }

    @usableFromInline @inline(never)
    static func corrupt(_ message: String) -> KafkaWireError {
        KafkaWireError(.corruptRecordBatch, message)
    }
}

extension Record {
    /// Decodes the record at `position` of `raw`, the readable bytes of `buffer`, and hands its fields
    /// to `make`; key, value and header values are slices of `buffer`. Moves `position` past the record.
    @inlinable @inline(__always)
    static func decodeFields<R>(
        from raw: UnsafeRawBufferPointer, at position: inout Int, of buffer: ByteBuffer, baseOffset: Int64, baseTimestamp: Int64,
        _ make: (Int64, Int64, consuming ByteBuffer?, consuming ByteBuffer?, consuming [RecordHeader], Int8) throws -> R
    ) throws -> R {
        var reader = RawRecordReader(raw: raw, at: position, end: raw.count)
        let length = Int(try reader.varint())
        guard length >= 0, length <= reader.remaining else {
            throw RawRecordReader.corrupt("record length \(length) with \(reader.remaining) bytes left")
        }
        var body = RawRecordReader(raw: raw, at: reader.at, end: reader.at + length)
        let attributes = try body.int8()
        let timestamp = baseTimestamp &+ (try body.varlong())
        let offset = baseOffset &+ Int64(try body.varint())
        let key = Record.slice(buffer, try body.bytes())
        let value = Record.slice(buffer, try body.bytes())
        let headerCount = Int(try body.varint())
        guard headerCount >= 0, headerCount <= body.remaining else {
            throw RawRecordReader.corrupt("\(headerCount) headers in \(body.remaining) bytes")
        }
        let headers = headerCount == 0 ? [] : try Record.decodedHeaders(headerCount, from: &body, of: buffer)
        guard body.remaining == 0 else { throw RawRecordReader.corrupt("\(body.remaining) bytes left in a record") }
        position = body.end
        return try make(offset, timestamp, key, value, headers, attributes)
    }

    @inlinable
    static func slice(_ buffer: ByteBuffer, _ range: Range<Int>?) -> ByteBuffer? {
        range.map { buffer.getSlice(at: buffer.readerIndex + $0.lowerBound, length: $0.count)! }
    }

    /// Headers are rare on the hot path: out of line.
    @usableFromInline
    static func decodedHeaders(_ count: Int, from body: inout RawRecordReader, of buffer: ByteBuffer) throws -> [RecordHeader] {
        var headers: [RecordHeader] = []
        headers.reserveCapacity(min(count, 64))
        for _ in 0..<count {
            guard let name = try body.bytes() else { throw KafkaWireError(.corruptRecordBatch, "null header key") }
            let key = String(decoding: UnsafeRawBufferPointer(rebasing: body.raw[name]), as: UTF8.self)
            headers.append(RecordHeader(key: key, value: slice(buffer, try body.bytes())))
        }
        return headers
    }
}
