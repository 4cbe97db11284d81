import KafkaWire
import NIOCore
import Testing

@Suite struct PrimitivesTests {
    @Test func unsignedVarintVectors() throws {
        // Values and encodings from the protocol guide's LEB128 description.
        let cases: [(UInt32, [UInt8])] = [
            (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (300, [0xAC, 0x02]),
            (16_383, [0xFF, 0x7F]), (16_384, [0x80, 0x80, 0x01]), (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ]
        for (value, bytes) in cases {
            var buffer = ByteBuffer()
            buffer.writeUnsignedVarint(value)
            #expect(Array(buffer.readableBytesView) == bytes)
            #expect(try buffer.readUnsignedVarint() == value)
        }
    }

    @Test func zigzagVarints() throws {
        let cases: [(Int64, [UInt8])] = [(0, [0x00]), (-1, [0x01]), (1, [0x02]), (-2, [0x03]), (63, [0x7E]), (-64, [0x7F]), (64, [0x80, 0x01])]
        for (value, bytes) in cases {
            var buffer = ByteBuffer()
            buffer.writeVarlong(value)
            #expect(Array(buffer.readableBytesView) == bytes)
            #expect(try buffer.readVarlong() == value)
            var small = ByteBuffer()
            small.writeVarint(Int32(value))
            #expect(try small.readVarint() == Int32(value))
        }
        for value in [Int64.min, Int64.max, Int64(Int32.min), Int64(Int32.max)] {
            var buffer = ByteBuffer()
            buffer.writeVarlong(value)
            #expect(ByteBuffer.varlongSize(value) == buffer.readableBytes)
            #expect(try buffer.readVarlong() == value)
        }
    }

    @Test func overlongVarintsAreRejected() {
        var five = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x1F])
        #expect(throws: KafkaWireError.self) { try five.readUnsignedVarint() }
        var endless = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 11))
        #expect(throws: KafkaWireError.self) { try endless.readUnsignedVarlong() }
        var cut = ByteBuffer(bytes: [0x80])
        #expect(throws: KafkaWireError.self) { try cut.readUnsignedVarint() }
    }

    @Test func stringsClassicAndCompact() throws {
        for compact in [false, true] {
            var buffer = ByteBuffer()
            buffer.writeKafkaString("héllo", compact: compact)
            buffer.writeKafkaNullableString(nil, compact: compact)
            buffer.writeKafkaNullableString("", compact: compact)
            #expect(try buffer.readKafkaString(compact: compact) == "héllo")
            #expect(try buffer.readKafkaNullableString(compact: compact) == nil)
            #expect(try buffer.readKafkaNullableString(compact: compact) == "")
        }
        // Classic null is int16 -1, compact null is varint 0.
        var classic = ByteBuffer()
        classic.writeKafkaNullableString(nil, compact: false)
        #expect(Array(classic.readableBytesView) == [0xFF, 0xFF])
        var compact = ByteBuffer()
        compact.writeKafkaNullableString(nil, compact: true)
        #expect(Array(compact.readableBytesView) == [0x00])
    }

    @Test func lengthsAreNeverTrusted() {
        // A string claiming 30000 bytes with 2 present.
        var long = ByteBuffer(bytes: [0x75, 0x30, 0x61, 0x62])
        #expect(throws: KafkaWireError.self) { try long.readKafkaString(compact: false) }
        // A negative length other than -1.
        var negative = ByteBuffer(bytes: [0xFF, 0xFE, 0x61])
        #expect(throws: KafkaWireError.self) { try negative.readKafkaNullableString(compact: false) }
        // Null where null is not allowed.
        var null = ByteBuffer(bytes: [0xFF, 0xFF])
        #expect(throws: KafkaWireError.self) { try null.readKafkaString(compact: false) }
        // Bytes claiming 2 GB.
        var huge = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0x00])
        #expect(throws: KafkaWireError.self) { try huge.readKafkaBytes(compact: false) }
        // An array claiming two billion elements is rejected before anything is allocated.
        var array = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0x00, 0x00])
        #expect(throws: KafkaWireError.self) { try array.readKafkaArray(compact: false) { try $0.readKafkaInt32() } }
        var compactArray = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(throws: KafkaWireError.self) { try compactArray.readKafkaArray(compact: true) { try $0.readKafkaInt8() } }
        var negativeArray = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFE])
        #expect(throws: KafkaWireError.self) { try negativeArray.readKafkaNullableArray(compact: false) { try $0.readKafkaInt8() } }
        // A tagged field whose size runs past the buffer.
        var tagged = ByteBuffer(bytes: [0x01, 0x00, 0x7F, 0x00])
        #expect(throws: KafkaWireError.self) {
            for _ in 0..<(try tagged.readTaggedFieldCount()) { _ = try tagged.readTaggedField() }
        }
        var short = ByteBuffer(bytes: [0x00, 0x01])
        #expect(throws: KafkaWireError.self) { try short.readKafkaInt32() }
    }

    @Test func arraysAndNullArrays() throws {
        for compact in [false, true] {
            var buffer = ByteBuffer()
            buffer.writeKafkaArray([1, 2, 3] as [Int32], compact: compact) { $0.writeKafkaInt32($1) }
            buffer.writeKafkaNullableArray(nil as [Int32]?, compact: compact) { $0.writeKafkaInt32($1) }
            #expect(try buffer.readKafkaArray(compact: compact) { try $0.readKafkaInt32() } == [1, 2, 3])
            #expect(try buffer.readKafkaNullableArray(compact: compact) { try $0.readKafkaInt32() } == nil)
        }
    }

    @Test func fixedTypes() throws {
        var buffer = ByteBuffer()
        buffer.writeKafkaFloat64(-1.5)
        buffer.writeKafkaUUID(KafkaUUID("5f3b2c1a-9d4e-4f6a-8b7c-0123456789ab")!)
        buffer.writeKafkaBool(true)
        buffer.writeKafkaUInt16(65535)
        #expect(try buffer.readKafkaFloat64() == -1.5)
        #expect(try buffer.readKafkaUUID().description == "5f3b2c1a-9d4e-4f6a-8b7c-0123456789ab")
        #expect(try buffer.readKafkaBool())
        #expect(try buffer.readKafkaUInt16() == 65535)
        #expect(KafkaUUID("not a uuid") == nil)
        let random = KafkaUUID.random()
        #expect(KafkaUUID(random.description) == random)
        #expect((random.high >> 12) & 0xF == 4)  // version 4
    }
}
