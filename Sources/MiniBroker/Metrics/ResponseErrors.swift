import KafkaWire

/// A response with a top-level error code.
protocol TopLevelErrorReporting: KafkaResponse {
    var errorCode: Int16 { get }
}

extension ApiVersionsResponse: TopLevelErrorReporting {}
extension FindCoordinatorResponse: TopLevelErrorReporting {}
extension JoinGroupResponse: TopLevelErrorReporting {}
extension SyncGroupResponse: TopLevelErrorReporting {}
extension HeartbeatResponse: TopLevelErrorReporting {}
extension LeaveGroupResponse: TopLevelErrorReporting {}
extension ListGroupsResponse: TopLevelErrorReporting {}
extension OffsetFetchResponse: TopLevelErrorReporting {}
extension OffsetDeleteResponse: TopLevelErrorReporting {}
extension InitProducerIdResponse: TopLevelErrorReporting {}
extension DescribeClusterResponse: TopLevelErrorReporting {}
extension ConsumerGroupHeartbeatResponse: TopLevelErrorReporting {}
extension DescribeLogDirsResponse: TopLevelErrorReporting {}
extension ElectLeadersResponse: TopLevelErrorReporting {}
extension ListPartitionReassignmentsResponse: TopLevelErrorReporting {}
extension AlterPartitionReassignmentsResponse: TopLevelErrorReporting {}
extension DescribeQuorumResponse: TopLevelErrorReporting {}
extension DescribeAclsResponse: TopLevelErrorReporting {}
extension DescribeUserScramCredentialsResponse: TopLevelErrorReporting {}
extension ListConfigResourcesResponse: TopLevelErrorReporting {}
extension DescribeClientQuotasResponse: TopLevelErrorReporting {}
extension UpdateFeaturesResponse: TopLevelErrorReporting {}

extension RequestDispatcher {
    /// Counts the error codes of an answer: per partition or topic for Produce, Fetch, Metadata,
    /// CreateTopics and DeleteTopics (where clients and tools meet them), the top-level code elsewhere.
    func countErrors(of answer: BrokerResponse, apiKey: ApiKey) {
        let metrics = broker.metrics
        switch answer {
        case .message(let message as ProduceResponse):
            for topic in message.responses { for p in topic.partitionResponses where p.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: p.errorCode)) } }
        case .message(let message as CreateTopicsResponse):
            for topic in message.topics where topic.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: topic.errorCode)) }
        case .message(let message as DeleteTopicsResponse):
            for topic in message.responses where topic.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: topic.errorCode)) }
        case .message(let message as MetadataResponse):
            for topic in message.topics where topic.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: topic.errorCode)) }
        case .message(let message as any TopLevelErrorReporting):
            if message.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: message.errorCode)) }
        case .fetch(let parts):
            if parts.response.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: parts.response.errorCode)) }
            for topic in parts.response.responses { for p in topic.partitions where p.errorCode != 0 { metrics.requestError(apiKey, ErrorCode(rawValue: p.errorCode)) } }
        case .message, .none, .close:
            break
        }
    }

    /// Record bytes per topic of a fetch answer (BytesOutPerSec).
    func countFetched(_ parts: FetchResponseParts) {
        for (t, topic) in parts.response.responses.enumerated() where t < parts.slices.count {
            let bytes = parts.slices[t].reduce(0) { $0 + ($1?.length ?? 0) }
            guard bytes > 0 else { continue }
            let name = topic.topic.isEmpty ? broker.topics.topic(id: topic.topicId)?.name : topic.topic
            if let name { broker.metrics.fetched(topic: name, bytes: bytes) }
        }
    }
}
