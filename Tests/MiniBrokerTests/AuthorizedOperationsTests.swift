import KafkaWire
import NIOCore
@testable import MiniBroker
import Testing

/// KIP-430: Metadata, DescribeCluster, DescribeGroups, ConsumerGroupDescribe and DescribeTopicPartitions
/// answer what the principal may do when asked, and Int32.min ("not provided") when not.
@Suite struct AuthorizedOperationsTests {
    static func bits(_ operations: [AclOperation]) -> Int32 {
        operations.reduce(Int32(0)) { $0 | Int32(1) << Int32($1.rawValue) }
    }

    @Test func eachResourceAnswersThePrincipalsOperations() throws {
        let fixture = try AclTests.fixture()
        try AclTests.create(fixture, [
            AclTests.acl(.topic, "a", operation: .write), AclTests.acl(.topic, "a", operation: .describeConfigs),
            AclTests.acl(.group, "g", operation: .read), AclTests.acl(.cluster, AclBinding.clusterName, operation: .describe),
        ])
        fixture.context = AclTests.alice
        let metadata = try fixture.send(MetadataRequest(topics: [.init(name: "a")], allowAutoTopicCreation: false,
                                                        includeClusterAuthorizedOperations: true, includeTopicAuthorizedOperations: true),
                                        version: 10)
        // WRITE implies DESCRIBE; DESCRIBE_CONFIGS is its own.
        #expect(metadata.topics.first?.topicAuthorizedOperations == Self.bits([.write, .describe, .describeConfigs]))
        #expect(metadata.clusterAuthorizedOperations == Self.bits([.describe]))
        let notAsked = try fixture.send(MetadataRequest(topics: [.init(name: "a")], allowAutoTopicCreation: false), version: 12)
        #expect(notAsked.topics.first?.topicAuthorizedOperations == Int32.min && notAsked.clusterAuthorizedOperations == Int32.min)
        let cluster = try fixture.send(DescribeClusterRequest(includeClusterAuthorizedOperations: true), version: 1)
        #expect(cluster.clusterAuthorizedOperations == Self.bits([.describe]))
        let paged = try fixture.send(DescribeTopicPartitionsRequest(topics: [.init(name: "a")], responsePartitionLimit: 10, cursor: nil), version: 0)
        #expect(paged.topics.first?.topicAuthorizedOperations == Self.bits([.write, .describe, .describeConfigs]))

        // The group exists once a member joined it (as admin, who may).
        fixture.context = AclTests.admin
        _ = try fixture.send(JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "",
                                              protocolType: "consumer", protocols: [.init(name: "range", metadata: ByteBuffer())]), version: 5)
        fixture.context = AclTests.alice
        let groups = try fixture.send(DescribeGroupsRequest(groups: ["g"], includeAuthorizedOperations: true), version: 5)
        #expect(groups.groups.first?.errorCode == 0)
        // READ implies DESCRIBE.
        #expect(groups.groups.first?.authorizedOperations == Self.bits([.read, .describe]))
        let unasked = try fixture.send(DescribeGroupsRequest(groups: ["g"], includeAuthorizedOperations: false), version: 5)
        #expect(unasked.groups.first?.authorizedOperations == Int32.min)
    }

    @Test func withoutAnAuthorizerEverythingIsAllowed() throws {
        let fixture = try BrokerFixture()
        try HostileRequestTests.create(fixture, "t")
        let metadata = try fixture.send(MetadataRequest(topics: [.init(name: "t")], allowAutoTopicCreation: false,
                                                        includeClusterAuthorizedOperations: true, includeTopicAuthorizedOperations: true),
                                        version: 10)
        #expect(metadata.topics.first?.topicAuthorizedOperations == 0xDF8)
        #expect(metadata.clusterAuthorizedOperations == Self.bits([.create, .alter, .describe, .clusterAction, .describeConfigs,
                                                                    .alterConfigs, .idempotentWrite]))
    }
}
