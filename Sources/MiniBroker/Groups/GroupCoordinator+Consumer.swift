import Foundation
import KafkaWire
import NIOCore

// KIP-848: ConsumerGroupHeartbeat and ConsumerGroupDescribe.

extension GroupCoordinator {
    func consumerGroupHeartbeat(_ request: ConsumerGroupHeartbeatRequest, version: Int16, clientId: String,
                                clientHost: String) -> EventLoopFuture<ConsumerGroupHeartbeatResponse> {
        onLoop { [self] in
            loop.makeSucceededFuture(consumerHeartbeat(request, version: version, clientId: clientId, clientHost: clientHost))
        }
    }

    private func consumerHeartbeat(_ request: ConsumerGroupHeartbeatRequest, version: Int16, clientId: String,
                                   clientHost: String) -> ConsumerGroupHeartbeatResponse {
        func failure(_ code: ErrorCode, _ message: String) -> ConsumerGroupHeartbeatResponse {
            ConsumerGroupHeartbeatResponse(errorCode: code.rawValue, errorMessage: message, memberId: nil, memberEpoch: -1, heartbeatIntervalMs: 0)
        }
        guard !request.groupId.isEmpty else { return failure(.invalidRequest, "GroupId can't be empty.") }
        // ListGroups answers older versions too, where a group id has an int16 length.
        guard ByteBuffer.fitsKafkaString(request.groupId) else { return failure(.invalidRequest, "GroupId is longer than 32767 bytes.") }
        if let assignor = request.serverAssignor, !ServerAssignor.names.contains(assignor) {
            return failure(.unsupportedAssignor, "Assignor \(assignor) is not supported. Supported assignors: \(ServerAssignor.names.joined(separator: ", ")).")
        }
        if let classic = classicGroups[request.groupId], !classic.isEmpty {
            return failure(.groupIdNotFound, "Group \(request.groupId) is not a consumer group.")
        }
        let group = consumerGroups[request.groupId] ?? {
            let g = ConsumerGroup(groupId: request.groupId)
            consumerGroups[request.groupId] = g
            classicGroups[request.groupId] = nil
            return g
        }()
        let epoch = request.memberEpoch
        // Leaving: -1 for good, -2 for a static member that will be back (its place is kept).
        if epoch == -1 || epoch == -2 {
            let member = group.members[request.memberId] ?? request.instanceId.flatMap { group.staticMembers[$0] }.flatMap { group.members[$0] }
            guard let member else { return failure(.unknownMemberId, "Unknown member \(request.memberId).") }
            if epoch == -2, member.instanceId != nil {
                member.memberEpoch = -2
                member.lastHeartbeat = .now()
            } else {
                removeConsumerMember(group, member, reason: "left the group")
            }
            return ConsumerGroupHeartbeatResponse(errorCode: 0, memberId: request.memberId, memberEpoch: epoch, heartbeatIntervalMs: 0)
        }
        var member: ConsumerMember
        if epoch == 0 {
            guard let topics = request.subscribedTopicNames ?? (request.subscribedTopicRegex != nil ? [] : nil) else {
                return failure(.invalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
            }
            guard request.rebalanceTimeoutMs > 0 || request.rebalanceTimeoutMs == -1 else {
                return failure(.invalidRequest, "RebalanceTimeoutMs must be provided in first request.")
            }
            let memberId = request.memberId.isEmpty ? UUID().uuidString.lowercased() : request.memberId
            if let instance = request.instanceId, let previousId = group.staticMembers[instance], let previous = group.members[previousId] {
                // A static member may take its place back only after the previous incarnation left (-2).
                guard previous.memberEpoch == -2 || previousId == memberId else {
                    return failure(.unreleasedInstanceId, "Static member \(instance) has not released its previous member id.")
                }
                member = ConsumerMember(memberId: memberId, clientId: clientId, clientHost: clientHost)
                member.assigned = previous.assigned
                group.members[previousId] = nil
                group.target[memberId] = group.target.removeValue(forKey: previousId)
            } else if let existing = group.members[memberId] {
                // Rejoining with epoch 0 (after being fenced): start over.
                member = existing
                member.assigned = [:]
                member.revoking = [:]
            } else {
                member = ConsumerMember(memberId: memberId, clientId: clientId, clientHost: clientHost)
            }
            member.instanceId = request.instanceId
            if let instance = request.instanceId { group.staticMembers[instance] = memberId }
            group.members[memberId] = member
            member.memberEpoch = 0
            member.subscribedTopics = topics
            member.subscribedRegex = request.subscribedTopicRegex
            group.groupEpoch += 1
            logger.info("consumer group member joined", metadata: ["group": "\(group.groupId)", "member": "\(memberId)", "epoch": "\(group.groupEpoch)"])
        } else {
            guard let existing = group.members[request.memberId] else {
                return failure(.unknownMemberId, "Member \(request.memberId) is not a member of group \(request.groupId).")
            }
            member = existing
            // The epoch must be the member's, or the previous one when the last answer was lost.
            guard epoch == member.memberEpoch || (epoch == member.previousMemberEpoch && ownsOnly(request.topicPartitions, member.assigned)) else {
                return failure(.fencedMemberEpoch, "The consumer group member has a stale member epoch (\(epoch), current \(member.memberEpoch)).")
            }
            if let topics = request.subscribedTopicNames, topics.sorted() != member.subscribedTopics.sorted() {
                member.subscribedTopics = topics
                group.groupEpoch += 1
            }
        }
        member.lastHeartbeat = .now()
        member.clientId = clientId
        member.clientHost = clientHost
        if request.rebalanceTimeoutMs > 0 { member.rebalanceTimeoutMs = request.rebalanceTimeoutMs }
        if let assignor = request.serverAssignor, assignor != group.assignorName {
            group.assignorName = assignor
            group.groupEpoch += 1
        }
        if let rack = request.rackId { member.rackId = rack }
        refreshTargetAssignment(group)
        reconcile(group, member, owned: request.topicPartitions)
        let changed = member.lastSentAssignment != member.assigned || epoch == 0
        if changed { member.lastSentAssignment = member.assigned }
        return ConsumerGroupHeartbeatResponse(
            errorCode: 0, memberId: member.memberId, memberEpoch: member.memberEpoch,
            heartbeatIntervalMs: broker.config.consumerHeartbeatIntervalMs,
            assignment: changed ? .init(topicPartitions: member.assigned.sorted { $0.key.high < $1.key.high }.map {
                .init(topicId: $0.key, partitions: $0.value.sorted())
            }) : nil)
    }

    /// Whether the partitions a member reports are all among `assigned`.
    private func ownsOnly(_ owned: [ConsumerGroupHeartbeatRequest.TopicPartitions]?, _ assigned: Assignment) -> Bool {
        guard let owned else { return false }
        return owned.allSatisfy { tp in Set(tp.partitions).isSubset(of: assigned[tp.topicId] ?? []) }
    }

    /// Recomputes the target assignment when the group epoch moved or the subscribed topics changed.
    func refreshTargetAssignment(_ group: ConsumerGroup) {
        let names = Set(group.members.values.flatMap(\.subscribedTopics))
        var topics: [(id: KafkaUUID, name: String, partitions: Int32)] = []
        var metadata: [String: Int32] = [:]
        for name in names.sorted() {
            guard let topic = broker.topics.topic(name) else { continue }
            topics.append((topic.id, name, topic.partitionCount))
            metadata[name] = topic.partitionCount
        }
        if metadata != group.subscriptionMetadata {
            group.subscriptionMetadata = metadata
            group.groupEpoch += 1
        }
        guard group.assignmentEpoch < group.groupEpoch else { return }
        let ids = Dictionary(topics.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        let subscriptions = Dictionary(uniqueKeysWithValues: group.members.values.filter { $0.memberEpoch != -2 || $0.instanceId != nil }.map {
            ($0.memberId, Set($0.subscribedTopics.compactMap { ids[$0] }))
        })
        group.target = ServerAssignor.assign(group.assignorName, topics: topics, subscriptions: subscriptions, current: group.target)
        group.assignmentEpoch = group.groupEpoch
    }

    /// Moves a member towards its target: first it revokes what others should get, then (once it
    /// reported the revocation) it gets what is free, and its epoch catches up with the target's.
    private func reconcile(_ group: ConsumerGroup, _ member: ConsumerMember, owned: [ConsumerGroupHeartbeatRequest.TopicPartitions]?) {
        let target = group.target[member.memberId] ?? [:]
        // A revocation is done once the member reports owning none of the revoked partitions.
        if !member.revoking.isEmpty, let owned {
            let stillOwned = member.revoking.contains { topic, partitions in
                !partitions.isDisjoint(with: owned.first { $0.topicId == topic }.map { Set($0.partitions) } ?? [])
            }
            if !stillOwned {
                member.revoking = [:]
                member.revokingSince = nil
            }
        }
        guard member.revoking.isEmpty else { return }
        var revoke: Assignment = [:]
        for (topic, partitions) in member.assigned {
            let gone = partitions.subtracting(target[topic] ?? [])
            if !gone.isEmpty { revoke[topic] = gone }
        }
        if !revoke.isEmpty {
            for (topic, partitions) in revoke {
                member.assigned[topic]?.subtract(partitions)
                if member.assigned[topic]?.isEmpty == true { member.assigned[topic] = nil }
            }
            member.revoking = revoke
            member.revokingSince = .now()
            return
        }
        // Nothing to give up: take every target partition that nobody else holds any more.
        for (topic, partitions) in target {
            for partition in partitions where member.assigned[topic]?.contains(partition) != true
                && group.owner(of: topic, partition, except: member.memberId) == nil {
                member.assigned[topic, default: []].insert(partition)
            }
        }
        if member.memberEpoch != group.assignmentEpoch {
            member.previousMemberEpoch = member.memberEpoch
            member.memberEpoch = group.assignmentEpoch
        }
    }

    func removeConsumerMember(_ group: ConsumerGroup, _ member: ConsumerMember, reason: String) {
        group.members[member.memberId] = nil
        if let instance = member.instanceId, group.staticMembers[instance] == member.memberId { group.staticMembers[instance] = nil }
        group.target[member.memberId] = nil
        group.groupEpoch += 1
        logger.info("consumer group member removed", metadata: ["group": "\(group.groupId)", "member": "\(member.memberId)", "reason": "\(reason)"])
        refreshTargetAssignment(group)
    }

    /// Session timeouts, and members that hold revoked partitions past their rebalance timeout.
    func sweepConsumerGroups(_ now: NIODeadline) {
        for group in consumerGroups.values {
            for member in Array(group.members.values) {
                if member.lastHeartbeat + .milliseconds(broker.config.consumerSessionTimeoutMs) < now {
                    removeConsumerMember(group, member, reason: "session timeout")
                } else if let since = member.revokingSince, since + .milliseconds(Int64(member.rebalanceTimeoutMs)) < now {
                    removeConsumerMember(group, member, reason: "rebalance timeout while revoking")
                }
            }
        }
    }

    func consumerGroupDescribe(_ request: ConsumerGroupDescribeRequest) -> EventLoopFuture<ConsumerGroupDescribeResponse> {
        onLoop { [self] in
            func names(_ assignment: Assignment) -> ConsumerGroupDescribeResponse.Assignment {
                .init(topicPartitions: assignment.map { id, partitions in
                    .init(topicId: id, topicName: broker.topics.topic(id: id)?.name ?? "", partitions: partitions.sorted())
                }.sorted { $0.topicName < $1.topicName })
            }
            let groups = request.groupIds.map { id -> ConsumerGroupDescribeResponse.DescribedGroup in
                guard let group = consumerGroups[id] else {
                    let isClassic = classicGroups[id] != nil
                    return .init(errorCode: ErrorCode.groupIdNotFound.rawValue,
                                 errorMessage: isClassic ? "Group \(id) is not a consumer group." : "Group \(id) not found.",
                                 groupId: id, groupState: "Dead")
                }
                return .init(errorCode: 0, groupId: id, groupState: group.stateName, groupEpoch: group.groupEpoch,
                             assignmentEpoch: group.assignmentEpoch, assignorName: group.assignorName,
                             members: group.members.values.sorted { $0.memberId < $1.memberId }.map { m in
                                 .init(memberId: m.memberId, instanceId: m.instanceId, rackId: m.rackId, memberEpoch: m.memberEpoch,
                                       clientId: m.clientId, clientHost: m.clientHost, subscribedTopicNames: m.subscribedTopics,
                                       subscribedTopicRegex: m.subscribedRegex, assignment: names(m.assigned),
                                       targetAssignment: names(group.target[m.memberId] ?? [:]))
                             })
            }
            return loop.makeSucceededFuture(ConsumerGroupDescribeResponse(throttleTimeMs: 0, groups: groups))
        }
    }
}
