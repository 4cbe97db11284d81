import KafkaWire

/// A partition as Metadata describes it.
public struct PartitionDescription: Sendable, Equatable {
    public var partition: Int32
    public var leader: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
}

/// A topic as Metadata describes it.
public struct TopicDescription: Sendable, Equatable {
    public var name: String
    public var id: KafkaUUID
    public var isInternal: Bool
    public var partitions: [PartitionDescription]
}

/// The cluster as Metadata describes it.
public struct ClusterDescription: Sendable, Equatable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [BrokerAddress]
}

/// One partition in a log directory (DescribeLogDirs).
public struct LogDirPartition: Sendable, Equatable {
    public var topicPartition: TopicPartition
    public var size: Int64
    public var offsetLag: Int64
}

/// A broker's log directory.
public struct LogDirDescription: Sendable, Equatable {
    public var broker: Int32
    public var path: String
    public var error: ErrorCode
    public var totalBytes: Int64
    public var usableBytes: Int64
    public var partitions: [LogDirPartition]
}

extension KafkaAdminClient {
    public func describeCluster() async throws -> ClusterDescription {
        let metadata = try await client.refreshMetadata(topics: [])
        return ClusterDescription(clusterId: metadata.clusterId, controllerId: metadata.controllerId,
                                  brokers: metadata.brokers.values.sorted { $0.nodeId < $1.nodeId })
    }

    /// Topics with their partitions' leaders, replicas and in-sync replicas (nil: every topic).
    public func describeTopics(_ names: [String]?) async throws -> [TopicDescription] {
        let connection = try await client.anyConnection()
        let response = try await connection.send(MetadataRequest(topics: names?.map { .init(name: $0) }, allowAutoTopicCreation: false))
        return try response.topics.map { topic in
            let name = topic.name ?? "\(topic.topicId)"
            try Self.check(topic.errorCode, nil, "describing topic '\(name)' failed")
            return TopicDescription(name: name, id: topic.topicId, isInternal: topic.isInternal, partitions: topic.partitions.map {
                PartitionDescription(partition: $0.partitionIndex, leader: $0.leaderId, replicas: $0.replicaNodes, isr: $0.isrNodes)
            }.sorted { $0.partition < $1.partition })
        }.sorted { $0.name < $1.name }
    }

    /// The API versions a broker serves (its ApiVersions answer).
    public func apiVersions(broker: Int32? = nil) async throws -> [ApiKey: ClosedRange<Int16>] {
        if let broker { return try await client.connection(to: broker).brokerVersions }
        return try await client.anyConnection().brokerVersions
    }

    /// Each broker's log directories and the partitions in them.
    public func describeLogDirs() async throws -> [LogDirDescription] {
        let metadata = try await client.refreshMetadata(topics: [])
        var result: [LogDirDescription] = []
        for node in metadata.brokers.keys.sorted() {
            let response = try await client.connection(to: node).send(DescribeLogDirsRequest(topics: nil))
            try Self.check(response.errorCode, nil, "describing the log dirs of broker \(node) failed")
            result += response.results.map { dir in
                LogDirDescription(broker: node, path: dir.logDir, error: ErrorCode(rawValue: dir.errorCode), totalBytes: dir.totalBytes,
                                  usableBytes: dir.usableBytes, partitions: dir.topics.flatMap { t in t.partitions.map {
                                      LogDirPartition(topicPartition: TopicPartition(t.name, $0.partitionIndex), size: $0.partitionSize, offsetLag: $0.offsetLag)
                                  } }.sorted { $0.topicPartition < $1.topicPartition })
            }
        }
        return result
    }

    /// Sets and removes topic configs (IncrementalAlterConfigs): removed ones fall back to the
    /// broker's value or Kafka's default.
    public func alterTopicConfigs(_ topic: String, set: [String: String], delete: [String] = [], validateOnly: Bool = false) async throws {
        let configs = set.sorted { $0.key < $1.key }.map { IncrementalAlterConfigsRequest.AlterableConfig(name: $0.key, configOperation: 0, value: $0.value) }
            + delete.sorted().map { IncrementalAlterConfigsRequest.AlterableConfig(name: $0, configOperation: 1, value: nil) }
        let response = try await client.anyConnection().send(IncrementalAlterConfigsRequest(
            resources: [.init(resourceType: 2, resourceName: topic, configs: configs)], validateOnly: validateOnly))
        for result in response.responses {
            try Self.check(result.errorCode, result.errorMessage, "altering the configs of topic '\(topic)' failed")
        }
    }
}
