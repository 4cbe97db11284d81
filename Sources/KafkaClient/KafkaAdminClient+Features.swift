import KafkaWire

/// A broker's feature levels (Kafka's describeFeatures, read from ApiVersions).
public struct FeatureLevels: Sendable, Equatable {
    /// Each feature's supported levels.
    public var supported: [String: ClosedRange<Int16>]
    /// Each finalized feature's level (features at level 0 are not listed).
    public var finalized: [String: Int16]
    /// Moves with every change; nil when the broker does not know it.
    public var epoch: Int64?
}

/// How UpdateFeatures may move a level.
public enum FeatureUpgradeType: Int8, Sendable {
    case upgrade = 1
    case safeDowngrade = 2
    case unsafeDowngrade = 3
}

extension KafkaAdminClient {
    /// The supported and finalized feature levels, as a broker reports them in ApiVersions (v3+).
    public func describeFeatures() async throws -> FeatureLevels {
        let connection = try await client.anyConnection()
        guard let versions = connection.brokerVersions[.apiVersions], versions.upperBound >= 3 else {
            return FeatureLevels(supported: [:], finalized: [:], epoch: nil)
        }
        let response = try await connection.send(ApiVersionsRequest(clientSoftwareName: "swift-kafka", clientSoftwareVersion: "0.1"),
                                                 version: min(versions.upperBound, 4))
        try Self.check(response.errorCode, nil, "describing the features failed")
        return FeatureLevels(
            supported: Dictionary(response.supportedFeatures.map { ($0.name, $0.minVersion...max($0.minVersion, $0.maxVersion)) }, uniquingKeysWith: { $1 }),
            finalized: Dictionary(response.finalizedFeatures.map { ($0.name, $0.maxVersionLevel) }, uniquingKeysWith: { $1 }),
            epoch: response.finalizedFeaturesEpoch >= 0 ? response.finalizedFeaturesEpoch : nil)
    }

    /// Sets feature levels (all or none); a lower level needs a downgrade type.
    public func updateFeatures(_ levels: [String: Int16], upgradeType: FeatureUpgradeType = .upgrade, validateOnly: Bool = false) async throws {
        let request = UpdateFeaturesRequest(
            timeoutMs: 60_000,
            featureUpdates: levels.sorted { $0.key < $1.key }.map {
                .init(feature: $0.key, maxVersionLevel: $0.value, allowDowngrade: upgradeType != .upgrade, upgradeType: upgradeType.rawValue)
            },
            validateOnly: validateOnly)
        let response = try await client.anyConnection().send(request)
        try Self.check(response.errorCode, response.errorMessage, "updating the features failed")
        for result in response.results {
            try Self.check(result.errorCode, result.errorMessage, "updating feature \(result.feature) failed")
        }
    }
}
