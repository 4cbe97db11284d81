import KafkaWire

// KIP-430: what a principal may do with a topic, a group or the cluster, as a bit field (bit n set:
// AclOperation n allowed), for the clients that ask (Metadata, DescribeCluster, DescribeGroups,
// ConsumerGroupDescribe, DescribeTopicPartitions). Not asked: Int32.min, Kafka's "not provided".

extension RequestDispatcher {
    /// The operations each resource type has, as Kafka lists them (`AclEntry.supportedOperations`).
    static let supportedOperations: [AclResourceType: [AclOperation]] = [
        .topic: [.read, .write, .create, .delete, .alter, .describe, .describeConfigs, .alterConfigs],
        .group: [.read, .describe, .delete],
        .cluster: [.create, .alter, .describe, .clusterAction, .describeConfigs, .alterConfigs, .idempotentWrite],
    ]

    static let operationsNotProvided = Int32.min

    /// The bit field of what the principal may do with the resource; everything it has without an authorizer.
    func authorizedOperations(_ context: RequestContext, _ type: AclResourceType, _ name: String) -> Int32 {
        (Self.supportedOperations[type] ?? []).reduce(Int32(0)) { field, operation in
            permits(context, operation, type, name) ? field | Int32(1) << Int32(operation.rawValue) : field
        }
    }

    /// `include` asked for the field: computed; otherwise Kafka's "not provided".
    func authorizedOperations(if include: Bool, _ context: RequestContext, _ type: AclResourceType, _ name: String) -> Int32 {
        include ? authorizedOperations(context, type, name) : Self.operationsNotProvided
    }
}
