import KafkaWire

// The ACL APIs of a broker without an authorizer: answered as Kafka answers them then, so that an
// admin tool gets a clear error for the one call, not a closed connection for all of them.

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
}
