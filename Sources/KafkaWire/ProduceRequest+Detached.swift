import NIOCore

// A produce request is almost all record batches, already encoded by the producer: written as they are
// (a gather write) they are not copied once more into the request frame.
extension ProduceRequest {
    public func encodedSizeHint(detachingBytesOf minimumSize: Int) -> Int {
        var size = 256
        for topic in topicData {
            size += 64 + topic.name.utf8.count
            for partition in topic.partitionData {
                let records = partition.records?.readableBytes ?? 0
                size += 32 + (records >= minimumSize ? 0 : records)
            }
        }
        return size
    }

    /// Field for field what the generated `write(into:version:)` writes (a test compares the two for every
    /// version), but a partition's records of `minimumSize` bytes or more are left for `detached`.
    public func write(into buffer: inout ByteBuffer, version: Int16, detachingBytesOf minimumSize: Int,
                      into detached: inout [DetachedBytes]) {
        let flexible = version >= 9
        if version >= 3 {
            buffer.writeKafkaNullableString(transactionalId, compact: flexible)
        }
        buffer.writeKafkaInt16(acks)
        buffer.writeKafkaInt32(timeoutMs)
        buffer.writeKafkaArray(topicData, compact: flexible) { buffer, topic in
            if version <= 12 {
                buffer.writeKafkaString(topic.name, compact: flexible)
            }
            if version >= 13 {
                buffer.writeKafkaUUID(topic.topicId)
            }
            buffer.writeKafkaArray(topic.partitionData, compact: flexible) { buffer, partition in
                guard let records = partition.records, records.readableBytes >= minimumSize else {
                    return partition.write(into: &buffer, version: version)
                }
                buffer.writeKafkaInt32(partition.index)
                buffer.writeLength(records.readableBytes, compact: flexible, wide: true)
                detached.append(DetachedBytes(writerIndex: buffer.writerIndex, bytes: records))
                if flexible {
                    buffer.writeTaggedFields(partition.unknownTaggedFields)
                }
            }
            if flexible {
                buffer.writeTaggedFields(topic.unknownTaggedFields)
            }
        }
        if flexible {
            buffer.writeTaggedFields(unknownTaggedFields)
        }
    }
}
