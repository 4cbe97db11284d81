import KafkaClient
import KafkaWire
import NIOCore

/// This member's view of its classic group.
struct GroupState {
    var groupId: String
    var memberId = ""
    var generation: Int32 = -1
    var protocolName: PartitionAssignor?
    var coordinator: BrokerConnection?
    /// The coordinator's node, kept when its connection is dropped (to leave the group from `deinit`).
    var coordinatorNode: Int32?
    var needsJoin = true
    var lastHeartbeat = ContinuousClock.now
}

/// The classic group protocol, member side: find the coordinator, join, (as leader) assign, sync,
/// heartbeat, and leave.
extension KafkaConsumer {
    func startGroupTask() {
        guard groupTask == nil else { return }
        groupTask = Task { [weak self] in
            while let self, !Task.isCancelled, await !self.closed {
                let pause = await self.groupStep()
                try? await Task.sleep(for: pause)
            }
        }
    }

    /// One turn of the background loop: (re)join when needed, else heartbeat when due; auto-commit.
    private func groupStep() async -> Duration {
        let backoff = Duration.milliseconds(configuration.retryBackoffMs)
        if group != nil && !subscription.isEmpty {
            if group!.needsJoin {
                do {
                    try await joinAndSync()
                    failures.cleared(.group)
                } catch {
                    group?.coordinator = nil
                    if closed { return backoff }  // close() cut the join short: nothing to report
                    let failure = error as? KafkaClientError ?? KafkaClientError(.connection, "joining group '\(group?.groupId ?? "")' failed: \(error)")
                    if failures.note(.group, failure) {
                        configuration.logger.warning("joining the group failed, retrying", metadata: [
                            "group": "\(group?.groupId ?? "")", "error": "\(failure.message)"])
                    }
                    return backoff * 5
                }
            } else if ContinuousClock.now - group!.lastHeartbeat >= .milliseconds(configuration.heartbeatIntervalMs) {
                await heartbeat()
            }
        }
        if !subscription.isEmpty, ContinuousClock.now - topicsRefreshedAt > .milliseconds(configuration.metadataMaxAgeMs),
           (try? await refreshTopics(subscription)) == true {
            group?.needsJoin = true
        }
        await autoCommitIfDue()
        return .milliseconds(min(configuration.heartbeatIntervalMs, 100))
    }

    func coordinatorConnection() async throws -> BrokerConnection {
        if let connection = group?.coordinator, connection.isActive { return connection }
        guard let groupId = configuration.groupId else { throw KafkaClientError.consumer("no group.id") }
        let (node, connection) = try await client.groupCoordinator(of: groupId, timeout: requestTimeout)
        group?.coordinator = connection
        group?.coordinatorNode = node
        return connection
    }

    private func joinAndSync() async throws {
        guard var state = group else { return }
        let coordinator = try await coordinatorConnection()
        let strategies = configuration.partitionAssignmentStrategy
        let cooperative = strategies.allSatisfy(\.isCooperative)
        // Eager protocols give everything up before joining; cooperative ones keep it.
        if !cooperative && !assignment.isEmpty { await revoke(assignment) }
        try await refreshTopics(subscription)
        let owned = assignment.sorted()
        let subscriptionBytes = ConsumerProtocolSubscription(
            topics: subscription, userData: nil,
            ownedPartitions: Dictionary(grouping: owned, by: \.topic).map { .init(topic: $0.key, partitions: $0.value.map(\.partition)) },
            generationId: state.generation, rackId: nil).encoded(version: 3)
        var join: JoinGroupResponse
        var attempts = 0
        repeat {
            attempts += 1
            join = try await coordinator.send(JoinGroupRequest(
                groupId: state.groupId, sessionTimeoutMs: Int32(configuration.sessionTimeoutMs),
                rebalanceTimeoutMs: Int32(configuration.maxPollIntervalMs), memberId: state.memberId,
                groupInstanceId: configuration.groupInstanceId, protocolType: "consumer",
                protocols: strategies.map { .init(name: $0.rawValue, metadata: subscriptionBytes) }, reason: nil),
                timeout: .milliseconds(Int64(configuration.maxPollIntervalMs + 5000)))
            // KIP-394: the first join learns its member id and joins again with it. The broker counts
            // the member from now on, so a close() while the second join waits must leave with that id.
            if join.errorCode == ErrorCode.memberIdRequired.rawValue {
                state.memberId = join.memberId
                group?.memberId = join.memberId
            }
        } while join.errorCode == ErrorCode.memberIdRequired.rawValue && attempts < 3
        let joinCode = ErrorCode(rawValue: join.errorCode)
        guard joinCode == .noError else {
            if [.unknownMemberId, .illegalGeneration].contains(joinCode) { group?.memberId = "" }
            if [.notCoordinator, .coordinatorNotAvailable].contains(joinCode) { group?.coordinator = nil }
            if joinCode == .fencedInstanceId { await fenced("another member with group.instance.id '\(configuration.groupInstanceId ?? "")' took over") }
            throw KafkaClientError(.broker(joinCode), "JoinGroup '\(state.groupId)' failed: \(joinCode)")
        }
        state.memberId = join.memberId
        state.generation = join.generationId
        state.protocolName = join.protocolName.flatMap(PartitionAssignor.init(rawValue:))
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        if join.leader == join.memberId && !join.skipAssignment, let assignor = state.protocolName {
            assignments = try await assign(join.members, with: assignor)
        }
        let sync = try await coordinator.send(SyncGroupRequest(
            groupId: state.groupId, generationId: state.generation, memberId: state.memberId,
            groupInstanceId: configuration.groupInstanceId, protocolType: "consumer", protocolName: join.protocolName,
            assignments: assignments), timeout: .milliseconds(Int64(configuration.maxPollIntervalMs + 5000)))
        let syncCode = ErrorCode(rawValue: sync.errorCode)
        guard syncCode == .noError else {
            if [.unknownMemberId, .illegalGeneration].contains(syncCode) { group?.memberId = "" }
            throw KafkaClientError(.broker(syncCode), "SyncGroup '\(state.groupId)' failed: \(syncCode)")
        }
        var assigned: Set<TopicPartition> = []
        if sync.assignment.readableBytes > 0 {
            let decoded = try ConsumerProtocolAssignment(versioned: sync.assignment)
            for topic in decoded.assignedPartitions {
                for partition in topic.partitions { assigned.insert(TopicPartition(topic.topic, partition)) }
            }
        }
        state.needsJoin = false
        state.lastHeartbeat = .now
        // The coordinator was found after `state` was copied: keep it (else every join forgot it).
        state.coordinator = group?.coordinator
        state.coordinatorNode = group?.coordinatorNode
        group = state
        client.meters?.count("kafka_consumer_rebalances_total", ("group", state.groupId))
        configuration.logger.info("joined the group", metadata: [
            "group": "\(state.groupId)", "generation": "\(state.generation)", "member": "\(state.memberId)",
            "assigned": "\(assigned.sorted().map(\.description).joined(separator: ","))"])
        let revoked = assignment.subtracting(assigned)
        if !revoked.isEmpty {
            await revoke(revoked)
            // Cooperative: what this member gave up goes to its new owner in a follow-up rebalance.
            if state.protocolName?.isCooperative == true { group?.needsJoin = true }
        }
        let added = assigned.subtracting(assignment)
        assignment = assigned
        // Positions kept through a loss stay only for partitions this member got back.
        for partition in Set(positions.keys).union(consumed.keys) where !assigned.contains(partition) {
            positions[partition] = nil
            consumed[partition] = nil
        }
        fetchGeneration += 1
        if !added.isEmpty { eventsContinuation.yield(.partitionsAssigned(added.sorted())) }
    }

    /// The leader's part: decode every member's subscription and run the chosen assignor.
    private func assign(_ members: [JoinGroupResponse.JoinGroupResponseMember], with assignor: PartitionAssignor) async throws
        -> [SyncGroupRequest.SyncGroupRequestAssignment] {
        var subscriptions: [GroupMemberSubscription] = []
        for member in members {
            let decoded = try ConsumerProtocolSubscription(versioned: member.metadata)
            subscriptions.append(GroupMemberSubscription(
                memberId: member.memberId, groupInstanceId: member.groupInstanceId, topics: decoded.topics,
                ownedPartitions: decoded.ownedPartitions.flatMap { topic in topic.partitions.map { TopicPartition(topic.topic, $0) } },
                generation: decoded.generationId))
        }
        try await refreshTopics(Array(Set(subscriptions.flatMap(\.topics))))
        let plan = assignor.assign(subscriptions, partitionCounts: partitionCounts)
        return subscriptions.map { member in
            let partitions = plan[member.memberId] ?? []
            let assignment = ConsumerProtocolAssignment(
                assignedPartitions: Dictionary(grouping: partitions, by: \.topic).map { .init(topic: $0.key, partitions: $0.value.map(\.partition)) },
                userData: nil)
            return .init(memberId: member.memberId, assignment: assignment.encoded(version: assignor.isCooperative ? 1 : 0))
        }
    }

    private func heartbeat() async {
        guard let state = group else { return }
        do {
            let coordinator = try await coordinatorConnection()
            let response = try await coordinator.send(HeartbeatRequest(groupId: state.groupId, generationId: state.generation,
                                                                      memberId: state.memberId, groupInstanceId: configuration.groupInstanceId),
                                                      timeout: requestTimeout)
            group?.lastHeartbeat = .now
            switch ErrorCode(rawValue: response.errorCode) {
            case .noError: break
            case .rebalanceInProgress: group?.needsJoin = true
            case .unknownMemberId, .illegalGeneration:
                // The group moved on without this member: what it had is lost, not revoked.
                group?.memberId = ""
                group?.generation = -1
                group?.needsJoin = true
                lose()
            case .fencedInstanceId:
                await fenced("another member with group.instance.id '\(configuration.groupInstanceId ?? "")' took over")
            default:
                group?.coordinator = nil
            }
        } catch {
            group?.coordinator = nil
        }
    }

    /// Gives partitions up in an orderly way: commit what was consumed (auto-commit), then stop.
    func revoke(_ partitions: Set<TopicPartition>) async {
        await autoCommitIfDue(force: true)
        drop(partitions)
        eventsContinuation.yield(.partitionsRevoked(partitions.sorted()))
    }

    /// The group moved on without this member (a coordinator restart, an expired session). As Kafka's
    /// consumer does, positions are kept: a partition this member gets back resumes where it was,
    /// and what was handed out can still be committed.
    private func lose() {
        guard !assignment.isEmpty else { return }
        let lost = assignment
        foldHandedOut()
        unfetch(lost)
        assignment = []
        eventsContinuation.yield(.partitionsLost(lost.sorted()))
    }

    private func drop(_ partitions: Set<TopicPartition>) {
        foldHandedOut()
        unfetch(partitions)
        assignment.subtract(partitions)
        for partition in partitions {
            positions[partition] = nil
            consumed[partition] = nil
        }
        fetchGeneration += 1
    }

    /// Another member took this one's static identity: it stops, and `records` ends with the reason.
    private func fenced(_ reason: String) async {
        lose()
        subscription = []
        group?.needsJoin = false
        stopError = KafkaClientError(.broker(.fencedInstanceId), reason)
    }

    /// Static members stay (a restart within session.timeout.ms keeps their partitions); others leave.
    func leaveGroup() async {
        guard let state = group, !state.memberId.isEmpty, configuration.groupInstanceId == nil,
              let coordinator = state.coordinator, coordinator.isActive else { return }
        _ = try? await coordinator.send(LeaveGroupRequest(groupId: state.groupId, memberId: state.memberId,
                                                          members: [.init(memberId: state.memberId, groupInstanceId: nil, reason: "consumer closed")]),
                                        timeout: requestTimeout)
        group?.memberId = ""
    }

    /// Partition counts and ids of topics, from fresh metadata. Returns whether a known topic's
    /// partition count changed.
    @discardableResult
    func refreshTopics(_ topics: [String]) async throws -> Bool {
        let metadata = try await client.refreshMetadata(topics: topics)
        topicsRefreshedAt = .now
        var changed = false
        for (name, topic) in metadata.topics {
            let count = Int32(topic.partitions.count)
            if let known = partitionCounts[name], known != count { changed = true }
            partitionCounts[name] = count
            topicIds[name] = topic.id
            topicNames[topic.id] = name
            for partition in topic.partitions { leaders[TopicPartition(name, partition.partition)] = partition.leader }
        }
        // A topic asked for and not in the answer has no leaders to fetch from (until it is back).
        let gone = Set(topics).subtracting(metadata.topics.keys)
        if !gone.isEmpty { leaders = leaders.filter { !gone.contains($0.key.topic) } }
        // A subscription of which no topic exists reads nothing, ever: a failure that surfaces once it lasts.
        // Judged only on a refresh that asked for the whole subscription (not one for a topic id).
        if !subscription.isEmpty && Set(subscription).isSubset(of: Set(topics)) {
            if Set(subscription).isSubset(of: gone) {
                failures.note(.topics, KafkaClientError(.broker(.unknownTopicOrPartition),
                                                        "none of the subscribed topics exists: \(subscription.sorted().joined(separator: ", "))"))
            } else {
                failures.cleared(.topics)
            }
        }
        return changed
    }
}

extension KafkaMessage {
    /// The consumer protocol's embedded structures: an Int16 version, then the fields of that version.
    func encoded(version: Int16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(version)
        write(into: &buffer, version: version)
        return buffer
    }

    /// Reads a versioned embedded structure; a newer version is read as the newest known one
    /// (its extra fields come last, as the consumer protocol guarantees).
    init(versioned bytes: ByteBuffer) throws {
        var bytes = bytes
        guard let version = bytes.readInteger(as: Int16.self), version >= 0 else {
            throw KafkaClientError(.protocolViolation, "\(Self.messageName) without a valid version")
        }
        try self.init(from: &bytes, version: min(version, Self.validVersions.upperBound))
    }
}
