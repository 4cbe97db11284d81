import Foundation
import KafkaLog
import NIOConcurrencyHelpers

/// The configured client quotas, kept in `client-quotas.json` in the log directory (Kafka keeps them
/// in its metadata log): set by AlterClientQuotas, read at start, the same after a restart.
final class ClientQuotaStore: Sendable {
    typealias Quotas = [ClientQuotaEntity: [QuotaKind: Double]]

    private struct Stored: Codable {
        var entity: ClientQuotaEntity
        var values: [String: Double]
    }

    static let fileName = "client-quotas.json"
    private let path: String
    private let state: NIOLockedValueBox<(quotas: Quotas, generation: Int)>

    init(directory: String) throws {
        path = directory + "/" + Self.fileName
        var quotas: Quotas = [:]
        if let text = try LogDirectory.readText(path) {
            let stored = try JSONDecoder().decode([Stored].self, from: Data(text.utf8))
            for entry in stored {
                let values = entry.values.compactMap { key, value in QuotaKind(rawValue: key).map { ($0, value) } }
                if !values.isEmpty { quotas[entry.entity] = Dictionary(values, uniquingKeysWith: { $1 }) }
            }
        }
        state = NIOLockedValueBox((quotas, 0))
    }

    /// Every configured quota.
    var all: Quotas { state.withLockedValue { $0.quotas } }

    /// Applies `changes` (a nil value removes the key) to `entity` and writes the file; the file is
    /// written under the lock so that two alterations land in the order they were applied. Returns
    /// the quotas and their generation (which orders the alterations for whoever publishes them).
    func alter(_ entity: ClientQuotaEntity, _ changes: [QuotaKind: Double?]) throws -> (quotas: Quotas, generation: Int) {
        try state.withLockedValue { current in
            var updated = current.quotas
            var values = updated[entity] ?? [:]
            for (kind, value) in changes { values[kind] = value }
            updated[entity] = values.isEmpty ? nil : values
            let stored = updated.map { Stored(entity: $0.key, values: Dictionary(uniqueKeysWithValues: $0.value.map { ($0.key.rawValue, $0.value) })) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try LogDirectory.writeAtomically(String(decoding: try encoder.encode(stored), as: UTF8.self), to: path)
            current = (updated, current.generation + 1)
            return current
        }
    }
}
