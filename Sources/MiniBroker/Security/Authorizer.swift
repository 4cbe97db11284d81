import Logging

/// Kafka's StandardAuthorizer rules over the stored ACLs: super users may do everything; a DENY that
/// applies wins over any ALLOW; an ALLOW (or an operation it implies) permits; a resource no ACL names
/// at all is allowed only with allow.everyone.if.no.acl.found. Decisions are logged at debug, denials
/// counted.
final class Authorizer: Sendable {
    let store: AclStore
    let superUsers: Set<String>
    let allowEveryoneIfNoAclFound: Bool
    private let logger: Logger
    private let metrics: BrokerMetrics

    init(store: AclStore, superUsers: Set<String>, allowEveryoneIfNoAclFound: Bool, logger: Logger, metrics: BrokerMetrics) {
        self.store = store
        self.superUsers = superUsers
        self.allowEveryoneIfNoAclFound = allowEveryoneIfNoAclFound
        self.logger = logger
        self.metrics = metrics
    }

    /// Whether `context`'s principal, from its host, may do `operation` on the resource.
    func authorize(_ context: RequestContext, _ operation: AclOperation, _ type: AclResourceType, _ name: String) -> Bool {
        let allowed = decide(context, operation, type, name)
        logger.debug("authorization \(allowed ? "allowed" : "denied")", metadata: [
            "principal": "\(context.principal)", "host": "\(context.host)", "operation": "\(operation)",
            "resource": "\(type):\(name)",
        ])
        if !allowed { metrics.authorizationDenied(type) }
        return allowed
    }

    private func decide(_ context: RequestContext, _ operation: AclOperation, _ type: AclResourceType, _ name: String) -> Bool {
        if superUsers.contains(context.principal.description) { return true }
        let acls = store.index.matching(type, name)
        if acls.isEmpty { return allowEveryoneIfNoAclFound }
        let applicable = acls.filter { $0.applies(to: context.principal, host: context.host) }
        if applicable.contains(where: { $0.permission == .deny && ($0.operation == .all || $0.operation == operation) }) { return false }
        return applicable.contains { $0.permission == .allow && $0.operation.allows(operation) }
    }

    /// Whether the principal may do `operation` on some resource of `type` (KIP-679: WRITE on any
    /// topic lets a producer be idempotent): an ALLOW of its own on any pattern not denied for every
    /// name by a literal `*` DENY.
    func authorizeAny(_ context: RequestContext, _ operation: AclOperation, _ type: AclResourceType) -> Bool {
        if superUsers.contains(context.principal.description) { return true }
        let acls = store.index.all(type)
        if acls.isEmpty { return allowEveryoneIfNoAclFound }
        let applicable = acls.filter { $0.applies(to: context.principal, host: context.host) }
        let deniedEverywhere = applicable.contains {
            $0.permission == .deny && $0.patternType == .literal && $0.resourceName == AclBinding.wildcard && ($0.operation == .all || $0.operation == operation)
        }
        let allowed = !deniedEverywhere && applicable.contains { $0.permission == .allow && $0.operation.allows(operation) }
        if !allowed { metrics.authorizationDenied(type) }
        return allowed
    }
}
