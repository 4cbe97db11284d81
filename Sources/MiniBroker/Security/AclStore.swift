import Foundation
import KafkaLog
import NIOConcurrencyHelpers

/// The ACLs, kept in `acls.json` in the log directory (Kafka keeps them in its metadata log): created
/// and deleted through CreateAcls and DeleteAcls, the same after a restart. Readers take a snapshot.
final class AclStore: Sendable {
    static let fileName = "acls.json"
    private let path: String
    private let state: NIOLockedValueBox<[AclBinding]>

    init(directory: String) throws {
        path = directory + "/" + Self.fileName
        let stored = try LogDirectory.readText(path).map { try JSONDecoder().decode([AclBinding].self, from: Data($0.utf8)) } ?? []
        state = NIOLockedValueBox(stored)
    }

    var all: [AclBinding] { state.withLockedValue { $0 } }

    /// Adds the ACLs not there yet (creating an existing one changes nothing, as in Kafka).
    func add(_ acls: [AclBinding]) throws {
        try update { current in
            for acl in acls where !current.contains(acl) { current.append(acl) }
            return ()
        }
    }

    /// Removes and returns the ACLs each filter matches, in the filters' order.
    func remove(matching filters: [AclBindingFilter]) throws -> [[AclBinding]] {
        try update { current in
            let removed = filters.map { filter in current.filter { filter.matches($0) } }
            let gone = Set(removed.joined())
            current.removeAll { gone.contains($0) }
            return removed
        }
    }

    /// Changes the list and writes the file under the lock; a failed write leaves the list as it was.
    private func update<T>(_ change: (inout [AclBinding]) -> T) throws -> T {
        try state.withLockedValue { current in
            var updated = current
            let result = change(&updated)
            if updated != current {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                try LogDirectory.writeAtomically(String(decoding: try encoder.encode(updated), as: UTF8.self), to: path)
                current = updated
            }
            return result
        }
    }
}
