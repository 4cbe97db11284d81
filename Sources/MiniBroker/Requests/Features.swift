import KafkaWire

// The feature levels: reported by ApiVersions v3+ (what the Java admin client's describeFeatures
// reads), changed by UpdateFeatures, with Kafka's checks and messages.

extension RequestDispatcher {
    /// ApiVersions' feature fields: the supported ranges (below v4 without those starting at 0, as
    /// Kafka leaves them out for older clients) and the finalized levels (those above 0, and
    /// metadata.version), each at its level.
    func featureFields(version: Int16) -> (supported: [ApiVersionsResponse.SupportedFeatureKey], epoch: Int64,
                                            finalized: [ApiVersionsResponse.FinalizedFeatureKey]) {
        let finalized = broker.features.finalized
        let supported = FeatureControl.supported.filter { version >= 4 || $0.levels.lowerBound > 0 }.map {
            ApiVersionsResponse.SupportedFeatureKey(name: $0.name, minVersion: $0.levels.lowerBound, maxVersion: $0.levels.upperBound)
        }
        let levels = FeatureControl.supported.compactMap { feature -> ApiVersionsResponse.FinalizedFeatureKey? in
            let level = finalized.levels[feature.name] ?? 0
            guard level > 0 || feature.name == FeatureControl.metadataVersion else { return nil }
            return .init(name: feature.name, maxVersionLevel: level, minVersionLevel: level)
        }
        return (supported, finalized.epoch, levels)
    }

    /// All or nothing: the first feature that cannot change fails the request, and nothing changes.
    func updateFeatures(_ request: UpdateFeaturesRequest, version: Int16) -> UpdateFeaturesResponse {
        struct Refused: Error { let problem: String }
        do {
            // Checked against the levels as they are when this update runs: updates run one at a time.
            try broker.features.update(validateOnly: request.validateOnly) { levels in
                var changes: [String: Int16] = [:]
                for update in request.featureUpdates {
                    // v0 has no upgrade type: Kafka's controller reads it as an upgrade (AllowDowngrade is ignored).
                    let upgradeType = version >= 1 ? update.upgradeType : 1
                    if let problem = Self.featureProblem(update.feature, level: update.maxVersionLevel, upgradeType: upgradeType,
                                                         current: levels[update.feature] ?? 0) {
                        throw Refused(problem: problem)
                    }
                    changes[update.feature] = update.maxVersionLevel  // a feature named twice: the last wins, as in Kafka
                }
                return changes
            }
        } catch let refused as Refused {
            return UpdateFeaturesResponse(
                throttleTimeMs: 0, errorCode: ErrorCode.invalidUpdateVersion.rawValue,
                errorMessage: "The update failed for all features since the following feature had an error: \(refused.problem)", results: [])
        } catch {
            return UpdateFeaturesResponse(throttleTimeMs: 0, errorCode: ErrorCode.kafkaStorageError.rawValue,
                                          errorMessage: "The feature levels could not be stored: \(error)", results: [])
        }
        if !request.validateOnly {
            logger.info("feature levels updated", metadata: ["levels": "\(request.featureUpdates.map { "\($0.feature)=\($0.maxVersionLevel)" })"])
        }
        return UpdateFeaturesResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil,
                                      results: request.featureUpdates.map { .init(feature: $0.feature, errorCode: 0, errorMessage: "NONE") })
    }

    /// Why `feature` cannot go to `level`, in Kafka's words, or nil.
    static func featureProblem(_ feature: String, level: Int16, upgradeType: Int8, current: Int16) -> String? {
        let prefix = "Invalid update version \(level) for feature \(feature)."
        guard (1...3).contains(upgradeType) else { return "\(prefix) The controller does not support the given upgrade type." }
        guard level >= 0 else { return "\(prefix) A feature version cannot be less than 0." }
        guard let supported = FeatureControl.supported.first(where: { $0.name == feature }) else {
            return level == 0 ? "Feature \(feature) not found." : "\(prefix) Local controller 0 does not support this feature."
        }
        if level == current { return nil }
        if !supported.changeable {
            return "Invalid \(feature) \(level). MiniBroker's \(feature) is fixed at \(current): it keeps no metadata log whose format would change."
        }
        guard supported.levels.contains(level) else {
            return "\(prefix) Local controller 0 only supports versions \(supported.levels.lowerBound)-\(supported.levels.upperBound)"
        }
        if level < current && upgradeType == 1 {
            return "\(prefix) Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
        }
        if level > current && upgradeType != 1 { return "\(prefix) Can't downgrade to a newer version." }
        return nil
    }
}
