import Foundation
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// ACLs and what every API asks of them, through the request layer, as principals sent by a SASL
/// listener would ask.
@Suite struct AclTests {
    static let admin = RequestContext(principal: KafkaPrincipal(name: "admin"))
    static let alice = RequestContext(principal: KafkaPrincipal(name: "alice"))
    static let bob = RequestContext(principal: KafkaPrincipal(name: "bob"))

    static let enabled = ["authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer", "super.users": "User:admin"]

    static func fixture(_ overrides: [String: String] = [:]) throws -> BrokerFixture {
        var all = enabled
        all.merge(overrides) { $1 }
        let fixture = try BrokerFixture(overrides: all)
        fixture.context = admin
        for name in ["a", "b", "sales-eu", "sales-us"] { try HostileRequestTests.create(fixture, name) }
        return fixture
    }

    static func acl(_ type: AclResourceType, _ name: String, _ pattern: AclPatternType = .literal, _ principal: String = "User:alice",
                    operation: AclOperation, _ permission: AclPermissionType = .allow, host: String = "*") -> CreateAclsRequest.AclCreation {
        .init(resourceType: type.rawValue, resourceName: name, resourcePatternType: pattern.rawValue, principal: principal, host: host,
              operation: operation.rawValue, permissionType: permission.rawValue)
    }

    static func create(_ fixture: BrokerFixture, _ creations: [CreateAclsRequest.AclCreation]) throws {
        let saved = fixture.context
        fixture.context = admin
        defer { fixture.context = saved }
        let answer = try fixture.send(CreateAclsRequest(creations: creations), version: 3)
        #expect(answer.results.allSatisfy { $0.errorCode == 0 }, "\(answer.results.map { $0.errorMessage ?? "" })")
    }

    static func produceCode(_ fixture: BrokerFixture, _ topic: String) throws -> ErrorCode? {
        try HostileRequestTests.produce(fixture, topic, try HostileRequestTests.batch()).map { ErrorCode(rawValue: $0.errorCode) }
    }

    @Test func writeOnOneTopicNotAnotherAndMetadataShowsOnlyWhatMayBeDescribed() throws {
        let fixture = try Self.fixture()
        try Self.create(fixture, [Self.acl(.topic, "a", operation: .write)])
        fixture.context = Self.alice
        #expect(try Self.produceCode(fixture, "a") == .noError)
        #expect(try Self.produceCode(fixture, "b") == .topicAuthorizationFailed)
        // A topic that does not exist is refused the same way: nothing tells alice it is missing.
        #expect(try Self.produceCode(fixture, "nope") == .topicAuthorizationFailed)
        let listed = try fixture.send(MetadataRequest(topics: nil), version: 12)
        #expect(listed.topics.compactMap(\.name) == ["a"])
        let named = try fixture.send(MetadataRequest(topics: [.init(name: "a"), .init(name: "b")], allowAutoTopicCreation: true), version: 12)
        #expect(named.topics.map { ErrorCode(rawValue: $0.errorCode) } == [.noError, .topicAuthorizationFailed])
        // Reading needs READ: WRITE does not imply it (it implies DESCRIBE only).
        let fetched = try fixture.send(FetchRequest(maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [
            .init(topic: "a", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ]), version: 12)
        #expect(fetched.responses.first?.partitions.first?.errorCode == ErrorCode.topicAuthorizationFailed.rawValue)
        // Someone with no ACL at all sees nothing and writes nothing.
        fixture.context = Self.bob
        #expect(try fixture.send(MetadataRequest(topics: nil), version: 12).topics.isEmpty)
        #expect(try Self.produceCode(fixture, "a") == .topicAuthorizationFailed)
        // The super user does everything.
        fixture.context = Self.admin
        #expect(try fixture.send(MetadataRequest(topics: nil), version: 12).topics.count >= 4)
    }

    @Test func denyBeatsAllowAndPrefixedAndWildcardAclsMatch() throws {
        let fixture = try Self.fixture()
        try Self.create(fixture, [
            Self.acl(.topic, "sales-", .prefixed, operation: .all),
            Self.acl(.topic, "sales-us", operation: .write, .deny),
            Self.acl(.topic, "*", .literal, "User:*", operation: .describe),
        ])
        fixture.context = Self.alice
        #expect(try Self.produceCode(fixture, "sales-eu") == .noError)
        #expect(try Self.produceCode(fixture, "sales-us") == .topicAuthorizationFailed)
        #expect(try Self.produceCode(fixture, "a") == .topicAuthorizationFailed)
        // Everyone may describe every topic (the wildcard principal and name).
        fixture.context = Self.bob
        #expect(try fixture.send(MetadataRequest(topics: nil), version: 12).topics.count >= 4)
        // A host the ACL does not name gets nothing from it.
        let fixture2 = try Self.fixture()
        try Self.create(fixture2, [Self.acl(.topic, "a", operation: .write, host: "10.0.0.7")])
        fixture2.context = Self.alice
        #expect(try Self.produceCode(fixture2, "a") == .topicAuthorizationFailed)
        fixture2.context = RequestContext(clientHost: "/10.0.0.7", principal: KafkaPrincipal(name: "alice"))
        #expect(try Self.produceCode(fixture2, "a") == .noError)
    }

    @Test func groupsNeedReadToJoinAndCommit() throws {
        let fixture = try Self.fixture()
        try Self.create(fixture, [Self.acl(.group, "g-ok", operation: .read), Self.acl(.topic, "a", operation: .read)])
        fixture.context = Self.alice
        let join = { (group: String) in
            try fixture.send(JoinGroupRequest(groupId: group, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "",
                                              protocolType: "consumer", protocols: [.init(name: "range", metadata: ByteBuffer())]), version: 5)
        }
        #expect(try join("g-denied").errorCode == ErrorCode.groupAuthorizationFailed.rawValue)
        #expect(try join("g-ok").errorCode != ErrorCode.groupAuthorizationFailed.rawValue)
        let found = try fixture.send(FindCoordinatorRequest(key: "g-denied", keyType: 0, coordinatorKeys: ["g-denied", "g-ok"]), version: 4)
        #expect(found.coordinators.map { ErrorCode(rawValue: $0.errorCode) } == [.groupAuthorizationFailed, .noError])
        let committed = try fixture.send(OffsetCommitRequest(groupId: "g-ok", generationIdOrMemberEpoch: -1, memberId: "", topics: [
            .init(name: "a", partitions: [.init(partitionIndex: 0, committedOffset: 1)]),
            .init(name: "b", partitions: [.init(partitionIndex: 0, committedOffset: 1)]),
        ]), version: 8)
        let codes = Dictionary(uniqueKeysWithValues: committed.topics.map { ($0.name, $0.partitions.first.map { ErrorCode(rawValue: $0.errorCode) }) })
        #expect(codes["a"] == .noError && codes["b"] == .topicAuthorizationFailed)
        let described = try fixture.send(DescribeGroupsRequest(groups: ["g-ok", "g-denied"]), version: 5)
        #expect(described.groups.map { ErrorCode(rawValue: $0.errorCode) } == [.noError, .groupAuthorizationFailed])
        #expect(try fixture.send(ListGroupsRequest(), version: 4).groups.allSatisfy { $0.groupId == "g-ok" })
    }

    @Test func clusterOperationsAndTheAclApisThemselves() throws {
        let fixture = try Self.fixture()
        fixture.context = Self.alice
        #expect(try fixture.send(CreateAclsRequest(creations: [Self.acl(.topic, "a", operation: .all)]), version: 3).results.first?.errorCode
                == ErrorCode.clusterAuthorizationFailed.rawValue)
        #expect(try fixture.send(DescribeAclsRequest(resourceTypeFilter: 1, resourceNameFilter: nil, patternTypeFilter: 1, principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1), version: 3).errorCode
                == ErrorCode.clusterAuthorizationFailed.rawValue)
        #expect(try fixture.send(DescribeLogDirsRequest(topics: nil), version: 4).errorCode == ErrorCode.clusterAuthorizationFailed.rawValue)
        #expect(try fixture.send(CreateTopicsRequest(topics: [.init(name: "new", numPartitions: 1, replicationFactor: 1)]), version: 7)
                .topics.first?.errorCode == ErrorCode.topicAuthorizationFailed.rawValue)
        #expect(try fixture.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 1000), version: 4).errorCode
                == ErrorCode.clusterAuthorizationFailed.rawValue)
        // CREATE on a prefix creates topics under it; WRITE on any topic lets a producer be idempotent (KIP-679).
        try Self.create(fixture, [Self.acl(.topic, "new", .prefixed, operation: .create), Self.acl(.topic, "a", operation: .write),
                                  Self.acl(.cluster, "kafka-cluster", operation: .describe)])
        #expect(try fixture.send(CreateTopicsRequest(topics: [.init(name: "new-1", numPartitions: 1, replicationFactor: 1)]), version: 7)
                .topics.first?.errorCode == 0)
        #expect(try fixture.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 1000), version: 4).errorCode == 0)
        #expect(try fixture.send(InitProducerIdRequest(transactionalId: "tx", transactionTimeoutMs: 1000), version: 4).errorCode
                == ErrorCode.transactionalIdAuthorizationFailed.rawValue)
        #expect(try fixture.send(DescribeLogDirsRequest(topics: nil), version: 4).errorCode == 0)
        #expect(try fixture.send(AlterUserScramCredentialsRequest(deletions: [.init(name: "x", mechanism: 1)], upsertions: []), version: 0)
                .results.first?.errorCode == ErrorCode.clusterAuthorizationFailed.rawValue)
    }

    @Test func aclsAreDescribedDeletedByFilterAndSurviveARestart() throws {
        let fixture = try Self.fixture()
        try Self.create(fixture, [Self.acl(.topic, "a", operation: .read), Self.acl(.topic, "a", operation: .write),
                                  Self.acl(.topic, "sales-", .prefixed, "User:bob", operation: .read), Self.acl(.group, "g", operation: .read)])
        // Creating an ACL twice keeps one.
        try Self.create(fixture, [Self.acl(.topic, "a", operation: .read)])
        let all = try fixture.send(DescribeAclsRequest(resourceTypeFilter: 1, resourceNameFilter: nil, patternTypeFilter: 1, principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1), version: 3)
        #expect(all.resources.reduce(0) { $0 + $1.acls.count } == 4)
        // MATCH finds what applies to a resource: the prefixed ACL applies to sales-eu.
        let matching = try fixture.send(DescribeAclsRequest(resourceTypeFilter: 2, resourceNameFilter: "sales-eu", patternTypeFilter: 2,
                                                            principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1), version: 3)
        #expect(matching.resources.map(\.resourceName) == ["sales-"])
        let restarted = try fixture.restart(overrides: Self.enabled)
        restarted.context = Self.admin
        let deleted = try restarted.send(DeleteAclsRequest(filters: [.init(resourceTypeFilter: 2, resourceNameFilter: "a", patternTypeFilter: 3,
                                                                           principalFilter: "User:alice", hostFilter: nil, operation: 1, permissionType: 1)]), version: 3)
        #expect(deleted.filterResults.first?.matchingAcls.count == 2)
        let left = try restarted.send(DescribeAclsRequest(resourceTypeFilter: 1, resourceNameFilter: nil, patternTypeFilter: 1, principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1), version: 3)
        #expect(left.resources.map(\.resourceName).sorted() == ["g", "sales-"])
        // Malformed creations are refused one by one.
        let bad = try restarted.send(CreateAclsRequest(creations: [
            Self.acl(.any, "x", operation: .read), Self.acl(.topic, "x", .match, operation: .read), Self.acl(.topic, "x", .literal, "alice", operation: .read),
            Self.acl(.cluster, "other", operation: .alter), Self.acl(.topic, "x", operation: .any),
        ]), version: 3)
        #expect(bad.results.map(\.errorCode) == Array(repeating: ErrorCode.invalidRequest.rawValue, count: 5), "\(bad.results.map { $0.errorMessage ?? "" })")
    }

    @Test func allowEveryoneIfNoAclFoundOpensOnlyResourcesNoAclNames() throws {
        let fixture = try Self.fixture(["allow.everyone.if.no.acl.found": "true"])
        try Self.create(fixture, [Self.acl(.topic, "a", .literal, "User:admin", operation: .write)])
        fixture.context = Self.bob
        #expect(try Self.produceCode(fixture, "b") == .noError)
        #expect(try Self.produceCode(fixture, "a") == .topicAuthorizationFailed)
    }
}

@Suite struct AclCoverageTests {
    @Test func commitsByTopicIdAndTransactionalCommitsAndOffsetDeletesNeedRead() throws {
        let fixture = try AclTests.fixture()
        try AclTests.create(fixture, [AclTests.acl(.group, "g", operation: .all), AclTests.acl(.topic, "a", operation: .read),
                                      AclTests.acl(.transactionalId, "tx", operation: .write)])
        let bId = try #require(fixture.broker.topics.topic("b")).id
        fixture.context = AclTests.alice
        // v10 names topics by id only: b's id is b, and alice may not read b.
        let byId = try fixture.send(OffsetCommitRequest(groupId: "g", generationIdOrMemberEpoch: -1, memberId: "", topics: [
            .init(name: "", topicId: bId, partitions: [.init(partitionIndex: 0, committedOffset: 1)]),
        ]), version: 10)
        #expect(byId.topics.first?.partitions.first?.errorCode == ErrorCode.topicAuthorizationFailed.rawValue)
        let deleted = try fixture.send(OffsetDeleteRequest(groupId: "g", topics: [.init(name: "b", partitions: [.init(partitionIndex: 0)])]), version: 0)
        #expect(deleted.topics.first?.partitions.first?.errorCode == ErrorCode.topicAuthorizationFailed.rawValue)
        let listed = try fixture.send(DescribeTopicPartitionsRequest(topics: [], responsePartitionLimit: 100), version: 0)
        #expect(listed.topics.compactMap(\.name) == ["a"] && listed.nextCursor == nil)
        let named = try fixture.send(DescribeTopicPartitionsRequest(topics: [.init(name: "a"), .init(name: "b")], responsePartitionLimit: 100), version: 0)
        #expect(named.topics.map { ErrorCode(rawValue: $0.errorCode) } == [.noError, .topicAuthorizationFailed])
        // Anyone may describe the cluster, as in Kafka.
        #expect(try fixture.send(DescribeClusterRequest(), version: 1).errorCode == 0)
        // A topic id alice may not describe is refused without its name.
        let byTopicId = try fixture.send(MetadataRequest(topics: [.init(topicId: bId, name: nil)], allowAutoTopicCreation: false), version: 12)
        let refused = try #require(byTopicId.topics.first)
        #expect(refused.name == nil && refused.errorCode == ErrorCode.topicAuthorizationFailed.rawValue)
        // Creating a topic does not show its configs to who may not describe them.
        try AclTests.create(fixture, [AclTests.acl(.topic, "fresh", operation: .create)])
        fixture.context = AclTests.alice
        let created = try fixture.send(CreateTopicsRequest(topics: [.init(name: "fresh", numPartitions: 1, replicationFactor: 1,
                                                                          configs: [.init(name: "retention.ms", value: "1000")])]), version: 7)
        #expect(created.topics.first?.errorCode == 0 && (created.topics.first?.configs ?? []).isEmpty
                && created.topics.first?.topicConfigErrorCode == ErrorCode.topicAuthorizationFailed.rawValue)
    }
}
