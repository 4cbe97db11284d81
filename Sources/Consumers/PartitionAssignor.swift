import KafkaWire

/// A member of a classic group as its leader sees it: what it subscribes to and what it owns now.
public struct GroupMemberSubscription: Sendable {
    public var memberId: String
    public var groupInstanceId: String?
    public var topics: [String]
    public var ownedPartitions: [TopicPartition]
    public var generation: Int32

    public init(memberId: String, groupInstanceId: String? = nil, topics: [String], ownedPartitions: [TopicPartition] = [], generation: Int32 = -1) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.topics = topics
        self.ownedPartitions = ownedPartitions
        self.generation = generation
    }

    /// Java orders members by group.instance.id when set, then member id.
    var sortKey: String { groupInstanceId ?? memberId }
}

/// The client-side assignors of Kafka's classic consumer protocol, by their protocol names.
public enum PartitionAssignor: String, Sendable, CaseIterable {
    /// Per topic, consecutive ranges of partitions (RangeAssignor).
    case range
    /// All partitions dealt out one by one (RoundRobinAssignor).
    case roundRobin = "roundrobin"
    /// Balanced, keeps what members own, and moves a partition only after its owner gave it up
    /// (CooperativeStickyAssignor: a second rebalance hands over revoked partitions).
    case cooperativeSticky = "cooperative-sticky"

    public var isCooperative: Bool { self == .cooperativeSticky }

    /// The assignment of every member. `partitionCounts` holds the topics' partition counts.
    public func assign(_ members: [GroupMemberSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        let members = members.sorted { $0.sortKey < $1.sortKey }
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        switch self {
        case .range:
            let topics = Set(members.flatMap(\.topics)).sorted()
            for topic in topics {
                guard let count = partitionCounts[topic] else { continue }
                let subscribers = members.filter { $0.topics.contains(topic) }
                let per = Int(count) / subscribers.count, extra = Int(count) % subscribers.count
                for (i, member) in subscribers.enumerated() {
                    let start = i * per + min(i, extra)
                    let length = per + (i < extra ? 1 : 0)
                    result[member.memberId]! += (start..<start + length).map { TopicPartition(topic, Int32($0)) }
                }
            }
        case .roundRobin:
            let all = Self.partitions(of: Set(members.flatMap(\.topics)), partitionCounts)
            var next = 0
            for partition in all {
                for step in 0..<members.count {
                    let member = members[(next + step) % members.count]
                    if member.topics.contains(partition.topic) {
                        result[member.memberId]!.append(partition)
                        next = (next + step + 1) % members.count
                        break
                    }
                }
            }
        case .cooperativeSticky:
            result = Self.sticky(members, partitionCounts)
        }
        return result.mapValues { $0.sorted() }
    }

    static func partitions(of topics: Set<String>, _ counts: [String: Int32]) -> [TopicPartition] {
        topics.sorted().flatMap { topic in (0..<(counts[topic] ?? 0)).map { TopicPartition(topic, $0) } }
    }

    /// Keeps valid owned partitions up to each member's fair share, deals the rest to the members
    /// with the fewest, then holds back any partition another member still owns (it is revoked first).
    private static func sticky(_ members: [GroupMemberSubscription], _ counts: [String: Int32]) -> [String: [TopicPartition]] {
        let all = partitions(of: Set(members.flatMap(\.topics)), counts)
        let existing = Set(all)
        // The current owner of each partition: the claim of the highest generation wins.
        var owner: [TopicPartition: (member: String, generation: Int32)] = [:]
        for member in members {
            for partition in member.ownedPartitions where existing.contains(partition) && member.topics.contains(partition.topic) {
                if let current = owner[partition], current.generation >= member.generation { continue }
                owner[partition] = (member.memberId, member.generation)
            }
        }
        let floor = members.isEmpty ? 0 : all.count / members.count
        var ceilingsLeft = members.isEmpty ? 0 : all.count % members.count
        var result: [String: [TopicPartition]] = [:]
        for member in members {
            var kept = member.ownedPartitions.filter { owner[$0]?.member == member.memberId }.sorted()
            let quota = floor + (ceilingsLeft > 0 && kept.count > floor ? 1 : 0)
            if quota > floor { ceilingsLeft -= 1 }
            if kept.count > quota { kept.removeLast(kept.count - quota) }
            result[member.memberId] = kept
        }
        let taken = Set(result.values.joined())
        for partition in all where !taken.contains(partition) {
            let candidates = members.filter { $0.topics.contains(partition.topic) }
            guard let chosen = candidates.min(by: { (result[$0.memberId]!.count, $0.sortKey) < (result[$1.memberId]!.count, $1.sortKey) }) else { continue }
            result[chosen.memberId]!.append(partition)
        }
        // Cooperative: a partition still owned elsewhere waits for the next rebalance.
        for (member, assigned) in result {
            result[member] = assigned.filter { owner[$0] == nil || owner[$0]!.member == member }
        }
        return result
    }
}
