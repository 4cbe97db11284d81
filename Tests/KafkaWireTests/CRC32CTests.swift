import KafkaWire
import KafkaWireRandom
import NIOCore
import Testing

@Suite struct CRC32CTests {
    /// RFC 3720 (iSCSI), appendix B.4, plus the common "123456789" check value.
    static let vectors: [([UInt8], UInt32)] = [
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0...31), 0x46DD_794E),
        (Array((0...31).reversed()), 0x113F_DB5C),
        ([0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
          0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
          0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], 0xD996_3A56),
        (Array("123456789".utf8), 0xE306_9283),
        ([], 0),
    ]

    @Test func rfc3720Vectors() {
        for (bytes, expected) in Self.vectors {
            #expect(CRC32C.checksum(bytes) == expected)
            #expect(bytes.withUnsafeBytes { CRC32C.portableChecksum($0) } == expected)
        }
    }

    @Test func hardwareMatchesPortableAtEveryLengthAndAlignment() {
        var rng = RandomSource(seed: 42)
        let data = (0..<40_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        data.withUnsafeBytes { all in
            // Lengths around the three-lane block (3 x 4096) and odd alignments.
            for (start, length) in [(0, 0), (1, 1), (3, 7), (5, 4095), (0, 12_288), (7, 12_289), (1, 24_577), (0, 39_000)] {
                let slice = UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                #expect(CRC32C.checksum(slice) == CRC32C.portableChecksum(slice), "length \(length) at \(start)")
            }
        }
    }

    @Test func continuingEqualsWhole() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        let whole = CRC32C.checksum(bytes)
        let split = bytes.withUnsafeBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[10...]),
                            continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<10])))
        }
        #expect(split == whole)
        #expect(CRC32C.checksum(ByteBuffer(bytes: bytes)) == whole)
    }
}
