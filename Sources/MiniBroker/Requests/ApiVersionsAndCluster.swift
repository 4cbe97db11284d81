import KafkaLog
import KafkaWire

// ApiVersions, Metadata, DescribeCluster: what the broker serves and where things are.

extension RequestDispatcher {
    func apiVersions(_ request: ApiVersionsRequest, version: Int16) -> ApiVersionsResponse {
        // v3+ checks the client software name and version (KIP-511).
        if version >= 3 {
            for value in [request.clientSoftwareName, request.clientSoftwareVersion] where !Self.isValidSoftwareLabel(value) {
                return ApiVersionsResponse(errorCode: ErrorCode.invalidRequest.rawValue)
            }
        }
        let v2 = broker.features.transactionsV2Enabled
        let keys = Self.served.sorted { $0.key.rawValue < $1.key.rawValue }.map { key, range in
            let cap = v2 ? nil : Self.transactionVersion1Caps[key]
            return ApiVersionsResponse.ApiVersion(apiKey: key.rawValue, minVersion: range.lowerBound, maxVersion: min(range.upperBound, cap ?? .max))
        }
        guard version >= 3 else { return ApiVersionsResponse(errorCode: 0, apiKeys: keys, throttleTimeMs: 0) }
        let features = featureFields(version: version)
        return ApiVersionsResponse(errorCode: 0, apiKeys: keys, throttleTimeMs: 0, supportedFeatures: features.supported,
                                   finalizedFeaturesEpoch: features.epoch, finalizedFeatures: features.finalized, zkMigrationReady: false)
    }

    /// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`, Kafka's rule for client software labels.
    static func isValidSoftwareLabel(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || $0 == 45 || $0 == 46 }
    }

    /// Whether the request may create the topics it names (auto.create.topics.enable, and v4+ asks).
    private func allowsAutoCreate(_ request: MetadataRequest, version: Int16) -> Bool {
        (version < 4 || request.allowAutoTopicCreation) && broker.config.autoCreateTopics
    }

    /// Whether answering would create a topic, which writes files.
    func mayAutoCreate(_ request: MetadataRequest, version: Int16) -> Bool {
        guard allowsAutoCreate(request, version: version), let topics = request.topics else { return false }
        return topics.contains { wanted in wanted.name.map { broker.topics.topic($0) == nil && TopicRegistry.nameProblem($0) == nil } ?? false }
    }

    func metadata(_ request: MetadataRequest, version: Int16, listener: String = "PLAINTEXT", context: RequestContext = RequestContext()) -> MetadataResponse {
        let advertised = broker.advertised(for: listener)
        var response = MetadataResponse(
            throttleTimeMs: 0,
            brokers: [.init(nodeId: broker.brokerId, host: advertised.host, port: Int32(advertised.port), rack: nil)],
            clusterId: broker.clusterId, controllerId: broker.brokerId)
        // v0 and a null list mean every topic; an empty list means none.
        let requested: [MetadataRequest.MetadataRequestTopic]? = version == 0 && (request.topics?.isEmpty ?? true) ? nil : request.topics
        let allowAutoCreate = allowsAutoCreate(request, version: version)
        var states: [(String?, KafkaUUID, TopicState?, ErrorCode)] = []
        if let requested {
            // A topic named twice is answered once, as Kafka answers from a set of names.
            var seenNames: Set<String> = [], seenIds: Set<KafkaUUID> = []
            for wanted in requested where wanted.name.map({ seenNames.insert($0).inserted }) ?? seenIds.insert(wanted.topicId).inserted {
                if let name = wanted.name {
                    // A topic the principal may not describe is an authorization error, existing or not (Kafka
                    // does not tell which); one it may not create is not created.
                    if !permits(context, .describe, .topic, name) {
                        states.append((name, .zero, nil, .topicAuthorizationFailed))
                    } else if let topic = broker.topics.topic(name) {
                        states.append((name, topic.id, topic, .noError))
                    } else if allowAutoCreate, TopicRegistry.nameProblem(name) == nil, !permitsCreate(context, topic: name) {
                        states.append((name, .zero, nil, .topicAuthorizationFailed))
                    } else if allowAutoCreate, TopicRegistry.nameProblem(name) == nil {
                        do {
                            let topic = try broker.topics.create(name: name, partitions: broker.config.numPartitions, overrides: [:], validateOnly: false)
                            states.append((name, topic.id, topic, .noError))
                        } catch {
                            // Created meanwhile by another request: answer with what exists.
                            let existing = broker.topics.topic(name)
                            states.append((name, existing?.id ?? .zero, existing, existing == nil ? error.code : .noError))
                        }
                    } else if TopicRegistry.nameProblem(name) != nil {
                        states.append((name, .zero, nil, .invalidTopicException))
                    } else {
                        states.append((name, .zero, nil, .unknownTopicOrPartition))
                    }
                } else if let topic = broker.topics.topic(id: wanted.topicId) {
                    // A topic id the principal may not describe: refused, its name not given.
                    states.append(permits(context, .describe, .topic, topic.name) ? (topic.name, topic.id, topic, .noError)
                                                                                 : (nil, wanted.topicId, nil, .topicAuthorizationFailed))
                } else {
                    states.append((nil, wanted.topicId, nil, .unknownTopicId))
                }
            }
        } else {
            // Listing every topic leaves out the ones the principal may not describe.
            states = broker.topics.all.filter { permits(context, .describe, .topic, $0.name) }.map { ($0.name, $0.id, $0, .noError) }
        }
        // KIP-430, asked from v8 on (the cluster's only up to v10, after which DescribeCluster answers it).
        let includeTopicOperations = version >= 8 && request.includeTopicAuthorizedOperations
        response.topics = states.map { name, id, topic, error in
            MetadataResponse.MetadataResponseTopic(
                errorCode: error.rawValue, name: name, topicId: id, isInternal: name.map(TopicRegistry.isInternal) ?? false,
                partitions: topic.map { t in (0..<t.partitionCount).map { p in
                    .init(errorCode: 0, partitionIndex: p, leaderId: broker.brokerId, leaderEpoch: 0,
                          replicaNodes: [broker.brokerId], isrNodes: [broker.brokerId], offlineReplicas: [])
                } } ?? [],
                topicAuthorizedOperations: error == .noError ? authorizedOperations(if: includeTopicOperations && name != nil, context, .topic, name ?? "")
                                                             : Self.operationsNotProvided)
        }
        response.clusterAuthorizedOperations = authorizedOperations(if: (8...10).contains(version) && request.includeClusterAuthorizedOperations,
                                                                    context, .cluster, AclBinding.clusterName)
        return response
    }

    func describeCluster(_ request: DescribeClusterRequest, listener: String = "PLAINTEXT", context: RequestContext = RequestContext()) -> DescribeClusterResponse {
        let advertised = broker.advertised(for: listener)
        // Endpoint type 1 asks for brokers; 2 (controllers) has no answer on a combined single node.
        guard request.endpointType == 1 else {
            return DescribeClusterResponse(errorCode: ErrorCode.unsupportedEndpointType.rawValue,
                                           errorMessage: "Only brokers (endpoint type 1) are described", endpointType: request.endpointType)
        }
        return DescribeClusterResponse(
            throttleTimeMs: 0, errorCode: 0, endpointType: 1, clusterId: broker.clusterId, controllerId: broker.brokerId,
            brokers: [.init(brokerId: broker.brokerId, host: advertised.host, port: Int32(advertised.port), rack: nil, isFenced: false)],
            clusterAuthorizedOperations: authorizedOperations(if: request.includeClusterAuthorizedOperations, context, .cluster, AclBinding.clusterName))
    }

    /// Every group (and transactional id) is coordinated by this node. Share groups (key type 2)
    /// are not supported.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16, listener: String = "PLAINTEXT",
                         context: RequestContext = RequestContext()) -> FindCoordinatorResponse {
        let advertised = broker.advertised(for: listener)
        // DESCRIBE on the group or the transactional id the key names.
        func error(for keyType: Int8, key: String) -> ErrorCode {
            switch keyType {
            case 0: return permits(context, .describe, .group, key) ? .noError : .groupAuthorizationFailed
            case 1: return permits(context, .describe, .transactionalId, key) ? .noError : .transactionalIdAuthorizationFailed
            default: return .invalidRequest
            }
        }
        if version >= 4 {
            return FindCoordinatorResponse(throttleTimeMs: 0, coordinators: request.coordinatorKeys.map { key in
                let code = error(for: request.keyType, key: key)
                return .init(key: key, nodeId: code == .noError ? broker.brokerId : -1, host: code == .noError ? advertised.host : "",
                             port: code == .noError ? Int32(advertised.port) : -1, errorCode: code.rawValue,
                             errorMessage: code == .noError ? nil : code == .invalidRequest ? "Unsupported key type \(request.keyType)" : "\(code)")
            })
        }
        let code = error(for: request.keyType, key: request.key)
        guard code == .noError else {
            return FindCoordinatorResponse(errorCode: code.rawValue, errorMessage: code == .invalidRequest ? "Unsupported key type \(request.keyType)" : "\(code)",
                                           nodeId: -1, host: "", port: -1)
        }
        return FindCoordinatorResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil, nodeId: broker.brokerId,
                                       host: advertised.host, port: Int32(advertised.port))
    }
}
