@testable import KafkaClient
import NIOCore
import NIOEmbedded
import Testing

@Suite struct ResponseFrameDecoderTests {
    /// Size-prefixed frames of assorted sizes, as the broker writes them back to back.
    static func stream(_ sizes: [Int]) -> (bytes: [UInt8], frames: [[UInt8]]) {
        var bytes: [UInt8] = []
        var frames: [[UInt8]] = []
        for (n, size) in sizes.enumerated() {
            let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }
            frames.append(body)
            withUnsafeBytes(of: Int32(size).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: body)
        }
        return (bytes, frames)
    }

    /// Every way of cutting the stream into reads — one byte at a time, inside size prefixes, many
    /// frames per read, one read for all — gives back the same frames, in order.
    @Test(arguments: [1, 2, 3, 5, 7, 64, 1000, 4096, 1 << 20])
    func framesComeOutWholeHoweverTheReadsCutThem(_ readSize: Int) throws {
        let (bytes, frames) = Self.stream([4, 9, 300, 4, 70_000, 5, 1200, 4, 33])
        let channel = EmbeddedChannel(handler: ResponseFrameDecoder())
        var received: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + readSize, bytes.count)
            try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
            while let frame = try channel.readInbound(as: ByteBuffer.self) { received.append(Array(frame.readableBytesView)) }
        }
        #expect(received == frames)
        #expect(try channel.finish().isClean)
    }

    @Test func aFrameSizeBelowFourIsAProtocolViolation() throws {
        let channel = EmbeddedChannel(handler: ResponseFrameDecoder())
        #expect(throws: KafkaClientError.self) { try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 2, 9, 9])) }
        _ = try? channel.finish()
    }
}
