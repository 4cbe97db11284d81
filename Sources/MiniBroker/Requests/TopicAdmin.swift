import KafkaLog
import KafkaWire

// CreateTopics, DeleteTopics, CreatePartitions.

/// Kafka's controller refuses a request that would write more than 10,000 metadata records (a topic,
/// each of its partitions and each config override count one) with POLICY_VIOLATION. Here it also
/// keeps one request (a mistyped or hostile partition count) from creating millions of log
/// directories while every other request waits.
enum AdminRequestLimit {
    static let maxRecords = 10_000
    static let message = "Unable to perform excessively large batch operation."
}

extension RequestDispatcher {
    func createTopics(_ request: CreateTopicsRequest, version: Int16, context: RequestContext = RequestContext()) -> CreateTopicsResponse {
        typealias Result = CreateTopicsResponse.CreatableTopicResult
        let records = request.topics.reduce(0) { total, topic in
            total + 1 + max(Int(partitionsAsked(by: topic)), 0) + topic.configs.count
        }
        guard records <= AdminRequestLimit.maxRecords else {
            return CreateTopicsResponse(throttleTimeMs: 0, topics: request.topics.map {
                Result(name: $0.name, errorCode: ErrorCode.policyViolation.rawValue, errorMessage: AdminRequestLimit.message,
                       numPartitions: -1, replicationFactor: -1, configs: [])
            })
        }
        var seen: [String: Int] = [:]
        for topic in request.topics { seen[topic.name, default: 0] += 1 }
        let results = request.topics.map { wanted -> Result in
            func failure(_ code: ErrorCode, _ message: String) -> Result {
                Result(name: wanted.name, errorCode: code.rawValue, errorMessage: message, numPartitions: -1, replicationFactor: -1, configs: [])
            }
            if seen[wanted.name, default: 0] > 1 { return failure(.invalidRequest, "Duplicate topic name.") }
            guard permitsCreate(context, topic: wanted.name) else { return failure(.topicAuthorizationFailed, "Authorization failed.") }
            let partitions = partitionsAsked(by: wanted)
            if !wanted.assignments.isEmpty {
                guard wanted.numPartitions == -1, wanted.replicationFactor == -1 else {
                    return failure(.invalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
                }
                guard wanted.assignments.allSatisfy({ $0.brokerIds == [broker.brokerId] }) else {
                    return failure(.invalidReplicaAssignment, "Replicas may only be assigned to broker \(broker.brokerId), the only broker.")
                }
            }
            let replication = wanted.replicationFactor == -1 ? Int16(1) : wanted.replicationFactor
            guard replication > 0 else {
                return failure(.invalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
            }
            guard replication == 1 else {
                return failure(.invalidReplicationFactor, "Unable to replicate the partition \(replication) time(s): The target replication factor of \(replication) cannot be reached because only 1 broker(s) are registered.")
            }
            var overrides: [String: String] = [:]
            for config in wanted.configs {
                guard let value = config.value else { return failure(.invalidConfig, "Null value not supported for topic config '\(config.name)'") }
                overrides[config.name] = value
            }
            do throws(TopicError) {
                let topic = try broker.topics.create(name: wanted.name, partitions: partitions, overrides: overrides, validateOnly: request.validateOnly)
                // The new topic's configs are shown only to who may describe them (Kafka's rule).
                guard permits(context, .describeConfigs, .topic, topic.name) else {
                    return Result(name: topic.name, topicId: topic.id, errorCode: 0, errorMessage: nil, topicConfigErrorCode: ErrorCode.topicAuthorizationFailed.rawValue,
                                  numPartitions: topic.partitionCount, replicationFactor: 1, configs: [])
                }
                return Result(name: topic.name, topicId: topic.id, errorCode: 0, errorMessage: nil, numPartitions: topic.partitionCount,
                              replicationFactor: 1, configs: topicConfigs(overrides: overrides).map {
                                  .init(name: $0.name, value: $0.value, readOnly: false, configSource: $0.configSource, isSensitive: false)
                              })
            } catch {
                return failure(error.code, error.message)
            }
        }
        return CreateTopicsResponse(throttleTimeMs: 0, topics: results)
    }

    /// The partitions a topic of a CreateTopics asks for: one per replica assignment when it lists
    /// them, else its count (-1: the broker's num.partitions).
    private func partitionsAsked(by topic: CreateTopicsRequest.CreatableTopic) -> Int32 {
        guard topic.assignments.isEmpty else { return Int32(topic.assignments.count) }
        return topic.numPartitions == -1 ? broker.config.numPartitions : topic.numPartitions
    }

    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16, context: RequestContext = RequestContext()) -> DeleteTopicsResponse {
        typealias Result = DeleteTopicsResponse.DeletableTopicResult
        let wanted: [(name: String?, id: KafkaUUID)] = version >= 6 ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        let results = wanted.map { item -> Result in
            if item.name != nil && item.id != .zero {
                return Result(name: item.name, topicId: item.id, errorCode: ErrorCode.invalidRequest.rawValue,
                              errorMessage: "You may not specify both topic name and topic id.")
            }
            guard let name = item.name ?? broker.topics.topic(id: item.id)?.name else {
                return Result(name: nil, topicId: item.id, errorCode: (item.id == .zero ? ErrorCode.invalidRequest : .unknownTopicId).rawValue,
                              errorMessage: item.id == .zero ? "Neither topic name nor id were specified." : "This server does not host this topic ID.")
            }
            guard permits(context, .delete, .topic, name) else {
                return Result(name: item.name, topicId: item.id, errorCode: ErrorCode.topicAuthorizationFailed.rawValue, errorMessage: "Authorization failed.")
            }
            do throws(TopicError) {
                let topic = try broker.topics.delete(name: name)
                broker.metrics.topicDeleted(name)
                return Result(name: topic.name, topicId: topic.id, errorCode: 0)
            } catch {
                return Result(name: name, topicId: item.id, errorCode: error.code.rawValue, errorMessage: error.message)
            }
        }
        return DeleteTopicsResponse(throttleTimeMs: 0, responses: results)
    }

    func createPartitions(_ request: CreatePartitionsRequest, context: RequestContext = RequestContext()) -> CreatePartitionsResponse {
        let records = request.topics.reduce(0) { total, wanted in
            total + max(Int(wanted.count) - Int(broker.topics.topic(wanted.name)?.partitionCount ?? 0), 0)
        }
        guard records <= AdminRequestLimit.maxRecords else {
            return CreatePartitionsResponse(throttleTimeMs: 0, results: request.topics.map {
                .init(name: $0.name, errorCode: ErrorCode.policyViolation.rawValue, errorMessage: AdminRequestLimit.message)
            })
        }
        let results = request.topics.map { wanted -> CreatePartitionsResponse.CreatePartitionsTopicResult in
            guard permits(context, .alter, .topic, wanted.name) else {
                return .init(name: wanted.name, errorCode: ErrorCode.topicAuthorizationFailed.rawValue, errorMessage: "Authorization failed.")
            }
            // In Int: a count of Int32.min minus the current count does not fit an Int32.
            if let assignments = wanted.assignments, let current = broker.topics.topic(wanted.name)?.partitionCount,
               wanted.count > current, assignments.count != Int(wanted.count) - Int(current) {
                return .init(name: wanted.name, errorCode: ErrorCode.invalidReplicaAssignment.rawValue,
                             errorMessage: "Increasing the number of partitions by \(Int(wanted.count) - Int(current)) but \(assignments.count) assignments provided.")
            }
            do throws(TopicError) {
                try broker.topics.addPartitions(name: wanted.name, count: wanted.count, validateOnly: request.validateOnly)
                return .init(name: wanted.name, errorCode: 0, errorMessage: nil)
            } catch {
                return .init(name: wanted.name, errorCode: error.code.rawValue, errorMessage: error.message)
            }
        }
        return CreatePartitionsResponse(throttleTimeMs: 0, results: results)
    }
}
