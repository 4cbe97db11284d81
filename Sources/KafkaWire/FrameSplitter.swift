import NIOCore

/// Splits a byte stream into Kafka's size-prefixed frames (int32 size, then that many bytes), fed
/// the chunks reads deliver. A frame that lies whole inside a chunk comes out as a slice of it (no
/// copy); one that spans chunks is assembled once, in a buffer reserved for its size. (NIO's
/// ByteToMessageHandler appends every read to one accumulating buffer, which is copied again when a
/// frame handed out — kept alive by records pointing into it — shares its storage.)
public struct FrameSplitter {
    /// Sizes outside are refused with `refuse(size)` before any of the body is buffered.
    /// The frame sizes accepted; a listener may narrow it (before authentication) and widen it again.
    public var validSizes: ClosedRange<Int>
    let refuse: (Int32) -> Error
    /// The frame being assembled, size prefix included.
    private var partial: ByteBuffer?
    /// Set once a size was refused: what follows is not read as frames.
    private var refused = false
    /// The frame being assembled while it is out on loan to a read (`lendPartialFrame`): where its
    /// storage starts and how many bytes it held.
    private var loan: (storage: UnsafeRawPointer?, held: Int)?
    /// A larger frame's buffer grows as it arrives instead of being reserved up front.
    static let largestReservation = 64 << 20

    public init(validSizes: ClosedRange<Int>, refuse: @escaping (Int32) -> Error) {
        self.validSizes = validSizes
        self.refuse = refuse
    }

    /// Complete frames (without their size prefix) not taken yet, oldest first.
    private var complete = CircularBuffer<ByteBuffer>()

    /// Takes a chunk of the stream; the frames it completes wait for `nextFrame()`. Nothing is called
    /// out from here, so a channel handler may be re-entered while it hands frames on.
    public mutating func append(_ chunk: ByteBuffer) throws {
        guard !refused else { return }
        var chunk = chunk
        if let loan = loan.take() {
            // The read went into the frame being assembled: it comes back with the bytes read after
            // the ones it held. Any other chunk means that read never came back, and its bytes with it.
            guard chunk.storageStart == loan.storage, chunk.readerIndex == 0, chunk.readableBytes > loan.held else {
                refused = true
                throw LostFrameBytes(held: loan.held)
            }
            let total = 4 + (try frameSize(chunk)!)
            guard chunk.readableBytes >= total else {
                partial = chunk
                return
            }
        } else if partial != nil {
            guard let whole = try continueFrame(with: &chunk) else { return }
            complete.append(whole)
        }
        while let size = try frameSize(chunk), chunk.readableBytes >= 4 + size {
            chunk.moveReaderIndex(forwardBy: 4)
            complete.append(chunk.readSlice(length: size)!)
        }
        if chunk.readableBytes > 0 {
            let size = try frameSize(chunk)
            var started = ByteBufferAllocator().buffer(capacity: size.map { Swift.min(4 + $0, Self.largestReservation) } ?? 4)
            started.writeBuffer(&chunk)
            partial = started
        }
    }

    /// The frame being assembled, handed over for the next read to land in its free room (reserved
    /// for the rest of the frame), so that the rest is not copied after it arrives; nil between
    /// frames. It must come back to `append` as the chunk that read delivers: until then the splitter
    /// holds none of it (a second reference would make the read copy it first). If another chunk
    /// comes instead, the bytes lent are gone and `append` throws `LostFrameBytes`.
    public mutating func lendPartialFrame() -> ByteBuffer? {
        guard loan == nil, let partial, let size = partial.getInteger(at: partial.readerIndex, as: Int32.self),
              partial.readerIndex == 0, partial.writableBytes >= 4 + Int(size) - partial.readableBytes else { return nil }
        loan = (partial.storageStart, partial.readableBytes)
        self.partial = nil
        return partial
    }

    /// The oldest complete frame not taken yet.
    public mutating func nextFrame() -> ByteBuffer? {
        complete.popFirst()
    }

    /// Adds the start of `chunk` to the frame being assembled; returns the frame once complete.
    private mutating func continueFrame(with chunk: inout ByteBuffer) throws -> ByteBuffer? {
        var frame = partial!
        partial = nil
        if frame.readableBytes < 4 {
            var prefix = chunk.readSlice(length: Swift.min(4 - frame.readableBytes, chunk.readableBytes))!
            frame.writeBuffer(&prefix)
            guard let size = try frameSize(frame) else {
                partial = frame
                return nil
            }
            frame.reserveCapacity(minimumWritableBytes: Swift.min(4 + size, Self.largestReservation) - frame.readableBytes)
        }
        let total = 4 + (try frameSize(frame)!)
        var piece = chunk.readSlice(length: Swift.min(total - frame.readableBytes, chunk.readableBytes))!
        frame.writeBuffer(&piece)
        guard frame.readableBytes == total else {
            partial = frame
            return nil
        }
        frame.moveReaderIndex(forwardBy: 4)
        return frame
    }

    /// The size a frame's prefix announces; nil while fewer than four bytes are there.
    private mutating func frameSize(_ buffer: ByteBuffer) throws -> Int? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard validSizes.contains(Int(size)) else {
            refused = true
            throw refuse(size)
        }
        return Int(size)
    }
}

/// A read that `FrameSplitter.lendPartialFrame` handed the frame being assembled to never came back
/// with it: the connection lost bytes and cannot go on.
public struct LostFrameBytes: Error, CustomStringConvertible {
    public let held: Int
    public var description: String { "a read lost the \(held) bytes of the frame being received" }
}

extension ByteBuffer {
    /// Identifies a buffer's storage (two buffers sharing it answer the same).
    var storageStart: UnsafeRawPointer? {
        withVeryUnsafeBytes { UnsafeRawPointer($0.baseAddress) }
    }
}
