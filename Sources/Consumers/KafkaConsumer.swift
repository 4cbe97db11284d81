import Foundation
import KafkaClient
import KafkaWire
import NIOCore
import ServiceLifecycle

/// A pure-Swift Kafka consumer on the shared client core. `subscribe(topics:)` joins a classic
/// consumer group (JoinGroup/SyncGroup, heartbeats in the background, the range, roundrobin and
/// cooperative-sticky assignors, static membership); `assign(_:)` reads chosen partitions without a
/// group. Records come from `records`, an AsyncSequence; positions are committed automatically
/// (`enableAutoCommit`) or with `commit()` / `commit(offsets:)`. `close()` commits (auto-commit),
/// leaves the group and closes the connections.
public actor KafkaConsumer {
    public let configuration: KafkaConsumerConfiguration
    let client: KafkaClient
    /// Whether `close()` closes the client (made by this consumer) or only this consumer's own
    /// connections (a client shared with producers, other consumers or an admin client).
    let ownsClient: Bool
    /// This consumer's connections for Fetches and for its group coordinator.
    let lane = ClientLane()
    /// Next offset to fetch, per assigned partition (absent until initialized from commits or the reset policy).
    var positions: [TopicPartition: Int64] = [:]
    /// What the user was handed up to the last poll: the offsets `commit()` and auto-commit write.
    var consumed: [TopicPartition: Int64] = [:]
    var assignment: Set<TopicPartition> = [] { didSet { fetchEpoch.advance() } }
    var paused: Set<TopicPartition> = [] { didSet { fetchEpoch.advance() } }
    var subscription: [String] = []
    /// The client's metadata as of this consumer's last refresh (partition counts, leaders, topic ids).
    var cluster = ClusterMetadata()
    var topicsRefreshedAt = ContinuousClock.now
    /// The Fetch out to each leader (at most one), sent ahead of the application.
    var pendingFetches: [Int32: PendingFetch] = [:]
    /// How many Fetches the event loop sent the moment an answer came were taken as the next one.
    var fetchesSentFromTheLoop = 0
    /// The last poll's records and how far the `records` iterators got through them.
    nonisolated let fetched = FetchedRecords()
    /// The connection to each leader Fetches went to, used while it is open: no trip through the
    /// client's actor for every Fetch.
    var leaderConnections: [Int32: BrokerConnection] = [:]
    var group: GroupMembership?
    /// The connection to the group coordinator (this consumer's own: commits and heartbeats never
    /// wait behind a Fetch).
    var groupCoordinator: BrokerConnection?
    var closed = false
    /// Set when the consumer cannot go on (fenced); `poll` throws it.
    var stopError: KafkaClientError?
    var groupTask: Task<Void, Never>?
    /// `close()` has begun.
    var closing = false
    /// Callers of `close()` waiting for the first call to finish.
    var closeWaiters: [CheckedContinuation<Void, Never>]? = []
    /// What the consumer keeps retrying, and since when (thrown from `records` once it lasts).
    var failures = PersistentFailures()
    var lastAutoCommit = ContinuousClock.now
    let eventsContinuation: AsyncStream<RebalanceEvent>.Continuation
    /// Rebalance events (assigned, revoked, lost) in order.
    public nonisolated let events: AsyncStream<RebalanceEvent>

    /// A consumer with a client of its own, made from the configuration's bootstrap servers,
    /// security, client id, request timeout and metrics.
    public init(configuration: KafkaConsumerConfiguration) throws {
        try self.init(configuration: configuration, client: nil)
    }

    /// A consumer on a client shared with producers, other consumers or an admin client of this
    /// process: one metadata cache for all of them, while this consumer's Fetches and group requests
    /// keep connections of their own (a Fetch parked at the broker delays nobody else). The
    /// client's bootstrap servers, security, client id, request timeout and metrics apply (the
    /// configuration's are not used); `close()` leaves the client open for the others.
    public init(configuration: KafkaConsumerConfiguration, client: KafkaClient) throws {
        try self.init(configuration: configuration, client: Optional(client))
    }

    private init(configuration: KafkaConsumerConfiguration, client shared: KafkaClient?) throws {
        self.configuration = configuration
        ownsClient = shared == nil
        client = try shared ?? .forOwner(bootstrapServers: configuration.bootstrapServers, clientId: configuration.clientId,
                                         metricsFactory: configuration.metricsFactory, requestTimeoutMs: configuration.requestTimeoutMs,
                                         security: configuration.security)
        (events, eventsContinuation) = AsyncStream.makeStream(of: RebalanceEvent.self, bufferingPolicy: .bufferingNewest(1000))
    }

    /// The records of the assigned partitions, fetched ahead as they are read.
    public nonisolated var records: ConsumerRecords { ConsumerRecords(consumer: self) }
    /// The same records a poll at a time (fewer suspensions for small records).
    public nonisolated var batches: ConsumerRecordBatches { ConsumerRecordBatches(consumer: self) }

    // MARK: Subscription and assignment

    /// Joins the group `groupId` for these topics; partitions are assigned by the group.
    public func subscribe(topics: [String]) throws {
        guard let groupId = configuration.groupId, !groupId.isEmpty else {
            throw KafkaClientError.consumer("subscribe needs group.id (KafkaConsumerConfiguration.groupId)")
        }
        guard !topics.isEmpty else { throw KafkaClientError.consumer("subscribe needs at least one topic") }
        subscription = topics
        if group == nil { group = GroupMembership(groupId: groupId) }
        group?.rejoin()
        startGroupTask()
    }

    /// Reads exactly these partitions, without group membership (commits still go to `groupId` if set).
    public func assign(_ partitions: [TopicPartition]) {
        let new = Set(partitions)
        foldHandedOut()
        unfetch(assignment.subtracting(new))
        for partition in assignment.subtracting(new) {
            positions[partition] = nil
            consumed[partition] = nil
        }
        assignment = new
        startGroupTask()  // auto-commit for a manual assignment with a group id
    }

    public var currentAssignment: [TopicPartition] { assignment.sorted() }

    /// The next offset the consumer will read from a partition.
    public func position(_ partition: TopicPartition) -> Int64? { positions[partition] }

    /// Moves the next fetch of an assigned partition to `offset`.
    public func seek(_ partition: TopicPartition, to offset: Int64) throws {
        guard assignment.contains(partition) else { throw KafkaClientError.consumer("\(partition) is not assigned to this consumer") }
        unfetch([partition])
        positions[partition] = offset
    }

    /// Stops handing out and fetching records of these partitions until `resume`.
    public func pause(_ partitions: [TopicPartition]) {
        paused.formUnion(partitions)
        unfetch(Set(partitions))
    }

    public func resume(_ partitions: [TopicPartition]) { paused.subtract(partitions) }

    // MARK: Commits

    /// Commits the positions of every record handed out so far. A member whose generation went
    /// stale (a rebalance, a coordinator restart) rejoins and commits what it still owns.
    public func commit() async throws {
        guard !closed else { throw KafkaClientError(.closed, "the consumer is closed: nothing can be committed") }
        try await commitRejoiningOnce { [self] in
            foldHandedOut()
            return consumed
        }
    }

    /// Commits explicit offsets: the offset of the *next* record to read, per partition.
    public func commit(offsets: [TopicPartition: Int64]) async throws {
        guard !closed else { throw KafkaClientError(.closed, "the consumer is closed: nothing can be committed") }
        guard configuration.groupId != nil else { throw KafkaClientError.consumer("commit needs group.id") }
        try await commitRejoiningOnce { offsets }
    }

    private func commitRejoiningOnce(_ offsets: () -> [TopicPartition: Int64]) async throws {
        try await awaitMembership()
        // Taken once: an eager rejoin gives every partition up (and forgets what was consumed) before
        // it gets them back, and what was consumed must still be committed for those it gets back.
        let wanted = offsets()
        do {
            try await sendCommit(wanted)
        } catch let error as KafkaClientError where error.isStaleGeneration && !subscription.isEmpty {
            group?.generationStale()
            try await awaitMembership()
            try await sendCommit(wanted.filter { assignment.contains($0.key) })
        }
    }

    /// One OffsetCommit with this member's generation; auto-commit calls it directly (a revoke during
    /// a rebalance commits with the generation that is ending, which the coordinator accepts).
    func sendCommit(_ offsets: [TopicPartition: Int64]) async throws {
        guard !offsets.isEmpty else { return }
        guard let groupId = configuration.groupId else { throw KafkaClientError.consumer("commit needs group.id") }
        try await learnTopicIds(of: offsets.keys)
        let coordinator = try await coordinatorConnection()
        let byTopic = Dictionary(grouping: offsets, by: \.key.topic)
        let request = OffsetCommitRequest(
            groupId: groupId, generationIdOrMemberEpoch: group?.generation ?? -1, memberId: group?.memberId ?? "",
            groupInstanceId: group == nil ? nil : configuration.groupInstanceId, retentionTimeMs: -1,
            topics: byTopic.map { topic, entries in
                .init(name: topic, topicId: cluster.topicId(of: topic), partitions: entries.map {
                    .init(partitionIndex: $0.key.partition, committedOffset: $0.value, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: "")
                })
            })
        let response = try await coordinator.send(request, timeout: requestTimeout)
        for topic in response.topics {
            for partition in topic.partitions where partition.errorCode != 0 {
                let code = ErrorCode(rawValue: partition.errorCode)
                switch GroupMembership.commitAction(for: code) {
                case .findCoordinator: groupCoordinator = nil
                case .rejoin: group?.generationStale()
                case .none: break
                }
                throw KafkaClientError(.broker(code), "committing offsets of \(topic.name)-\(partition.partitionIndex) failed: \(code)")
            }
        }
    }

    /// A subscribed member that is rejoining (after a rebalance or a coordinator restart) commits
    /// with its new generation, not a stale one the coordinator would refuse: wait for the join,
    /// up to request.timeout.ms.
    private func awaitMembership() async throws {
        let deadline = ContinuousClock.now + .milliseconds(configuration.requestTimeoutMs)
        while let group, group.needsJoin, !subscription.isEmpty, !closed, stopError == nil {
            guard ContinuousClock.now < deadline else {
                throw KafkaClientError(.timeout, "group '\(group.groupId)' did not complete its rebalance within request.timeout.ms")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// OffsetCommit and OffsetFetch v10 name topics by id: learn the ids of topics this consumer has
    /// not fetched from (explicit offsets, a consumer that only asks what is committed).
    private func learnTopicIds(of partitions: some Sequence<TopicPartition>) async throws {
        let unknown = Set(partitions.map(\.topic)).filter { cluster.topics[$0] == nil }
        if !unknown.isEmpty { try await refreshTopics(unknown.sorted()) }
    }

    /// The committed offsets of the group for these partitions (nil where none). An offset a
    /// transaction is still committing is waited for (UNSTABLE_OFFSET_COMMIT, up to
    /// default.api.timeout.ms): starting from the older one would read the transaction's input again.
    public func committed(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        let deadline = ContinuousClock.now + .milliseconds(configuration.defaultApiTimeoutMs)
        while true {
            do {
                return try await fetchCommitted(partitions)
            } catch let error as KafkaClientError where error.kind == .broker(.unstableOffsetCommit) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
            }
        }
    }

    /// What this member gives a transactional producer's `sendOffsetsToTransaction`: the group,
    /// and the generation and member id the coordinator checks the commit against.
    public func groupMetadata() throws -> ConsumerGroupMetadata {
        guard let groupId = configuration.groupId else { throw KafkaClientError.consumer("group metadata needs group.id") }
        return ConsumerGroupMetadata(groupId: groupId, generationId: group?.generation ?? -1, memberId: group?.memberId ?? "",
                                     groupInstanceId: group == nil ? nil : configuration.groupInstanceId)
    }

    private func fetchCommitted(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        guard let groupId = configuration.groupId else { throw KafkaClientError.consumer("committed offsets need group.id") }
        try await learnTopicIds(of: partitions)
        let coordinator = try await coordinatorConnection()
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        let request = OffsetFetchRequest(
            groupId: groupId, topics: byTopic.map { .init(name: $0.key, partitionIndexes: $0.value.map(\.partition)) },
            groups: [.init(groupId: groupId, memberId: nil, memberEpoch: -1, topics: byTopic.map {
                .init(name: $0.key, topicId: cluster.topicId(of: $0.key), partitionIndexes: $0.value.map(\.partition))
            })], requireStable: true)
        let response = try await coordinator.send(request, timeout: requestTimeout)
        var result: [TopicPartition: Int64] = [:]
        if let answer = response.groups.first {
            guard answer.errorCode == 0 else {
                throw KafkaClientError(.broker(ErrorCode(rawValue: answer.errorCode)), "OffsetFetch failed: \(ErrorCode(rawValue: answer.errorCode))")
            }
            for topic in answer.topics {
                let name = cluster.topicName(topic.name, id: topic.topicId)
                for partition in topic.partitions {
                    try Self.checkCommitted(partition.errorCode, TopicPartition(name, partition.partitionIndex))
                    if partition.committedOffset >= 0 { result[TopicPartition(name, partition.partitionIndex)] = partition.committedOffset }
                }
            }
        } else {
            guard response.errorCode == 0 else {
                throw KafkaClientError(.broker(ErrorCode(rawValue: response.errorCode)), "OffsetFetch failed: \(ErrorCode(rawValue: response.errorCode))")
            }
            for topic in response.topics {
                for partition in topic.partitions {
                    try Self.checkCommitted(partition.errorCode, TopicPartition(topic.name, partition.partitionIndex))
                    if partition.committedOffset >= 0 { result[TopicPartition(topic.name, partition.partitionIndex)] = partition.committedOffset }
                }
            }
        }
        return result
    }

    /// A partition's error in an OffsetFetch answer: its offset is not to be used.
    private static func checkCommitted(_ errorCode: Int16, _ partition: TopicPartition) throws {
        guard errorCode != 0 else { return }
        let code = ErrorCode(rawValue: errorCode)
        throw KafkaClientError(.broker(code), "the committed offset of \(partition) is not available: \(code)")
    }

    func autoCommitIfDue(force: Bool = false) async {
        guard configuration.enableAutoCommit, configuration.groupId != nil else { return }
        guard force || ContinuousClock.now - lastAutoCommit >= .milliseconds(configuration.autoCommitIntervalMs) else { return }
        lastAutoCommit = .now
        foldHandedOut()
        do {
            try await sendCommit(consumed)
        } catch {
            configuration.logger.warning("auto-commit failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Closing

    /// Stops handing out records, commits what was handed out (with auto-commit), leaves the group
    /// and closes the connections. `records` ends; `commit()` throws `.closed` from then on. Any call
    /// returns once all of that is done: a service whose shutdown handler starts `close()` can await
    /// `close()` again after its loop ends, so that the process does not exit before LeaveGroup.
    public func close() async {
        guard !closed, !closing else {
            if closeWaiters != nil { await withCheckedContinuation { closeWaiters?.append($0) } }
            return
        }
        closing = true
        defer {
            let waiters = closeWaiters ?? []
            closeWaiters = nil
            for waiter in waiters { waiter.resume() }
        }
        // Nothing is handed out after this point, so the final commit covers exactly what was.
        fetched.stop()
        await autoCommitIfDue(force: true)
        closed = true
        groupTask?.cancel()
        await leaveGroup()
        if !assignment.isEmpty { eventsContinuation.yield(.partitionsRevoked(assignment.sorted())) }
        eventsContinuation.finish()
        if ownsClient { await client.close() } else { await client.closeConnections(of: lane) }
    }

    /// Released without `close()`: leaves the group (without waiting for the answer), so that its
    /// partitions go to the other members now rather than after session.timeout.ms, and closes the
    /// connections. Nothing is committed: that needs `close()`.
    deinit {
        guard !closed else { return }
        let client = client, lane = lane, ownsClient = ownsClient
        var leave: (node: Int32, request: LeaveGroupRequest)?
        if let group, !group.memberId.isEmpty, configuration.groupInstanceId == nil, let node = group.coordinatorNode {
            leave = (node, LeaveGroupRequest(groupId: group.groupId, memberId: group.memberId,
                                             members: [.init(memberId: group.memberId, groupInstanceId: nil, reason: "consumer released without close()")]))
        }
        Task {
            if let leave, let connection = try? await client.connection(to: leave.node, for: .groupCoordinator(lane)) {
                _ = try? await connection.send(leave.request, timeout: .seconds(5))
            }
            if ownsClient { await client.close() } else { await client.closeConnections(of: lane) }
        }
    }

    var requestTimeout: TimeAmount { .milliseconds(Int64(configuration.requestTimeoutMs)) }
    var fetchGeneration = 0 { didSet { fetchEpoch.advance() } }
    /// Moves with every change that may make a Fetch under way other than what the consumer wants next
    /// (a seek, pause, resume, rebalance or new assignment): the event loop sends no Fetch ahead for one
    /// sent before the change.
    nonisolated let fetchEpoch = FetchEpoch()
    /// The `fetchGeneration` of each partition's last seek, pause or loss: a fetch under way when it
    /// came does not hand out that partition's records.
    var unfetchedAt: [TopicPartition: Int] = [:]
}

extension KafkaClientError {
    /// The coordinator no longer knows this member's generation.
    var isStaleGeneration: Bool {
        guard case .broker(let code) = kind else { return false }
        return [.unknownMemberId, .illegalGeneration, .rebalanceInProgress].contains(code)
    }
}

extension KafkaConsumer: Service {
    /// Runs until graceful shutdown (or cancellation), then closes: commits, leaves the group.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
