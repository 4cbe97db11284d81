import KafkaWire

/// A client quota entity: a user and/or a client id; `nil` name inside means the default entity
/// (Kafka's `<default>`).
public struct ClientQuotaEntity: Sendable, Hashable, CustomStringConvertible {
    public enum Name: Sendable, Hashable {
        case named(String)
        case defaultName
    }

    public var user: Name?
    public var clientId: Name?

    public init(user: Name? = nil, clientId: Name? = nil) {
        self.user = user
        self.clientId = clientId
    }

    /// `user=alice,client-id=<default>`, as Kafka's tools print an entity.
    public var description: String {
        func text(_ name: Name) -> String { if case .named(let n) = name { return n } else { return "<default>" } }
        return [user.map { "user=\(text($0))" }, clientId.map { "client-id=\(text($0))" }].compactMap { $0 }.joined(separator: ",")
    }

    var components: [(type: String, name: String?)] {
        func wire(_ name: Name) -> String? { if case .named(let n) = name { return n } else { return nil } }
        return [user.map { ("user", wire($0)) }, clientId.map { ("client-id", wire($0)) }].compactMap { $0 }
    }
}

/// What DescribeClientQuotas filters by for one entity type.
public enum ClientQuotaMatch: Sendable, Equatable {
    case exact(String)
    case defaultName
    case any
}

extension KafkaAdminClient {
    /// The configured client quotas whose entities match every filter (user and/or client id);
    /// `strict` leaves out entities with other types too.
    public func describeClientQuotas(user: ClientQuotaMatch? = nil, clientId: ClientQuotaMatch? = nil,
                                     strict: Bool = false) async throws -> [ClientQuotaEntity: [String: Double]] {
        func component(_ type: String, _ match: ClientQuotaMatch) -> DescribeClientQuotasRequest.ComponentData {
            switch match {
            case .exact(let name): return .init(entityType: type, matchType: 0, match: name)
            case .defaultName: return .init(entityType: type, matchType: 1, match: nil)
            case .any: return .init(entityType: type, matchType: 2, match: nil)
            }
        }
        let components = [user.map { component("user", $0) }, clientId.map { component("client-id", $0) }].compactMap { $0 }
        let response = try await client.anyConnection().send(DescribeClientQuotasRequest(components: components, strict: strict))
        try Self.check(response.errorCode, response.errorMessage, "describing client quotas failed")
        var result: [ClientQuotaEntity: [String: Double]] = [:]
        for entry in response.entries ?? [] {
            var entity = ClientQuotaEntity()
            for part in entry.entity {
                let name: ClientQuotaEntity.Name = part.entityName.map { .named($0) } ?? .defaultName
                if part.entityType == "user" { entity.user = name } else if part.entityType == "client-id" { entity.clientId = name }
            }
            result[entity] = Dictionary(entry.values.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        }
        return result
    }

    /// Sets (`set`) and removes (`remove`) quotas of one entity: `producer_byte_rate`,
    /// `consumer_byte_rate`, `request_percentage`, ...
    public func alterClientQuotas(_ entity: ClientQuotaEntity, set: [String: Double] = [:], remove: [String] = [],
                                  validateOnly: Bool = false) async throws {
        let ops = set.sorted { $0.key < $1.key }.map { AlterClientQuotasRequest.OpData(key: $0.key, value: $0.value, remove: false) }
            + remove.sorted().map { AlterClientQuotasRequest.OpData(key: $0, value: 0, remove: true) }
        let request = AlterClientQuotasRequest(entries: [.init(entity: entity.components.map { .init(entityType: $0.type, entityName: $0.name) },
                                                               ops: ops)], validateOnly: validateOnly)
        let response = try await client.anyConnection().send(request)
        for entry in response.entries {
            try Self.check(entry.errorCode, entry.errorMessage, "altering the quotas of \(entity) failed")
        }
    }
}
