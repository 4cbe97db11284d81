import KafkaWire

/// A response with a `throttle_time_ms` field.
protocol ThrottleReporting: KafkaResponse {
    var throttleTimeMs: Int32 { get set }
}

extension ApiVersionsResponse: ThrottleReporting {}
extension MetadataResponse: ThrottleReporting {}
extension ProduceResponse: ThrottleReporting {}
extension ListOffsetsResponse: ThrottleReporting {}
extension CreateTopicsResponse: ThrottleReporting {}
extension DeleteTopicsResponse: ThrottleReporting {}
extension CreatePartitionsResponse: ThrottleReporting {}
extension DescribeConfigsResponse: ThrottleReporting {}
extension AlterConfigsResponse: ThrottleReporting {}
extension IncrementalAlterConfigsResponse: ThrottleReporting {}
extension DeleteRecordsResponse: ThrottleReporting {}
extension InitProducerIdResponse: ThrottleReporting {}
extension DescribeClusterResponse: ThrottleReporting {}
extension OffsetForLeaderEpochResponse: ThrottleReporting {}
extension FindCoordinatorResponse: ThrottleReporting {}
extension JoinGroupResponse: ThrottleReporting {}
extension SyncGroupResponse: ThrottleReporting {}
extension HeartbeatResponse: ThrottleReporting {}
extension LeaveGroupResponse: ThrottleReporting {}
extension OffsetCommitResponse: ThrottleReporting {}
extension OffsetFetchResponse: ThrottleReporting {}
extension DescribeGroupsResponse: ThrottleReporting {}
extension ListGroupsResponse: ThrottleReporting {}
extension DeleteGroupsResponse: ThrottleReporting {}
extension OffsetDeleteResponse: ThrottleReporting {}
extension ConsumerGroupHeartbeatResponse: ThrottleReporting {}
extension ConsumerGroupDescribeResponse: ThrottleReporting {}
extension DescribeLogDirsResponse: ThrottleReporting {}
extension DescribeTopicPartitionsResponse: ThrottleReporting {}
extension ElectLeadersResponse: ThrottleReporting {}
extension ListPartitionReassignmentsResponse: ThrottleReporting {}
extension AlterPartitionReassignmentsResponse: ThrottleReporting {}
extension DescribeProducersResponse: ThrottleReporting {}
extension DescribeAclsResponse: ThrottleReporting {}
extension CreateAclsResponse: ThrottleReporting {}
extension DeleteAclsResponse: ThrottleReporting {}
extension DescribeUserScramCredentialsResponse: ThrottleReporting {}
extension AlterUserScramCredentialsResponse: ThrottleReporting {}
extension ListConfigResourcesResponse: ThrottleReporting {}
extension DescribeClientQuotasResponse: ThrottleReporting {}
extension AlterClientQuotasResponse: ThrottleReporting {}
extension UpdateFeaturesResponse: ThrottleReporting {}

extension RequestDispatcher {
    /// Records what the request cost against the client's quotas and returns the answer with the
    /// throttle time (ms) it earned, which the connection then waits out before reading on (KIP-219;
    /// Kafka mutes every version so). Produce counts its request bytes, Fetch its record bytes (a
    /// throttled fetch is answered empty and does not count, as in Kafka), every request but an
    /// acks=0 produce its handling time.
    func applyQuotas(_ answer: BrokerResponse, apiKey: ApiKey, version: Int16, requestBytes: Int,
                     client: QuotaClient, handlerNanos: Int64, nowMs: Int64) -> (BrokerResponse, Int64) {
        let quotas = broker.quotas
        var answer = answer
        // request_percentage: nanoseconds of handling as percent of one thread over a second.
        var throttle: Int64 = 0
        if case .none = answer {} else {
            throttle = quotas.record(.requestPercentage, Double(handlerNanos) * 1e-7, client: client, nowMs: nowMs)
        }
        switch answer {
        case .fetch(var parts):
            let bytes = Double(parts.byteCount)
            throttle = max(throttle, quotas.record(.consumerByteRate, bytes, client: client, nowMs: nowMs))
            if throttle > 0 {
                // Answered empty, whichever quota throttled it: its bytes were not sent, so they do not
                // count (Kafka takes back the fetch bytes, not the request time).
                quotas.unrecord(.consumerByteRate, bytes, client: client, nowMs: nowMs)
                parts = parts.throttled(Int32(clamping: throttle))
                answer = .fetch(parts)
            }
        case .message(let message):
            if apiKey == .produce {
                throttle = max(throttle, quotas.record(.producerByteRate, Double(requestBytes), client: client, nowMs: nowMs))
            }
            if throttle > 0, var reporting = message as? any ThrottleReporting {
                reporting.throttleTimeMs = Int32(clamping: throttle)
                answer = .message(reporting)
            }
        case .none:
            // acks=0: nothing to report in, but the connection is still muted.
            if apiKey == .produce {
                throttle = max(throttle, quotas.record(.producerByteRate, Double(requestBytes), client: client, nowMs: nowMs))
            }
        case .close:
            break
        }
        if throttle > 0 {
            let quota = apiKey == .produce ? QuotaKind.producerByteRate : apiKey == .fetch ? .consumerByteRate : .requestPercentage
            broker.metrics.throttled(quota.rawValue, ms: throttle)
        }
        return (answer, throttle)
    }
}
