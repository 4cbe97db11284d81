import KafkaWire
import KafkaWireRandom
import NIOCore
import Testing

/// A request written with its large bytes fields detached, put back together, is the request the
/// generated encoder writes: byte for byte, at every version.
@Suite struct DetachedBytesTests {
    /// The pieces in the order a connection writes them.
    static func reassembled(_ encoded: ByteBuffer, _ detached: [DetachedBytes]) -> ByteBuffer {
        var encoded = encoded
        var whole = ByteBuffer()
        for piece in detached {
            #expect(piece.writerIndex >= encoded.readerIndex && piece.writerIndex <= encoded.writerIndex)
            var before = encoded.readSlice(length: piece.writerIndex - encoded.readerIndex)!
            whole.writeBuffer(&before)
            whole.writeImmutableBuffer(piece.bytes)
        }
        whole.writeBuffer(&encoded)
        return whole
    }

    static func write<R: KafkaRequest>(_ request: R, version: Int16, detachingBytesOf minimumSize: Int) -> (ByteBuffer, [DetachedBytes]) {
        var encoded = ByteBuffer()
        var detached: [DetachedBytes] = []
        request.write(into: &encoded, version: version, detachingBytesOf: minimumSize, into: &detached)
        return (encoded, detached)
    }

    @Test func randomProduceRequestsReassembleToTheGeneratedEncoding() {
        var detachedCount = 0
        for version in ProduceRequest.validVersions {
            var rng = RandomSource(seed: RoundTripTests.stableSeed("detached", version))
            for _ in 0..<40 {
                let request = ProduceRequest.random(version: version, using: &rng)
                let expected = request.encoded(version: version)
                for minimumSize in [0, 1, 8, Int.max] {
                    let (encoded, detached) = Self.write(request, version: version, detachingBytesOf: minimumSize)
                    detachedCount += detached.count
                    #expect(detached.allSatisfy { $0.bytes.readableBytes >= minimumSize })
                    #expect(Self.reassembled(encoded, detached) == expected, "ProduceRequest v\(version), detaching \(minimumSize)")
                }
            }
        }
        #expect(detachedCount > 100)
    }

    @Test func largeRecordBatchesAreDetachedAndSmallOnesCopied() throws {
        let large = ByteBuffer(repeating: 0xAB, count: 100_000)
        let small = ByteBuffer(repeating: 0xCD, count: 100)
        let request = ProduceRequest(acks: -1, timeoutMs: 30_000, topicData: [
            .init(name: "a", topicId: KafkaUUID(high: 1, low: 2), partitionData: [.init(index: 0, records: large), .init(index: 1, records: small)]),
            .init(name: "b", topicId: KafkaUUID(high: 3, low: 4), partitionData: [.init(index: 2, records: nil), .init(index: 3, records: large)]),
        ])
        for version in ProduceRequest.validVersions {
            let (encoded, detached) = Self.write(request, version: version, detachingBytesOf: 4096)
            #expect(detached.map(\.bytes) == [large, large])
            #expect(encoded.readableBytes < 200, "v\(version): the batches stayed out of the frame")
            let whole = Self.reassembled(encoded, detached)
            #expect(whole == request.encoded(version: version))
            var reader = whole
            #expect(try ProduceRequest(from: &reader, version: version) == request.decodedEquivalent(version: version))
        }
    }

    @Test func requestsWithoutBytesFieldsDetachNothing() {
        let request = MetadataRequest(topics: [.init(name: "t")])
        let (encoded, detached) = Self.write(request, version: 12, detachingBytesOf: 0)
        #expect(detached.isEmpty)
        #expect(encoded == request.encoded(version: 12))
    }
}

extension ProduceRequest {
    /// What a decoder sees at `version`: the topic name before v13, the topic id from v13.
    func decodedEquivalent(version: Int16) -> ProduceRequest {
        var copy = self
        for index in copy.topicData.indices {
            if version <= 12 { copy.topicData[index].topicId = .zero } else { copy.topicData[index].name = "" }
        }
        return copy
    }
}
