import NIOCore

/// `FrameSplitter` as a channel handler: byte chunks in, size-prefixed frames out (bytes only; the
/// channel below it does the reading). The client's response path and the broker's request path
/// each put one first in their pipeline.
///
/// It also chooses the buffers the channel reads into: while a frame is being assembled, the next
/// read goes straight into that frame's free room, so a large frame (a fetch answer, a produce
/// request: a megabyte) is not copied after it arrives; between frames, reads go into small buffers
/// (NIO's adaptive sizes up to 64 KB), so that the start of a large frame copied out of one is
/// small. The channel then reads once per wake-up: a read lent a frame and finding nothing (EAGAIN)
/// would drop it, and that can only happen to a read the socket did not announce. Should it happen
/// all the same, the splitter notices and the connection fails with `LostFrameBytes` (it is not
/// silently corrupted).
///
/// Behind a TLS handler the socket's bytes are ciphertext: such a decoder (`readsInPlace: false`)
/// leaves the channel's buffers alone and only splits what it is handed.
public final class FrameDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    private var splitter: FrameSplitter
    private var delivering = false
    private let readsInPlace: Bool

    public init(_ splitter: FrameSplitter, readsInPlace: Bool = true) {
        self.splitter = splitter
        self.readsInPlace = readsInPlace
    }

    /// The frame sizes accepted from now on (a frame already under way keeps the size it was let in with).
    public var validSizes: ClosedRange<Int> {
        get { splitter.validSizes }
        set { splitter.validSizes = newValue }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard readsInPlace, let options = context.channel.syncOptions else { return }
        try? options.setOption(.maxMessagesPerRead, value: 1)
        try? options.setOption(.recvAllocator, value: FrameReadBuffers(decoder: self))
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var failure: Error?
        do { try splitter.append(unwrapInboundIn(data)) } catch { failure = error }
        // A handler further on may make the channel read again from inside fireChannelRead: that
        // read only queues its frames, and this loop hands them on in order.
        guard !delivering else { return }
        delivering = true
        while let frame = splitter.nextFrame() { context.fireChannelRead(wrapInboundOut(frame)) }
        delivering = false
        if let failure { context.fireErrorCaught(failure) }
    }

    /// The buffer the channel's next read goes into.
    fileprivate func readBuffer(allocator: ByteBufferAllocator, between: AdaptiveRecvByteBufferAllocator) -> ByteBuffer {
        splitter.lendPartialFrame() ?? between.buffer(allocator: allocator)
    }
}

/// The receive allocator of a channel with a `FrameDecoder`, which reads frames in place. NIO's
/// pool of receive buffers is kept from reusing a buffer of its own (`nextBufferSize` nil, `record`
/// answering "may grow"), so every read goes into the buffer chosen here. Used only on the channel's
/// event loop.
struct FrameReadBuffers: RecvByteBufferAllocator, @unchecked Sendable {
    let decoder: FrameDecoder
    var between = AdaptiveRecvByteBufferAllocator()

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        decoder.readBuffer(allocator: allocator, between: between)
    }

    func nextBufferSize() -> Int? { nil }

    mutating func record(actualReadBytes: Int) -> Bool {
        _ = between.record(actualReadBytes: actualReadBytes)
        return true
    }
}
