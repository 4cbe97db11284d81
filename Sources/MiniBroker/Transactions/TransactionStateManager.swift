import KafkaLog
import KafkaWire
import Logging
import NIOCore

/// Keeps the transaction coordinator's state durable in the internal topic `__transaction_state`
/// (one partition, compacted as Kafka's): every change of a transactional id appends its whole
/// metadata keyed by the id, a removal a tombstone; start-up replays the log.
///
///     key:   int16 version (0), string transactional id
///     value: int16 version (0), int64 producer id, int64 last producer id, int16 epoch,
///            int16 last epoch, int32 timeout ms, int8 state, int32 topic count, per topic
///            (string name, int32 partition count, int32 partitions...), int64 start, int64 last update
struct TransactionStateManager: Sendable {
    static let topic = "__transaction_state"
    /// Kafka's: compacted, 100 MiB segments.
    static let topicConfigs = ["cleanup.policy": "compact", "segment.bytes": "104857600", "max.message.bytes": "104857600",
                               "message.timestamp.after.max.ms": String(Int64.max)]
    let log: PartitionLog
    let logger: Logger

    /// Every transactional id the log holds. A record that does not decode is skipped with a log
    /// line, as the offsets log does.
    func load() throws -> [String: TransactionMetadata] {
        var loaded: [String: TransactionMetadata] = [:]
        try log.forEachBatch { view, next in
            do {
                for record in try view.records() where record.offset >= next && !view.attributes.isControl {
                    guard var key = record.key, key.readInteger(as: Int16.self) == 0,
                          let id = try? key.readKafkaString(compact: false) else {
                        logger.warning("skipping an undecodable key at offset \(record.offset) of \(Self.topic)")
                        continue
                    }
                    guard let value = record.value else {
                        loaded[id] = nil
                        continue
                    }
                    guard let metadata = Self.decode(id: id, value) else {
                        logger.warning("skipping an undecodable value at offset \(record.offset) of \(Self.topic)")
                        continue
                    }
                    loaded[id] = metadata
                }
            } catch {
                logger.warning("skipping the batch at offsets \(view.baseOffset)-\(view.lastOffset) of \(Self.topic): \(error)")
            }
        }
        return loaded
    }

    /// Appends the id's metadata (nil: its tombstone). Returns whether an fsync fell due.
    func write(_ id: String, _ metadata: TransactionMetadata?, nowMs: Int64) throws -> Bool {
        var key = ByteBuffer()
        key.writeInteger(Int16(0))
        key.writeKafkaString(id, compact: false)
        let record = Record(offset: 0, timestamp: nowMs, key: key, value: metadata.map(Self.encode))
        return try log.append(try RecordBatch(records: [record]).encoded(), nowMs: nowMs).flushDue
    }

    static func encode(_ m: TransactionMetadata) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeInteger(m.producerId)
        value.writeInteger(m.lastProducerId)
        value.writeInteger(m.producerEpoch)
        value.writeInteger(m.lastProducerEpoch)
        value.writeInteger(m.timeoutMs)
        value.writeInteger(m.state.rawValue)
        let topics = m.partitionsByTopic
        value.writeInteger(Int32(topics.count))
        for (topic, partitions) in topics {
            value.writeKafkaString(topic, compact: false)
            value.writeInteger(Int32(partitions.count))
            for p in partitions { value.writeInteger(p) }
        }
        value.writeInteger(m.startTimestamp)
        value.writeInteger(m.lastUpdateTimestamp)
        return value
    }

    /// Counts are checked against the bytes left before anything is sized by them.
    static func decode(id: String, _ bytes: ByteBuffer) -> TransactionMetadata? {
        var value = bytes
        guard value.readInteger(as: Int16.self) == 0, let producerId = value.readInteger(as: Int64.self),
              let lastProducerId = value.readInteger(as: Int64.self), let epoch = value.readInteger(as: Int16.self),
              let lastEpoch = value.readInteger(as: Int16.self), let timeout = value.readInteger(as: Int32.self),
              let rawState = value.readInteger(as: Int8.self), let state = TransactionState(rawValue: rawState),
              let topicCount = value.readInteger(as: Int32.self), topicCount >= 0, Int(topicCount) * 6 <= value.readableBytes else { return nil }
        var partitions: Set<TopicPartition> = []
        for _ in 0..<topicCount {
            guard let topic = try? value.readKafkaString(compact: false), let count = value.readInteger(as: Int32.self),
                  count >= 0, Int(count) * 4 <= value.readableBytes else { return nil }
            for _ in 0..<count {
                guard let p = value.readInteger(as: Int32.self) else { return nil }
                partitions.insert(TopicPartition(topic, p))
            }
        }
        guard let start = value.readInteger(as: Int64.self), let lastUpdate = value.readInteger(as: Int64.self) else { return nil }
        return TransactionMetadata(transactionalId: id, producerId: producerId, lastProducerId: lastProducerId, producerEpoch: epoch,
                                   lastProducerEpoch: lastEpoch, timeoutMs: timeout, state: state, partitions: partitions,
                                   startTimestamp: start, lastUpdateTimestamp: lastUpdate)
    }
}
