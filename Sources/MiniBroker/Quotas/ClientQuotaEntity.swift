/// One side of a quota entity: a named user or client id, or the default that applies to every
/// name without a quota of its own (`<default>` in Kafka's tools, a null name on the wire).
enum QuotaEntityName: Hashable, Sendable, Codable {
    case named(String)
    case defaultName

    /// The wire form: null for the default.
    var wireName: String? {
        if case .named(let name) = self { return name }
        return nil
    }

    init(wire: String?) { self = wire.map { .named($0) } ?? .defaultName }
}

/// A client quota entity: a user, a client id, or both (Kafka's `/config/users/<u>/clients/<c>`).
struct ClientQuotaEntity: Hashable, Sendable, Codable {
    var user: QuotaEntityName?
    var clientId: QuotaEntityName?

    static let userType = "user"
    static let clientIdType = "client-id"

    /// The entities that may hold the quota of a connection of `user` and `clientId`, most specific
    /// first: Kafka's eight levels, from `/users/<u>/clients/<c>` down to `/clients/<default>`.
    static func candidates(user: String, clientId: String) -> [ClientQuotaEntity] {
        let u = QuotaEntityName.named(user), c = QuotaEntityName.named(clientId)
        return [
            .init(user: u, clientId: c), .init(user: u, clientId: .defaultName), .init(user: u, clientId: nil),
            .init(user: .defaultName, clientId: c), .init(user: .defaultName, clientId: .defaultName),
            .init(user: .defaultName, clientId: nil), .init(user: nil, clientId: c), .init(user: nil, clientId: .defaultName),
        ]
    }

    /// The entity as DescribeClientQuotas and AlterClientQuotas spell it: (type, name or null).
    var components: [(type: String, name: String?)] {
        var result: [(String, String?)] = []
        if let user { result.append((Self.userType, user.wireName)) }
        if let clientId { result.append((Self.clientIdType, clientId.wireName)) }
        return result
    }
}

/// The quotas MiniBroker enforces, by their Kafka config names.
enum QuotaKind: String, CaseIterable, Sendable, Codable {
    /// Bytes per second of produce requests.
    case producerByteRate = "producer_byte_rate"
    /// Bytes per second of fetch responses.
    case consumerByteRate = "consumer_byte_rate"
    /// Percent of one thread's time spent on the client's requests.
    case requestPercentage = "request_percentage"
}
