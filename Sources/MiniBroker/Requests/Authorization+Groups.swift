import KafkaWire
import NIOCore

// The group and listing APIs under an authorizer: each group or topic the principal may not touch is
// answered with an authorization error (or left out of a listing), the others are served as usual.

extension RequestDispatcher {
    /// READ on every committed topic (from v10 named by its id; an unknown id is the coordinator's to
    /// answer): refused topics answer TOPIC_AUTHORIZATION_FAILED, the rest are committed.
    func offsetCommit(_ request: OffsetCommitRequest, version: Int16, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        func name(_ topic: OffsetCommitRequest.OffsetCommitRequestTopic) -> String? {
            version >= 10 ? broker.topics.topic(id: topic.topicId)?.name : topic.name
        }
        var verdicts: [String: Bool] = [:]
        for topic in request.topics {
            if let name = name(topic), verdicts[name] == nil { verdicts[name] = permits(context, .read, .topic, name) }
        }
        func isAllowed(_ topic: OffsetCommitRequest.OffsetCommitRequestTopic) -> Bool { name(topic).map { verdicts[$0] == true } ?? true }
        var allowed = request
        allowed.topics = request.topics.filter(isAllowed)
        let denied = request.topics.filter { !isAllowed($0) }
        return coordinator.offsetCommit(allowed, version: version).map { response in
            var response = response
            response.topics += denied.map { topic in
                .init(name: topic.name, topicId: topic.topicId, partitions: topic.partitions.map {
                    .init(partitionIndex: $0.partitionIndex, errorCode: ErrorCode.topicAuthorizationFailed.rawValue)
                })
            }
            return .message(response)
        }
    }

    /// DESCRIBE on the group (each group from v8), then on each topic: a named topic the principal may not
    /// describe answers TOPIC_AUTHORIZATION_FAILED, and "every topic" leaves such topics out.
    func offsetFetch(_ request: OffsetFetchRequest, version: Int16, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let groupDenied = ErrorCode.groupAuthorizationFailed.rawValue
        let topicDenied = ErrorCode.topicAuthorizationFailed.rawValue
        if version < 8 && !permits(context, .describe, .group, request.groupId) {
            return coordinator.loop.makeSucceededFuture(.message(OffsetFetchResponse(errorCode: groupDenied)))
        }
        let (permittedGroups, _) = partition(request.groups.map(\.groupId)) { self.permits(context, .describe, .group, $0) }
        let permittedSet = Set(permittedGroups)
        var allowed = request
        allowed.groups = request.groups.filter { permittedSet.contains($0.groupId) }
        return coordinator.offsetFetch(allowed, version: version).map { [self] response in
            var response = response
            let visible = Verdicts { self.permits(context, .describe, .topic, $0) }
            let answeredGroups = Dictionary(response.groups.map { ($0.groupId, $0) }, uniquingKeysWith: { first, _ in first })
            response.topics = response.topics.compactMap { topic in
                if visible(topic.name) { return topic }
                guard request.topics != nil else { return nil }
                var refused = topic
                refused.partitions = topic.partitions.map { .init(partitionIndex: $0.partitionIndex, committedOffset: -1, committedLeaderEpoch: -1,
                                                                  metadata: nil, errorCode: topicDenied) }
                return refused
            }
            response.groups = request.groups.map { group in
                guard var answered = answeredGroups[group.groupId] else {
                    return .init(groupId: group.groupId, topics: [], errorCode: groupDenied)
                }
                answered.topics = answered.topics.compactMap { topic in
                    if visible(topic.name) { return topic }
                    guard group.topics != nil else { return nil }
                    var refused = topic
                    refused.partitions = topic.partitions.map { .init(partitionIndex: $0.partitionIndex, committedOffset: -1, committedLeaderEpoch: -1,
                                                                      metadata: nil, errorCode: topicDenied) }
                    return refused
                }
                return answered
            }
            return .message(response)
        }
    }

    func describeGroups(_ request: DescribeGroupsRequest, version: Int16, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let (permitted, denied) = partition(request.groups) { self.permits(context, .describe, .group, $0) }
        var allowed = request
        allowed.groups = permitted
        return coordinator.describeGroups(allowed, version: version).map { response in
            var response = response
            for index in response.groups.indices where response.groups[index].errorCode == 0 {
                response.groups[index].authorizedOperations = self.authorizedOperations(
                    if: version >= 3 && request.includeAuthorizedOperations, context, .group, response.groups[index].groupId)
            }
            response.groups += denied.map { .init(errorCode: ErrorCode.groupAuthorizationFailed.rawValue, groupId: $0, authorizedOperations: Int32.min) }
            return .message(response)
        }
    }

    /// DESCRIBE on the cluster lists every group; otherwise the groups the principal may describe.
    func listGroups(_ request: ListGroupsRequest, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let everything = broker.authorizer == nil || permitsCluster(context, .describe)
        return coordinator.listGroups(request).map { [self] response in
            var response = response
            if !everything { response.groups = response.groups.filter { permits(context, .describe, .group, $0.groupId) } }
            return .message(response)
        }
    }

    func deleteGroups(_ request: DeleteGroupsRequest, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let (permitted, denied) = partition(request.groupsNames) { self.permits(context, .delete, .group, $0) }
        var allowed = request
        allowed.groupsNames = permitted
        return coordinator.deleteGroups(allowed).map { response in
            var response = response
            response.results += denied.map { .init(groupId: $0, errorCode: ErrorCode.groupAuthorizationFailed.rawValue) }
            return .message(response)
        }
    }

    func consumerGroupDescribe(_ request: ConsumerGroupDescribeRequest, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let (permitted, denied) = partition(request.groupIds) { self.permits(context, .describe, .group, $0) }
        var allowed = request
        allowed.groupIds = permitted
        return coordinator.consumerGroupDescribe(allowed).map { response in
            var response = response
            for index in response.groups.indices where response.groups[index].errorCode == 0 {
                response.groups[index].authorizedOperations = self.authorizedOperations(
                    if: request.includeAuthorizedOperations, context, .group, response.groups[index].groupId)
            }
            response.groups += denied.map { .init(errorCode: ErrorCode.groupAuthorizationFailed.rawValue, errorMessage: nil, groupId: $0) }
            return .message(response)
        }
    }

    /// DESCRIBE on each transactional id.
    func authorized(_ response: DescribeTransactionsResponse, context: RequestContext) -> DescribeTransactionsResponse {
        var response = response
        response.transactionStates = response.transactionStates.map { state in
            guard permits(context, .describe, .transactionalId, state.transactionalId) else {
                return .init(errorCode: ErrorCode.transactionalIdAuthorizationFailed.rawValue, transactionalId: state.transactionalId,
                             transactionState: "", transactionTimeoutMs: 0, transactionStartTimeMs: -1, producerId: -1, producerEpoch: -1, topics: [])
            }
            // The transaction's topics the principal may not describe are left out (Kafka's rule).
            var visible = state
            visible.topics = state.topics.filter { permits(context, .describe, .topic, $0.topic) }
            return visible
        }
        return response
    }

    /// The transactional ids the principal may describe.
    func authorized(_ response: ListTransactionsResponse, context: RequestContext) -> ListTransactionsResponse {
        var response = response
        response.transactionStates = response.transactionStates.filter { permits(context, .describe, .transactionalId, $0.transactionalId) }
        return response
    }

    /// READ on each topic whose producers are asked for.
    func authorized(_ response: DescribeProducersResponse, context: RequestContext) -> DescribeProducersResponse {
        var response = response
        response.topics = response.topics.map { topic in
            guard !permits(context, .read, .topic, topic.name) else { return topic }
            var refused = topic
            refused.partitions = topic.partitions.map {
                .init(partitionIndex: $0.partitionIndex, errorCode: ErrorCode.topicAuthorizationFailed.rawValue, errorMessage: nil, activeProducers: [])
            }
            return refused
        }
        return response
    }


    /// The names allowed (in request order, repeats kept for the handler to answer once) and the
    /// distinct names refused; each distinct name is decided once.
    private func partition(_ names: [String], _ allowed: @escaping (String) -> Bool) -> (allowed: [String], denied: [String]) {
        let verdicts = Verdicts(allowed)
        let permitted = names.filter { verdicts($0) }
        return (permitted, Set(names.filter { !verdicts($0) }).sorted())
    }

    /// READ on each topic of a transactional commit (the transactional id and the group were checked
    /// before): refused topics answer TOPIC_AUTHORIZATION_FAILED, the rest are committed.
    func txnOffsetCommit(_ request: TxnOffsetCommitRequest, version: Int16, eventLoop: EventLoop,
                         context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let (_, deniedNames) = partition(request.topics.map(\.name)) { self.permits(context, .read, .topic, $0) }
        guard !deniedNames.isEmpty else { return txnOffsetCommit(request, version: version, eventLoop: eventLoop) }
        let refused = Set(deniedNames)
        var allowed = request
        allowed.topics = request.topics.filter { !refused.contains($0.name) }
        let denied = request.topics.filter { refused.contains($0.name) }
        return txnOffsetCommit(allowed, version: version, eventLoop: eventLoop).map { answer in
            guard case .message(var response as TxnOffsetCommitResponse) = answer else { return answer }
            response.topics += denied.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map {
                    .init(partitionIndex: $0.partitionIndex, errorCode: ErrorCode.topicAuthorizationFailed.rawValue)
                })
            }
            return .message(response)
        }
    }

    /// READ on each topic whose offsets are deleted (DELETE on the group was checked before).
    func offsetDelete(_ request: OffsetDeleteRequest, context: RequestContext) -> EventLoopFuture<BrokerResponse> {
        let (_, deniedNames) = partition(request.topics.map(\.name)) { self.permits(context, .read, .topic, $0) }
        let refused = Set(deniedNames)
        var allowed = request
        allowed.topics = request.topics.filter { !refused.contains($0.name) }
        let denied = request.topics.filter { refused.contains($0.name) }
        return coordinator.offsetDelete(allowed).map { response in
            var response = response
            response.topics += denied.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map {
                    .init(partitionIndex: $0.partitionIndex, errorCode: ErrorCode.topicAuthorizationFailed.rawValue)
                })
            }
            return .message(response)
        }
    }
}
