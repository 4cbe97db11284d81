/// Kafka's ACL model, with the codes the ACL APIs carry.

public enum AclResourceType: Int8, Sendable, Codable, CaseIterable {
    case unknown = 0, any = 1, topic = 2, group = 3, cluster = 4, transactionalId = 5, delegationToken = 6, user = 7
}

public enum AclPatternType: Int8, Sendable, Codable {
    case unknown = 0, any = 1, match = 2, literal = 3, prefixed = 4
}

public enum AclOperation: Int8, Sendable, Codable {
    case unknown = 0, any = 1, all = 2, read = 3, write = 4, create = 5, delete = 6, alter = 7, describe = 8
    case clusterAction = 9, describeConfigs = 10, alterConfigs = 11, idempotentWrite = 12, createTokens = 13
    case describeTokens = 14, twoPhaseCommit = 15

    /// Whether an ALLOW of `self` allows `requested`: ALL allows everything, READ, WRITE, DELETE and
    /// ALTER each allow DESCRIBE, ALTER_CONFIGS allows DESCRIBE_CONFIGS (Kafka's implied operations).
    /// A DENY denies only its own operation, or all of them for ALL.
    func allows(_ requested: AclOperation) -> Bool {
        if self == .all || self == requested { return true }
        switch requested {
        case .describe: return [.read, .write, .delete, .alter].contains(self)
        case .describeConfigs: return self == .alterConfigs
        default: return false
        }
    }
}

public enum AclPermissionType: Int8, Sendable, Codable {
    case unknown = 0, any = 1, deny = 2, allow = 3
}

/// One ACL: who (principal, host) may or may not (permission) do what (operation) to which
/// resources (type, name, LITERAL or PREFIXED).
public struct AclBinding: Sendable, Hashable, Codable {
    public var resourceType: AclResourceType
    public var resourceName: String
    public var patternType: AclPatternType
    public var principal: String
    public var host: String
    public var operation: AclOperation
    public var permission: AclPermissionType

    /// The name of the one CLUSTER resource.
    public static let clusterName = "kafka-cluster"
    /// A LITERAL `*` names every resource of its type; `User:*` every principal; host `*` every host.
    public static let wildcard = "*"

    /// Whether this ACL's pattern covers the resource `name` of its type. Names compare as bytes, as
    /// Kafka compares them (Swift's `==` would equate differently composed Unicode).
    func covers(_ name: String) -> Bool {
        switch patternType {
        case .literal: return resourceName.utf8.elementsEqual(name.utf8) || resourceName == Self.wildcard
        case .prefixed: return name.utf8.starts(with: resourceName.utf8)
        default: return false
        }
    }

    func applies(to principal: KafkaPrincipal, host: String) -> Bool {
        (self.principal == principal.description || self.principal == "\(principal.type):\(Self.wildcard)")
            && (self.host == Self.wildcard || self.host == host)
    }
}

/// What DescribeAcls and DeleteAcls select by: unset fields and the ANY codes match everything;
/// pattern MATCH selects the ACLs that would apply to the named resource.
public struct AclBindingFilter: Sendable {
    public var resourceType: AclResourceType
    public var resourceName: String?
    public var patternType: AclPatternType
    public var principal: String?
    public var host: String?
    public var operation: AclOperation
    public var permission: AclPermissionType

    func matches(_ acl: AclBinding) -> Bool {
        guard resourceType == .any || resourceType == acl.resourceType else { return false }
        guard patternType == .any || patternType == .match || patternType == acl.patternType else { return false }
        if let resourceName {
            if patternType == .match {
                guard acl.covers(resourceName) else { return false }
            } else if resourceName != acl.resourceName {
                return false
            }
        }
        if let principal, principal != acl.principal { return false }
        if let host, host != acl.host { return false }
        guard operation == .any || operation == acl.operation else { return false }
        return permission == .any || permission == acl.permission
    }
}
