import KafkaLog
import KafkaWire
import NIOCore

// OffsetCommit, OffsetFetch, OffsetDelete and the group admin APIs (DescribeGroups, ListGroups,
// DeleteGroups).

extension GroupCoordinator {
    /// Whether a commit or fetch by this member at this generation (classic) or epoch (consumer) is
    /// allowed; the error otherwise.
    func validateMember(group groupId: String, memberId: String, instanceId: String?, generationOrEpoch: Int32,
                        isCommit: Bool) -> ErrorCode? {
        if let consumer = consumerGroups[groupId], !consumer.members.isEmpty || memberId != "" {
            if generationOrEpoch < 0 && memberId.isEmpty {
                return consumer.members.isEmpty || !isCommit ? nil : .unknownMemberId
            }
            guard let member = consumer.members[memberId] else { return .unknownMemberId }
            return generationOrEpoch == member.memberEpoch ? nil : .staleMemberEpoch
        }
        guard let group = classicGroups[groupId], !group.isEmpty else {
            // No active group: "simple" commits (generation -1, no member) are accepted; a member id
            // is unknown, and a generation refers to one that does not exist.
            if !isCommit || (generationOrEpoch < 0 && memberId.isEmpty) { return nil }
            return memberId.isEmpty ? .illegalGeneration : .unknownMemberId
        }
        if generationOrEpoch < 0 && memberId.isEmpty { return isCommit ? .unknownMemberId : nil }
        guard let member = group.members[memberId] else { return .unknownMemberId }
        if let instance = instanceId, group.staticMembers[instance] != memberId { return .fencedInstanceId }
        guard generationOrEpoch == group.generationId else { return .illegalGeneration }
        if isCommit && group.state == .completingRebalance { return .rebalanceInProgress }
        member.lastHeartbeat = .now()
        return nil
    }

    func offsetCommit(_ request: OffsetCommitRequest, version: Int16) -> EventLoopFuture<OffsetCommitResponse> {
        onLoop { [self] in
            typealias Partition = OffsetCommitResponse.OffsetCommitResponsePartition
            func everyPartition(_ code: ErrorCode) -> OffsetCommitResponse {
                OffsetCommitResponse(throttleTimeMs: 0, topics: request.topics.map { t in
                    .init(name: t.name, topicId: t.topicId, partitions: t.partitions.map { Partition(partitionIndex: $0.partitionIndex, errorCode: code.rawValue) })
                })
            }
            guard !request.groupId.isEmpty else { return loop.makeSucceededFuture(everyPartition(.invalidGroupId)) }
            // The group id goes into every record key with an int16 length: a longer one would wrap
            // and, read back, name another group.
            guard ByteBuffer.fitsKafkaString(request.groupId) else {
                return loop.makeSucceededFuture(everyPartition(.invalidGroupId))
            }
            if let error = validateMember(group: request.groupId, memberId: request.memberId, instanceId: request.groupInstanceId,
                                          generationOrEpoch: request.generationIdOrMemberEpoch, isCommit: true) {
                return loop.makeSucceededFuture(everyPartition(error))
            }
            let timestamp = now()
            var entries = CommitEntries()
            let topics = request.topics.map { t -> OffsetCommitResponse.OffsetCommitResponseTopic in
                let name = version >= 10 ? broker.topics.topic(id: t.topicId)?.name : t.name
                let partitions = t.partitions.map { p -> Partition in
                    guard let name else {
                        return Partition(partitionIndex: p.partitionIndex, errorCode: (version >= 10 ? ErrorCode.unknownTopicId : .unknownTopicOrPartition).rawValue)
                    }
                    let code = entries.add(name, p.partitionIndex, CommittedOffset(offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch,
                                                                                   metadata: p.committedMetadata, commitTimestamp: timestamp),
                                           topics: broker.topics)
                    return Partition(partitionIndex: p.partitionIndex, errorCode: code.rawValue)
                }
                return .init(name: t.name, topicId: t.topicId, partitions: partitions)
            }
            guard OffsetStore.recordBytes(group: request.groupId, entries.list) <= OffsetStore.maxCommitBytes else {
                return loop.makeSucceededFuture(everyPartition(.invalidCommitOffsetSize))
            }
            do {
                try offsets.commit(group: request.groupId, entries.list, nowMs: timestamp)
            } catch {
                logger.error("committing offsets of \(request.groupId) failed: \(error)")
                return loop.makeSucceededFuture(everyPartition(.kafkaStorageError))
            }
            return loop.makeSucceededFuture(OffsetCommitResponse(throttleTimeMs: 0, topics: topics))
        }
    }

    func offsetFetch(_ request: OffsetFetchRequest, version: Int16) -> EventLoopFuture<OffsetFetchResponse> {
        onLoop { [self] in
            if version >= 8 {
                let groups = request.groups.map { g -> OffsetFetchResponse.OffsetFetchResponseGroup in
                    if version >= 9, let memberId = g.memberId,
                       let error = validateMember(group: g.groupId, memberId: memberId, instanceId: nil, generationOrEpoch: g.memberEpoch, isCommit: false) {
                        return .init(groupId: g.groupId, topics: [], errorCode: error.rawValue)
                    }
                    let wanted = g.topics?.map { t in (version >= 10 ? broker.topics.topic(id: t.topicId)?.name ?? t.name : t.name, t.topicId, t.partitionIndexes) }
                    let answer = fetchOffsets(g.groupId, wanted)
                    return .init(groupId: g.groupId, topics: answer.map { name, partitions in
                        .init(name: name, topicId: broker.topics.topic(name)?.id ?? .zero, partitions: partitions.map {
                            if request.requireStable && offsets.hasPendingTransactionalOffset(group: g.groupId, TopicPartition(name, $0.0)) {
                                return .init(partitionIndex: $0.0, committedOffset: -1, committedLeaderEpoch: -1, metadata: "",
                                             errorCode: ErrorCode.unstableOffsetCommit.rawValue)
                            }
                            return .init(partitionIndex: $0.0, committedOffset: $0.1?.offset ?? -1, committedLeaderEpoch: $0.1?.leaderEpoch ?? -1,
                                         metadata: $0.1?.metadata ?? "", errorCode: 0)
                        })
                    }, errorCode: 0)
                }
                return loop.makeSucceededFuture(OffsetFetchResponse(throttleTimeMs: 0, groups: groups))
            }
            let answer = fetchOffsets(request.groupId, request.topics?.map { ($0.name, KafkaUUID.zero, $0.partitionIndexes) })
            return loop.makeSucceededFuture(OffsetFetchResponse(throttleTimeMs: 0, topics: answer.map { name, partitions in
                .init(name: name, partitions: partitions.map {
                    // require_stable (v7): an offset a transaction may still change is not handed out.
                    if request.requireStable && offsets.hasPendingTransactionalOffset(group: request.groupId, TopicPartition(name, $0.0)) {
                        return .init(partitionIndex: $0.0, committedOffset: -1, committedLeaderEpoch: -1, metadata: "",
                                     errorCode: ErrorCode.unstableOffsetCommit.rawValue)
                    }
                    return .init(partitionIndex: $0.0, committedOffset: $0.1?.offset ?? -1, committedLeaderEpoch: $0.1?.leaderEpoch ?? -1,
                                 metadata: $0.1?.metadata ?? "", errorCode: 0)
                })
            }, errorCode: 0))
        }
    }

    /// The committed offsets asked for (nil topics: everything the group committed).
    private func fetchOffsets(_ group: String, _ wanted: [(String, KafkaUUID, [Int32])]?) -> [(String, [(Int32, CommittedOffset?)])] {
        let table = offsets.offsets[group] ?? [:]
        guard let wanted else {
            let byTopic = Dictionary(grouping: table, by: { $0.key.topic })
            return byTopic.keys.sorted().map { topic in
                (topic, byTopic[topic]!.sorted { $0.key.partition < $1.key.partition }.map { ($0.key.partition, Optional($0.value)) })
            }
        }
        return wanted.map { name, _, partitions in (name, partitions.map { ($0, table[TopicPartition(name, $0)]) }) }
    }

    func offsetDelete(_ request: OffsetDeleteRequest) -> EventLoopFuture<OffsetDeleteResponse> {
        onLoop { [self] in
            guard offsets.offsets[request.groupId] != nil || classicGroups[request.groupId] != nil || consumerGroups[request.groupId] != nil else {
                return loop.makeSucceededFuture(OffsetDeleteResponse(errorCode: ErrorCode.groupIdNotFound.rawValue))
            }
            let subscribed = subscribedTopics(request.groupId)
            var deleted: [TopicPartition] = []
            let topics = request.topics.map { t in
                OffsetDeleteResponse.OffsetDeleteResponseTopic(name: t.name, partitions: t.partitions.map { p in
                    if subscribed.contains(t.name) {
                        return .init(partitionIndex: p.partitionIndex, errorCode: ErrorCode.groupSubscribedToTopic.rawValue)
                    }
                    deleted.append(TopicPartition(t.name, p.partitionIndex))
                    return .init(partitionIndex: p.partitionIndex, errorCode: 0)
                })
            }
            do { try offsets.delete(group: request.groupId, partitions: deleted, nowMs: now()) } catch {
                return loop.makeSucceededFuture(OffsetDeleteResponse(errorCode: ErrorCode.kafkaStorageError.rawValue))
            }
            return loop.makeSucceededFuture(OffsetDeleteResponse(errorCode: 0, topics: topics))
        }
    }

    /// Topics the group's active members subscribe to.
    func subscribedTopics(_ groupId: String) -> Set<String> {
        if let consumer = consumerGroups[groupId] { return Set(consumer.members.values.flatMap(\.subscribedTopics)) }
        guard let group = classicGroups[groupId], group.protocolType == "consumer", !group.isEmpty else { return [] }
        var topics: Set<String> = []
        for member in group.orderedMembers {
            guard let metadata = member.protocols.first(where: { $0.name == group.protocolName })?.metadata,
                  let version = metadata.getInteger(at: metadata.readerIndex, as: Int16.self) else { continue }
            var body = metadata
            body.moveReaderIndex(forwardBy: 2)
            if let subscription = try? ConsumerProtocolSubscription(from: &body, version: max(0, min(version, ConsumerProtocolSubscription.validVersions.upperBound))) {
                topics.formUnion(subscription.topics)
            }
        }
        return topics
    }

    // MARK: Admin

    func describeGroups(_ request: DescribeGroupsRequest, version: Int16) -> EventLoopFuture<DescribeGroupsResponse> {
        onLoop { [self] in
            // A group asked for twice is described once (each answer carries every member's metadata).
            var seen = Set<String>()
            let groups = request.groups.filter { seen.insert($0).inserted }.map { id -> DescribeGroupsResponse.DescribedGroup in
                if let group = classicGroups[id] {
                    let stable = group.state == .stable
                    return .init(errorCode: 0, groupId: id, groupState: group.state.rawValue, protocolType: group.protocolType ?? "",
                                 protocolData: stable ? group.protocolName ?? "" : "",
                                 members: group.orderedMembers.map { m in
                                     .init(memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                                           memberMetadata: stable ? m.metadata(for: group.protocolName ?? "") : ByteBuffer(),
                                           memberAssignment: stable ? m.assignment : ByteBuffer())
                                 })
                }
                if consumerGroups[id] != nil {
                    // A KIP-848 group is described with ConsumerGroupDescribe.
                    return .init(errorCode: version >= 6 ? ErrorCode.groupIdNotFound.rawValue : 0,
                                 errorMessage: version >= 6 ? "Group \(id) is not a classic group." : nil, groupId: id, groupState: "Dead")
                }
                // Unknown groups are reported Dead (v6+ adds GROUP_ID_NOT_FOUND).
                return .init(errorCode: version >= 6 ? ErrorCode.groupIdNotFound.rawValue : 0,
                             errorMessage: version >= 6 ? "Group \(id) not found." : nil, groupId: id, groupState: "Dead")
            }
            return loop.makeSucceededFuture(DescribeGroupsResponse(throttleTimeMs: 0, groups: groups))
        }
    }

    func listGroups(_ request: ListGroupsRequest) -> EventLoopFuture<ListGroupsResponse> {
        onLoop { [self] in
            var listed: [ListGroupsResponse.ListedGroup] = classicGroups.values.filter { $0.state != .dead }.map {
                .init(groupId: $0.groupId, protocolType: $0.protocolType ?? "", groupState: $0.state.rawValue, groupType: "classic")
            }
            listed += consumerGroups.values.map {
                .init(groupId: $0.groupId, protocolType: "consumer", groupState: $0.stateName, groupType: "consumer")
            }
            // Groups that only have committed offsets are Empty classic groups to Kafka's tools.
            for id in offsets.offsets.keys where classicGroups[id] == nil && consumerGroups[id] == nil {
                listed.append(.init(groupId: id, protocolType: "", groupState: "Empty", groupType: "classic"))
            }
            let states = Set(request.statesFilter.map { $0.lowercased() })
            let types = Set(request.typesFilter.map { $0.lowercased() })
            listed = listed.filter { (states.isEmpty || states.contains($0.groupState.lowercased())) && (types.isEmpty || types.contains($0.groupType)) }
            return loop.makeSucceededFuture(ListGroupsResponse(throttleTimeMs: 0, errorCode: 0, groups: listed.sorted { $0.groupId < $1.groupId }))
        }
    }

    func deleteGroups(_ request: DeleteGroupsRequest) -> EventLoopFuture<DeleteGroupsResponse> {
        onLoop { [self] in
            let results = request.groupsNames.map { id -> DeleteGroupsResponse.DeletableGroupResult in
                let classic = classicGroups[id], consumer = consumerGroups[id]
                guard classic != nil || consumer != nil || offsets.offsets[id] != nil else {
                    return .init(groupId: id, errorCode: ErrorCode.groupIdNotFound.rawValue)
                }
                if let classic, !classic.isEmpty { return .init(groupId: id, errorCode: ErrorCode.nonEmptyGroup.rawValue) }
                if let consumer, !consumer.members.isEmpty { return .init(groupId: id, errorCode: ErrorCode.nonEmptyGroup.rawValue) }
                do { try offsets.delete(group: id, nowMs: now()) } catch {
                    return .init(groupId: id, errorCode: ErrorCode.kafkaStorageError.rawValue)
                }
                classic?.state = .dead
                classicGroups[id] = nil
                consumerGroups[id] = nil
                logger.info("deleted group", metadata: ["group": "\(id)"])
                return .init(groupId: id, errorCode: 0)
            }
            return loop.makeSucceededFuture(DeleteGroupsResponse(throttleTimeMs: 0, results: results))
        }
    }
}

/// The partitions an OffsetCommit or TxnOffsetCommit writes, in request order; a partition named
/// twice is written once, with its last value.
struct CommitEntries {
    private(set) var list: [(TopicPartition, CommittedOffset)] = []
    private var index: [TopicPartition: Int] = [:]

    /// Checks one partition of the request and takes it: NONE, or the partition's error.
    mutating func add(_ topic: String, _ partition: Int32, _ committed: CommittedOffset, topics: TopicRegistry) -> ErrorCode {
        guard let known = topics.topic(topic), partition >= 0, partition < known.partitionCount else { return .unknownTopicOrPartition }
        if (committed.metadata?.utf8.count ?? 0) > GroupCoordinator.offsetMetadataMaxBytes { return .offsetMetadataTooLarge }
        let tp = TopicPartition(topic, partition)
        if let i = index[tp] { list[i].1 = committed } else {
            index[tp] = list.count
            list.append((tp, committed))
        }
        return .noError
    }
}

extension GroupCoordinator {
    /// Every group's committed offsets, read on the coordinator's loop (for the metrics endpoint).
    public func committedOffsetsSnapshot() -> EventLoopFuture<[String: [TopicPartition: Int64]]> {
        loop.submit { self.offsets.offsets.mapValues { $0.mapValues(\.offset) } }
    }
}
