import NIOCore

// The primitive types of the Kafka protocol guide over NIO's ByteBuffer. Readers throw on a short
// buffer or a bad length; writers never fail. "compact" selects the flexible-version encodings
// (unsigned varint length + 1, 0 meaning null) over the classic int16/int32 lengths (-1 meaning null).

extension ByteBuffer {
    // MARK: Fixed-width integers

    @inlinable
    mutating func readKafkaInteger<T: FixedWidthInteger>(as: T.Type = T.self) throws -> T {
        guard let value = readInteger(as: T.self) else {
            throw KafkaWireError.truncated(MemoryLayout<T>.size, readableBytes)
        }
        return value
    }

    @inlinable public mutating func readKafkaInt8() throws -> Int8 { try readKafkaInteger() }
    @inlinable public mutating func readKafkaInt16() throws -> Int16 { try readKafkaInteger() }
    @inlinable public mutating func readKafkaInt32() throws -> Int32 { try readKafkaInteger() }
    @inlinable public mutating func readKafkaInt64() throws -> Int64 { try readKafkaInteger() }
    @inlinable public mutating func readKafkaUInt16() throws -> UInt16 { try readKafkaInteger() }
    @inlinable public mutating func readKafkaUInt32() throws -> UInt32 { try readKafkaInteger() }

    @inlinable public mutating func writeKafkaInt8(_ value: Int8) { writeInteger(value) }
    @inlinable public mutating func writeKafkaInt16(_ value: Int16) { writeInteger(value) }
    @inlinable public mutating func writeKafkaInt32(_ value: Int32) { writeInteger(value) }
    @inlinable public mutating func writeKafkaInt64(_ value: Int64) { writeInteger(value) }
    @inlinable public mutating func writeKafkaUInt16(_ value: UInt16) { writeInteger(value) }
    @inlinable public mutating func writeKafkaUInt32(_ value: UInt32) { writeInteger(value) }

    /// Kafka reads any non-zero byte as true.
    @inlinable public mutating func readKafkaBool() throws -> Bool { try readKafkaInt8() != 0 }
    @inlinable public mutating func writeKafkaBool(_ value: Bool) { writeInteger(UInt8(value ? 1 : 0)) }

    public mutating func readKafkaFloat64() throws -> Double {
        Double(bitPattern: try readKafkaInteger(as: UInt64.self))
    }
    public mutating func writeKafkaFloat64(_ value: Double) { writeInteger(value.bitPattern) }

    public mutating func readKafkaUUID() throws -> KafkaUUID {
        KafkaUUID(high: try readKafkaInteger(), low: try readKafkaInteger())
    }
    public mutating func writeKafkaUUID(_ value: KafkaUUID) {
        writeInteger(value.high)
        writeInteger(value.low)
    }

    // MARK: Varints

    /// An unsigned LEB128 value of at most 5 bytes (32 bits), as Kafka's unsigned varint.
    @inlinable
    public mutating func readUnsignedVarint() throws -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw KafkaWireError.truncated(1, 0) }
            if shift == 28 && byte > 0x0F {
                throw KafkaWireError(.malformedVarint, "unsigned varint longer than 32 bits")
            }
            result |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// An unsigned LEB128 value of at most 10 bytes (64 bits).
    @inlinable
    public mutating func readUnsignedVarlong() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw KafkaWireError.truncated(1, 0) }
            if shift == 63 && byte > 0x01 {
                throw KafkaWireError(.malformedVarint, "unsigned varlong longer than 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inlinable
    public mutating func writeUnsignedVarint(_ value: UInt32) {
        writeUnsignedVarlong(UInt64(value))
    }

    /// One buffer access for the whole varint: a `writeInteger` per byte costs an exclusivity check
    /// each, which showed up as a tenth of the producer's profile.
    @inlinable
    public mutating func writeUnsignedVarlong(_ value: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 10) { out in
            ByteBuffer.encodeUnsignedVarlong(value, into: out.baseAddress!)
        }
    }

    /// Writes `value` as an unsigned varint at `out`; returns the bytes written (1 to 10).
    @inlinable
    public static func encodeUnsignedVarlong(_ value: UInt64, into out: UnsafeMutableRawPointer) -> Int {
        var v = value
        var n = 0
        while v >= 0x80 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: n, as: UInt8.self)
            v >>= 7
            n += 1
        }
        out.storeBytes(of: UInt8(v), toByteOffset: n, as: UInt8.self)
        return n + 1
    }

    /// A zigzag-encoded signed 32-bit varint (record fields).
    @inlinable
    public mutating func readVarint() throws -> Int32 {
        let raw = try readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A zigzag-encoded signed 64-bit varlong (record timestamps and offsets).
    @inlinable
    public mutating func readVarlong() throws -> Int64 {
        let raw = try readUnsignedVarlong()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    @inlinable
    public mutating func writeVarint(_ value: Int32) {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    @inlinable
    public mutating func writeVarlong(_ value: Int64) {
        writeUnsignedVarlong(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Bytes `writeUnsignedVarlong` uses for `value`.
    @inlinable
    public static func unsignedVarintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    @inlinable
    public static func varlongSize(_ value: Int64) -> Int {
        unsignedVarintSize(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    // MARK: Lengths

    /// Reads a length prefix: int16/int32 classic, or unsigned varint minus one when compact.
    /// Returns nil for null (-1, or 0 when compact) and checks the length against what is left.
    @usableFromInline
    mutating func readNullableLength(compact: Bool, wide: Bool) throws -> Int? {
        let length: Int
        if compact {
            length = Int(try readUnsignedVarint()) - 1
        } else if wide {
            length = Int(try readKafkaInt32())
        } else {
            length = Int(try readKafkaInt16())
        }
        if length == -1 { return nil }
        guard length >= 0 else { throw KafkaWireError(.invalidLength, "negative length \(length)") }
        guard length <= readableBytes else { throw KafkaWireError.truncated(length, readableBytes) }
        return length
    }

    @usableFromInline
    mutating func writeLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(UInt32(truncatingIfNeeded: (length ?? -1) + 1))
        } else if wide {
            writeInteger(Int32(truncatingIfNeeded: length ?? -1))
        } else {
            writeInteger(Int16(truncatingIfNeeded: length ?? -1))
        }
    }

    // MARK: Strings

    public mutating func readKafkaNullableString(compact: Bool) throws -> String? {
        guard let length = try readNullableLength(compact: compact, wide: false) else { return nil }
        guard let string = readString(length: length) else { throw KafkaWireError.truncated(length, readableBytes) }
        return string
    }

    public mutating func readKafkaString(compact: Bool) throws -> String {
        guard let string = try readKafkaNullableString(compact: compact) else {
            throw KafkaWireError(.invalidLength, "null where a non-nullable string was expected")
        }
        return string
    }

    public mutating func writeKafkaNullableString(_ value: String?, compact: Bool) {
        guard let value else { return writeLength(nil, compact: compact, wide: false) }
        writeKafkaString(value, compact: compact)
    }

    /// A string of an int16-length version longer than 32,767 bytes cannot be written as it is:
    /// it is cut at the last whole character that fits, so the frame stays well-formed (a broker
    /// echoing a long name into an error message of an older version). Identifiers that must
    /// survive intact are refused before they get here.
    public mutating func writeKafkaString(_ value: String, compact: Bool) {
        let count = value.utf8.count
        guard !compact, count > Int(Int16.max) else {
            writeLength(count, compact: compact, wide: false)
            writeString(value)
            return
        }
        var end = value.utf8.index(value.utf8.startIndex, offsetBy: Int(Int16.max))
        while end > value.utf8.startIndex, UTF8.isContinuation(value.utf8[end]) { end = value.utf8.index(before: end) }
        let cut = value.utf8[..<end]
        writeLength(cut.count, compact: false, wide: false)
        writeBytes(cut)
    }

    /// Whether a string fits a non-flexible (int16-length) version whole.
    public static func fitsKafkaString(_ value: String) -> Bool { value.utf8.count <= Int(Int16.max) }

    // MARK: Bytes (zero-copy slices of the input)

    public mutating func readKafkaNullableBytes(compact: Bool) throws -> ByteBuffer? {
        guard let length = try readNullableLength(compact: compact, wide: true) else { return nil }
        return readSlice(length: length)
    }

    public mutating func readKafkaBytes(compact: Bool) throws -> ByteBuffer {
        guard let bytes = try readKafkaNullableBytes(compact: compact) else {
            throw KafkaWireError(.invalidLength, "null where non-nullable bytes were expected")
        }
        return bytes
    }

    public mutating func writeKafkaNullableBytes(_ value: ByteBuffer?, compact: Bool) {
        guard let value else { return writeLength(nil, compact: compact, wide: true) }
        writeLength(value.readableBytes, compact: compact, wide: true)
        writeImmutableBuffer(value)
    }

    public mutating func writeKafkaBytes(_ value: ByteBuffer, compact: Bool) {
        writeKafkaNullableBytes(value, compact: compact)
    }

    /// Writes the length, and the bytes unless there are `minimumSize` or more of them: those are
    /// listed in `detached` at this writer index, for the connection to write as they are.
    public mutating func writeKafkaNullableBytes(_ value: ByteBuffer?, compact: Bool, detachingBytesOf minimumSize: Int,
                                                 into detached: inout [DetachedBytes]) {
        guard let value, value.readableBytes >= minimumSize else { return writeKafkaNullableBytes(value, compact: compact) }
        writeLength(value.readableBytes, compact: compact, wide: true)
        detached.append(DetachedBytes(writerIndex: writerIndex, bytes: value))
    }

    public mutating func writeKafkaBytes(_ value: ByteBuffer, compact: Bool, detachingBytesOf minimumSize: Int,
                                         into detached: inout [DetachedBytes]) {
        writeKafkaNullableBytes(value, compact: compact, detachingBytesOf: minimumSize, into: &detached)
    }

    // MARK: Arrays

    /// Reads an array count; nil for a null array. Every element takes at least one byte, so a
    /// count larger than the bytes left is rejected before anything is allocated.
    @usableFromInline
    mutating func readNullableArrayCount(compact: Bool) throws -> Int? {
        let count = compact ? Int(try readUnsignedVarint()) - 1 : Int(try readKafkaInt32())
        if count == -1 { return nil }
        guard count >= 0 else { throw KafkaWireError(.invalidLength, "negative array length \(count)") }
        guard count <= readableBytes else {
            throw KafkaWireError(.invalidLength, "array of \(count) elements in \(readableBytes) bytes")
        }
        guard count <= KafkaLimits.maxArrayElements else {
            throw KafkaWireError(.invalidLength, "array of \(count) elements exceeds the limit of \(KafkaLimits.maxArrayElements)")
        }
        return count
    }

    @inlinable
    public mutating func readKafkaNullableArray<T>(
        compact: Bool, _ element: (inout ByteBuffer) throws -> T
    ) throws -> [T]? {
        guard let count = try readNullableArrayCount(compact: compact) else { return nil }
        var result: [T] = []
        // The count is checked against the bytes left, but an element may be far larger in memory
        // than its one byte on the wire: reserve a bounded amount and let the array grow past it.
        result.reserveCapacity(Swift.min(count, KafkaLimits.reservationBytes / Swift.max(MemoryLayout<T>.stride, 1)))
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    @inlinable
    public mutating func readKafkaArray<T>(compact: Bool, _ element: (inout ByteBuffer) throws -> T) throws -> [T] {
        guard let array = try readKafkaNullableArray(compact: compact, element) else {
            throw KafkaWireError(.invalidLength, "null where a non-nullable array was expected")
        }
        return array
    }

    @inlinable
    public mutating func writeKafkaNullableArray<T>(
        _ value: [T]?, compact: Bool, _ element: (inout ByteBuffer, T) -> Void
    ) {
        guard let value else {
            if compact { writeUnsignedVarint(0) } else { writeInteger(Int32(-1)) }
            return
        }
        if compact {
            writeUnsignedVarint(UInt32(truncatingIfNeeded: value.count + 1))
        } else {
            writeInteger(Int32(truncatingIfNeeded: value.count))
        }
        for item in value { element(&self, item) }
    }

    @inlinable
    public mutating func writeKafkaArray<T>(_ value: [T], compact: Bool, _ element: (inout ByteBuffer, T) -> Void) {
        writeKafkaNullableArray(Optional(value), compact: compact, element)
    }

    // MARK: Nullable structs (int8 -1 for null, 1 for present)

    public mutating func readKafkaStructPresence() throws -> Bool {
        let marker = try readKafkaInt8()
        guard marker == -1 || marker == 1 else {
            throw KafkaWireError(.invalidLength, "nullable struct marker \(marker)")
        }
        return marker == 1
    }

    public mutating func writeKafkaStructPresence(_ present: Bool) {
        writeInteger(Int8(present ? 1 : -1))
    }
}
