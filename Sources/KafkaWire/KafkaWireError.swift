/// Everything the codec can reject. Decoding never trusts a length from the wire: each failure is one
/// of these, thrown, never a trap or an allocation of a claimed size.
public struct KafkaWireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The buffer ended before a value did.
        case truncated
        /// A length or count is negative (where null is not allowed) or larger than what follows.
        case invalidLength
        /// A varint ran past its maximum width.
        case malformedVarint
        /// A string's bytes are not valid UTF-8.
        case invalidUTF8
        /// The API key is not one the codec knows.
        case unknownApiKey
        /// The version is outside the message's valid range.
        case unsupportedVersion
        /// A record batch (header, CRC, magic or records) is malformed.
        case corruptRecordBatch
        /// Magic 0 and 1 message sets: Kafka 4 removed them.
        case unsupportedMagic
        /// A compression codec failed or is unknown.
        case compression
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    @usableFromInline
    static func truncated(_ needed: Int, _ available: Int) -> KafkaWireError {
        KafkaWireError(.truncated, "needed \(needed) bytes, \(available) left")
    }
}
