import KafkaWire

/// A consumer group as ListGroups reports it.
public struct GroupListing: Sendable, Equatable {
    public var groupId: String
    public var protocolType: String
    public var state: String
    public var type: String
}

/// A member of a group and the partitions it was assigned.
public struct GroupMemberDescription: Sendable, Equatable {
    public var memberId: String
    public var groupInstanceId: String?
    public var clientId: String
    public var clientHost: String
    public var assignment: [TopicPartition]
}

/// A group as DescribeGroups reports it.
public struct GroupDescription: Sendable, Equatable {
    public var groupId: String
    public var state: String
    public var protocolType: String
    /// The protocol the group chose (for consumers, the assignor: range, roundrobin, cooperative-sticky...).
    public var assignor: String
    public var members: [GroupMemberDescription]
}

/// Where ListOffsets looks: the log start, the log end, or the first record at or after a time.
public enum OffsetSpec: Sendable, Equatable {
    case earliest
    case latest
    case timestamp(Int64)

    var timestamp: Int64 {
        switch self {
        case .earliest: return -2
        case .latest: return -1
        case .timestamp(let ms): return ms
        }
    }
}

extension KafkaAdminClient {
    /// The coordinator of `group` (FindCoordinator).
    func coordinator(of group: String) async throws -> BrokerConnection {
        try await client.groupCoordinator(of: group).connection
    }

    /// Every group the cluster knows (each broker is asked), sorted by id.
    public func listGroups() async throws -> [GroupListing] {
        let metadata = try await client.refreshMetadata(topics: [])
        var groups: [GroupListing] = []
        for node in metadata.brokers.keys.sorted() {
            let response = try await client.connection(to: node).send(ListGroupsRequest(statesFilter: [], typesFilter: []))
            try Self.check(response.errorCode, nil, "listing groups on broker \(node) failed")
            groups += response.groups.map {
                GroupListing(groupId: $0.groupId, protocolType: $0.protocolType, state: $0.groupState, type: $0.groupType)
            }
        }
        return groups.sorted { $0.groupId < $1.groupId }
    }

    /// A group's state, protocol and members with their assignments (consumer-protocol groups).
    public func describeGroup(_ group: String) async throws -> GroupDescription {
        let response = try await coordinator(of: group).send(DescribeGroupsRequest(groups: [group], includeAuthorizedOperations: false))
        guard let described = response.groups.first else {
            throw KafkaClientError(.protocolViolation, "DescribeGroups answered without group '\(group)'")
        }
        try Self.check(described.errorCode, described.errorMessage, "describing group '\(group)' failed")
        return GroupDescription(groupId: described.groupId, state: described.groupState, protocolType: described.protocolType,
                                assignor: described.protocolData, members: described.members.map { member in
            var bytes = member.memberAssignment
            var assignment: [TopicPartition] = []
            // The consumer protocol's assignment: int16 version, then the message of that version.
            if described.protocolType == "consumer", bytes.readableBytes >= 2, let version = bytes.readInteger(as: Int16.self),
               let decoded = try? ConsumerProtocolAssignment(from: &bytes, version: max(0, min(version, 3))) {
                assignment = decoded.assignedPartitions.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0) } }
                    .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
            }
            return GroupMemberDescription(memberId: member.memberId, groupInstanceId: member.groupInstanceId, clientId: member.clientId,
                                          clientHost: member.clientHost, assignment: assignment)
        })
    }

    /// The group's committed offsets, every partition it committed for.
    public func committedOffsets(_ group: String) async throws -> [TopicPartition: Int64] {
        let connection = try await coordinator(of: group)
        // v10 names topics by id only: the versions before it carry names.
        let version = min(try connection.negotiatedVersion(of: OffsetFetchRequest.self), 9)
        let response = try await connection.send(OffsetFetchRequest(groupId: group, topics: nil,
                                                                    groups: [.init(groupId: group, memberId: nil, memberEpoch: -1, topics: nil)],
                                                                    requireStable: false), version: version)
        var result: [TopicPartition: Int64] = [:]
        if version >= 8 {
            guard let answer = response.groups.first else { throw KafkaClientError(.protocolViolation, "OffsetFetch answered without the group") }
            try Self.check(answer.errorCode, nil, "fetching the offsets of group '\(group)' failed")
            for topic in answer.topics {
                for p in topic.partitions where p.committedOffset >= 0 { result[TopicPartition(topic.name, p.partitionIndex)] = p.committedOffset }
            }
        } else {
            try Self.check(response.errorCode, nil, "fetching the offsets of group '\(group)' failed")
            for topic in response.topics {
                for p in topic.partitions where p.committedOffset >= 0 { result[TopicPartition(topic.name, p.partitionIndex)] = p.committedOffset }
            }
        }
        return result
    }

    /// The offset each partition has at `spec`, asked of each partition's leader.
    public func listOffsets(_ partitions: [TopicPartition], _ spec: OffsetSpec) async throws -> [TopicPartition: Int64] {
        let metadata = try await client.refreshMetadata(topics: Array(Set(partitions.map(\.topic))))
        var byLeader: [Int32: [TopicPartition]] = [:]
        for tp in partitions {
            guard let leader = metadata.topics[tp.topic]?.partitions.first(where: { $0.partition == tp.partition })?.leader else {
                throw KafkaClientError(.broker(.unknownTopicOrPartition), "no partition \(tp)")
            }
            byLeader[leader, default: []].append(tp)
        }
        var result: [TopicPartition: Int64] = [:]
        for (leader, tps) in byLeader {
            let request = ListOffsetsRequest(replicaId: -1, isolationLevel: 0, topics: Dictionary(grouping: tps, by: \.topic).map { topic, entries in
                .init(name: topic, partitions: entries.map { .init(partitionIndex: $0.partition, currentLeaderEpoch: -1, timestamp: spec.timestamp) })
            })
            let response = try await client.connection(to: leader).send(request)
            for topic in response.topics {
                for p in topic.partitions {
                    try Self.check(p.errorCode, nil, "listing offsets of \(topic.name)-\(p.partitionIndex) failed")
                    result[TopicPartition(topic.name, p.partitionIndex)] = p.offset
                }
            }
        }
        return result
    }

    /// Sets the group's committed offsets (the group must have no members, as Kafka requires).
    public func alterGroupOffsets(_ group: String, _ offsets: [TopicPartition: Int64]) async throws {
        let request = OffsetCommitRequest(groupId: group, generationIdOrMemberEpoch: -1, memberId: "", groupInstanceId: nil, retentionTimeMs: -1,
                                          topics: Dictionary(grouping: offsets, by: \.key.topic).map { topic, entries in
            .init(name: topic, partitions: entries.map {
                .init(partitionIndex: $0.key.partition, committedOffset: $0.value, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: "")
            })
        })
        let connection = try await coordinator(of: group)
        // v10 names topics by id only: the versions before it carry names.
        let response = try await connection.send(request, version: min(try connection.negotiatedVersion(of: OffsetCommitRequest.self), 9))
        for topic in response.topics {
            for p in topic.partitions {
                try Self.check(p.errorCode, nil, "setting the offset of \(topic.name)-\(p.partitionIndex) for group '\(group)' failed")
            }
        }
    }

    /// Deletes groups (each must have no members).
    public func deleteGroups(_ groups: [String]) async throws {
        for group in groups {
            let response = try await coordinator(of: group).send(DeleteGroupsRequest(groupsNames: [group]))
            for result in response.results { try Self.check(result.errorCode, nil, "deleting group '\(result.groupId)' failed") }
        }
    }
}
