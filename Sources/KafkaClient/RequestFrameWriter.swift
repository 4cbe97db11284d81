import KafkaWire
import NIOCore

/// One request frame: its encoded bytes and the large bytes fields left out of them (record batches),
/// which go to the socket as they are.
struct RequestFrame: Sendable {
    var encoded: ByteBuffer
    var detached: [DetachedBytes]
}

extension RequestFrame {
    /// `request` with its header and size prefix; the prefix counts the detached bytes too.
    init<R: KafkaRequest>(_ request: R, version: Int16, correlationId: Int32, clientId: String,
                          allocator: ByteBufferAllocator, minimumDetachedSize: Int) {
        encoded = allocator.buffer(capacity: request.encodedSizeHint(detachingBytesOf: minimumDetachedSize))
        detached = []
        encoded.writeInteger(Int32(0))
        RequestHeader(requestApiKey: R.apiKey.rawValue, requestApiVersion: version, correlationId: correlationId, clientId: clientId)
            .write(into: &encoded, version: R.apiKey.requestHeaderVersion(version))
        request.write(into: &encoded, version: version, detachingBytesOf: minimumDetachedSize, into: &detached)
        let size = encoded.readableBytes - 4 + detached.reduce(0) { $0 + $1.bytes.readableBytes }
        encoded.setInteger(Int32(size), at: encoded.readerIndex)
    }
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
