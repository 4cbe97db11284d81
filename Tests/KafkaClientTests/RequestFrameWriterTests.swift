@testable import KafkaClient
import KafkaWire
import NIOCore
import NIOEmbedded
import Testing

/// What a connection puts on the wire for a request with large record batches: the frame's own bytes
/// and the batches, in order, making one frame whose size prefix counts them all.
@Suite struct RequestFrameWriterTests {
    @Test func detachedBatchesGoOutBetweenTheFramesPiecesUnderOneSizePrefix() throws {
        let large = ByteBuffer(repeating: 0xAB, count: 10_000)
        let small = ByteBuffer(repeating: 0xCD, count: 100)
        let request = ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [
            .init(name: "t", partitionData: [.init(index: 0, records: large), .init(index: 1, records: small), .init(index: 2, records: large)]),
        ])
        for version in [Int16(3), 9, 12] {
            let frame = RequestFrame(request, version: version, correlationId: 7, clientId: "c", allocator: ByteBufferAllocator(),
                                     minimumDetachedSize: 4096)
            #expect(frame.detached.count == 2)
            let channel = EmbeddedChannel(handler: RequestFrameWriter())
            try channel.writeAndFlush(frame).wait()
            var pieces: [ByteBuffer] = []
            while let piece = try channel.readOutbound(as: ByteBuffer.self) { pieces.append(piece) }
            #expect(pieces.count == 5, "v\(version): frame, batch, frame, batch, frame")
            var wire = pieces.dropFirst().reduce(into: pieces[0]) { whole, piece in whole.writeImmutableBuffer(piece) }
            let size = wire.readInteger(as: Int32.self)
            #expect(size.map(Int.init) == wire.readableBytes)
            var expected = ByteBuffer()
            RequestHeader(requestApiKey: ApiKey.produce.rawValue, requestApiVersion: version, correlationId: 7, clientId: "c")
                .write(into: &expected, version: ApiKey.produce.requestHeaderVersion(version))
            request.write(into: &expected, version: version)
            #expect(wire == expected, "v\(version)")
            _ = try channel.finish()
        }
    }
}
