import KafkaWire

/// This member's part in its classic consumer group, as a state machine: the consumer tells it
/// what the coordinator answered and carries out the action it returns (join again, sync, find the
/// coordinator, give partitions up). No I/O and no clock of its own, so every rule of the protocol
/// here is tested without a broker (`GroupMembershipTests`).
struct GroupMembership: Equatable {
    let groupId: String
    /// Given by the coordinator (KIP-394: at the first JoinGroup, with MEMBER_ID_REQUIRED).
    private(set) var memberId = ""
    private(set) var generation: Int32 = -1
    /// The assignor the group chose at the last join.
    private(set) var protocolName: PartitionAssignor?
    /// A (re)join is due: the member has no current assignment to trust.
    private(set) var needsJoin = true
    /// A rejoin was asked for while a join was under way (a new subscription): the join that ends
    /// does not satisfy it.
    private var rejoinRequested = false
    private(set) var lastHeartbeat: ContinuousClock.Instant
    /// The coordinator's node, kept when its connection is dropped (to leave the group from `deinit`).
    var coordinatorNode: Int32?

    init(groupId: String, now: ContinuousClock.Instant = .now) {
        self.groupId = groupId
        lastHeartbeat = now
    }

    enum Step: Equatable {
        case join
        case heartbeat
        case none
    }

    /// What the background loop does next.
    func nextStep(at now: ContinuousClock.Instant, heartbeatInterval: Duration) -> Step {
        if needsJoin { return .join }
        return now - lastHeartbeat >= heartbeatInterval ? .heartbeat : .none
    }

    /// A new subscription or a partition count that changed: a join that is under way was built
    /// without it, so another follows.
    mutating func rejoin() {
        needsJoin = true
        rejoinRequested = true
    }

    /// The coordinator refused this member's generation (a commit answered ILLEGAL_GENERATION):
    /// a join is due, and one already under way is the one that brings the new generation.
    mutating func generationStale() {
        needsJoin = true
    }

    /// A join begins: what it will send covers every rejoin asked for until now.
    mutating func joinStarted() {
        rejoinRequested = false
    }

    /// Fenced (another member took the static identity): nothing more to join.
    mutating func stop() {
        needsJoin = false
    }

    /// LeaveGroup was sent: the member id is spent.
    mutating func left() {
        memberId = ""
    }

    enum JoinAction: Equatable {
        /// KIP-394: the coordinator gave a member id; join again with it.
        case joinAgain
        /// Joined `generation`: send SyncGroup, with the assignment when this member is the leader.
        case sync(asLeader: Bool)
        /// The join failed; `findCoordinator`: ask FindCoordinator before the next try; `fenced`:
        /// another member took this static identity, stop.
        case fail(ErrorCode, findCoordinator: Bool, fenced: Bool)
    }

    mutating func joinAnswered(_ code: ErrorCode, memberId given: String, generation joined: Int32, leader: String,
                               protocolName chosen: String?, skipAssignment: Bool) -> JoinAction {
        switch code {
        case .memberIdRequired:
            // The coordinator counts this member from now on: a close() while the next join waits
            // must leave with this id.
            memberId = given
            return .joinAgain
        case .noError:
            memberId = given
            generation = joined
            protocolName = chosen.flatMap(PartitionAssignor.init(rawValue:))
            return .sync(asLeader: leader == given && !skipAssignment && protocolName != nil)
        case .unknownMemberId, .illegalGeneration:
            memberId = ""
            generation = -1
            return .fail(code, findCoordinator: false, fenced: false)
        case .notCoordinator, .coordinatorNotAvailable:
            return .fail(code, findCoordinator: true, fenced: false)
        case .fencedInstanceId:
            needsJoin = false
            return .fail(code, findCoordinator: false, fenced: true)
        default:
            return .fail(code, findCoordinator: false, fenced: false)
        }
    }

    enum SyncAction: Equatable {
        case fail(ErrorCode, findCoordinator: Bool)
        /// The member's new assignment: what it gives up, what it gains. `followUp`: a cooperative
        /// member gave partitions up, and their new owner gets them in a rebalance that follows.
        case assigned(revoked: Set<TopicPartition>, added: Set<TopicPartition>, followUp: Bool)
    }

    mutating func syncAnswered(_ code: ErrorCode, assigned: Set<TopicPartition>, owned: Set<TopicPartition>,
                               at now: ContinuousClock.Instant) -> SyncAction {
        switch code {
        case .noError:
            let revoked = owned.subtracting(assigned)
            let followUp = protocolName?.isCooperative == true && !revoked.isEmpty
            needsJoin = followUp || rejoinRequested
            lastHeartbeat = now
            return .assigned(revoked: revoked, added: assigned.subtracting(owned), followUp: followUp)
        case .unknownMemberId, .illegalGeneration:
            memberId = ""
            generation = -1
            return .fail(code, findCoordinator: false)
        case .notCoordinator, .coordinatorNotAvailable:
            return .fail(code, findCoordinator: true)
        default:
            return .fail(code, findCoordinator: false)
        }
    }

    enum HeartbeatAction: Equatable {
        case none
        /// A rebalance is under way: join it, keeping the partitions until then.
        case rejoin
        /// The group moved on without this member: its partitions are lost (not revoked), then it joins anew.
        case lose
        case fenced
        case findCoordinator
    }

    mutating func heartbeatAnswered(_ code: ErrorCode, at now: ContinuousClock.Instant) -> HeartbeatAction {
        lastHeartbeat = now
        switch code {
        case .noError:
            return .none
        case .rebalanceInProgress:
            needsJoin = true
            return .rejoin
        case .unknownMemberId, .illegalGeneration:
            memberId = ""
            generation = -1
            needsJoin = true
            return .lose
        case .fencedInstanceId:
            needsJoin = false
            return .fenced
        default:
            return .findCoordinator
        }
    }

    enum CommitAction: Equatable {
        case none
        case findCoordinator
        /// The generation went stale: rejoin (a subscribed member then commits what it still owns).
        case rejoin
    }

    /// What a partition's error in an OffsetCommit answer calls for.
    static func commitAction(for code: ErrorCode) -> CommitAction {
        switch code {
        case .notCoordinator, .coordinatorNotAvailable: return .findCoordinator
        case .unknownMemberId, .illegalGeneration, .rebalanceInProgress: return .rejoin
        default: return .none
        }
    }
}
