import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// The admin APIs tools call beyond topics and groups (issue 24), answered as Kafka answers them on
/// a single node: each answer's content checked, not only that one came back.
@Suite struct AdminApiTests {
    static func fixture() throws -> BrokerFixture {
        let fixture = try BrokerFixture()
        try HostileRequestTests.create(fixture, "orders", partitions: 3)
        try HostileRequestTests.create(fixture, "audit", partitions: 2)
        try HostileRequestTests.create(fixture, "zeta")
        return fixture
    }

    @Test func describeLogDirsGivesTheDirectoryItsSpaceAndEachPartitionsSize() throws {
        let fixture = try Self.fixture()
        #expect(try HostileRequestTests.produce(fixture, "orders", try HostileRequestTests.batch(records: 10, size: 100))?.errorCode == 0)
        let all = try fixture.send(DescribeLogDirsRequest(topics: nil), version: 4)
        #expect(all.errorCode == 0 && all.results.count == 1)
        let dir = try #require(all.results.first)
        #expect(dir.errorCode == 0 && dir.logDir.hasPrefix("/") && dir.logDir.hasSuffix(fixture.directory.split(separator: "/").last.map(String.init) ?? "?"))
        #expect(dir.totalBytes > 0 && dir.usableBytes > 0 && dir.usableBytes <= dir.totalBytes)
        let orders = try #require(dir.topics.first { $0.name == "orders" })
        #expect(orders.partitions.map(\.partitionIndex) == [0, 1, 2])
        let size = try #require(fixture.broker.topics.log("orders", 0)?.sizeInBytes)
        #expect(orders.partitions[0].partitionSize == Int64(size) && size > 1000 && orders.partitions[1].partitionSize == 0)
        #expect(orders.partitions.allSatisfy { $0.offsetLag == 0 && !$0.isFutureKey })
        // Unknown topics and partitions are left out, as Kafka leaves them out.
        let some = try fixture.send(DescribeLogDirsRequest(topics: [.init(topic: "orders", partitions: [2, 9]), .init(topic: "nope", partitions: [0])]),
                                    version: 4)
        #expect(some.results.first?.topics.map(\.name) == ["orders"] && some.results.first?.topics.first?.partitions.map(\.partitionIndex) == [2])
    }

    @Test func describeTopicPartitionsPagesByItsCursor() throws {
        let fixture = try Self.fixture()
        let first = try fixture.send(DescribeTopicPartitionsRequest(topics: ["zeta", "orders", "audit", "nope"].map { .init(name: $0) },
                                                                    responsePartitionLimit: 4, cursor: nil), version: 0)
        // Sorted by name; an unknown topic answers with its error and costs nothing.
        #expect(first.topics.map { $0.name ?? "" } == ["audit", "nope", "orders"])
        #expect(first.topics[1].errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        #expect(first.topics[0].partitions.map(\.partitionIndex) == [0, 1] && first.topics[2].partitions.map(\.partitionIndex) == [0, 1])
        #expect(first.topics[0].partitions.allSatisfy { $0.leaderId == fixture.broker.brokerId && $0.replicaNodes == [fixture.broker.brokerId] })
        #expect(first.topics[0].topicAuthorizedOperations == 0xDF8 && first.topics[0].topicId != .zero)
        let cursor = try #require(first.nextCursor)
        #expect(cursor.topicName == "orders" && cursor.partitionIndex == 2)
        let second = try fixture.send(DescribeTopicPartitionsRequest(topics: ["zeta", "orders", "audit"].map { .init(name: $0) },
                                                                     responsePartitionLimit: 4, cursor: .init(topicName: cursor.topicName, partitionIndex: cursor.partitionIndex)), version: 0)
        #expect(second.topics.map { $0.name ?? "" } == ["orders", "zeta"] && second.nextCursor == nil)
        #expect(second.topics[0].partitions.map(\.partitionIndex) == [2])
        // All topics: the internal ones too, marked so.
        let all = try fixture.send(DescribeTopicPartitionsRequest(topics: [], responsePartitionLimit: 2000, cursor: nil), version: 0)
        #expect(all.topics.map { $0.name ?? "" } == ["__consumer_offsets", "__transaction_state", "audit", "orders", "zeta"])
        #expect(all.topics[0].isInternal && all.topics[1].isInternal && !all.topics[2].isInternal)
        // A cursor on a topic the request does not name is refused for every topic.
        let bad = try fixture.send(DescribeTopicPartitionsRequest(topics: [.init(name: "audit")], responsePartitionLimit: 10,
                                                                  cursor: .init(topicName: "orders", partitionIndex: 0)), version: 0)
        #expect(bad.topics.map(\.errorCode) == [ErrorCode.invalidRequest.rawValue])
    }

    @Test func electionsAreNeverNeededAndReassignmentsOnlyToThisNode() throws {
        let fixture = try Self.fixture()
        let me = fixture.broker.brokerId
        let elected = try fixture.send(ElectLeadersRequest(electionType: 0, topicPartitions: [
            .init(topic: "orders", partitions: [0, 9]), .init(topic: "nope", partitions: [0]),
        ], timeoutMs: 1000), version: 2)
        #expect(elected.errorCode == 0)
        #expect(elected.replicaElectionResults[0].partitionResult.map(\.errorCode) == [ErrorCode.electionNotNeeded.rawValue, ErrorCode.unknownTopicOrPartition.rawValue])
        #expect(elected.replicaElectionResults[1].partitionResult.first?.errorMessage == "No such topic as nope")
        let everything = try fixture.send(ElectLeadersRequest(electionType: 1, topicPartitions: nil, timeoutMs: 1000), version: 2)
        #expect(Set(everything.replicaElectionResults.map(\.topic)) == ["__consumer_offsets", "__transaction_state", "audit", "orders", "zeta"])
        #expect(everything.replicaElectionResults.allSatisfy { $0.partitionResult.isEmpty })
        let unknownType = try fixture.send(ElectLeadersRequest(electionType: 7, topicPartitions: [.init(topic: "orders", partitions: [0])], timeoutMs: 1),
                                           version: 2)
        #expect(unknownType.errorCode == ErrorCode.invalidRequest.rawValue)

        let listed = try fixture.send(ListPartitionReassignmentsRequest(timeoutMs: 1000, topics: nil), version: 0)
        #expect(listed.errorCode == 0 && listed.topics.isEmpty)
        let altered = try fixture.send(AlterPartitionReassignmentsRequest(timeoutMs: 1000, topics: [
            .init(name: "orders", partitions: [.init(partitionIndex: 0, replicas: [me]), .init(partitionIndex: 1, replicas: [me, me + 7]),
                                               .init(partitionIndex: 2, replicas: nil), .init(partitionIndex: 5, replicas: [me])]),
            .init(name: "nope", partitions: [.init(partitionIndex: 0, replicas: [me])]),
        ]), version: 0)
        let codes = altered.responses.map { $0.partitions.map(\.errorCode) }
        #expect(codes == [[0, ErrorCode.invalidReplicaAssignment.rawValue, ErrorCode.noReassignmentInProgress.rawValue,
                           ErrorCode.unknownTopicOrPartition.rawValue], [ErrorCode.unknownTopicOrPartition.rawValue]])
        #expect(altered.responses[0].partitions[1].errorMessage == "The manual partition assignment includes broker \(me + 7), but no such broker is registered.")
    }

    @Test func describeQuorumNamesThisNodeAsTheOnlyVoterAndLeader() throws {
        let fixture = try Self.fixture()
        let me = fixture.broker.brokerId
        let quorum = try fixture.send(DescribeQuorumRequest(topics: [.init(topicName: "__cluster_metadata", partitions: [.init(partitionIndex: 0)])]),
                                      version: 2)
        let partition = try #require(quorum.topics.first?.partitions.first)
        #expect(quorum.errorCode == 0 && partition.errorCode == 0 && partition.leaderId == me && partition.leaderEpoch >= 1)
        #expect(partition.currentVoters.map(\.replicaId) == [me] && partition.observers.isEmpty)
        #expect(quorum.nodes.map(\.nodeId) == [me] && quorum.nodes.first?.listeners.first?.port == UInt16(fixture.broker.advertised.port))
        let other = try fixture.send(DescribeQuorumRequest(topics: [.init(topicName: "orders", partitions: [.init(partitionIndex: 0)])]), version: 2)
        #expect(other.topics.first?.partitions.first?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
    }

    @Test func describeProducersListsTheIdempotentProducersOfAPartition() throws {
        let fixture = try Self.fixture()
        let records = (0..<3).map { Record(offset: Int64($0), timestamp: 1_700_000_000_000, key: nil, value: ByteBuffer(string: "v")) }
        let batch = try RecordBatch(producerId: 42, producerEpoch: 3, baseSequence: 0, records: records).encoded()
        #expect(try HostileRequestTests.produce(fixture, "orders", batch, partition: 1)?.errorCode == 0)
        let answer = try fixture.send(DescribeProducersRequest(topics: [.init(name: "orders", partitionIndexes: [1, 0, 8]),
                                                                        .init(name: "nope", partitionIndexes: [0])]), version: 0)
        let partitions = try #require(answer.topics.first?.partitions)
        let producer = try #require(partitions[0].activeProducers.first)
        #expect(producer.producerId == 42 && producer.producerEpoch == 3 && producer.lastSequence == 2 && producer.lastTimestamp == 1_700_000_000_000)
        #expect(producer.currentTxnStartOffset == -1 && producer.coordinatorEpoch == -1)
        #expect(partitions[1].errorCode == 0 && partitions[1].activeProducers.isEmpty)
        #expect(partitions[2].errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        #expect(answer.topics[1].partitions.first?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
    }

    @Test func aclCallsGetSecurityDisabledNotAClosedConnection() throws {
        let fixture = try Self.fixture()
        let described = try fixture.send(DescribeAclsRequest(resourceTypeFilter: 1, resourceNameFilter: nil, patternTypeFilter: 1,
                                                             principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1), version: 3)
        #expect(described.errorCode == ErrorCode.securityDisabled.rawValue && described.errorMessage == "No Authorizer is configured on the broker")
        let created = try fixture.send(CreateAclsRequest(creations: [.init(resourceType: 2, resourceName: "orders", resourcePatternType: 3,
                                                                           principal: "User:alice", host: "*", operation: 3, permissionType: 3)]),
                                       version: 3)
        #expect(created.results.map(\.errorCode) == [ErrorCode.securityDisabled.rawValue])
        let deleted = try fixture.send(DeleteAclsRequest(filters: [.init(resourceTypeFilter: 1, resourceNameFilter: nil, patternTypeFilter: 1,
                                                                         principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1)]),
                                       version: 3)
        #expect(deleted.filterResults.map(\.errorCode) == [ErrorCode.securityDisabled.rawValue])
        try HostileRequestTests.stillServes(fixture)
    }

    @Test func listConfigResourcesListsTheBrokerAndTheTopics() throws {
        let fixture = try Self.fixture()
        let all = try fixture.send(ListConfigResourcesRequest(resourceTypes: []), version: 1)
        #expect(all.errorCode == 0)
        #expect(all.configResources.map { "\($0.resourceType):\($0.resourceName)" }
                == ["4:\(fixture.broker.brokerId)", "2:__consumer_offsets", "2:__transaction_state", "2:audit", "2:orders", "2:zeta"])
        let topics = try fixture.send(ListConfigResourcesRequest(resourceTypes: [2]), version: 1)
        #expect(topics.configResources.allSatisfy { $0.resourceType == 2 } && topics.configResources.count == 5)
        #expect(try fixture.send(ListConfigResourcesRequest(resourceTypes: [99]), version: 1).errorCode == ErrorCode.unsupportedVersion.rawValue)
        #expect(try fixture.send(ListConfigResourcesRequest(resourceTypes: []), version: 0).configResources.isEmpty)
    }
}

/// DescribeConfigs v3+ with includeDocumentation: every broker and topic config says what it is.
@Suite struct ConfigDocumentationTests {
    @Test func everyConfigIsDocumentedWhenAsked() throws {
        let fixture = try AdminApiTests.fixture()
        let request = DescribeConfigsRequest(resources: [.init(resourceType: 4, resourceName: "0", configurationKeys: nil),
                                                         .init(resourceType: 2, resourceName: "orders", configurationKeys: nil)],
                                             includeSynonyms: false, includeDocumentation: true)
        let answer = try fixture.send(request, version: 4)
        #expect(answer.results.count == 2)
        for result in answer.results {
            #expect(result.errorCode == 0 && !result.configs.isEmpty)
            for config in result.configs {
                #expect((config.documentation?.count ?? 0) > 20, "\(config.name) has no documentation")
            }
        }
        #expect(answer.results[0].configs.count == BrokerConfig.definitions.count)
        #expect(answer.results[1].configs.first { $0.name == "cleanup.policy" }?.documentation?.contains("compact") == true)
        // Not asked: not sent.
        let plain = try fixture.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "orders", configurationKeys: nil)],
                                                            includeSynonyms: false, includeDocumentation: false), version: 4)
        #expect(plain.results.first?.configs.allSatisfy { $0.documentation == nil } == true)
    }
}

/// DescribeConfigs of the broker with synonyms: the keys that can give a value, in Kafka's order.
@Suite struct BrokerConfigSynonymTests {
    @Test func retentionIsDescribedWithTheKeysThatSetIt() throws {
        let fixture = try BrokerFixture(overrides: ["log.retention.minutes": "30"])
        let answer = try fixture.send(DescribeConfigsRequest(resources: [.init(resourceType: 4, resourceName: "0",
                                                                                configurationKeys: ["log.retention.ms", "log.retention.hours"])],
                                                             includeSynonyms: true, includeDocumentation: false), version: 4)
        let configs = Dictionary(uniqueKeysWithValues: (answer.results.first?.configs ?? []).map { ($0.name, $0) })
        let ms = try #require(configs["log.retention.ms"])
        #expect(ms.value == "1800000" && ms.configSource == ConfigSource.staticBrokerConfig.rawValue && !ms.isDefault)
        #expect(ms.synonyms.map { "\($0.name)=\($0.value ?? "null")/\($0.source)" } == ["log.retention.minutes=30/4", "log.retention.hours=168/5"])
        let hours = try #require(configs["log.retention.hours"])
        #expect(hours.configSource == ConfigSource.defaultConfig.rawValue && hours.synonyms.map(\.name) == ["log.retention.hours"])
    }
}
