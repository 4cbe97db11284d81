import KafkaWire
import NIOCore

/// A frame that breaks the rules: the connection is closed, as Kafka closes it.
public struct InvalidFrame: Error, CustomStringConvertible {
    public let description: String
}

/// Splits the byte stream into size-prefixed request frames (`FrameSplitter`: no copy for frames
/// whole inside one read). A size above `socket.request.max.bytes` (or negative) is refused before
/// any of the body is read or buffered.
public final class KafkaFrameDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    private var splitter: FrameSplitter

    public init(maxFrameSize: Int) {
        splitter = FrameSplitter(validSizes: 0...maxFrameSize) { size in
            InvalidFrame(description: "frame size \(size) is outside 0...\(maxFrameSize) (socket.request.max.bytes)")
        }
    }

    private var delivering = false

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var failure: Error?
        do { try splitter.append(unwrapInboundIn(data)) } catch { failure = error }
        // The connection handler may make the channel read again from inside fireChannelRead: that
        // read only queues its frames, and this loop hands them on in order.
        guard !delivering else { return }
        delivering = true
        while let frame = splitter.nextFrame() { context.fireChannelRead(wrapInboundOut(frame)) }
        delivering = false
        if let failure { context.fireErrorCaught(failure) }
    }
}
