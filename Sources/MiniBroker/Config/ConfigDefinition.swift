/// Kafka's config types, with the codes DescribeConfigs reports (KIP-569).
public enum ConfigType: Int8, Sendable {
    case boolean = 1, string = 2, int = 3, short = 4, long = 5, double = 6, list = 7, `class` = 8, password = 9
}

/// Where a value came from, as DescribeConfigs reports it.
public enum ConfigSource: Int8, Sendable {
    case dynamicTopicConfig = 1
    case staticBrokerConfig = 4
    case defaultConfig = 5
}

/// One supported key: its type, default and what values it accepts.
public struct ConfigDefinition: Sendable {
    public let name: String
    public let type: ConfigType
    public let defaultValue: String?
    /// A reason the value is refused, or nil.
    public let check: @Sendable (String) -> String?

    public init(_ name: String, _ type: ConfigType, _ defaultValue: String?, check: (@Sendable (String) -> String?)? = nil) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.check = check ?? Self.typeCheck(type)
    }

    /// The value's problem, if any: the type's own check.
    public func problem(with value: String) -> String? { check(value) }

    static func typeCheck(_ type: ConfigType) -> @Sendable (String) -> String? {
        switch type {
        case .boolean: return { ["true", "false"].contains($0.lowercased()) ? nil : "must be true or false" }
        case .int: return { Int32($0) != nil ? nil : "must be a 32-bit integer" }
        case .short: return { Int16($0) != nil ? nil : "must be a 16-bit integer" }
        case .long: return { Int64($0) != nil ? nil : "must be a 64-bit integer" }
        case .double: return { Double($0) != nil ? nil : "must be a number" }
        default: return { _ in nil }
        }
    }

    static func atLeast(_ minimum: Int64, _ type: ConfigType) -> @Sendable (String) -> String? {
        let base = typeCheck(type)
        return { value in
            if let problem = base(value) { return problem }
            return (Int64(value) ?? minimum) >= minimum ? nil : "must be at least \(minimum)"
        }
    }

    static func between(_ minimum: Int64, _ maximum: Int64, _ type: ConfigType) -> @Sendable (String) -> String? {
        let base = atLeast(minimum, type)
        return { value in
            if let problem = base(value) { return problem }
            return Int64(value).map { $0 <= maximum } ?? false ? nil : "must be at most \(maximum)"
        }
    }

    /// cleanup.policy: a list of `delete` and `compact`, each at most once, not empty.
    static let cleanupPolicy: @Sendable (String) -> String? = { value in
        let items = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !items.isEmpty, items.allSatisfy({ $0 == "delete" || $0 == "compact" }), Set(items).count == items.count else {
            return "must be a list of delete and compact"
        }
        return nil
    }

    static func policies(_ value: String) -> Set<String> {
        Set(value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    /// A double from 0 to 1 (min.cleanable.dirty.ratio).
    static let fraction: @Sendable (String) -> String? = { value in
        guard let d = Double(value), d >= 0, d <= 1 else { return "must be a number from 0 to 1" }
        return nil
    }

    static func oneOf(_ allowed: [String]) -> @Sendable (String) -> String? {
        { allowed.contains($0) ? nil : "must be one of \(allowed.joined(separator: ", "))" }
    }
}
