import KafkaWire
import NIOCore
import Testing

@Suite struct FrameSplitterTests {
    struct Refused: Error, Equatable { let size: Int32 }

    /// Size-prefixed frames of assorted sizes, back to back.
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

    /// Every way of cutting the stream into reads — a byte at a time, inside size prefixes, many
    /// frames per read, one read for all — gives back the same frames, in order.
    @Test(arguments: [1, 2, 3, 5, 7, 64, 1000, 4096, 1 << 20])
    func framesComeOutWholeHoweverTheReadsCutThem(_ readSize: Int) throws {
        let (bytes, frames) = Self.stream([0, 9, 300, 4, 70_000, 5, 1200, 0, 33])
        var splitter = FrameSplitter(validSizes: 0...100_000) { Refused(size: $0) }
        var received: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + readSize, bytes.count)
            try splitter.append(ByteBuffer(bytes: bytes[offset..<end]))
            while let frame = splitter.nextFrame() { received.append(Array(frame.readableBytesView)) }
            offset = end
        }
        #expect(received == frames)
    }

    /// A size outside the valid range is refused as soon as its prefix is complete — before any of the
    /// body is buffered — and nothing after it is read as frames.
    @Test func aSizeOutsideTheRangeIsRefusedAndEndsTheStream() throws {
        var splitter = FrameSplitter(validSizes: 0...1000) { Refused(size: $0) }
        try splitter.append(ByteBuffer(bytes: [0, 0, 0, 1, 7, 0, 0]))
        #expect(throws: Refused(size: 5000)) { try splitter.append(ByteBuffer(bytes: [0x13, 0x88, 1, 2])) }
        try splitter.append(ByteBuffer(bytes: [0, 0, 0, 1, 9]))
        var received: [[UInt8]] = []
        while let frame = splitter.nextFrame() { received.append(Array(frame.readableBytesView)) }
        #expect(received == [[7]])
        var negative = FrameSplitter(validSizes: 0...1000) { Refused(size: $0) }
        #expect(throws: Refused(size: -1)) { try negative.append(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])) }
    }

    /// Reads lent the frame being assembled (as `FrameDecoder` lends it to the channel) fill it in
    /// place: every frame comes out whole, and a frame that spans reads is the very buffer the reads
    /// went into — the bytes read into it are not copied again.
    @Test(arguments: [3, 64, 1000, 4096, 50_000])
    func framesReadInPlaceComeOutWholeWithoutACopy(_ readSize: Int) throws {
        let (bytes, frames) = Self.stream([0, 9, 300, 4, 70_000, 5, 1200, 0, 33, 200_000])
        var splitter = FrameSplitter(validSizes: 0...300_000) { Refused(size: $0) }
        var received: [[UInt8]] = []
        var readsInPlace = 0
        var lentStorage: Set<UnsafeRawPointer> = []
        var offset = 0
        while offset < bytes.count {
            var buffer = splitter.lendPartialFrame() ?? ByteBuffer()
            if buffer.readableBytes > 0 {
                readsInPlace += 1
                _ = buffer.withVeryUnsafeBytes { lentStorage.insert(UnsafeRawPointer($0.baseAddress!)) }
            }
            let end = min(offset + readSize, bytes.count, buffer.readableBytes > 0 ? offset + buffer.writableBytes : .max)
            buffer.writeBytes(bytes[offset..<end])
            try splitter.append(buffer)
            while let frame = splitter.nextFrame() {
                received.append(Array(frame.readableBytesView))
                if frame.readableBytes >= 70_000 {
                    // The large frames span reads: each is one of the buffers lent to them, past
                    // its size prefix.
                    let storage = frame.withVeryUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
                    #expect(lentStorage.contains(storage - 4))
                }
            }
            offset = end
        }
        #expect(received == frames)
        #expect(readsInPlace > 0)
    }

    /// A lent frame that does not come back (the read into it was dropped) is not papered over: the
    /// next chunk fails with `LostFrameBytes` and nothing after it comes out as frames.
    @Test func aLentFrameThatDoesNotComeBackFailsTheStream() throws {
        var splitter = FrameSplitter(validSizes: 0...1000) { Refused(size: $0) }
        try splitter.append(ByteBuffer(bytes: [0, 0, 0, 1, 7, 0, 0, 0, 4, 1, 2]))
        #expect(splitter.nextFrame().map { Array($0.readableBytesView) } == [7])
        let lent = splitter.lendPartialFrame()
        #expect(lent.map { Array($0.readableBytesView) } == [0, 0, 0, 4, 1, 2])
        #expect(throws: LostFrameBytes.self) { try splitter.append(ByteBuffer(bytes: [3, 4, 0, 0, 0, 1, 9])) }
        #expect(splitter.nextFrame() == nil)
    }
}
