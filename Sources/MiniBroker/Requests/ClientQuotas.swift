import KafkaWire

// DescribeClientQuotas and AlterClientQuotas: the user / client-id quotas MiniBroker enforces.

extension RequestDispatcher {
    /// One filter component, checked: the entity type it names and how a name must match.
    private enum QuotaMatch {
        case exact(String)
        case defaultName
        case any

        func matches(_ name: QuotaEntityName) -> Bool {
            switch self {
            case .exact(let wanted): return name == .named(wanted)
            case .defaultName: return name == .defaultName
            case .any: return true
            }
        }
    }

    func describeClientQuotas(_ request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
        func failure(_ message: String) -> DescribeClientQuotasResponse {
            DescribeClientQuotasResponse(throttleTimeMs: 0, errorCode: ErrorCode.invalidRequest.rawValue, errorMessage: message, entries: nil)
        }
        var filter: [String: QuotaMatch] = [:]
        for component in request.components {
            if component.entityType.isEmpty { return failure("Invalid empty entity type.") }
            guard [ClientQuotaEntity.userType, ClientQuotaEntity.clientIdType, "ip"].contains(component.entityType) else {
                return DescribeClientQuotasResponse(throttleTimeMs: 0, errorCode: ErrorCode.unsupportedVersion.rawValue,
                                                    errorMessage: "Unsupported entity type \(component.entityType)", entries: nil)
            }
            guard filter[component.entityType] == nil else {
                return failure("Entity type \(component.entityType) cannot appear more than once in the filter.")
            }
            switch component.matchType {
            case 0:
                guard let name = component.match else { return failure("Request specified MATCH_TYPE_EXACT, but set match string to null.") }
                filter[component.entityType] = .exact(name)
            case 1:
                guard component.match == nil else { return failure("Request specified MATCH_TYPE_DEFAULT, but also specified a match string.") }
                filter[component.entityType] = .defaultName
            case 2:
                guard component.match == nil else { return failure("Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.") }
                filter[component.entityType] = .any
            default:
                return failure("Unknown match type \(component.matchType)")
            }
        }
        if filter["ip"] != nil && (filter[ClientQuotaEntity.userType] != nil || filter[ClientQuotaEntity.clientIdType] != nil) {
            return failure("Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.")
        }
        let entries = broker.quotas.store.all.filter { entity, _ in
            let names: [String: QuotaEntityName] = Dictionary(
                uniqueKeysWithValues: [(ClientQuotaEntity.userType, entity.user), (ClientQuotaEntity.clientIdType, entity.clientId)]
                    .compactMap { type, name in name.map { (type, $0) } })
            for (type, match) in filter {
                guard let name = names[type], match.matches(name) else { return false }
            }
            return !request.strict || names.count == filter.count
        }
        .sorted { "\($0.key.components)" < "\($1.key.components)" }
        .map { entity, values in
            DescribeClientQuotasResponse.EntryData(
                entity: entity.components.map { .init(entityType: $0.type, entityName: $0.name) },
                values: values.sorted { $0.key.rawValue < $1.key.rawValue }.map { .init(key: $0.key.rawValue, value: $0.value) })
        }
        return DescribeClientQuotasResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil, entries: entries)
    }

    func alterClientQuotas(_ request: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
        typealias Entry = AlterClientQuotasResponse.EntryData
        let entries = request.entries.map { entry -> Entry in
            let echoed = entry.entity.map { AlterClientQuotasResponse.EntityData(entityType: $0.entityType, entityName: $0.entityName) }
            func answer(_ code: ErrorCode, _ message: String?) -> Entry { Entry(errorCode: code.rawValue, errorMessage: message, entity: echoed) }
            let parsed: (ClientQuotaEntity, [QuotaKind: Double?])
            switch Self.parseQuotaAlteration(entry) {
            case .success(let value): parsed = value
            case .failure(let problem): return answer(problem.code, problem.message)
            }
            if request.validateOnly { return answer(.noError, nil) }
            do {
                try broker.quotas.alter(parsed.0, parsed.1)
                return answer(.noError, nil)
            } catch {
                logger.error("writing client quotas failed: \(error)")
                return answer(.kafkaStorageError, "The quotas could not be stored: \(error)")
            }
        }
        return AlterClientQuotasResponse(throttleTimeMs: 0, entries: entries)
    }

    struct QuotaProblem: Error {
        var code: ErrorCode
        var message: String
    }

    /// The entity and the changes an AlterClientQuotas entry asks for, or why it cannot apply.
    static func parseQuotaAlteration(_ entry: AlterClientQuotasRequest.EntryData) -> Result<(ClientQuotaEntity, [QuotaKind: Double?]), QuotaProblem> {
        func invalid(_ message: String) -> Result<(ClientQuotaEntity, [QuotaKind: Double?]), QuotaProblem> {
            .failure(QuotaProblem(code: .invalidRequest, message: message))
        }
        var entity = ClientQuotaEntity()
        // An entity type named twice: the last name wins, as Kafka reads the entity into a map.
        for component in entry.entity {
            if component.entityName?.isEmpty == true { return invalid("Empty \(component.entityType) not supported") }
            switch component.entityType {
            case ClientQuotaEntity.userType: entity.user = QuotaEntityName(wire: component.entityName)
            case ClientQuotaEntity.clientIdType: entity.clientId = QuotaEntityName(wire: component.entityName)
            case "ip": return invalid("IP quotas (connection_creation_rate) are not supported by MiniBroker")
            default: return invalid("Unhandled client quota entity type: \(component.entityType)")
            }
        }
        guard entity.user != nil || entity.clientId != nil else { return invalid("Invalid empty client quota entity") }
        var changes: [QuotaKind: Double?] = [:]
        for op in entry.ops {
            let kind = QuotaKind(rawValue: op.key)
            // A removal needs no valid key or value: removing what is not there changes nothing.
            if op.remove {
                if let kind { changes[kind] = .some(nil) }
                continue
            }
            guard let kind else {
                if op.key == "controller_mutation_rate" {
                    return invalid("controller_mutation_rate is not enforced by MiniBroker, so it is not accepted")
                }
                return invalid("Invalid configuration key \(op.key)")
            }
            guard op.value.isFinite, op.value > 0 else { return invalid("Quota \(op.key) must be greater than 0") }
            if kind != .requestPercentage {
                if abs(op.value - op.value.rounded()) > 1e-6 { return invalid("\(op.key) cannot be a fractional value.") }
                if op.value >= 9.223372036854775807e18 { return invalid("Proposed value for \(op.key) is too large for a LONG.") }
            }
            changes[kind] = .some(op.value)
        }
        return .success((entity, changes))
    }
}
