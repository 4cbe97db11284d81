import KafkaWire
import NIOCore

/// The states of a classic group, named as DescribeGroups and ListGroups report them.
enum ClassicGroupState: String {
    case empty = "Empty"
    case preparingRebalance = "PreparingRebalance"
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    case dead = "Dead"
}

/// A member of a classic group.
final class ClassicMember {
    let memberId: String
    var groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var sessionTimeoutMs: Int32
    var rebalanceTimeoutMs: Int32
    var protocolType: String
    /// (name, metadata) in the member's order of preference.
    var protocols: [(name: String, metadata: ByteBuffer)]
    var assignment = ByteBuffer()
    /// A JoinGroup waiting for the join phase to end.
    var pendingJoin: EventLoopPromise<JoinGroupResponse>?
    var joinVersion: Int16 = 0
    /// A SyncGroup waiting for the leader's assignment.
    var pendingSync: EventLoopPromise<SyncGroupResponse>?
    var lastHeartbeat: NIODeadline
    /// Joined since the last completed join phase (a new member gets more time, as Kafka's isNew).
    var isNew = true

    /// The member's protocol names, each once: what it counts towards the group's support.
    var protocolNames: Set<String> { Set(protocols.map(\.name)) }

    init(memberId: String, groupInstanceId: String?, clientId: String, clientHost: String, request: JoinGroupRequest) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.clientId = clientId
        self.clientHost = clientHost
        sessionTimeoutMs = request.sessionTimeoutMs
        rebalanceTimeoutMs = request.rebalanceTimeoutMs
        protocolType = request.protocolType
        protocols = request.protocols.map { ($0.name, $0.metadata) }
        lastHeartbeat = .now()
    }

    func update(from request: JoinGroupRequest, clientId: String, clientHost: String) {
        sessionTimeoutMs = request.sessionTimeoutMs
        rebalanceTimeoutMs = request.rebalanceTimeoutMs
        protocols = request.protocols.map { ($0.name, $0.metadata) }
        self.clientId = clientId
        self.clientHost = clientHost
    }

    func metadata(for protocolName: String) -> ByteBuffer {
        protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer()
    }

    func sameProtocols(as request: JoinGroupRequest) -> Bool {
        protocols.map(\.name) == request.protocols.map(\.name) && protocols.map(\.metadata) == request.protocols.map(\.metadata)
    }
}

/// A classic group (JoinGroup/SyncGroup), as Kafka's ClassicGroup: members, generation, leader and
/// the chosen protocol. Only the coordinator's event loop touches it.
final class ClassicGroup {
    let groupId: String
    var state: ClassicGroupState = .empty
    var generationId: Int32 = 0
    var protocolType: String?
    var protocolName: String?
    var leaderId: String?
    private(set) var members: [String: ClassicMember] = [:]
    /// Member ids in join order: the first is the leader candidate.
    private(set) var memberOrder: [String] = []
    /// Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet, and until when they may.
    var pendingMemberIds: [String: NIODeadline] = [:]
    var staticMembers: [String: String] = [:]
    /// The timer that ends the join phase.
    var joinTimer: Scheduled<Void>?
    /// When the initial rebalance delay of an empty group runs out at the latest.
    var initialDelayDeadline: NIODeadline?
    var newMemberAddedDuringDelay = false
    var currentStateTimestamp: Int64 = 0
    /// For each protocol name, how many members support it (Kafka's supportedProtocols): kept as
    /// members come, go and change, so a JoinGroup checks its protocols in time linear in its own.
    private var protocolSupport: [String: Int] = [:]

    init(groupId: String) {
        self.groupId = groupId
    }

    var isEmpty: Bool { members.isEmpty }

    func add(_ member: ClassicMember) {
        if members.isEmpty { protocolType = member.protocolType }
        members[member.memberId] = member
        count(member, +1)
        memberOrder.append(member.memberId)
        if let instance = member.groupInstanceId { staticMembers[instance] = member.memberId }
        if leaderId == nil { leaderId = member.memberId }
    }

    func remove(_ memberId: String) {
        guard let member = members.removeValue(forKey: memberId) else { return }
        count(member, -1)
        memberOrder.removeAll { $0 == memberId }
        if let instance = member.groupInstanceId, staticMembers[instance] == memberId { staticMembers[instance] = nil }
        if leaderId == memberId { leaderId = memberOrder.first }
        if members.isEmpty { protocolType = nil }
    }

    /// Replaces a static member's id (a restarted static member) keeping its place and assignment.
    func replaceStaticMember(instanceId: String, oldMemberId: String, newMember: ClassicMember) {
        guard let old = members.removeValue(forKey: oldMemberId) else { return add(newMember) }
        count(old, -1)
        count(newMember, +1)
        newMember.assignment = old.assignment
        newMember.isNew = false
        members[newMember.memberId] = newMember
        memberOrder = memberOrder.map { $0 == oldMemberId ? newMember.memberId : $0 }
        staticMembers[instanceId] = newMember.memberId
        if leaderId == oldMemberId { leaderId = newMember.memberId }
        // Whoever waited on the old id is fenced.
        old.pendingJoin?.succeed(JoinGroupResponse(errorCode: ErrorCode.fencedInstanceId.rawValue, generationId: -1, memberId: oldMemberId))
        old.pendingSync?.succeed(SyncGroupResponse(errorCode: ErrorCode.fencedInstanceId.rawValue))
    }

    var orderedMembers: [ClassicMember] { memberOrder.compactMap { members[$0] } }

    private func count(_ member: ClassicMember, _ delta: Int) {
        for name in member.protocolNames {
            let n = protocolSupport[name, default: 0] + delta
            protocolSupport[name] = n > 0 ? n : nil
        }
    }

    /// A member's JoinGroup replaces its protocols: the support counts follow.
    func update(_ member: ClassicMember, from request: JoinGroupRequest, clientId: String, clientHost: String) {
        let counted = members[member.memberId] === member
        if counted { count(member, -1) }
        member.update(from: request, clientId: clientId, clientHost: clientHost)
        if counted { count(member, +1) }
    }

    /// Whether every member supports `name`.
    func allSupport(_ name: String) -> Bool { protocolSupport[name, default: 0] == members.count }

    /// Does every member support one of these protocols of this type?
    func supports(protocolType: String, protocols: [String]) -> Bool {
        if members.isEmpty { return !protocolType.isEmpty && !protocols.isEmpty }
        guard self.protocolType == protocolType else { return false }
        return protocols.contains(where: allSupport)
    }

    /// Kafka's vote: each member votes for its most preferred protocol that all members support;
    /// the protocol with most votes wins (ties go to the first candidate in the leader's order).
    func selectProtocol() -> String? {
        let all = orderedMembers
        guard let first = all.first else { return nil }
        var candidates: [String] = []
        var rank: [String: Int] = [:]
        for name in first.protocols.map(\.name) where allSupport(name) && rank[name] == nil {
            rank[name] = candidates.count
            candidates.append(name)
        }
        guard !candidates.isEmpty else { return nil }
        var votes: [String: Int] = [:]
        for member in all {
            if let choice = member.protocols.first(where: { rank[$0.name] != nil })?.name { votes[choice, default: 0] += 1 }
        }
        // Most votes; among equals the leader's earlier preference.
        var best = candidates[0]
        for name in candidates.dropFirst() where votes[name, default: 0] > votes[best, default: 0] { best = name }
        return best
    }

    var allMembersJoined: Bool { members.values.allSatisfy { $0.pendingJoin != nil } && pendingMemberIds.isEmpty }

    var rebalanceTimeoutMs: Int64 { Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0) }
}
