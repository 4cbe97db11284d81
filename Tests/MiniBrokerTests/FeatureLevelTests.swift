import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// Feature levels (issue 24): ApiVersions reports them as a Kafka 4.0 node does, UpdateFeatures
/// changes group.version with Kafka's checks (all or nothing), and group.version 0 turns the KIP-848
/// consumer protocol off.
@Suite struct FeatureLevelTests {
    typealias Update = UpdateFeaturesRequest.FeatureUpdateKey

    static func update(_ fixture: BrokerFixture, _ updates: [Update], validateOnly: Bool = false, version: Int16 = 1) throws -> UpdateFeaturesResponse {
        try fixture.send(UpdateFeaturesRequest(timeoutMs: 1000, featureUpdates: updates, validateOnly: validateOnly), version: version)
    }

    @Test func apiVersionsReportsSupportedAndFinalizedLevels() throws {
        let fixture = try BrokerFixture()
        let v4 = try fixture.send(ApiVersionsRequest(clientSoftwareName: "test", clientSoftwareVersion: "1"), version: 4)
        #expect(v4.supportedFeatures.map { "\($0.name) \($0.minVersion)-\($0.maxVersion)" } == ["metadata.version 7-25", "group.version 0-1", "transaction.version 0-2"])
        #expect(v4.finalizedFeatures.map { "\($0.name) \($0.minVersionLevel)-\($0.maxVersionLevel)" } == ["metadata.version 25-25", "group.version 1-1", "transaction.version 2-2"])
        #expect(v4.finalizedFeaturesEpoch == 0 && !v4.zkMigrationReady)
        // Below v4 the ranges starting at 0 are left out (Kafka's rule for older clients).
        let v3 = try fixture.send(ApiVersionsRequest(clientSoftwareName: "test", clientSoftwareVersion: "1"), version: 3)
        #expect(v3.supportedFeatures.map(\.name) == ["metadata.version"])
        #expect(v3.finalizedFeatures.count == 3)
    }

    @Test func groupVersionGoesDownAndUpAndSurvivesARestart() throws {
        let fixture = try BrokerFixture()
        // A plain upgrade cannot lower a level.
        let refused = try Self.update(fixture, [Update(feature: "group.version", maxVersionLevel: 0, upgradeType: 1)])
        #expect(refused.errorCode == ErrorCode.invalidUpdateVersion.rawValue && refused.results.isEmpty)
        #expect(refused.errorMessage == "The update failed for all features since the following feature had an error: Invalid update version 0 "
                + "for feature group.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
        // validateOnly changes nothing.
        #expect(try Self.update(fixture, [Update(feature: "group.version", maxVersionLevel: 0, upgradeType: 2)], validateOnly: true).errorCode == 0)
        #expect(fixture.broker.features.consumerGroupsEnabled)
        let lowered = try Self.update(fixture, [Update(feature: "group.version", maxVersionLevel: 0, upgradeType: 2)])
        #expect(lowered.errorCode == 0 && lowered.results.map(\.feature) == ["group.version"] && lowered.results.first?.errorCode == 0)
        // Off: the KIP-848 heartbeat and describe answer UNSUPPORTED_VERSION; finalized no longer lists it.
        let heartbeat = try fixture.send(ConsumerGroupHeartbeatRequest(groupId: "g", memberId: "", memberEpoch: 0, rebalanceTimeoutMs: 1000,
                                                                       subscribedTopicNames: ["t"], topicPartitions: []), version: 0)
        #expect(heartbeat.errorCode == ErrorCode.unsupportedVersion.rawValue)
        let described = try fixture.send(ConsumerGroupDescribeRequest(groupIds: ["g"]), version: 0)
        #expect(described.groups.map(\.errorCode) == [ErrorCode.unsupportedVersion.rawValue])
        let versions = try fixture.send(ApiVersionsRequest(clientSoftwareName: "test", clientSoftwareVersion: "1"), version: 4)
        #expect(versions.finalizedFeatures.map(\.name) == ["metadata.version", "transaction.version"] && versions.finalizedFeaturesEpoch == 1)
        // Kept across a restart, and back up again.
        let restarted = try fixture.restart()
        #expect(!restarted.broker.features.consumerGroupsEnabled && restarted.broker.features.finalized.epoch == 1)
        #expect(try Self.update(restarted, [Update(feature: "group.version", maxVersionLevel: 1, upgradeType: 1)]).errorCode == 0)
        #expect(restarted.broker.features.consumerGroupsEnabled)
    }

    @Test func badUpdatesGetKafkasMessagesAndChangeNothing() throws {
        let fixture = try BrokerFixture()
        func message(_ updates: [Update], version: Int16 = 1) throws -> String? {
            let answer = try Self.update(fixture, updates, version: version)
            #expect(answer.errorCode == ErrorCode.invalidUpdateVersion.rawValue)
            return answer.errorMessage?.replacingOccurrences(of: "The update failed for all features since the following feature had an error: ", with: "")
        }
        #expect(try message([Update(feature: "group.version", maxVersionLevel: 2, upgradeType: 1)])
                == "Invalid update version 2 for feature group.version. Local controller 0 only supports versions 0-1")
        #expect(try message([Update(feature: "share.version", maxVersionLevel: 1, upgradeType: 1)])
                == "Invalid update version 1 for feature share.version. Local controller 0 does not support this feature.")
        #expect(try message([Update(feature: "share.version", maxVersionLevel: 0, upgradeType: 2)]) == "Feature share.version not found.")
        #expect(try message([Update(feature: "group.version", maxVersionLevel: -1, upgradeType: 2)])
                == "Invalid update version -1 for feature group.version. A feature version cannot be less than 0.")
        #expect(try message([Update(feature: "group.version", maxVersionLevel: 0, upgradeType: 9)])
                == "Invalid update version 0 for feature group.version. The controller does not support the given upgrade type.")
        #expect(try message([Update(feature: "metadata.version", maxVersionLevel: 24, upgradeType: 2)])?.contains("fixed at 25") == true)
        // v0 has no upgrade type: a lower level is refused even with allowDowngrade.
        #expect(try message([Update(feature: "group.version", maxVersionLevel: 0, allowDowngrade: true)], version: 0)?
            .contains("Can't downgrade") == true)
        // All or nothing: a good change beside a bad one is not made.
        #expect(try message([Update(feature: "group.version", maxVersionLevel: 0, upgradeType: 2),
                             Update(feature: "metadata.version", maxVersionLevel: 20, upgradeType: 2)]) != nil)
        #expect(fixture.broker.features.consumerGroupsEnabled && fixture.broker.features.finalized.epoch == 0)
        // The level it is at already: fine, for either feature.
        #expect(try Self.update(fixture, [Update(feature: "metadata.version", maxVersionLevel: 25, upgradeType: 1)]).errorCode == 0)
    }
}
