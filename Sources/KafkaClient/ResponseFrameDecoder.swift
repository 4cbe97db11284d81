import NIOCore

/// Splits the stream into size-prefixed response frames. A frame that arrives whole inside one read
/// is passed on as a slice of that read (no copy); one that spans reads is assembled once, in a buffer
/// sized for it. (NIO's ByteToMessageHandler appends every read to one accumulating buffer, which is
/// copied again whenever a frame handed out — kept alive by the records that point into it — shares
/// its storage: for 10 KB records that copying took a quarter of the consumer's CPU.)
final class ResponseFrameDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The frame being assembled, size prefix included.
    private var partial: ByteBuffer?
    /// Beyond this a frame's buffer is not reserved up front (a broken peer's length must not allocate gigabytes).
    static let largestReservation = 64 << 20

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        do {
            if partial != nil {
                guard let frame = try continueFrame(with: &chunk, allocator: context.channel.allocator) else { return }
                context.fireChannelRead(wrapInboundOut(frame))
            }
            while let size = try Self.frameSize(chunk), chunk.readableBytes >= 4 + size {
                chunk.moveReaderIndex(forwardBy: 4)
                context.fireChannelRead(wrapInboundOut(chunk.readSlice(length: size)!))
            }
            if chunk.readableBytes > 0 {
                let size = try Self.frameSize(chunk)
                var frame = context.channel.allocator.buffer(capacity: size.map { Swift.min(4 + $0, Self.largestReservation) } ?? 4)
                frame.writeBuffer(&chunk)
                partial = frame
            }
        } catch {
            partial = nil
            context.fireErrorCaught(error)
        }
    }

    /// Adds the start of `chunk` to the frame being assembled; returns the frame once complete.
    private func continueFrame(with chunk: inout ByteBuffer, allocator: ByteBufferAllocator) throws -> ByteBuffer? {
        var frame = partial!
        partial = nil
        if frame.readableBytes < 4 {
            var prefix = chunk.readSlice(length: Swift.min(4 - frame.readableBytes, chunk.readableBytes))!
            frame.writeBuffer(&prefix)
            guard let size = try Self.frameSize(frame) else {
                partial = frame
                return nil
            }
            frame.reserveCapacity(minimumWritableBytes: Swift.min(4 + size, Self.largestReservation) - frame.readableBytes)
        }
        let total = 4 + (try Self.frameSize(frame)!)
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
    private static func frameSize(_ buffer: ByteBuffer) throws -> Int? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard size >= 4 else { throw KafkaClientError(.protocolViolation, "response frame size \(size)") }
        return Int(size)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partial = nil
        context.fireChannelInactive()
    }
}
