import KafkaLog
import KafkaWire

// ElectLeaders, ListPartitionReassignments and AlterPartitionReassignments: replica management,
// answered as Kafka's controller answers for partitions whose one replica is this node.

extension RequestDispatcher {
    /// Every existing partition already has its preferred (and only) replica as leader:
    /// ELECTION_NOT_NEEDED, for preferred and unclean elections alike. A null list asks for every
    /// partition: Kafka then leaves out those that needed no election, so each topic comes back
    /// with none.
    func electLeaders(_ request: ElectLeadersRequest, version: Int16) -> ElectLeadersResponse {
        typealias Result = ElectLeadersResponse.ReplicaElectionResult
        guard version == 0 || request.electionType == 0 || request.electionType == 1 else {
            let code = ErrorCode.invalidRequest.rawValue, message = "Unknown election type \(request.electionType)"
            return ElectLeadersResponse(throttleTimeMs: 0, errorCode: code, replicaElectionResults: (request.topicPartitions ?? []).map { t in
                Result(topic: t.topic, partitionResult: t.partitions.map { .init(partitionId: $0, errorCode: code, errorMessage: message) })
            })
        }
        guard let wanted = request.topicPartitions else {
            return ElectLeadersResponse(throttleTimeMs: 0, errorCode: 0,
                                        replicaElectionResults: broker.topics.all.map { Result(topic: $0.name, partitionResult: []) })
        }
        return ElectLeadersResponse(throttleTimeMs: 0, errorCode: 0, replicaElectionResults: wanted.map { t in
            let topic = broker.topics.topic(t.topic)
            return Result(topic: t.topic, partitionResult: t.partitions.map { p in
                guard let topic else {
                    return .init(partitionId: p, errorCode: ErrorCode.unknownTopicOrPartition.rawValue, errorMessage: "No such topic as \(t.topic)")
                }
                guard p >= 0, p < topic.partitionCount else {
                    return .init(partitionId: p, errorCode: ErrorCode.unknownTopicOrPartition.rawValue, errorMessage: "No such partition as \(t.topic)-\(p)")
                }
                return .init(partitionId: p, errorCode: ErrorCode.electionNotNeeded.rawValue,
                             errorMessage: "Leader election not needed for topic partition.")
            })
        })
    }

    /// No reassignment is ever in progress on a single node: nothing to list, for any request.
    func listPartitionReassignments(_ request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
        ListPartitionReassignmentsResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil, topics: [])
    }

    /// A partition can only be assigned to this node: that assignment (the current one) succeeds;
    /// any other broker is not registered (INVALID_REPLICA_ASSIGNMENT, Kafka's messages); a
    /// cancellation finds nothing in progress.
    func alterPartitionReassignments(_ request: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
        let me = broker.brokerId
        let responses = request.topics.map { t in
            let topic = broker.topics.topic(t.name)
            return AlterPartitionReassignmentsResponse.ReassignableTopicResponse(name: t.name, partitions: t.partitions.map { p in
                func answer(_ code: ErrorCode, _ message: String?) -> AlterPartitionReassignmentsResponse.ReassignablePartitionResponse {
                    .init(partitionIndex: p.partitionIndex, errorCode: code.rawValue, errorMessage: message)
                }
                guard let topic else { return answer(.unknownTopicOrPartition, "Unable to find a topic named \(t.name).") }
                guard p.partitionIndex >= 0, p.partitionIndex < topic.partitionCount else {
                    return answer(.unknownTopicOrPartition, "Unable to find partition \(t.name):\(p.partitionIndex).")
                }
                guard let replicas = p.replicas else { return answer(.noReassignmentInProgress, nil) }
                guard !replicas.isEmpty else {
                    return answer(.invalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
                }
                var seen: Set<Int32> = []
                for replica in replicas {
                    guard seen.insert(replica).inserted else {
                        return answer(.invalidReplicaAssignment, "The manual partition assignment includes the broker \(replica) more than once.")
                    }
                    guard replica == me else {
                        return answer(.invalidReplicaAssignment,
                                      "The manual partition assignment includes broker \(replica), but no such broker is registered.")
                    }
                }
                return answer(.noError, nil)
            })
        }
        return AlterPartitionReassignmentsResponse(throttleTimeMs: 0, allowReplicationFactorChange: request.allowReplicationFactorChange,
                                                   errorCode: 0, errorMessage: nil, responses: responses)
    }
}
