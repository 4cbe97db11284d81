import Foundation
import NIOCore

/// What a key, a value or a header value can be given as: `[UInt8]`, `String` (UTF-8), `Data`,
/// `ByteBuffer` (its readable bytes), or a type of yours that says what its bytes are.
public protocol KafkaPayload: Sendable {
    /// The bytes Kafka carries.
    var kafkaBytes: [UInt8] { get }
}

extension Array: KafkaPayload where Element == UInt8 {
    /// The array itself (no copy: arrays are copied on write).
    public var kafkaBytes: [UInt8] { self }
}

extension String: KafkaPayload {
    public var kafkaBytes: [UInt8] { Array(utf8) }
}

extension Substring: KafkaPayload {
    public var kafkaBytes: [UInt8] { Array(utf8) }
}

extension Data: KafkaPayload {
    public var kafkaBytes: [UInt8] { Array(self) }
}

extension ByteBuffer: KafkaPayload {
    public var kafkaBytes: [UInt8] { Array(readableBytesView) }
}

extension ProducerRecord {
    /// A record with a key and a value of any payload type: `ProducerRecord(topic: "orders", key: "id-1", value: json)`.
    public init(topic: String, partition: Int32? = nil, key: some KafkaPayload, value: some KafkaPayload,
                headers: [(String, [UInt8]?)] = [], timestamp: Int64? = nil) {
        // Optionals, so that the stored-bytes initializer is the one called (not this one again).
        self.init(topic: topic, partition: partition, key: Optional(key.kafkaBytes), value: Optional(value.kafkaBytes),
                  headers: headers, timestamp: timestamp)
    }

    /// A record without a key.
    public init(topic: String, partition: Int32? = nil, value: some KafkaPayload, headers: [(String, [UInt8]?)] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: nil, value: Optional(value.kafkaBytes), headers: headers, timestamp: timestamp)
    }
}
