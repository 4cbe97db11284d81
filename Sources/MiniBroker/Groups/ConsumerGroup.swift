import KafkaWire
import NIOCore

/// Partitions by topic id.
typealias Assignment = [KafkaUUID: Set<Int32>]

/// A member of a KIP-848 consumer group: its subscription, its epoch and the partitions it has
/// been told it owns.
final class ConsumerMember {
    let memberId: String
    var instanceId: String?
    var rackId: String?
    var clientId: String
    var clientHost: String
    var memberEpoch: Int32 = 0
    var previousMemberEpoch: Int32 = -1
    var subscribedTopics: [String] = []
    var subscribedRegex: String?
    var serverAssignor: String?
    var rebalanceTimeoutMs: Int32 = 300_000
    /// What the member was last told it owns.
    var assigned: Assignment = [:]
    /// Partitions it must give up before its epoch may advance.
    var revoking: Assignment = [:]
    var lastHeartbeat = NIODeadline.now()
    var revokingSince: NIODeadline?
    /// The assignment last sent, so that an unchanged one is not sent again.
    var lastSentAssignment: Assignment?

    init(memberId: String, clientId: String, clientHost: String) {
        self.memberId = memberId
        self.clientId = clientId
        self.clientHost = clientHost
    }
}

/// A KIP-848 consumer group: the broker owns membership, computes the target assignment with a
/// server-side assignor, and moves each member towards it without ever giving a partition to two
/// members at once (a partition is handed over only after its previous owner revoked it).
final class ConsumerGroup {
    let groupId: String
    var groupEpoch: Int32 = 0
    var assignmentEpoch: Int32 = 0
    var members: [String: ConsumerMember] = [:]
    var staticMembers: [String: String] = [:]
    var target: [String: Assignment] = [:]
    var assignorName = "uniform"
    /// Partition counts of the subscribed topics when the target was computed.
    var subscriptionMetadata: [String: Int32] = [:]

    init(groupId: String) {
        self.groupId = groupId
    }

    /// ConsumerGroupDescribe's and ListGroups' state names.
    var stateName: String {
        if members.isEmpty { return "Empty" }
        if assignmentEpoch < groupEpoch { return "Assigning" }
        if members.values.contains(where: { $0.memberEpoch != assignmentEpoch }) { return "Reconciling" }
        return "Stable"
    }

    /// Who owns each partition right now (assigned or still revoking).
    func owner(of topicId: KafkaUUID, _ partition: Int32, except memberId: String) -> String? {
        for member in members.values where member.memberId != memberId {
            if member.assigned[topicId]?.contains(partition) == true || member.revoking[topicId]?.contains(partition) == true {
                return member.memberId
            }
        }
        return nil
    }
}

/// The server-side assignors of KIP-848.
enum ServerAssignor {
    static let names = ["uniform", "range"]

    /// `topics`: topic id and partition count of every subscribed topic; `subscriptions`: member id
    /// to the topic ids it subscribes to; `current`: the previous target, kept where still valid.
    static func assign(_ name: String, topics: [(id: KafkaUUID, name: String, partitions: Int32)],
                       subscriptions: [String: Set<KafkaUUID>], current: [String: Assignment]) -> [String: Assignment] {
        name == "range" ? range(topics: topics, subscriptions: subscriptions)
                        : uniform(topics: topics, subscriptions: subscriptions, current: current)
    }

    /// Per topic, members sorted by id take contiguous ranges; the first (n mod m) take one more.
    static func range(topics: [(id: KafkaUUID, name: String, partitions: Int32)], subscriptions: [String: Set<KafkaUUID>]) -> [String: Assignment] {
        var result: [String: Assignment] = Dictionary(uniqueKeysWithValues: subscriptions.keys.map { ($0, [:]) })
        for topic in topics {
            let members = subscriptions.filter { $0.value.contains(topic.id) }.keys.sorted()
            guard !members.isEmpty else { continue }
            let n = Int(topic.partitions), m = members.count
            var next = 0
            for (index, member) in members.enumerated() {
                let count = n / m + (index < n % m ? 1 : 0)
                if count > 0 { result[member]![topic.id] = Set((next..<next + count).map { Int32($0) }) }
                next += count
            }
        }
        return result
    }

    /// Balanced and sticky: every member gets as even a share of the partitions it subscribes to as
    /// possible, and keeps what it had while that stays within its share.
    static func uniform(topics: [(id: KafkaUUID, name: String, partitions: Int32)], subscriptions: [String: Set<KafkaUUID>],
                        current: [String: Assignment]) -> [String: Assignment] {
        var result: [String: Assignment] = Dictionary(uniqueKeysWithValues: subscriptions.keys.map { ($0, [:]) })
        var counts: [String: Int] = Dictionary(uniqueKeysWithValues: subscriptions.keys.map { ($0, 0) })
        let all = topics.sorted { $0.name < $1.name }.flatMap { t in (0..<t.partitions).map { (t.id, $0) } }
        // Shares differ by at most one: every member gets `floor`, and `extras` of them one more.
        let memberCount = max(subscriptions.count, 1)
        let floor = all.count / memberCount
        var extras = all.count % memberCount
        var unassigned: [(KafkaUUID, Int32)] = []
        var kept: [(KafkaUUID, Int32, String)] = []
        // Keep current owners while they are subscribed and within their share.
        for (topic, partition) in all {
            if let owner = current.first(where: { $0.value[topic]?.contains(partition) == true })?.key,
               subscriptions[owner]?.contains(topic) == true {
                kept.append((topic, partition, owner))
            } else {
                unassigned.append((topic, partition))
            }
        }
        for (topic, partition, owner) in kept {
            if counts[owner]! < floor || (counts[owner]! == floor && extras > 0) {
                if counts[owner]! == floor { extras -= 1 }
                result[owner]![topic, default: []].insert(partition)
                counts[owner]! += 1
            } else {
                unassigned.append((topic, partition))
            }
        }
        for (topic, partition) in unassigned {
            guard let member = subscriptions.filter({ $0.value.contains(topic) }).keys.sorted()
                .min(by: { counts[$0]! < counts[$1]! || (counts[$0]! == counts[$1]! && $0 < $1) }) else { continue }
            result[member]![topic, default: []].insert(partition)
            counts[member]! += 1
        }
        return result
    }
}
