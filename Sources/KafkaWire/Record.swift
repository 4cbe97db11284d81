import NIOCore

public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// One record of a v2 batch, with its absolute offset and timestamp.
///
///     length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
///     keyLength varint, key, valueLength varint, value, headerCount varint,
///     per header: keyLength varint, key, valueLength varint, value
public struct Record: Hashable, Sendable {
    public var offset: Int64
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    /// Unused by Kafka so far; kept so a batch re-encodes to the same bytes.
    public var attributes: Int8
    // No initialiser in here, so the compiler's memberwise one (all six fields) stays: an explicit
    // one stored the record on the stack and copied it out, a retain and a release per field.
}

extension Record {
    public init(offset: Int64 = 0, timestamp: Int64 = 0, key: ByteBuffer? = nil, value: ByteBuffer? = nil,
                headers: [RecordHeader] = []) {
        self.init(offset: offset, timestamp: timestamp, key: key, value: value, headers: headers, attributes: 0)
    }

    /// Decodes one record; key, value and header values are slices of `buffer`.
    public init(from buffer: inout ByteBuffer, baseOffset: Int64, baseTimestamp: Int64) throws {
        let bytes = buffer
        var position = 0
        self = try bytes.withUnsafeReadableBytes { raw in
            try Record.decodeFields(from: raw, at: &position, of: bytes, baseOffset: baseOffset, baseTimestamp: baseTimestamp,
                                    Record.init(offset:timestamp:key:value:headers:attributes:))
        }
        buffer.moveReaderIndex(forwardBy: position)
    }

    /// The size of the body (what the length prefix counts).
    func bodySize(offsetDelta: Int32, timestampDelta: Int64) -> Int {
        var size = 1 + ByteBuffer.varlongSize(timestampDelta) + ByteBuffer.varlongSize(Int64(offsetDelta))
        size += Self.varintBytesSize(key) + Self.varintBytesSize(value)
        size += ByteBuffer.varlongSize(Int64(headers.count))
        for h in headers {
            size += ByteBuffer.varlongSize(Int64(h.key.utf8.count)) + h.key.utf8.count + Self.varintBytesSize(h.value)
        }
        return size
    }

    static func varintBytesSize(_ bytes: ByteBuffer?) -> Int {
        guard let bytes else { return 1 }
        return ByteBuffer.varlongSize(Int64(bytes.readableBytes)) + bytes.readableBytes
    }

    /// Writes the record with deltas against its batch's base offset and timestamp.
    public func write(into buffer: inout ByteBuffer, baseOffset: Int64, baseTimestamp: Int64) {
        let offsetDelta = Int32(truncatingIfNeeded: offset &- baseOffset)
        let timestampDelta = timestamp &- baseTimestamp
        buffer.writeVarint(Int32(truncatingIfNeeded: bodySize(offsetDelta: offsetDelta, timestampDelta: timestampDelta)))
        buffer.writeInteger(attributes)
        buffer.writeVarlong(timestampDelta)
        buffer.writeVarint(offsetDelta)
        buffer.writeVarintBytes(key)
        buffer.writeVarintBytes(value)
        buffer.writeVarint(Int32(truncatingIfNeeded: headers.count))
        for h in headers {
            buffer.writeVarint(Int32(truncatingIfNeeded: h.key.utf8.count))
            buffer.writeString(h.key)
            buffer.writeVarintBytes(h.value)
        }
    }
}

extension ByteBuffer {
    mutating func writeVarintBytes(_ bytes: ByteBuffer?) {
        guard let bytes else { return writeVarint(-1) }
        writeVarint(Int32(truncatingIfNeeded: bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }
}
