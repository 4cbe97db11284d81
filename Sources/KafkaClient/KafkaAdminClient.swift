import KafkaWire

/// A topic to create.
public struct NewTopic: Sendable {
    public var name: String
    /// -1: the broker's num.partitions.
    public var partitions: Int32
    /// -1: the broker's default.replication.factor.
    public var replicationFactor: Int16
    public var configs: [String: String]

    public init(name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// A topic config as DescribeConfigs reports it.
public struct TopicConfigEntry: Sendable, Equatable {
    public var name: String
    public var value: String?
    /// Set on the topic itself rather than inherited from the broker or Kafka's default.
    public var isOverride: Bool

    public init(name: String, value: String?, isOverride: Bool) {
        self.name = name
        self.value = value
        self.isOverride = isOverride
    }
}

/// Topic administration on the client core: create, delete, list and describe topics. Requests go
/// to the controller (any broker of a single node); Kafka errors come back as `KafkaClientError`
/// naming the topic and the error.
public struct KafkaAdminClient: Sendable {
    public let client: KafkaClient

    public init(client: KafkaClient) {
        self.client = client
    }

    private func controller() async throws -> BrokerConnection {
        let metadata = try await client.refreshMetadata(topics: [])
        let target = metadata.controllerId >= 0 ? metadata.controllerId : (metadata.brokers.keys.min() ?? 0)
        return try await client.connection(to: target)
    }

    static func check(_ code: Int16, _ message: String?, _ what: String) throws {
        guard code != 0 else { return }
        let error = ErrorCode(rawValue: code)
        throw KafkaClientError(.broker(error), "\(what): \(error)\(message.map { ": \($0)" } ?? "")")
    }

    /// Creates the topics; `validateOnly` checks without creating. Throws at the first refused topic.
    public func createTopics(_ topics: [NewTopic], validateOnly: Bool = false, timeoutMs: Int32 = 30_000) async throws {
        let request = CreateTopicsRequest(topics: topics.map { topic in
            .init(name: topic.name, numPartitions: topic.partitions, replicationFactor: topic.replicationFactor,
                  configs: topic.configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) })
        }, timeoutMs: timeoutMs, validateOnly: validateOnly)
        let response = try await controller().send(request)
        for result in response.topics {
            try Self.check(result.errorCode, result.errorMessage, "creating topic '\(result.name)' failed")
        }
    }

    public func deleteTopics(_ names: [String], timeoutMs: Int32 = 30_000) async throws {
        let connection = try await controller()
        let version = connection.version(of: .deleteTopics) ?? 0
        let request = version >= 6
            ? DeleteTopicsRequest(topics: names.map { .init(name: $0) }, timeoutMs: timeoutMs)
            : DeleteTopicsRequest(topicNames: names, timeoutMs: timeoutMs)
        let response = try await connection.send(request, version: version)
        for result in response.responses {
            try Self.check(result.errorCode, result.errorMessage, "deleting topic '\(result.name ?? "\(result.topicId)")' failed")
        }
    }

    /// Grows a topic to `totalCount` partitions (Kafka never shrinks one).
    public func createPartitions(_ topic: String, totalCount: Int32, timeoutMs: Int32 = 30_000) async throws {
        let response = try await controller().send(CreatePartitionsRequest(
            topics: [.init(name: topic, count: totalCount, assignments: nil)], timeoutMs: timeoutMs))
        for result in response.results {
            try Self.check(result.errorCode, result.errorMessage, "adding partitions to '\(result.name)' failed")
        }
    }

    /// Every topic with its partition count.
    public func listTopics() async throws -> [String: Int] {
        try await client.refreshMetadata(topics: nil).topics.mapValues { $0.partitions.count }
    }

    /// The effective configs of a topic.
    public func describeTopicConfigs(_ topic: String) async throws -> [String: TopicConfigEntry] {
        let response = try await controller().send(DescribeConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: topic, configurationKeys: nil),
        ]))
        guard let result = response.results.first else {
            throw KafkaClientError(.protocolViolation, "DescribeConfigs answered without the topic")
        }
        try Self.check(result.errorCode, result.errorMessage, "describing topic '\(topic)' failed")
        return Dictionary(uniqueKeysWithValues: result.configs.map {
            ($0.name, TopicConfigEntry(name: $0.name, value: $0.value, isOverride: $0.configSource == 1))
        })
    }
}
