import KafkaWire
import NIOCore

/// Splits the stream from a broker into response frames (`FrameSplitter`: a frame whole inside one
/// read is a slice of it; one that spans reads is assembled once).
final class ResponseFrameDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var splitter = FrameSplitter(validSizes: 4...Int(Int32.max)) { size in
        KafkaClientError(.protocolViolation, "response frame size \(size)")
    }

    private var delivering = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
