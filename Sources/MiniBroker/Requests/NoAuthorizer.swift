import KafkaWire

// The ACL and SCRAM credential APIs of a broker without an authorizer or a SASL listener: answered
// as Kafka answers them then, so that an admin tool gets a clear error for the one call, not a
// closed connection for all of them.

extension RequestDispatcher {
    func describeAcls(_ request: DescribeAclsRequest) -> DescribeAclsResponse {
        DescribeAclsResponse(throttleTimeMs: 0, errorCode: ErrorCode.securityDisabled.rawValue,
                             errorMessage: "No Authorizer is configured on the broker", resources: [])
    }

    func createAcls(_ request: CreateAclsRequest) -> CreateAclsResponse {
        CreateAclsResponse(throttleTimeMs: 0, results: request.creations.map { _ in
            .init(errorCode: ErrorCode.securityDisabled.rawValue, errorMessage: "No Authorizer is configured.")
        })
    }

    func deleteAcls(_ request: DeleteAclsRequest) -> DeleteAclsResponse {
        DeleteAclsResponse(throttleTimeMs: 0, filterResults: request.filters.map { _ in
            .init(errorCode: ErrorCode.securityDisabled.rawValue, errorMessage: "No Authorizer is configured.", matchingAcls: [])
        })
    }

    /// No credential exists: none listed for all users; RESOURCE_NOT_FOUND for a named one (Kafka's
    /// messages, a user named twice included).
    func describeUserScramCredentials(_ request: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
        let names = request.users?.map(\.name) ?? []
        var counts: [String: Int] = [:]
        for name in names { counts[name, default: 0] += 1 }
        var answered: Set<String> = []
        let results: [DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult] = names.compactMap { name in
            guard answered.insert(name).inserted else { return nil }
            if counts[name, default: 0] > 1 {
                return .init(user: name, errorCode: ErrorCode.duplicateResource.rawValue,
                             errorMessage: "Cannot describe SCRAM credentials for the same user twice in a single request: \(name)", credentialInfos: [])
            }
            return .init(user: name, errorCode: ErrorCode.resourceNotFound.rawValue,
                         errorMessage: "Attempt to describe a user credential that does not exist: \(name)", credentialInfos: [])
        }
        return DescribeUserScramCredentialsResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil, results: results)
    }

    /// Credentials are only of use to a SASL listener, and this broker has none: each user's
    /// change is refused with SECURITY_DISABLED, nothing is stored.
    func alterUserScramCredentials(_ request: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
        var users: [String] = []
        var seen: Set<String> = []
        for name in request.deletions.map(\.name) + request.upsertions.map(\.name) where seen.insert(name).inserted { users.append(name) }
        return AlterUserScramCredentialsResponse(throttleTimeMs: 0, results: users.map {
            .init(user: $0, errorCode: ErrorCode.securityDisabled.rawValue,
                  errorMessage: "SCRAM credentials are not stored: this broker has no SASL listener")
        })
    }
}
