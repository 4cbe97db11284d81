import KafkaWire

/// A frame that breaks the rules: the connection is closed, as Kafka closes it.
public struct InvalidFrame: Error, CustomStringConvertible {
    public let description: String
}

extension FrameDecoder {
    /// Splits a connection's bytes into request frames. A size above `socket.request.max.bytes` (or
    /// negative) is refused before any of the body is read or buffered. Produce requests run to a
    /// megabyte: read in place, not copied (unless TLS decrypts them first).
    static func requests(maxFrameSize: Int, readsInPlace: Bool = true) -> FrameDecoder {
        FrameDecoder(FrameSplitter(validSizes: 0...maxFrameSize) { size in
            InvalidFrame(description: "frame size \(size) is outside 0...\(maxFrameSize) (socket.request.max.bytes)")
        }, readsInPlace: readsInPlace)
    }
}
