import KafkaWire

// What each API asks of the authorizer, as Kafka's request handlers ask it. Topic-level checks sit in
// the handlers (each refused topic gets TOPIC_AUTHORIZATION_FAILED, the rest are served); whole-request
// checks (a group, a transactional id, the cluster) are made here before the handler runs.

extension RequestDispatcher {
    /// Whether the request's principal may do `operation` on the resource; always, without an authorizer.
    func permits(_ context: RequestContext, _ operation: AclOperation, _ type: AclResourceType, _ name: String) -> Bool {
        broker.authorizer?.authorize(context, operation, type, name) ?? true
    }

    func permitsCluster(_ context: RequestContext, _ operation: AclOperation) -> Bool {
        permits(context, operation, .cluster, AclBinding.clusterName)
    }

    /// CREATE on the cluster, or on the topic itself (Kafka's rule for CreateTopics and auto-creation).
    func permitsCreate(_ context: RequestContext, topic: String) -> Bool {
        broker.authorizer == nil || permitsCluster(context, .create) || permits(context, .create, .topic, topic)
    }

    /// A producer without a transactional id may be idempotent with IDEMPOTENT_WRITE on the cluster or
    /// WRITE on any topic (KIP-679).
    func permitsIdempotentWrite(_ context: RequestContext) -> Bool {
        guard let authorizer = broker.authorizer else { return true }
        return authorizer.authorize(context, .idempotentWrite, .cluster, AclBinding.clusterName)
            || authorizer.authorizeAny(context, .write, .topic)
    }

    /// The answer for a request refused as a whole, or nil to serve it. Group APIs need the group
    /// (READ to take part, DESCRIBE to look, DELETE to remove); transaction APIs the transactional id;
    /// cluster APIs the operation on `kafka-cluster`.
    func refusal(_ apiKey: ApiKey, _ request: any KafkaRequest, context: RequestContext) -> (any KafkaResponse)? {
        guard broker.authorizer != nil else { return nil }
        let group = ErrorCode.groupAuthorizationFailed.rawValue
        let transactional = ErrorCode.transactionalIdAuthorizationFailed.rawValue
        let cluster = ErrorCode.clusterAuthorizationFailed.rawValue
        func groupAllowed(_ op: AclOperation, _ id: String) -> Bool { permits(context, op, .group, id) }
        func txnAllowed(_ op: AclOperation, _ id: String) -> Bool { permits(context, op, .transactionalId, id) }
        switch request {
        case let r as JoinGroupRequest where !groupAllowed(.read, r.groupId):
            return JoinGroupResponse(errorCode: group, generationId: -1, memberId: r.memberId)
        case let r as SyncGroupRequest where !groupAllowed(.read, r.groupId):
            return SyncGroupResponse(errorCode: group)
        case let r as HeartbeatRequest where !groupAllowed(.read, r.groupId):
            return HeartbeatResponse(errorCode: group)
        case let r as LeaveGroupRequest where !groupAllowed(.read, r.groupId):
            return LeaveGroupResponse(errorCode: group)
        case let r as ConsumerGroupHeartbeatRequest where !groupAllowed(.read, r.groupId):
            return ConsumerGroupHeartbeatResponse(errorCode: group, errorMessage: "Group authorization failed.")
        // Subscribing to a topic needs DESCRIBE on it (Kafka 4's rule for the consumer protocol).
        case let r as ConsumerGroupHeartbeatRequest where !Set(r.subscribedTopicNames ?? []).allSatisfy({ permits(context, .describe, .topic, $0) }):
            return ConsumerGroupHeartbeatResponse(errorCode: ErrorCode.topicAuthorizationFailed.rawValue,
                                                  errorMessage: "The member subscribed to topics it is not authorized to describe.")
        case let r as OffsetCommitRequest where !groupAllowed(.read, r.groupId):
            return OffsetCommitResponse(topics: r.topics.map { topic in
                .init(name: topic.name, topicId: topic.topicId, partitions: topic.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: group) })
            })
        case let r as OffsetDeleteRequest where !groupAllowed(.delete, r.groupId):
            return OffsetDeleteResponse(errorCode: group)
        case let r as AddOffsetsToTxnRequest where !txnAllowed(.write, r.transactionalId):
            return AddOffsetsToTxnResponse(errorCode: transactional)
        case let r as AddOffsetsToTxnRequest where !groupAllowed(.read, r.groupId):
            return AddOffsetsToTxnResponse(errorCode: group)
        case let r as EndTxnRequest where !txnAllowed(.write, r.transactionalId):
            return EndTxnResponse(errorCode: transactional)
        case let r as TxnOffsetCommitRequest where !txnAllowed(.write, r.transactionalId) || !groupAllowed(.read, r.groupId):
            let code = txnAllowed(.write, r.transactionalId) ? group : transactional
            return TxnOffsetCommitResponse(topics: r.topics.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code) })
            })
        // Markers are a broker's (CLUSTER_ACTION) or an operator's aborting a hung transaction (ALTER).
        case let r as WriteTxnMarkersRequest where !permitsCluster(context, .clusterAction) && !permitsCluster(context, .alter):
            return WriteTxnMarkersResponse(markers: r.markers.map { marker in
                .init(producerId: marker.producerId, topics: marker.topics.map { topic in
                    .init(name: topic.name, partitions: topic.partitionIndexes.map { .init(partitionIndex: $0, errorCode: cluster) })
                })
            })
        case is DescribeLogDirsRequest where !permitsCluster(context, .describe):
            return DescribeLogDirsResponse(errorCode: cluster)
        case is DescribeQuorumRequest where !permitsCluster(context, .describe):
            return DescribeQuorumResponse(errorCode: cluster, errorMessage: "Cluster authorization failed.")
        case is ListPartitionReassignmentsRequest where !permitsCluster(context, .describe):
            return ListPartitionReassignmentsResponse(errorCode: cluster, errorMessage: "Cluster authorization failed.")
        case is AlterPartitionReassignmentsRequest where !permitsCluster(context, .alter):
            return AlterPartitionReassignmentsResponse(errorCode: cluster, errorMessage: "Cluster authorization failed.")
        case is ElectLeadersRequest where !permitsCluster(context, .alter):
            return ElectLeadersResponse(errorCode: cluster)
        case let r as UpdateFeaturesRequest where !permitsCluster(context, .alter):
            return UpdateFeaturesResponse(errorCode: cluster, errorMessage: "Cluster authorization failed.",
                                          results: r.featureUpdates.map { .init(feature: $0.feature, errorCode: cluster, errorMessage: "Cluster authorization failed.") })
        case is DescribeUserScramCredentialsRequest where !permitsCluster(context, .describe):
            return DescribeUserScramCredentialsResponse(errorCode: cluster, errorMessage: "Cluster authorization failed.")
        case let r as AlterUserScramCredentialsRequest where !permitsCluster(context, .alter):
            var users: [String] = []
            var seen: Set<String> = []
            for name in r.deletions.map(\.name) + r.upsertions.map(\.name) where seen.insert(name).inserted { users.append(name) }
            return AlterUserScramCredentialsResponse(results: users.map { .init(user: $0, errorCode: cluster, errorMessage: "Cluster authorization failed.") })
        case is DescribeClientQuotasRequest where !permitsCluster(context, .describeConfigs):
            return DescribeClientQuotasResponse(errorCode: cluster, errorMessage: "Cluster authorization failed.", entries: nil)
        case let r as AlterClientQuotasRequest where !permitsCluster(context, .alterConfigs):
            return AlterClientQuotasResponse(entries: r.entries.map {
                .init(errorCode: cluster, errorMessage: "Cluster authorization failed.", entity: $0.entity.map { .init(entityType: $0.entityType, entityName: $0.entityName) })
            })
        case is ListConfigResourcesRequest where !permitsCluster(context, .describeConfigs):
            return ListConfigResourcesResponse(errorCode: cluster)
        default:
            return nil
        }
    }
}

/// Each distinct name decided once: a request may name one topic or group thousands of times, and every
/// decision scans the ACLs that apply. Lives within one request's handling, on one thread.
final class Verdicts {
    private var known: [String: Bool] = [:]
    private let decide: (String) -> Bool

    init(_ decide: @escaping (String) -> Bool) { self.decide = decide }

    func callAsFunction(_ name: String) -> Bool {
        if let verdict = known[name] { return verdict }
        let verdict = decide(name)
        known[name] = verdict
        return verdict
    }
}
