import NIOCore

/// A frame that breaks the rules: the connection is closed, as Kafka closes it.
public struct InvalidFrame: Error, CustomStringConvertible {
    public let description: String
}

/// Splits the byte stream into size-prefixed request frames. A size above `socket.request.max.bytes`
/// (or negative) is refused before any of the body is read or buffered.
public struct KafkaFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    public let maxFrameSize: Int

    public init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard size >= 0, Int(size) <= maxFrameSize else {
            throw InvalidFrame(description: "frame size \(size) is outside 0...\(maxFrameSize) (socket.request.max.bytes)")
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}
