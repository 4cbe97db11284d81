import KafkaLog
import KafkaWire

// DescribeQuorum: the KRaft quorum, as a combined single node describes it.

extension RequestDispatcher {
    /// This node is the quorum's one voter and its leader. MiniBroker keeps no `__cluster_metadata`
    /// log (its metadata lives in files beside the partitions), so the offsets of that log are
    /// unknown (-1, as the protocol says for an offset not known). Any other topic or partition is
    /// not hosted (UNKNOWN_TOPIC_OR_PARTITION, Kafka's answer).
    func describeQuorum(_ request: DescribeQuorumRequest, version: Int16, listener: String = "PLAINTEXT") -> DescribeQuorumResponse {
        typealias Partition = DescribeQuorumResponse.PartitionData
        let now = PartitionLog.currentTimeMs()
        let me = broker.brokerId
        let valid = request.topics.count == 1 && request.topics[0].topicName == Self.metadataTopic
            && request.topics[0].partitions.count == 1 && request.topics[0].partitions[0].partitionIndex == 0
        let topics = request.topics.map { t in
            DescribeQuorumResponse.TopicData(topicName: t.topicName, partitions: t.partitions.map { p in
                guard valid else {
                    return Partition(partitionIndex: p.partitionIndex, errorCode: ErrorCode.unknownTopicOrPartition.rawValue,
                                     errorMessage: version >= 2 ? "This server does not host this topic-partition." : nil,
                                     leaderId: -1, leaderEpoch: -1, highWatermark: -1, currentVoters: [], observers: [])
                }
                let voter = DescribeQuorumResponse.ReplicaState(replicaId: me, replicaDirectoryId: .zero, logEndOffset: -1,
                                                                lastFetchTimestamp: now, lastCaughtUpTimestamp: now)
                return Partition(partitionIndex: 0, errorCode: 0, errorMessage: nil, leaderId: me, leaderEpoch: 1, highWatermark: -1,
                                 currentVoters: [voter], observers: [])
            })
        }
        let advertised = broker.advertised(for: listener)
        let nodes = valid ? [DescribeQuorumResponse.Node(nodeId: me, listeners: [
            .init(name: advertised.name, host: advertised.host, port: UInt16(clamping: advertised.port)),
        ])] : []
        return DescribeQuorumResponse(errorCode: 0, errorMessage: nil, topics: topics, nodes: nodes)
    }

    static let metadataTopic = "__cluster_metadata"
}
