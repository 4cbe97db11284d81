import KafkaWire

// ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): what DescribeConfigs can be asked about.

extension RequestDispatcher {
    /// Config resource types (DescribeConfigs' numbering) and what MiniBroker has of each: topics
    /// and this broker; no group configs, no client-metrics subscriptions. Broker loggers are not
    /// configurable here, so not listed.
    static let listableConfigTypes: [Int8] = [2, 4, 8, 16, 32]

    func listConfigResources(_ request: ListConfigResourcesRequest, version: Int16) -> ListConfigResourcesResponse {
        // v0 lists client-metrics resources only, and there are none.
        guard version >= 1 else { return ListConfigResourcesResponse(throttleTimeMs: 0, errorCode: 0, configResources: []) }
        let types = request.resourceTypes.isEmpty ? Self.listableConfigTypes : request.resourceTypes
        guard types.allSatisfy(Self.listableConfigTypes.contains) else {
            return ListConfigResourcesResponse(throttleTimeMs: 0, errorCode: ErrorCode.unsupportedVersion.rawValue, configResources: [])
        }
        var resources: [ListConfigResourcesResponse.ConfigResource] = []
        if types.contains(4) { resources.append(.init(resourceName: String(broker.brokerId), resourceType: 4)) }
        if types.contains(2) { resources += broker.topics.all.map { .init(resourceName: $0.name, resourceType: 2) } }
        return ListConfigResourcesResponse(throttleTimeMs: 0, errorCode: 0, configResources: resources)
    }
}
