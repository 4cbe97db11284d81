import KafkaClient
import KafkaWire
import NIOCore

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
        if let membership = group, !subscription.isEmpty {
            switch membership.nextStep(at: .now, heartbeatInterval: .milliseconds(configuration.heartbeatIntervalMs)) {
            case .join:
                do {
                    try await joinAndSync()
                    failures.cleared(.group)
                } catch {
                    groupCoordinator = nil
                    if closed { return backoff }  // close() cut the join short: nothing to report
                    let failure = error as? KafkaClientError ?? KafkaClientError(.connection, "joining group '\(membership.groupId)' failed: \(error)")
                    if failures.note(.group, failure) {
                        configuration.logger.warning("joining the group failed, retrying", metadata: [
                            "group": "\(membership.groupId)", "error": "\(failure.message)"])
                    }
                    return backoff * 5
                }
            case .heartbeat:
                await heartbeat()
            case .none:
                break
            }
        }
        if !subscription.isEmpty, ContinuousClock.now - topicsRefreshedAt > .milliseconds(configuration.metadataMaxAgeMs),
           (try? await refreshTopics(subscription)) == true {
            group?.rejoin()
        }
        await autoCommitIfDue()
        return .milliseconds(min(configuration.heartbeatIntervalMs, 100))
    }

    func coordinatorConnection() async throws -> BrokerConnection {
        if let connection = groupCoordinator, connection.isActive { return connection }
        guard let groupId = configuration.groupId else { throw KafkaClientError.consumer("no group.id") }
        let (node, connection) = try await client.groupCoordinator(of: groupId, timeout: requestTimeout, lane: lane)
        groupCoordinator = connection
        group?.coordinatorNode = node
        return connection
    }

    /// One JoinGroup (two with KIP-394's member id) and SyncGroup; `group` takes each answer and says what follows.
    private func joinAndSync() async throws {
        guard let groupId = group?.groupId else { return }
        group?.joinStarted()
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
            generationId: group?.generation ?? -1, rackId: nil).encoded(version: 3)
        var attempts = 0
        var join: JoinGroupResponse
        var action: GroupMembership.JoinAction
        repeat {
            attempts += 1
            join = try await coordinator.send(JoinGroupRequest(
                groupId: groupId, sessionTimeoutMs: Int32(configuration.sessionTimeoutMs),
                rebalanceTimeoutMs: Int32(configuration.maxPollIntervalMs), memberId: group?.memberId ?? "",
                groupInstanceId: configuration.groupInstanceId, protocolType: "consumer",
                protocols: strategies.map { .init(name: $0.rawValue, metadata: subscriptionBytes) }, reason: nil),
                timeout: .milliseconds(Int64(configuration.maxPollIntervalMs + 5000)))
            guard group != nil else { return }
            action = group!.joinAnswered(ErrorCode(rawValue: join.errorCode), memberId: join.memberId, generation: join.generationId,
                                         leader: join.leader, protocolName: join.protocolName, skipAssignment: join.skipAssignment)
        } while action == .joinAgain && attempts < 3
        let asLeader: Bool
        switch action {
        case .sync(let leader):
            asLeader = leader
        case .fail(let code, let findCoordinator, let fenced):
            if findCoordinator { groupCoordinator = nil }
            if fenced { await self.fenced("another member with group.instance.id '\(configuration.groupInstanceId ?? "")' took over") }
            throw KafkaClientError(.broker(code), "JoinGroup '\(groupId)' failed: \(code)")
        case .joinAgain:
            throw KafkaClientError(.broker(.memberIdRequired), "JoinGroup '\(groupId)' kept asking for a member id")
        }
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        if asLeader, let assignor = group?.protocolName {
            assignments = try await assign(join.members, with: assignor)
        }
        let sync = try await coordinator.send(SyncGroupRequest(
            groupId: groupId, generationId: join.generationId, memberId: join.memberId,
            groupInstanceId: configuration.groupInstanceId, protocolType: "consumer", protocolName: join.protocolName,
            assignments: assignments), timeout: .milliseconds(Int64(configuration.maxPollIntervalMs + 5000)))
        var assigned: Set<TopicPartition> = []
        if sync.errorCode == 0, sync.assignment.readableBytes > 0 {
            let decoded = try ConsumerProtocolAssignment(versioned: sync.assignment)
            for topic in decoded.assignedPartitions {
                for partition in topic.partitions { assigned.insert(TopicPartition(topic.topic, partition)) }
            }
        }
        guard group != nil else { return }
        switch group!.syncAnswered(ErrorCode(rawValue: sync.errorCode), assigned: assigned, owned: assignment, at: .now) {
        case .fail(let code, let findCoordinator):
            if findCoordinator { groupCoordinator = nil }
            throw KafkaClientError(.broker(code), "SyncGroup '\(groupId)' failed: \(code)")
        case .assigned(let revoked, let added, _):
            client.meters?.count("kafka_consumer_rebalances_total", ("group", groupId))
            configuration.logger.info("joined the group", metadata: [
                "group": "\(groupId)", "generation": "\(join.generationId)", "member": "\(join.memberId)",
                "assigned": "\(assigned.sorted().map(\.description).joined(separator: ","))"])
            if !revoked.isEmpty {
                // Cooperative: what this member gave up goes to its new owner in the follow-up rebalance.
                await revoke(revoked)
            }
            assignment = assigned
            // Positions kept through a loss stay only for partitions this member got back.
            for partition in Set(positions.keys).union(consumed.keys) where !assigned.contains(partition) {
                positions[partition] = nil
                consumed[partition] = nil
            }
            fetchGeneration += 1
            if !added.isEmpty { eventsContinuation.yield(.partitionsAssigned(added.sorted())) }
        }
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
        let plan = assignor.assign(subscriptions, partitionCounts: cluster.topics.mapValues { Int32(truncatingIfNeeded: $0.partitions.count) })
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
            guard group != nil else { return }
            switch group!.heartbeatAnswered(ErrorCode(rawValue: response.errorCode), at: .now) {
            case .none, .rejoin: break
            case .lose: lose()
            case .fenced: await fenced("another member with group.instance.id '\(configuration.groupInstanceId ?? "")' took over")
            case .findCoordinator: groupCoordinator = nil
            }
        } catch {
            groupCoordinator = nil
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
        group?.stop()
        stopError = KafkaClientError(.broker(.fencedInstanceId), reason)
    }

    /// Static members stay (a restart within session.timeout.ms keeps their partitions); others leave.
    func leaveGroup() async {
        guard let state = group, !state.memberId.isEmpty, configuration.groupInstanceId == nil,
              let coordinator = groupCoordinator, coordinator.isActive else { return }
        _ = try? await coordinator.send(LeaveGroupRequest(groupId: state.groupId, memberId: state.memberId,
                                                          members: [.init(memberId: state.memberId, groupInstanceId: nil, reason: "consumer closed")]),
                                        timeout: requestTimeout)
        group?.left()
    }

    /// Partition counts and ids of topics, from fresh metadata. Returns whether a known topic's
    /// partition count changed.
    @discardableResult
    func refreshTopics(_ topics: [String]) async throws -> Bool {
        let metadata = try await client.refreshMetadata(topics: topics)
        let previous = cluster
        cluster = metadata
        topicsRefreshedAt = .now
        // Only the topics asked for: a shared client's cache holds other clients' topics too.
        let changed = topics.contains { name in
            guard let before = previous.partitionCount(of: name), let now = metadata.partitionCount(of: name) else { return false }
            return before != now
        }
        // A topic asked for and not in the answer does not exist now: nothing to fetch from it until it is back.
        let gone = Set(topics).subtracting(metadata.topics.keys)
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
