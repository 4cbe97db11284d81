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
    /// Bytes to reserve for the encoded request: a frame that grows by doubling copies itself each time.
    var encodedSizeHint: Int { get }
}

extension KafkaRequest {
    public var encodedSizeHint: Int { 256 }
}

extension ProduceRequest {
    /// The record batches dominate a produce request.
    public var encodedSizeHint: Int {
        var size = 256
        for topic in topicData {
            size += 64 + topic.name.utf8.count
            for partition in topic.partitionData { size += 32 + (partition.records?.readableBytes ?? 0) }
        }
        return size
    }
}

public protocol KafkaResponse: KafkaMessage {
    static var apiKey: ApiKey { get }
}
