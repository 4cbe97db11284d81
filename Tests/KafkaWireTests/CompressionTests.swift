import KafkaWire
import KafkaWireRandom
import NIOCore
import Testing

@Suite struct CompressionTests {
    static func sample(_ size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        var rng = RandomSource(seed: UInt64(size))
        // Mostly text with some noise: compressible, but not trivially.
        for i in 0..<size {
            let byte: UInt8 = i % 7 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : UInt8(97 + i % 26)
            buffer.writeInteger(byte)
        }
        return buffer
    }

    @Test(arguments: CompressionCodec.allCases)
    func roundTrip(codec: CompressionCodec) throws {
        for size in [0, 1, 100, 70_000, 300_000] {
            let input = Self.sample(size)
            let compressed = try Compression.compress(input, codec: codec)
            if codec != .none && size >= 70_000 { #expect(compressed.readableBytes < input.readableBytes) }
            #expect(try Compression.decompress(compressed, codec: codec) == input, "\(codec) \(size)")
        }
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func decompressionIsBounded(codec: CompressionCodec) throws {
        // 1 MB of zeros compresses to a few hundred bytes; a 64 KB limit must stop it.
        let bomb = try Compression.compress(ByteBuffer(repeating: 0, count: 1 << 20), codec: codec)
        #expect(throws: KafkaWireError.self) { try Compression.decompress(bomb, codec: codec, limit: 64 * 1024) }
        #expect(try Compression.decompress(bomb, codec: codec, limit: 1 << 20).readableBytes == 1 << 20)
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func garbageAndTruncationThrow(codec: CompressionCodec) throws {
        let compressed = try Compression.compress(Self.sample(5000), codec: codec)
        let truncated = compressed.getSlice(at: 0, length: compressed.readableBytes / 2)!
        #expect(throws: KafkaWireError.self) { try Compression.decompress(truncated, codec: codec) }
        var garbage = compressed
        for i in stride(from: 20, to: garbage.readableBytes, by: 7) { garbage.setInteger(UInt8(0xA5), at: i) }
        // Garbage either fails or, for formats without a checksum, must not come back equal.
        if let out = try? Compression.decompress(garbage, codec: codec) {
            #expect(out != Self.sample(5000))
        }
    }

    @Test func snappyReadsRawAndXerialFraming() throws {
        let input = Self.sample(100_000)
        let xerial = try Compression.compress(input, codec: .snappy)
        #expect(Array(xerial.readableBytesView.prefix(8)) == [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00])
        #expect(try Compression.decompress(xerial, codec: .snappy) == input)
        // Raw snappy: the first xerial block is a complete raw stream of its 32 KB.
        var framed = xerial
        framed.moveReaderIndex(forwardBy: 16)
        let length = Int(framed.readInteger(as: Int32.self)!)
        let raw = framed.readSlice(length: length)!
        #expect(try Compression.decompress(raw, codec: .snappy) == input.getSlice(at: 0, length: 32 * 1024)!)
    }

    @Test func codecNames() {
        #expect(CompressionCodec(name: "ZSTD") == .zstd)
        #expect(CompressionCodec(name: "brotli") == nil)
        #expect(CompressionCodec.allCases.map(\.description) == ["none", "gzip", "snappy", "lz4", "zstd"])
    }
}
