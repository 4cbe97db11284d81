import KafkaWire
import NIOCore

/// One request frame: its encoded bytes and the large bytes fields left out of them (record batches),
/// which go to the socket as they are.
struct RequestFrame: Sendable {
    var encoded: ByteBuffer
    var detached: [DetachedBytes]
}

/// Writes a request frame as consecutive buffers in one pipeline pass, so no other request's bytes can
/// come between its pieces and NIO gathers them into one writev.
final class RequestFrameWriter: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = RequestFrame
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        var encoded = frame.encoded
        for piece in frame.detached {
            context.write(wrapOutboundOut(encoded.readSlice(length: piece.writerIndex - encoded.readerIndex)!), promise: nil)
            context.write(wrapOutboundOut(piece.bytes), promise: nil)
        }
        context.write(wrapOutboundOut(encoded), promise: promise)
    }
}
