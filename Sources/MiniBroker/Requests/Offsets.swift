import KafkaLog
import KafkaWire

// ListOffsets, DeleteRecords, OffsetForLeaderEpoch, InitProducerId: questions about offsets and
// producer identity. The leader epoch of every partition is 0 on a single node.

extension RequestDispatcher {
    func listOffsets(_ request: ListOffsetsRequest, version: Int16, context: RequestContext = RequestContext()) -> ListOffsetsResponse {
        typealias Result = ListOffsetsResponse.ListOffsetsPartitionResponse
        func answer(_ index: Int32, _ code: ErrorCode, offset: Int64 = -1, timestamp: Int64 = -1, epoch: Int32 = -1) -> Result {
            Result(partitionIndex: index, errorCode: code.rawValue, timestamp: timestamp, offset: offset, leaderEpoch: epoch)
        }
        let topics = request.topics.map { topic in
            let describable = permits(context, .describe, .topic, topic.name)
            return ListOffsetsResponse.ListOffsetsTopicResponse(name: topic.name, partitions: topic.partitions.map { p -> Result in
                guard describable else { return answer(p.partitionIndex, .topicAuthorizationFailed) }
                guard let log = broker.topics.log(topic.name, p.partitionIndex) else { return answer(p.partitionIndex, .unknownTopicOrPartition) }
                if p.currentLeaderEpoch > 0 { return answer(p.partitionIndex, .unknownLeaderEpoch) }
                // read_committed sees up to the last stable offset, read_uncommitted up to the high watermark.
                let end = request.isolationLevel == 1 ? min(log.lastStableOffset, log.logEndOffset) : log.logEndOffset
                switch p.timestamp {
                case -1:  // latest
                    return answer(p.partitionIndex, .noError, offset: end, epoch: 0)
                case -2, -4:  // earliest, earliest local: the log start offset
                    return answer(p.partitionIndex, .noError, offset: log.logStartOffset, epoch: 0)
                case -3 where version >= 7:  // the record with the largest timestamp (KIP-734)
                    do {
                        guard let max = try log.maxTimestampOffset() else { return answer(p.partitionIndex, .noError) }
                        return answer(p.partitionIndex, .noError, offset: max.offset, timestamp: max.timestamp, epoch: 0)
                    } catch {
                        return answer(p.partitionIndex, .kafkaStorageError)
                    }
                case -5 where version >= 9:  // latest tiered: nothing is tiered here
                    return answer(p.partitionIndex, .noError)
                case let t where t < 0:
                    return answer(p.partitionIndex, .unsupportedVersion)
                default:
                    do {
                        guard let found = try log.offset(forTimestamp: p.timestamp), found.offset < end else {
                            return answer(p.partitionIndex, .noError)
                        }
                        return answer(p.partitionIndex, .noError, offset: found.offset, timestamp: found.timestamp, epoch: 0)
                    } catch {
                        logger.error("time index lookup in \(topic.name)-\(p.partitionIndex) failed: \(error)")
                        return answer(p.partitionIndex, .kafkaStorageError)
                    }
                }
            })
        }
        return ListOffsetsResponse(throttleTimeMs: 0, topics: topics)
    }

    func deleteRecords(_ request: DeleteRecordsRequest, context: RequestContext = RequestContext()) -> DeleteRecordsResponse {
        typealias Result = DeleteRecordsResponse.DeleteRecordsPartitionResult
        let topics = request.topics.map { topic in
            let deletable = permits(context, .delete, .topic, topic.name)
            return DeleteRecordsResponse.DeleteRecordsTopicResult(name: topic.name, partitions: topic.partitions.map { p -> Result in
                guard deletable else { return Result(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: ErrorCode.topicAuthorizationFailed.rawValue) }
                guard let log = broker.topics.log(topic.name, p.partitionIndex) else {
                    return Result(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: ErrorCode.unknownTopicOrPartition.rawValue)
                }
                // Truncating an internal topic would drop the broker's own state (every group's offsets).
                if TopicRegistry.isInternal(topic.name) {
                    return Result(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: ErrorCode.invalidTopicException.rawValue)
                }
                let end = log.logEndOffset
                // -1 means "up to the high watermark"; other negatives and offsets past it are out of range.
                let target = p.offset == -1 ? end : p.offset
                guard target >= 0, target <= end else {
                    return Result(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: ErrorCode.offsetOutOfRange.rawValue)
                }
                do {
                    let start = try log.deleteRecords(before: target)
                    logger.info("log start offset moved by DeleteRecords", metadata: ["partition": "\(topic.name)-\(p.partitionIndex)", "logStartOffset": "\(start)"])
                    return Result(partitionIndex: p.partitionIndex, lowWatermark: start, errorCode: 0)
                } catch {
                    logger.error("DeleteRecords on \(topic.name)-\(p.partitionIndex) failed: \(error)")
                    return Result(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: ErrorCode.kafkaStorageError.rawValue)
                }
            })
        }
        do { try broker.logs.checkpoint() } catch { logger.error("writing checkpoints failed: \(error)") }
        return DeleteRecordsResponse(throttleTimeMs: 0, topics: topics)
    }

    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest, context: RequestContext = RequestContext()) -> OffsetForLeaderEpochResponse {
        typealias Result = OffsetForLeaderEpochResponse.EpochEndOffset
        let topics = request.topics.map { topic in
            let describable = permits(context, .describe, .topic, topic.topic)
            return OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(topic: topic.topic, partitions: topic.partitions.map { p -> Result in
                guard describable else {
                    return Result(errorCode: ErrorCode.topicAuthorizationFailed.rawValue, partition: p.partition, leaderEpoch: -1, endOffset: -1)
                }
                guard let log = broker.topics.log(topic.topic, p.partition) else {
                    return Result(errorCode: ErrorCode.unknownTopicOrPartition.rawValue, partition: p.partition, leaderEpoch: -1, endOffset: -1)
                }
                if p.currentLeaderEpoch > 0 {
                    return Result(errorCode: ErrorCode.unknownLeaderEpoch.rawValue, partition: p.partition, leaderEpoch: -1, endOffset: -1)
                }
                if p.currentLeaderEpoch < -1 {
                    return Result(errorCode: ErrorCode.fencedLeaderEpoch.rawValue, partition: p.partition, leaderEpoch: -1, endOffset: -1)
                }
                // Epoch 0 has always been the only one: it ends at the log end; any other epoch is unknown.
                guard p.leaderEpoch == 0 else { return Result(errorCode: 0, partition: p.partition, leaderEpoch: -1, endOffset: -1) }
                return Result(errorCode: 0, partition: p.partition, leaderEpoch: 0, endOffset: log.logEndOffset)
            })
        }
        return OffsetForLeaderEpochResponse(throttleTimeMs: 0, topics: topics)
    }

    func initProducerId(_ request: InitProducerIdRequest, version: Int16, context: RequestContext = RequestContext()) -> InitProducerIdResponse {
        func failure(_ code: ErrorCode) -> InitProducerIdResponse {
            InitProducerIdResponse(throttleTimeMs: 0, errorCode: code.rawValue, producerId: -1, producerEpoch: -1)
        }
        // WRITE on the transactional id; without one, an idempotent producer's right to write.
        if let id = request.transactionalId, !permits(context, .write, .transactionalId, id) { return failure(.transactionalIdAuthorizationFailed) }
        if request.transactionalId == nil, !permitsIdempotentWrite(context) { return failure(.clusterAuthorizationFailed) }
        if let id = request.transactionalId { return initTransactionalProducerId(request, transactionalId: id, version: version) }
        if (request.producerId == -1) != (request.producerEpoch == -1) { return failure(.invalidRequest) }
        do {
            // Idempotent producers always get a fresh id at epoch 0; they bump epochs themselves.
            return InitProducerIdResponse(throttleTimeMs: 0, errorCode: 0, producerId: try broker.producerIds.allocate(), producerEpoch: 0)
        } catch {
            logger.error("allocating a producer id failed: \(error)")
            return failure(.kafkaStorageError)
        }
    }
}
