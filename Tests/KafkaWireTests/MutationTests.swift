import KafkaWire
import KafkaWireRandom
import NIOCore
import Testing

/// A seeded mutation harness over every decoder: valid messages of every type and version (and
/// record batches of every codec) with bytes flipped, length fields set negative or absurd, bodies
/// truncated or padded. Each must decode or throw — never trap, hang or allocate what a length
/// field claims. The network-side twin, 100,000 mutated frames of real client requests against a
/// running broker, is `Tests/Interop/test_limits_and_hostile_input.py`.
@Suite struct MutationTests {
    static let instancesPerVersion = 3
    static let mutationsPerInstance = 40

    /// One seeded mutation of `bytes`.
    static func mutate(_ bytes: ByteBuffer, _ rng: inout RandomSource) -> ByteBuffer {
        var data = Array(bytes.readableBytesView)
        guard !data.isEmpty else { return ByteBuffer(bytes: [UInt8(truncatingIfNeeded: rng.next())]) }
        func at() -> Int { Int(rng.next() % UInt64(data.count)) }
        switch rng.next() % 5 {
        case 0:
            for _ in 0..<(1 + rng.next() % 4) { data[at()] = UInt8(truncatingIfNeeded: rng.next()) }
        case 1, 2:
            // A length-like field: negative, or far beyond what follows.
            let value: UInt32 = rng.next() % 2 == 0 ? 0xFFFF_FFFF - UInt32(rng.next() % 100) : 0x7FFF_0000 + UInt32(rng.next() % 0xFFFF)
            let start = at()
            for (i, byte) in withUnsafeBytes(of: value.bigEndian, Array.init).enumerated() where start + i < data.count {
                data[start + i] = byte
            }
        case 3:
            data.removeSubrange(at()...)
        default:
            data += (0..<(1 + rng.next() % 32)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        return ByteBuffer(bytes: data)
    }

    @Test func everyMessageDecoderSurvivesMutatedInput() {
        var decoded = 0, refused = 0
        for type in allRandomizableMessages {
            let (ok, thrown) = Self.mutateAndDecode(type)
            decoded += ok
            refused += thrown
        }
        // Both outcomes happen: mutations that keep a message well formed, and ones that break it.
        let total = allRandomizableMessages.reduce(0) { $0 + $1.validVersions.count } * Self.instancesPerVersion * Self.mutationsPerInstance
        #expect(decoded + refused == total)
        #expect(decoded > total / 20 && refused > total / 3)
    }

    static func mutateAndDecode<M: RandomizableMessage>(_ type: M.Type) -> (decoded: Int, refused: Int) {
        var decoded = 0, refused = 0
        for version in M.validVersions {
            var rng = RandomSource(seed: RoundTripTests.stableSeed(M.messageName, version) ^ 0x5EED)
            for _ in 0..<instancesPerVersion {
                let bytes = M.random(version: version, using: &rng).encoded(version: version)
                for _ in 0..<mutationsPerInstance {
                    var input = mutate(bytes, &rng)
                    do {
                        _ = try M(from: &input, version: version)
                        decoded += 1
                    } catch {
                        refused += 1
                    }
                }
            }
        }
        return (decoded, refused)
    }

    @Test(arguments: CompressionCodec.allCases)
    func recordBatchValidationSurvivesMutatedBatches(codec: CompressionCodec) throws {
        let records = (0..<20).map { Record(offset: Int64($0), key: ByteBuffer(string: "k\($0)"), value: ByteBuffer(string: "value \($0)"),
                                            headers: [RecordHeader(key: "h", value: ByteBuffer(string: "x"))]) }
        let batch = try RecordBatch(compression: codec, producerId: 5, producerEpoch: 1, baseSequence: 0, records: records).encoded()
        var rng = RandomSource(seed: 99 &+ UInt64(codec.rawValue))
        var crcCaught = 0
        for _ in 0..<2000 {
            let mutated = Self.mutate(batch, &rng)
            var iterator = RecordBatchIterator(mutated)
            while let view = iterator.next() {
                // The broker's order: header and CRC first; only a batch that passes is looked into.
                guard view.computeCRC() == view.crc else {
                    crcCaught += 1
                    continue
                }
                _ = try? view.records(decompressionLimit: 1 << 20)
            }
        }
        // Nearly every mutation of the body is caught by the CRC before any record is decoded.
        #expect(crcCaught > 1000)
    }
}
