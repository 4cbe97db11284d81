import KafkaWire

// CreateAcls, DescribeAcls and DeleteAcls. Without authorizer.class.name they answer SECURITY_DISABLED,
// as Kafka does then (an admin tool gets a clear error for the call, not a closed connection).

extension RequestDispatcher {
    private static let disabled = "No Authorizer is configured on the broker"

    func describeAcls(_ request: DescribeAclsRequest, context: RequestContext) -> DescribeAclsResponse {
        guard let authorizer = broker.authorizer else {
            return DescribeAclsResponse(throttleTimeMs: 0, errorCode: ErrorCode.securityDisabled.rawValue, errorMessage: Self.disabled, resources: [])
        }
        guard authorizer.authorize(context, .describe, .cluster, AclBinding.clusterName) else {
            return DescribeAclsResponse(throttleTimeMs: 0, errorCode: ErrorCode.clusterAuthorizationFailed.rawValue,
                                        errorMessage: "Cluster authorization failed.", resources: [])
        }
        let filter: AclBindingFilter
        switch Self.filter(resourceType: request.resourceTypeFilter, name: request.resourceNameFilter, pattern: request.patternTypeFilter,
                           principal: request.principalFilter, host: request.hostFilter, operation: request.operation,
                           permission: request.permissionType) {
        case .success(let parsed): filter = parsed
        case .failure(let problem):
            return DescribeAclsResponse(throttleTimeMs: 0, errorCode: ErrorCode.invalidRequest.rawValue, errorMessage: problem.message, resources: [])
        }
        var grouped: [AclResourceKey: [AclBinding]] = [:]
        var order: [AclResourceKey] = []
        for acl in authorizer.store.all where filter.matches(acl) {
            let key = AclResourceKey(type: acl.resourceType, name: acl.resourceName, pattern: acl.patternType)
            if grouped[key] == nil { order.append(key) }
            grouped[key, default: []].append(acl)
        }
        return DescribeAclsResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil, resources: order.map { key in
            .init(resourceType: key.type.rawValue, resourceName: key.name, patternType: key.pattern.rawValue,
                  acls: (grouped[key] ?? []).map { .init(principal: $0.principal, host: $0.host, operation: $0.operation.rawValue,
                                                         permissionType: $0.permission.rawValue) })
        })
    }

    func createAcls(_ request: CreateAclsRequest, context: RequestContext) -> CreateAclsResponse {
        typealias Result = CreateAclsResponse.AclCreationResult
        guard let authorizer = broker.authorizer else {
            return CreateAclsResponse(throttleTimeMs: 0, results: request.creations.map { _ in
                Result(errorCode: ErrorCode.securityDisabled.rawValue, errorMessage: "No Authorizer is configured.")
            })
        }
        guard authorizer.authorize(context, .alter, .cluster, AclBinding.clusterName) else {
            return CreateAclsResponse(throttleTimeMs: 0, results: request.creations.map { _ in
                Result(errorCode: ErrorCode.clusterAuthorizationFailed.rawValue, errorMessage: "Cluster authorization failed.")
            })
        }
        let parsed = request.creations.map(Self.binding)
        let valid = parsed.compactMap { try? $0.get() }
        var storeError: String?
        do {
            try authorizer.store.add(valid)
            if !valid.isEmpty { logger.info("ACLs created", metadata: ["count": "\(valid.count)", "by": "\(context.principal)"]) }
        } catch {
            storeError = "The ACLs could not be stored: \(error)"
        }
        return CreateAclsResponse(throttleTimeMs: 0, results: parsed.map { result in
            switch result {
            case .failure(let problem): return Result(errorCode: ErrorCode.invalidRequest.rawValue, errorMessage: problem.message)
            case .success: return storeError.map { Result(errorCode: ErrorCode.kafkaStorageError.rawValue, errorMessage: $0) }
                ?? Result(errorCode: 0, errorMessage: nil)
            }
        })
    }

    func deleteAcls(_ request: DeleteAclsRequest, context: RequestContext) -> DeleteAclsResponse {
        typealias Result = DeleteAclsResponse.DeleteAclsFilterResult
        guard let authorizer = broker.authorizer else {
            return DeleteAclsResponse(throttleTimeMs: 0, filterResults: request.filters.map { _ in
                Result(errorCode: ErrorCode.securityDisabled.rawValue, errorMessage: "No Authorizer is configured.", matchingAcls: [])
            })
        }
        guard authorizer.authorize(context, .alter, .cluster, AclBinding.clusterName) else {
            return DeleteAclsResponse(throttleTimeMs: 0, filterResults: request.filters.map { _ in
                Result(errorCode: ErrorCode.clusterAuthorizationFailed.rawValue, errorMessage: "Cluster authorization failed.", matchingAcls: [])
            })
        }
        let parsed = request.filters.map {
            Self.filter(resourceType: $0.resourceTypeFilter, name: $0.resourceNameFilter, pattern: $0.patternTypeFilter,
                        principal: $0.principalFilter, host: $0.hostFilter, operation: $0.operation, permission: $0.permissionType)
        }
        let removed: [[AclBinding]]
        do {
            removed = try authorizer.store.remove(matching: parsed.compactMap { try? $0.get() })
        } catch {
            return DeleteAclsResponse(throttleTimeMs: 0, filterResults: request.filters.map { _ in
                Result(errorCode: ErrorCode.kafkaStorageError.rawValue, errorMessage: "The ACLs could not be stored: \(error)", matchingAcls: [])
            })
        }
        var next = removed.makeIterator()
        let results = parsed.map { result -> Result in
            switch result {
            case .failure(let problem):
                return Result(errorCode: ErrorCode.invalidRequest.rawValue, errorMessage: problem.message, matchingAcls: [])
            case .success:
                return Result(errorCode: 0, errorMessage: nil, matchingAcls: (next.next() ?? []).map {
                    .init(errorCode: 0, errorMessage: nil, resourceType: $0.resourceType.rawValue, resourceName: $0.resourceName,
                          patternType: $0.patternType.rawValue, principal: $0.principal, host: $0.host,
                          operation: $0.operation.rawValue, permissionType: $0.permission.rawValue)
                })
            }
        }
        let count = removed.reduce(0) { $0 + $1.count }
        if count > 0 { logger.info("ACLs deleted", metadata: ["count": "\(count)", "by": "\(context.principal)"]) }
        return DeleteAclsResponse(throttleTimeMs: 0, filterResults: results)
    }

    struct AclProblem: Error { let message: String }

    /// A creation as Kafka accepts it: a concrete resource type, LITERAL or PREFIXED, a concrete
    /// operation and permission, a `Type:name` principal, a host, and `kafka-cluster` for CLUSTER.
    static func binding(_ creation: CreateAclsRequest.AclCreation) -> Swift.Result<AclBinding, AclProblem> {
        guard let type = AclResourceType(rawValue: creation.resourceType), ![.unknown, .any].contains(type) else {
            return .failure(AclProblem(message: "Invalid resource type \(creation.resourceType)"))
        }
        guard let pattern = AclPatternType(rawValue: creation.resourcePatternType), pattern == .literal || pattern == .prefixed else {
            return .failure(AclProblem(message: "Invalid pattern type \(creation.resourcePatternType): LITERAL or PREFIXED"))
        }
        guard let operation = AclOperation(rawValue: creation.operation), ![.unknown, .any].contains(operation) else {
            return .failure(AclProblem(message: "Invalid operation \(creation.operation)"))
        }
        guard let permission = AclPermissionType(rawValue: creation.permissionType), permission == .allow || permission == .deny else {
            return .failure(AclProblem(message: "Invalid permission type \(creation.permissionType): ALLOW or DENY"))
        }
        let principal = creation.principal.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard principal.count == 2, !principal[0].isEmpty, !principal[1].isEmpty else {
            return .failure(AclProblem(message: "Invalid principal '\(creation.principal.prefix(200))': Type:name, e.g. User:alice"))
        }
        guard !creation.resourceName.isEmpty, !creation.host.isEmpty else {
            return .failure(AclProblem(message: "The resource name and the host must not be empty"))
        }
        if type == .cluster && creation.resourceName != AclBinding.clusterName {
            return .failure(AclProblem(message: "The only valid name for the CLUSTER resource is \(AclBinding.clusterName)"))
        }
        return .success(AclBinding(resourceType: type, resourceName: creation.resourceName, patternType: pattern, principal: creation.principal,
                                   host: creation.host, operation: operation, permission: permission))
    }

    static func filter(resourceType: Int8, name: String?, pattern: Int8, principal: String?, host: String?, operation: Int8,
                       permission: Int8) -> Swift.Result<AclBindingFilter, AclProblem> {
        guard let type = AclResourceType(rawValue: resourceType), type != .unknown,
              let patternType = AclPatternType(rawValue: pattern), patternType != .unknown,
              let op = AclOperation(rawValue: operation), op != .unknown,
              let permissionType = AclPermissionType(rawValue: permission), permissionType != .unknown else {
            return .failure(AclProblem(message: "Invalid ACL filter: every code must be known (ANY matches everything)"))
        }
        return .success(AclBindingFilter(resourceType: type, resourceName: name, patternType: patternType, principal: principal,
                                         host: host, operation: op, permission: permissionType))
    }
}

/// The resource an ACL names, for grouping DescribeAcls' answer.
private struct AclResourceKey: Hashable {
    var type: AclResourceType
    var name: String
    var pattern: AclPatternType
}
