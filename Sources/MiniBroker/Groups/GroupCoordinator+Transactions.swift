import KafkaLog
import KafkaWire
import NIOCore

// The group coordinator's part in transactions: TxnOffsetCommit writes offsets that only count once
// the transaction commits, and the transaction coordinator ends them here.

extension GroupCoordinator {
    func txnOffsetCommit(_ request: TxnOffsetCommitRequest, version: Int16) -> EventLoopFuture<TxnOffsetCommitResponse> {
        onLoop { [self] in
            typealias Partition = TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition
            func everyPartition(_ code: ErrorCode) -> TxnOffsetCommitResponse {
                TxnOffsetCommitResponse(throttleTimeMs: 0, topics: request.topics.map { t in
                    .init(name: t.name, partitions: t.partitions.map { Partition(partitionIndex: $0.partitionIndex, errorCode: code.rawValue) })
                })
            }
            guard !request.groupId.isEmpty, ByteBuffer.fitsKafkaString(request.groupId) else {
                return loop.makeSucceededFuture(everyPartition(.invalidGroupId))
            }
            guard request.producerId >= 0, request.producerEpoch >= 0 else {
                return loop.makeSucceededFuture(everyPartition(.invalidProducerIdMapping))
            }
            // v3+ names the member: a zombie of an older generation is fenced (KIP-447). Without a
            // member the commit is not checked against the group, as in older versions.
            if !request.memberId.isEmpty || request.generationId >= 0,
               let error = validateMember(group: request.groupId, memberId: request.memberId, instanceId: request.groupInstanceId,
                                          generationOrEpoch: request.generationId, isCommit: true) {
                logger.debug("TxnOffsetCommit refused", metadata: ["group": "\(request.groupId)", "member": "\(request.memberId)",
                                                                   "generation": "\(request.generationId)", "error": "\(error)"])
                return loop.makeSucceededFuture(everyPartition(error))
            }
            let timestamp = now()
            var entries = CommitEntries()
            let topics = request.topics.map { t -> TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic in
                .init(name: t.name, partitions: t.partitions.map { p -> Partition in
                    let code = entries.add(t.name, p.partitionIndex, CommittedOffset(offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch,
                                                                                     metadata: p.committedMetadata, commitTimestamp: timestamp),
                                           topics: broker.topics)
                    return Partition(partitionIndex: p.partitionIndex, errorCode: code.rawValue)
                })
            }
            guard OffsetStore.recordBytes(group: request.groupId, entries.list) <= OffsetStore.maxCommitBytes else {
                return loop.makeSucceededFuture(everyPartition(.invalidCommitOffsetSize))
            }
            do {
                try offsets.commitTransactional(group: request.groupId, entries.list, producerId: request.producerId,
                                                producerEpoch: request.producerEpoch, nowMs: timestamp)
            } catch let error as AppendError {
                // An older epoch than the one the offsets log knows: a fenced producer.
                if case .producer(.invalidProducerEpoch) = error {
                    return loop.makeSucceededFuture(everyPartition(version >= 2 ? .producerFenced : .invalidProducerEpoch))
                }
                logger.error("committing transactional offsets of \(request.groupId) failed: \(error)")
                return loop.makeSucceededFuture(everyPartition(.kafkaStorageError))
            } catch {
                logger.error("committing transactional offsets of \(request.groupId) failed: \(error)")
                return loop.makeSucceededFuture(everyPartition(.kafkaStorageError))
            }
            return loop.makeSucceededFuture(TxnOffsetCommitResponse(throttleTimeMs: 0, topics: topics))
        }
    }

    /// Writes the transaction's marker to the offsets log and, on commit, makes its offsets the
    /// groups' committed ones (the transaction coordinator's EndTxn).
    func completeTransaction(producerId: Int64, producerEpoch: Int16, commit: Bool) -> EventLoopFuture<Void> {
        onLoop { [self] in
            try offsets.completeTransaction(producerId: producerId, producerEpoch: producerEpoch, commit: commit, nowMs: now())
            return loop.makeSucceededVoidFuture()
        }
    }
}
