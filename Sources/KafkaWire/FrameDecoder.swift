import NIOCore

/// `FrameSplitter` as a channel handler: byte chunks in, size-prefixed frames out (bytes only; the
/// channel below it does the reading). The client's response path and the broker's request path
/// each put one first in their pipeline.
public final class FrameDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    private var splitter: FrameSplitter
    private var delivering = false

    public init(_ splitter: FrameSplitter) {
        self.splitter = splitter
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
}
