import NIOCore

/// The control record that ends a transaction in a partition (COMMIT or ABORT), alone in a control
/// batch carrying the producer's id and epoch:
///
///     key:   int16 version (0), int16 type (0 abort, 1 commit)
///     value: int16 version (0), int32 coordinator epoch
public struct EndTransactionMarker: Equatable, Sendable {
    public enum Kind: Int16, Sendable {
        case abort = 0
        case commit = 1
    }

    public var kind: Kind
    public var coordinatorEpoch: Int32

    public init(_ kind: Kind, coordinatorEpoch: Int32 = 0) {
        self.kind = kind
        self.coordinatorEpoch = coordinatorEpoch
    }

    /// The marker's control batch, at base offset 0 as a client's batch is (the log gives the offset).
    public func batch(producerId: Int64, producerEpoch: Int16, timestamp: Int64) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(Int16(0))
        key.writeInteger(kind.rawValue)
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeInteger(coordinatorEpoch)
        let batch = RecordBatch(isTransactional: true, isControl: true, producerId: producerId, producerEpoch: producerEpoch,
                                records: [Record(offset: 0, timestamp: timestamp, key: key, value: value)])
        var bytes = ByteBuffer()
        // An uncompressed batch of one record cannot fail to encode.
        try? batch.write(into: &bytes)
        return bytes
    }

    /// The marker a control batch holds; nil for another control record (or none that decodes).
    public init?(controlBatch view: RecordBatchView) {
        guard view.attributes.isControl, let record = try? view.records().first, var key = record.key,
              key.readInteger(as: Int16.self) == 0, let type = key.readInteger(as: Int16.self),
              let kind = Kind(rawValue: type) else { return nil }
        var value = record.value
        _ = value?.readInteger(as: Int16.self)
        self.init(kind, coordinatorEpoch: value?.readInteger(as: Int32.self) ?? -1)
    }
}
