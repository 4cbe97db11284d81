import KafkaLog
import KafkaWire

// DescribeProducers: the idempotent producers each partition knows.

extension RequestDispatcher {
    /// Each requested partition's producers with their epoch, last sequence, last timestamp, the
    /// first offset of the transaction they have open there (-1 without one) and the coordinator
    /// epoch of their last marker.
    func describeProducers(_ request: DescribeProducersRequest) -> DescribeProducersResponse {
        DescribeProducersResponse(throttleTimeMs: 0, topics: request.topics.map { t in
            let problem = TopicRegistry.nameProblem(t.name)
            return .init(name: t.name, partitions: t.partitionIndexes.map { p in
                if let problem {
                    return .init(partitionIndex: p, errorCode: ErrorCode.invalidTopicException.rawValue, errorMessage: problem, activeProducers: [])
                }
                guard broker.topics.topic(t.name) != nil else {
                    return .init(partitionIndex: p, errorCode: ErrorCode.unknownTopicOrPartition.rawValue,
                                 errorMessage: "This server does not host this topic-partition.", activeProducers: [])
                }
                guard let log = broker.topics.log(t.name, p) else {
                    return .init(partitionIndex: p, errorCode: ErrorCode.unknownTopicOrPartition.rawValue, errorMessage: nil, activeProducers: [])
                }
                let producers = log.producers.sorted { $0.key < $1.key }.map { id, entry in
                    DescribeProducersResponse.ProducerState(producerId: id, producerEpoch: Int32(entry.producerEpoch),
                                                            lastSequence: entry.lastSequence, lastTimestamp: entry.lastTimestamp,
                                                            coordinatorEpoch: entry.coordinatorEpoch,
                                                            currentTxnStartOffset: entry.currentTxnFirstOffset)
                }
                return .init(partitionIndex: p, errorCode: 0, errorMessage: nil, activeProducers: producers)
            })
        })
    }
}
