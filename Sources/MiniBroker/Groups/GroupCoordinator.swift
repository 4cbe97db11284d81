import Foundation
import KafkaLog
import KafkaWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The group coordinator of the single node: classic groups (JoinGroup/SyncGroup/Heartbeat/
/// LeaveGroup), KIP-848 consumer groups (ConsumerGroupHeartbeat) and committed offsets. All group
/// state lives on one event loop, in a loop-bound box the compiler and NIO check: requests hop onto
/// the loop, and delayed answers (a JoinGroup waiting for the others, a SyncGroup waiting for the
/// leader) are promises completed from it.
public final class GroupCoordinator: Sendable {
    let loop: EventLoop
    let broker: Broker
    let logger: Logger
    /// Where the offsets log is fsynced when flush.messages or flush.ms falls due.
    let blocking: BlockingExecutor
    /// Everything that changes; reachable only on `loop`.
    private let state: NIOLoopBoundBox<CoordinatorState>
    private let sweeper = NIOLockedValueBox<RepeatedTask?>(nil)

    var classicGroups: [String: ClassicGroup] {
        get { state.value.classicGroups }
        _modify { yield &state.value.classicGroups }
    }
    var consumerGroups: [String: ConsumerGroup] {
        get { state.value.consumerGroups }
        _modify { yield &state.value.consumerGroups }
    }
    var offsets: OffsetStore { state.value.offsets }
    private var lastOffsetExpiryMs: Int64 {
        get { state.value.lastOffsetExpiryMs }
        set { state.value.lastOffsetExpiryMs = newValue }
    }
    private var startedMs: Int64 { state.value.startedMs }
    private var lastActiveMs: [String: Int64] {
        get { state.value.lastActiveMs }
        _modify { yield &state.value.lastActiveMs }
    }

    static let offsetMetadataMaxBytes = 4096
    /// Kafka's __consumer_offsets is compacted (key -> latest commit); no time or size retention.
    static let offsetsTopicConfigs = ["cleanup.policy": "compact", "segment.bytes": "104857600", "max.message.bytes": "104857600",
                                      "message.timestamp.after.max.ms": String(Int64.max)]
    var initialRebalanceDelayMs: Int64 { Int64(broker.config.groupInitialRebalanceDelayMs) }

    public init(broker: Broker, loop: EventLoop, logger: Logger, blocking: BlockingExecutor = .inPlace) throws {
        self.blocking = blocking
        self.broker = broker
        self.loop = loop
        self.logger = logger
        let topic = broker.topics.topic(OffsetStore.topic) ?? (try? broker.topics.create(
            name: OffsetStore.topic, partitions: 1, overrides: Self.offsetsTopicConfigs, validateOnly: false))
        guard let topic, let log = broker.topics.log(OffsetStore.topic, 0) else {
            throw LogError(.io, "cannot open the \(OffsetStore.topic) log")
        }
        // A data directory from before the topic was compacted: retention must never delete its segments
        // (a quiet group's commits would go with them once segment.ms rolls the active segment).
        if topic.overrides["cleanup.policy"] != "compact" {
            do throws(TopicError) {
                try broker.topics.setOverrides(name: OffsetStore.topic, topic.overrides.merging(["cleanup.policy": "compact"]) { $1 },
                                               validateOnly: false)
            } catch {
                throw LogError(.io, "cannot make \(OffsetStore.topic) compacted: \(error.message)")
            }
        }
        let offsets = try OffsetStore(log: log, logger: logger)
        logger.info("group coordinator loaded committed offsets of \(offsets.offsets.count) group(s)")
        state = .makeBoxSendingValue(CoordinatorState(offsets: offsets, startedMs: PartitionLog.currentTimeMs()), eventLoop: loop)
        let task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [weak self] _ in
            self?.sweep()
        }
        sweeper.withLockedValue { $0 = task }
    }

    /// Stops the sweeps and answers every JoinGroup and SyncGroup still waiting with
    /// NOT_COORDINATOR, as Kafka does when a coordinator unloads its groups: the clients look for
    /// the coordinator again instead of waiting on a connection that is going away.
    public func stop() {
        sweeper.withLockedValue { $0?.cancel() }
        loop.execute { [self] in
            for group in classicGroups.values {
                group.joinTimer?.cancel()
                group.joinTimer = nil
                for member in group.orderedMembers {
                    member.pendingJoin?.succeed(JoinGroupResponse(errorCode: ErrorCode.notCoordinator.rawValue, generationId: -1, memberId: member.memberId))
                    member.pendingJoin = nil
                    member.pendingSync?.succeed(SyncGroupResponse(errorCode: ErrorCode.notCoordinator.rawValue))
                    member.pendingSync = nil
                }
            }
        }
    }

    /// Runs `body` on the coordinator's loop and hands its answer back.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        loop.flatSubmit {
            defer { self.offsets.flushIfDue(using: self.blocking, on: self.loop) }
            do { return try body() } catch { return self.loop.makeFailedFuture(error) }
        }
    }

    func now() -> Int64 { PartitionLog.currentTimeMs() }

    // MARK: Expiry

    /// Session expiry for classic and consumer members, pending member ids, and offset retention.
    private func sweep() {
        let deadline = NIODeadline.now()
        for group in classicGroups.values {
            for (id, until) in group.pendingMemberIds where until < deadline {
                group.pendingMemberIds[id] = nil
                if group.state == .preparingRebalance && group.allMembersJoined && group.initialDelayDeadline == nil { completeJoin(group) }
            }
            // A member waiting on its JoinGroup is bounded by the rebalance timeout instead.
            for member in group.orderedMembers where member.pendingJoin == nil
                && member.lastHeartbeat + .milliseconds(Int64(member.sessionTimeoutMs)) < deadline {
                logger.info("member session expired", metadata: ["group": "\(group.groupId)", "member": "\(member.memberId)"])
                removeMemberAndRebalance(group, member.memberId, reason: "session timeout")
            }
        }
        sweepConsumerGroups(deadline)
        if now() - lastOffsetExpiryMs >= 60_000 {
            lastOffsetExpiryMs = now()
            let active = Set(classicGroups.filter { !$0.value.isEmpty }.keys).union(consumerGroups.filter { !$0.value.members.isEmpty }.keys)
            let nowMs = now()
            for group in active { lastActiveMs[group] = nowMs }
            let startedMs = startedMs, lastActive = lastActiveMs
            do {
                try offsets.expire(retentionMs: broker.config.offsetsRetentionMs, activeGroups: active,
                                   emptySince: { max(lastActive[$0] ?? startedMs, startedMs) }, nowMs: nowMs)
            } catch {
                logger.error("expiring offsets failed: \(error)")
            }
            lastActiveMs = lastActiveMs.filter { active.contains($0.key) || offsets.offsets[$0.key] != nil }
            offsets.flushIfDue(using: blocking, on: loop)
        }
    }

    // MARK: Classic: join

    func joinGroup(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) -> EventLoopFuture<JoinGroupResponse> {
        onLoop { [self] in
            func failure(_ code: ErrorCode, memberId: String = request.memberId) -> EventLoopFuture<JoinGroupResponse> {
                loop.makeSucceededFuture(JoinGroupResponse(errorCode: code.rawValue, generationId: -1, protocolType: nil,
                                                           protocolName: nil, leader: "", memberId: memberId))
            }
            guard !request.groupId.isEmpty, ByteBuffer.fitsKafkaString(request.groupId) else { return failure(.invalidGroupId) }
            // What the group echoes to every member, in every version: each must fit an int16 length.
            let echoed = [request.groupInstanceId ?? "", request.protocolType] + request.protocols.map(\.name)
            guard echoed.allSatisfy(ByteBuffer.fitsKafkaString) else { return failure(.invalidRequest) }
            guard (broker.config.groupMinSessionTimeoutMs...broker.config.groupMaxSessionTimeoutMs).contains(request.sessionTimeoutMs) else {
                return failure(.invalidSessionTimeout)
            }
            if let consumer = consumerGroups[request.groupId], !consumer.members.isEmpty {
                // A KIP-848 group is not joined with the classic protocol.
                return failure(.inconsistentGroupProtocol)
            }
            let group = classicGroups[request.groupId] ?? {
                let g = ClassicGroup(groupId: request.groupId)
                classicGroups[request.groupId] = g
                return g
            }()
            guard group.state != .dead else { return failure(.coordinatorNotAvailable) }
            guard group.supports(protocolType: request.protocolType, protocols: request.protocols.map(\.name)) else {
                return failure(.inconsistentGroupProtocol)
            }
            let promise = loop.makePromise(of: JoinGroupResponse.self)
            if request.memberId.isEmpty {
                joinUnknownMember(group, request, version: version, clientId: clientId, clientHost: clientHost, promise: promise)
            } else {
                joinKnownMember(group, request, version: version, clientId: clientId, clientHost: clientHost, promise: promise)
            }
            return promise.futureResult
        }
    }

    /// The client or instance id, then a UUID: the prefix is kept short enough for any version.
    private func newMemberId(_ clientId: String) -> String {
        let prefix = clientId.utf8.count <= 1024 ? clientId : String(decoding: clientId.utf8.prefix(1024), as: UTF8.self)
        return "\(prefix)-\(UUID().uuidString.lowercased())"
    }

    private func joinUnknownMember(_ group: ClassicGroup, _ request: JoinGroupRequest, version: Int16, clientId: String,
                                   clientHost: String, promise: EventLoopPromise<JoinGroupResponse>) {
        // Static members are named after their instance id, dynamic ones after their client id.
        let memberId = newMemberId(request.groupInstanceId ?? clientId)
        if let instanceId = request.groupInstanceId {
            // A static member: it takes over its instance's place (and fences the old member id).
            let member = ClassicMember(memberId: memberId, groupInstanceId: instanceId, clientId: clientId, clientHost: clientHost, request: request)
            member.joinVersion = version
            if let oldId = group.staticMembers[instanceId], let old = group.members[oldId] {
                let unchanged = old.sameProtocols(as: request)
                group.replaceStaticMember(instanceId: instanceId, oldMemberId: oldId, newMember: member)
                if group.state == .stable && unchanged {
                    // Rejoined within its session with the same subscription: no rebalance, same
                    // assignment. A returning leader must not assign again: from v9 it is told to skip,
                    // before that it is shown the old leader id so that it believes itself a follower.
                    let isLeader = group.leaderId == memberId
                    promise.succeed(JoinGroupResponse(
                        errorCode: 0, generationId: group.generationId, protocolType: group.protocolType,
                        protocolName: group.protocolName, leader: isLeader && version < 9 ? oldId : group.leaderId ?? "",
                        skipAssignment: isLeader && version >= 9, memberId: memberId,
                        members: isLeader && version >= 9 ? joinMembers(group) : []))
                    return
                }
                member.pendingJoin = promise
                prepareRebalance(group, reason: "static member \(instanceId) rejoined with new metadata")
                return
            }
            group.add(member)
            member.pendingJoin = promise
            prepareRebalance(group, reason: "static member \(instanceId) joined")
            return
        }
        if version >= 4 {
            // KIP-394: hand out an id first; the member joins again with it.
            group.pendingMemberIds[memberId] = .now() + .milliseconds(Int64(request.sessionTimeoutMs))
            promise.succeed(JoinGroupResponse(errorCode: ErrorCode.memberIdRequired.rawValue, generationId: -1, protocolType: nil,
                                              protocolName: nil, leader: "", memberId: memberId))
            return
        }
        let member = ClassicMember(memberId: memberId, groupInstanceId: nil, clientId: clientId, clientHost: clientHost, request: request)
        member.joinVersion = version
        member.pendingJoin = promise
        group.add(member)
        prepareRebalance(group, reason: "member \(memberId) joined")
    }

    private func joinKnownMember(_ group: ClassicGroup, _ request: JoinGroupRequest, version: Int16, clientId: String,
                                 clientHost: String, promise: EventLoopPromise<JoinGroupResponse>) {
        let memberId = request.memberId
        if let instanceId = request.groupInstanceId, let current = group.staticMembers[instanceId], current != memberId {
            return promise.succeed(JoinGroupResponse(errorCode: ErrorCode.fencedInstanceId.rawValue, generationId: -1, memberId: memberId))
        }
        if group.pendingMemberIds.removeValue(forKey: memberId) != nil {
            let member = ClassicMember(memberId: memberId, groupInstanceId: request.groupInstanceId, clientId: clientId,
                                       clientHost: clientHost, request: request)
            member.joinVersion = version
            member.pendingJoin = promise
            group.add(member)
            prepareRebalance(group, reason: "pending member \(memberId) joined")
            return
        }
        guard let member = group.members[memberId] else {
            return promise.succeed(JoinGroupResponse(errorCode: ErrorCode.unknownMemberId.rawValue, generationId: -1, memberId: memberId))
        }
        let unchanged = member.sameProtocols(as: request)
        group.update(member, from: request, clientId: clientId, clientHost: clientHost)
        member.joinVersion = version
        member.lastHeartbeat = .now()
        // A second JoinGroup while one waits: the older one is superseded.
        member.pendingJoin?.succeed(JoinGroupResponse(errorCode: ErrorCode.unknownMemberId.rawValue, generationId: -1, memberId: memberId))
        member.pendingJoin = promise
        switch group.state {
        case .preparingRebalance:
            maybeCompleteJoin(group)
        case .completingRebalance, .stable:
            if group.state == .stable && unchanged && group.leaderId != memberId {
                // A follower rejoining with the same metadata just gets the current generation.
                member.pendingJoin = nil
                promise.succeed(joinResponse(group, for: member))
            } else {
                prepareRebalance(group, reason: "member \(memberId) rejoined")
            }
        case .empty:
            prepareRebalance(group, reason: "member \(memberId) rejoined")
        case .dead:
            member.pendingJoin = nil
            promise.succeed(JoinGroupResponse(errorCode: ErrorCode.coordinatorNotAvailable.rawValue, generationId: -1, memberId: memberId))
        }
    }

    private func joinMembers(_ group: ClassicGroup) -> [JoinGroupResponse.JoinGroupResponseMember] {
        group.orderedMembers.map {
            .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata(for: group.protocolName ?? ""))
        }
    }

    private func joinResponse(_ group: ClassicGroup, for member: ClassicMember) -> JoinGroupResponse {
        let isLeader = group.leaderId == member.memberId
        return JoinGroupResponse(errorCode: 0, generationId: group.generationId, protocolType: group.protocolType,
                                 protocolName: group.protocolName, leader: group.leaderId ?? "", skipAssignment: false,
                                 memberId: member.memberId, members: isLeader ? joinMembers(group) : [])
    }

    /// Starts (or continues) a join phase. From Empty the initial delay applies, so that a burst of
    /// members starting together lands in one generation.
    private func prepareRebalance(_ group: ClassicGroup, reason: String) {
        if group.state == .completingRebalance {
            // Members waiting on SyncGroup must rejoin.
            for member in group.orderedMembers {
                member.pendingSync?.succeed(SyncGroupResponse(errorCode: ErrorCode.rebalanceInProgress.rawValue))
                member.pendingSync = nil
            }
        }
        if group.state == .preparingRebalance {
            if group.initialDelayDeadline != nil { group.newMemberAddedDuringDelay = true } else { maybeCompleteJoin(group) }
            return
        }
        let wasEmpty = group.state == .empty
        group.state = .preparingRebalance
        group.currentStateTimestamp = now()
        logger.info("preparing to rebalance group", metadata: ["group": "\(group.groupId)", "generation": "\(group.generationId)", "reason": "\(reason)"])
        group.joinTimer?.cancel()
        let rebalanceTimeout = max(group.rebalanceTimeoutMs, 1)
        if wasEmpty && initialRebalanceDelayMs > 0 {
            group.initialDelayDeadline = .now() + .milliseconds(rebalanceTimeout)
            group.newMemberAddedDuringDelay = false
            scheduleInitialDelay(group, delayMs: min(initialRebalanceDelayMs, rebalanceTimeout))
        } else {
            // The group is the loop's: the timer reaches it through a loop-bound reference.
            let bound = NIOLoopBound(group, eventLoop: loop)
            group.joinTimer = loop.scheduleTask(in: .milliseconds(rebalanceTimeout)) { [weak self] in self?.completeJoin(bound.value) }
            maybeCompleteJoin(group)
        }
    }

    private func scheduleInitialDelay(_ group: ClassicGroup, delayMs: Int64) {
        let bound = NIOLoopBound(group, eventLoop: loop)
        group.joinTimer = loop.scheduleTask(in: .milliseconds(delayMs)) { [weak self] in
            let group = bound.value
            guard let self, let deadline = group.initialDelayDeadline else { return }
            let remaining = (deadline.uptimeNanoseconds > NIODeadline.now().uptimeNanoseconds)
                ? Int64((deadline.uptimeNanoseconds - NIODeadline.now().uptimeNanoseconds) / 1_000_000) : 0
            if group.newMemberAddedDuringDelay && remaining > 0 {
                group.newMemberAddedDuringDelay = false
                self.scheduleInitialDelay(group, delayMs: min(self.initialRebalanceDelayMs, remaining))
                return
            }
            group.initialDelayDeadline = nil
            self.completeJoin(group)
        }
    }

    private func maybeCompleteJoin(_ group: ClassicGroup) {
        if group.state == .preparingRebalance && group.initialDelayDeadline == nil && group.allMembersJoined { completeJoin(group) }
    }

    /// Ends the join phase: members that did not rejoin leave, a new generation starts, the protocol
    /// is chosen and every joined member gets its answer (the leader with the member list).
    func completeJoin(_ group: ClassicGroup) {
        guard group.state == .preparingRebalance else { return }
        group.joinTimer?.cancel()
        group.joinTimer = nil
        group.initialDelayDeadline = nil
        for member in group.orderedMembers where member.pendingJoin == nil {
            // Static members keep their place through a rebalance they miss, until their session ends.
            if member.groupInstanceId == nil { group.remove(member.memberId) }
        }
        group.pendingMemberIds.removeAll()
        guard !group.isEmpty, group.orderedMembers.contains(where: { $0.pendingJoin != nil }) else {
            group.generationId += 1
            group.state = .empty
            group.protocolName = nil
            group.currentStateTimestamp = now()
            logger.info("group is empty", metadata: ["group": "\(group.groupId)", "generation": "\(group.generationId)"])
            return
        }
        if let leader = group.leaderId, group.members[leader]?.pendingJoin == nil {
            group.leaderId = group.orderedMembers.first { $0.pendingJoin != nil }?.memberId
        }
        group.generationId += 1
        group.protocolName = group.selectProtocol()
        group.state = .completingRebalance
        group.currentStateTimestamp = now()
        logger.info("group rebalanced", metadata: ["group": "\(group.groupId)", "generation": "\(group.generationId)",
                                                   "members": "\(group.members.count)", "protocol": "\(group.protocolName ?? "")"])
        for member in group.orderedMembers {
            member.isNew = false
            member.lastHeartbeat = .now()
            guard let promise = member.pendingJoin else { continue }
            member.pendingJoin = nil
            promise.succeed(joinResponse(group, for: member))
        }
    }

    func removeMemberAndRebalance(_ group: ClassicGroup, _ memberId: String, reason: String) {
        guard let member = group.members[memberId] else { return }
        member.pendingJoin?.succeed(JoinGroupResponse(errorCode: ErrorCode.unknownMemberId.rawValue, generationId: -1, memberId: memberId))
        member.pendingSync?.succeed(SyncGroupResponse(errorCode: ErrorCode.unknownMemberId.rawValue))
        group.remove(memberId)
        switch group.state {
        case .stable, .completingRebalance:
            prepareRebalance(group, reason: reason)
        case .preparingRebalance:
            maybeCompleteJoin(group)
        case .empty, .dead:
            break
        }
        if group.isEmpty && group.state == .preparingRebalance && group.initialDelayDeadline == nil { completeJoin(group) }
    }

    // MARK: Classic: sync, heartbeat, leave

    func syncGroup(_ request: SyncGroupRequest, version: Int16) -> EventLoopFuture<SyncGroupResponse> {
        onLoop { [self] in
            func answer(_ code: ErrorCode) -> EventLoopFuture<SyncGroupResponse> {
                loop.makeSucceededFuture(SyncGroupResponse(errorCode: code.rawValue))
            }
            guard let group = classicGroups[request.groupId] else { return answer(.unknownMemberId) }
            guard let member = group.members[request.memberId] else { return answer(.unknownMemberId) }
            if let instance = request.groupInstanceId, group.staticMembers[instance] != request.memberId { return answer(.fencedInstanceId) }
            guard request.generationId == group.generationId else { return answer(.illegalGeneration) }
            if let type = request.protocolType, type != group.protocolType { return answer(.inconsistentGroupProtocol) }
            if let name = request.protocolName, name != group.protocolName { return answer(.inconsistentGroupProtocol) }
            member.lastHeartbeat = .now()
            switch group.state {
            case .empty, .dead:
                return answer(.unknownMemberId)
            case .preparingRebalance:
                return answer(.rebalanceInProgress)
            case .stable:
                return loop.makeSucceededFuture(SyncGroupResponse(errorCode: 0, protocolType: group.protocolType,
                                                                  protocolName: group.protocolName, assignment: member.assignment))
            case .completingRebalance:
                let promise = loop.makePromise(of: SyncGroupResponse.self)
                member.pendingSync?.succeed(SyncGroupResponse(errorCode: ErrorCode.rebalanceInProgress.rawValue))
                member.pendingSync = promise
                if group.leaderId == member.memberId {
                    let assignments = Dictionary(request.assignments.map { ($0.memberId, $0.assignment) }, uniquingKeysWith: { a, _ in a })
                    for m in group.orderedMembers { m.assignment = assignments[m.memberId] ?? ByteBuffer() }
                    group.state = .stable
                    group.currentStateTimestamp = now()
                    for m in group.orderedMembers {
                        guard let waiting = m.pendingSync else { continue }
                        m.pendingSync = nil
                        waiting.succeed(SyncGroupResponse(errorCode: 0, protocolType: group.protocolType,
                                                          protocolName: group.protocolName, assignment: m.assignment))
                    }
                }
                return promise.futureResult
            }
        }
    }

    func heartbeat(_ request: HeartbeatRequest) -> EventLoopFuture<HeartbeatResponse> {
        onLoop { [self] in
            func answer(_ code: ErrorCode) -> EventLoopFuture<HeartbeatResponse> {
                loop.makeSucceededFuture(HeartbeatResponse(errorCode: code.rawValue))
            }
            guard let group = classicGroups[request.groupId], let member = group.members[request.memberId] else {
                return answer(.unknownMemberId)
            }
            if let instance = request.groupInstanceId, group.staticMembers[instance] != request.memberId { return answer(.fencedInstanceId) }
            member.lastHeartbeat = .now()
            guard request.generationId == group.generationId else { return answer(.illegalGeneration) }
            switch group.state {
            case .preparingRebalance: return answer(.rebalanceInProgress)
            case .completingRebalance, .stable: return answer(.noError)
            case .empty, .dead: return answer(.unknownMemberId)
            }
        }
    }

    func leaveGroup(_ request: LeaveGroupRequest, version: Int16) -> EventLoopFuture<LeaveGroupResponse> {
        onLoop { [self] in
            let leaving: [LeaveGroupRequest.MemberIdentity] = version >= 3 ? request.members : [.init(memberId: request.memberId)]
            guard let group = classicGroups[request.groupId] else {
                let code = ErrorCode.unknownMemberId.rawValue
                return loop.makeSucceededFuture(version >= 3
                    ? LeaveGroupResponse(errorCode: 0, members: leaving.map { .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: code) })
                    : LeaveGroupResponse(errorCode: code))
            }
            var results: [LeaveGroupResponse.MemberResponse] = []
            for identity in leaving {
                var code = ErrorCode.noError
                let memberId: String?
                if let instance = identity.groupInstanceId {
                    memberId = group.staticMembers[instance]
                    if memberId == nil { code = .unknownMemberId }
                    else if !identity.memberId.isEmpty && identity.memberId != memberId { code = .fencedInstanceId }
                } else {
                    memberId = group.members[identity.memberId] != nil ? identity.memberId : nil
                    if memberId == nil { code = group.pendingMemberIds.removeValue(forKey: identity.memberId) != nil ? .noError : .unknownMemberId }
                }
                if code == .noError, let id = memberId {
                    logger.info("member left group", metadata: ["group": "\(group.groupId)", "member": "\(id)"])
                    removeMemberAndRebalance(group, id, reason: "member \(id) left")
                }
                results.append(.init(memberId: identity.memberId, groupInstanceId: identity.groupInstanceId, errorCode: code.rawValue))
            }
            if version >= 3 { return loop.makeSucceededFuture(LeaveGroupResponse(errorCode: 0, members: results)) }
            return loop.makeSucceededFuture(LeaveGroupResponse(errorCode: results.first?.errorCode ?? 0))
        }
    }
}

/// What the coordinator changes, owned by its event loop (`GroupCoordinator.state`).
struct CoordinatorState {
    var classicGroups: [String: ClassicGroup] = [:]
    var consumerGroups: [String: ConsumerGroup] = [:]
    let offsets: OffsetStore
    var lastOffsetExpiryMs: Int64 = 0
    /// When the coordinator started: no group is known to have been empty for longer.
    let startedMs: Int64
    /// When each group was last seen with members (checked at each offset expiry pass).
    var lastActiveMs: [String: Int64] = [:]

    init(offsets: OffsetStore, startedMs: Int64) {
        self.offsets = offsets
        self.startedMs = startedMs
    }
}
