import KafkaLog
import NIOConcurrencyHelpers

/// A feature MiniBroker has a level of, as Kafka 4.0 names them.
struct SupportedFeature: Sendable {
    let name: String
    let levels: ClosedRange<Int16>
    /// The level a new data directory starts at.
    let defaultLevel: Int16
    /// Whether UpdateFeatures may change it (a level that changes behaviour here); fixed ones only
    /// accept their own level.
    let changeable: Bool
}

/// The finalized feature levels of this node (Kafka's FeatureControlManager, for one node): what
/// ApiVersions reports and UpdateFeatures changes, kept in `finalized-features.properties` in the log
/// directory. `group.version` 1 is the KIP-848 consumer protocol, which level 0 turns off.
/// `metadata.version` is reported at 4.0-IV3 (25) and fixed: MiniBroker has no metadata log whose
/// format it would change. `transaction.version` 2 is KIP-890 part 2 (an epoch bump at every
/// EndTxn v5, partitions added by Produce v12+ and TxnOffsetCommit v5); level 1 or 0 serves clients
/// transaction version 1 only. kraft.version (a static single voter) has no level above 0, and
/// Kafka lists no feature whose highest level is 0.
final class FeatureControl: Sendable {
    static let metadataVersion = "metadata.version"
    static let groupVersion = "group.version"
    static let transactionVersion = "transaction.version"
    static let supported: [SupportedFeature] = [
        SupportedFeature(name: metadataVersion, levels: 7...25, defaultLevel: 25, changeable: false),
        SupportedFeature(name: groupVersion, levels: 0...1, defaultLevel: 1, changeable: true),
        SupportedFeature(name: transactionVersion, levels: 0...2, defaultLevel: 2, changeable: true),
    ]
    static let fileName = "finalized-features.properties"

    struct Finalized: Sendable, Equatable {
        var levels: [String: Int16]
        /// Moves with every change (Kafka's is the metadata offset of the last change).
        var epoch: Int64
    }

    private let path: String
    private let state: NIOLockedValueBox<Finalized>
    private let updating = NIOLock()

    init(directory: String) throws {
        path = directory + "/" + Self.fileName
        var finalized = Finalized(levels: Dictionary(uniqueKeysWithValues: Self.supported.map { ($0.name, $0.defaultLevel) }), epoch: 0)
        if let text = try LogDirectory.readText(path) {
            // A directory whose levels were written before transaction.version existed keeps version 1
            // behaviour until an operator raises it: Kafka never raises a finalized level by itself.
            finalized.levels[Self.transactionVersion] = 0
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let value = Int64(parts[1]) else { continue }
                if parts[0] == "epoch" {
                    finalized.epoch = value
                } else if let feature = Self.supported.first(where: { $0.name == parts[0] }), feature.changeable,
                          let level = Int16(exactly: value), feature.levels.contains(level) {
                    finalized.levels[feature.name] = level
                }
            }
        }
        state = NIOLockedValueBox(finalized)
    }

    var finalized: Finalized { state.withLockedValue { $0 } }

    func level(_ feature: String) -> Int16 { state.withLockedValue { $0.levels[feature] ?? 0 } }

    /// Whether KIP-848 consumer groups are on (group.version >= 1).
    var consumerGroupsEnabled: Bool { level(Self.groupVersion) >= 1 }

    /// Whether transaction version 2 is served (transaction.version >= 2, KIP-890 part 2).
    var transactionsV2Enabled: Bool { level(Self.transactionVersion) >= 2 }

    /// UpdateFeatures, one at a time: `plan` gets the levels as they are and returns the changes (or
    /// throws why not); they are written, then published. Readers never wait behind the file write:
    /// only updates hold `updating` across it.
    func update(validateOnly: Bool, _ plan: ([String: Int16]) throws -> [String: Int16]) throws {
        try updating.withLock {
            var updated = finalized
            let changes = try plan(updated.levels)
            guard !validateOnly, !changes.isEmpty else { return }
            for (name, level) in changes { updated.levels[name] = level }
            updated.epoch += 1
            let text = updated.levels.filter { name, _ in Self.supported.first { $0.name == name }?.changeable ?? false }
                .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined() + "epoch=\(updated.epoch)\n"
            try LogDirectory.writeAtomically(text, to: path)
            state.withLockedValue { $0 = updated }
        }
    }
}
