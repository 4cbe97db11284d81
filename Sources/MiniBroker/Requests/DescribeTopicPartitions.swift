import KafkaLog
import KafkaWire

// DescribeTopicPartitions (KIP-966): Metadata's topic description, paged by a cursor, as Kafka 3.8+
// admin clients list topics.

extension RequestDispatcher {
    /// Topics sorted by name from the cursor on (an empty list: every topic, internal ones too), at
    /// most `max.request.partition.size.limit` (or the request's smaller limit) partitions in all;
    /// where the budget ends, `nextCursor` says where the next request starts.
    /// Under an authorizer a listing leaves out the topics the principal may not describe (before paging,
    /// so no cursor names one), and a named one is answered TOPIC_AUTHORIZATION_FAILED.
    func describeTopicPartitions(_ request: DescribeTopicPartitionsRequest, context: RequestContext = RequestContext()) -> DescribeTopicPartitionsResponse {
        typealias Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
        let cursor = request.cursor
        let listed = !request.topics.isEmpty
        if let cursor, cursor.partitionIndex < 0 || (listed && !request.topics.contains { $0.name == cursor.topicName }) {
            // Kafka refuses the request for every topic it names.
            return DescribeTopicPartitionsResponse(throttleTimeMs: 0, topics: request.topics.map {
                Topic(errorCode: ErrorCode.invalidRequest.rawValue, name: $0.name, topicId: .zero, isInternal: false, partitions: [],
                      topicAuthorizedOperations: Self.operationsNotProvided)
            }, nextCursor: nil)
        }
        let visible = Verdicts { self.permits(context, .describe, .topic, $0) }
        let names = Set(listed ? request.topics.map(\.name) : broker.topics.all.map(\.name).filter { visible($0) })
            .filter { name in cursor.map { name >= $0.topicName } ?? true }.sorted()
        var budget = max(min(broker.config.maxRequestPartitionSizeLimit, Int(request.responsePartitionLimit)), 1)
        var topics: [Topic] = []
        var next: DescribeTopicPartitionsResponse.Cursor?
        for (index, name) in names.enumerated() {
            guard visible(name) else {
                topics.append(Topic(errorCode: ErrorCode.topicAuthorizationFailed.rawValue, name: name, topicId: .zero, isInternal: false,
                                    partitions: [], topicAuthorizedOperations: Int32.min))
                continue
            }
            guard let topic = broker.topics.topic(name) else {
                let code: ErrorCode = TopicRegistry.nameProblem(name) == nil ? .unknownTopicOrPartition : .invalidTopicException
                topics.append(Topic(errorCode: code.rawValue, name: name, topicId: .zero, isInternal: false, partitions: [],
                                    topicAuthorizedOperations: Self.operationsNotProvided))
                continue
            }
            let first = cursor?.topicName == name ? Int(cursor?.partitionIndex ?? 0) : 0
            let count = max(Int(topic.partitionCount) - first, 0)
            let taken = min(count, budget)
            budget -= taken
            topics.append(Topic(errorCode: 0, name: name, topicId: topic.id, isInternal: TopicRegistry.isInternal(name),
                                partitions: (first..<first + taken).map { (p: Int) in
                                    .init(errorCode: 0, partitionIndex: Int32(p), leaderId: broker.brokerId, leaderEpoch: 0,
                                          replicaNodes: [broker.brokerId], isrNodes: [broker.brokerId], eligibleLeaderReplicas: [],
                                          lastKnownElr: [], offlineReplicas: [])
                                }, topicAuthorizedOperations: authorizedOperations(context, .topic, name)))
            if taken < count {
                next = .init(topicName: name, partitionIndex: Int32(first + taken))
                break
            }
            if budget == 0, index + 1 < names.count {
                next = .init(topicName: names[index + 1], partitionIndex: 0)
                break
            }
        }
        return DescribeTopicPartitionsResponse(throttleTimeMs: 0, topics: topics, nextCursor: next)
    }
}
