import Foundation
import KafkaLog
import NIOConcurrencyHelpers

/// The ACLs, kept in `acls.json` in the log directory (Kafka keeps them in its metadata log): created
/// and deleted through CreateAcls and DeleteAcls, the same after a restart. Readers take the current
/// index, an immutable snapshot; a change builds and writes the next one under a lock of its own, so no
/// reader (every authorization, on the event loops) ever waits for the fsync.
final class AclStore: Sendable {
    static let fileName = "acls.json"
    private let path: String
    private let current: NIOLockedValueBox<AclIndex>
    /// Orders the changes: held while one is written.
    private let writer = NIOLockedValueBox(())

    init(directory: String) throws {
        path = directory + "/" + Self.fileName
        let stored = try LogDirectory.readText(path).map { try JSONDecoder().decode([AclBinding].self, from: Data($0.utf8)) } ?? []
        current = NIOLockedValueBox(AclIndex(stored))
    }

    var index: AclIndex { current.withLockedValue { $0 } }

    var all: [AclBinding] { index.all }

    /// Adds the ACLs not there yet (creating an existing one changes nothing, as in Kafka).
    func add(_ acls: [AclBinding]) throws {
        try update { list in
            var present = Set(list)
            for acl in acls where present.insert(acl).inserted { list.append(acl) }
            return ()
        }
    }

    /// Removes and returns the ACLs each filter matches, in the filters' order.
    func remove(matching filters: [AclBindingFilter]) throws -> [[AclBinding]] {
        try update { list in
            let removed = filters.map { filter in list.filter { filter.matches($0) } }
            let gone = Set(removed.joined())
            list.removeAll { gone.contains($0) }
            return removed
        }
    }

    /// Changes the list and writes the file; a failed write leaves the ACLs as they were.
    private func update<T>(_ change: (inout [AclBinding]) -> T) throws -> T {
        try writer.withLockedValue { _ in
            let before = index.all
            var updated = before
            let result = change(&updated)
            if updated != before {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                try LogDirectory.writeAtomically(String(decoding: try encoder.encode(updated), as: UTF8.self), to: path)
                let next = AclIndex(updated)
                current.withLockedValue { $0 = next }
            }
            return result
        }
    }
}

/// The ACLs by resource type and pattern: a literal name is a dictionary lookup, `*` and the prefixed
/// patterns are short lists. Immutable; replaced whole on a change.
struct AclIndex: Sendable {
    struct ByType: Sendable {
        var literal: [String: [AclBinding]] = [:]
        var wildcard: [AclBinding] = []
        var prefixed: [AclBinding] = []
    }

    let all: [AclBinding]
    private let byType: [AclResourceType: ByType]

    init(_ all: [AclBinding]) {
        self.all = all
        var byType: [AclResourceType: ByType] = [:]
        for acl in all {
            switch acl.patternType {
            case .literal where acl.resourceName == AclBinding.wildcard: byType[acl.resourceType, default: ByType()].wildcard.append(acl)
            case .literal: byType[acl.resourceType, default: ByType()].literal[acl.resourceName, default: []].append(acl)
            case .prefixed: byType[acl.resourceType, default: ByType()].prefixed.append(acl)
            default: break
            }
        }
        self.byType = byType
    }

    /// The ACLs whose pattern covers the resource.
    func matching(_ type: AclResourceType, _ name: String) -> [AclBinding] {
        guard let acls = byType[type] else { return [] }
        return (acls.literal[name] ?? []) + acls.wildcard + acls.prefixed.filter { $0.covers(name) }
    }

    /// Every ACL on resources of the type.
    func all(_ type: AclResourceType) -> [AclBinding] {
        guard let acls = byType[type] else { return [] }
        return acls.literal.values.flatMap { $0 } + acls.wildcard + acls.prefixed
    }
}
