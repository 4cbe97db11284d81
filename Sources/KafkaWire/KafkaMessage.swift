import NIOCore

/// A struct of the Kafka protocol (a message or one of its nested structs) that reads and writes
/// itself for a given message version. The version is the enclosing message's.
public protocol KafkaProtocolStruct: Sendable, Equatable {
    init(from buffer: inout ByteBuffer, version: Int16) throws
    func write(into buffer: inout ByteBuffer, version: Int16)
}

/// A top-level message of the specs: a request, a response, a header or a data type.
public protocol KafkaMessage: KafkaProtocolStruct {
    /// The spec's name, e.g. "ProduceRequest".
    static var messageName: String { get }
    static var validVersions: ClosedRange<Int16> { get }
    /// The first flexible version (compact encodings and tagged fields), nil when none is.
    static var firstFlexibleVersion: Int16? { get }
}

extension KafkaMessage {
    public static func isFlexible(_ version: Int16) -> Bool {
        guard let first = firstFlexibleVersion else { return false }
        return version >= first
    }

    /// Decodes a whole message body, checking the version first.
    public static func decode(_ bytes: ByteBuffer, version: Int16) throws -> Self {
        guard validVersions.contains(version) else {
            throw KafkaWireError(.unsupportedVersion, "\(messageName) has no version \(version)")
        }
        var buffer = bytes
        return try Self(from: &buffer, version: version)
    }

    /// Encodes the message body into a new buffer.
    public func encoded(version: Int16) -> ByteBuffer {
        var buffer = ByteBuffer()
        write(into: &buffer, version: version)
        return buffer
    }
}

public protocol KafkaRequest: KafkaMessage {
    associatedtype Response: KafkaResponse
    static var apiKey: ApiKey { get }
    /// Bytes to reserve for the request written with `write(into:version:detachingBytesOf:into:)`:
    /// a frame that grows by doubling copies itself each time.
    func encodedSizeHint(detachingBytesOf minimumSize: Int) -> Int
    /// Writes the request as `write(into:version:)` does, except that bytes fields of at least
    /// `minimumSize` bytes may be left out of `buffer` and listed in `detached`, each with the writer
    /// index where it belongs, so a connection can hand them to the socket as they are (a gather write)
    /// rather than copy them into the frame. The generator writes it for requests with a records field
    /// (Produce); for the others the default below detaches nothing.
    func write(into buffer: inout ByteBuffer, version: Int16, detachingBytesOf minimumSize: Int,
               into detached: inout [DetachedBytes])
}

/// A bytes field left out of an encoded request: its bytes belong at `writerIndex` of the buffer the
/// rest of the request was written into.
public struct DetachedBytes: Sendable {
    public var writerIndex: Int
    public var bytes: ByteBuffer

    public init(writerIndex: Int, bytes: ByteBuffer) {
        self.writerIndex = writerIndex
        self.bytes = bytes
    }
}

extension KafkaRequest {
    public func encodedSizeHint(detachingBytesOf minimumSize: Int) -> Int { 256 }

    public func write(into buffer: inout ByteBuffer, version: Int16, detachingBytesOf minimumSize: Int,
                      into detached: inout [DetachedBytes]) {
        write(into: &buffer, version: version)
    }
}

public protocol KafkaResponse: KafkaMessage {
    static var apiKey: ApiKey { get }
}
