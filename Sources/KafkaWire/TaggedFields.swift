import NIOCore

/// A tagged field the codec does not know: kept as raw bytes and written back unchanged.
public struct TaggedField: Hashable, Sendable {
    public var tag: UInt32
    public var data: ByteBuffer

    public init(tag: UInt32, data: ByteBuffer) {
        self.tag = tag
        self.data = data
    }
}

extension ByteBuffer {
    /// Reads the number of tagged fields in a flexible-version tagged section.
    public mutating func readTaggedFieldCount() throws -> Int {
        let count = Int(try readUnsignedVarint())
        guard count <= readableBytes, count <= KafkaLimits.maxTaggedFields else {
            throw KafkaWireError(.invalidLength, "\(count) tagged fields in \(readableBytes) bytes (at most \(KafkaLimits.maxTaggedFields))")
        }
        return count
    }

    /// Reads one tagged field's tag and its bytes, as a slice.
    public mutating func readTaggedField() throws -> TaggedField {
        let tag = try readUnsignedVarint()
        let size = Int(try readUnsignedVarint())
        guard let data = readSlice(length: size) else { throw KafkaWireError.truncated(size, readableBytes) }
        return TaggedField(tag: tag, data: data)
    }

    /// Writes a tagged section holding only unknown fields (the common case: an empty section is one 0 byte).
    public mutating func writeTaggedFields(_ unknown: [TaggedField]) {
        writeUnsignedVarint(UInt32(unknown.count))
        for field in unknown {
            writeUnsignedVarint(field.tag)
            writeUnsignedVarint(UInt32(field.data.readableBytes))
            writeImmutableBuffer(field.data)
        }
    }
}

/// Collects the known tagged fields a struct writes, merges them with its unknown ones in tag order,
/// and writes the section.
public struct TaggedFieldsWriter {
    private var fields: [TaggedField]

    public init(unknown: [TaggedField]) {
        fields = unknown
    }

    public mutating func add(tag: UInt32, _ encode: (inout ByteBuffer) -> Void) {
        var data = ByteBuffer()
        encode(&data)
        fields.append(TaggedField(tag: tag, data: data))
    }

    public mutating func write(into buffer: inout ByteBuffer) {
        fields.sort { $0.tag < $1.tag }
        buffer.writeTaggedFields(fields)
    }
}
