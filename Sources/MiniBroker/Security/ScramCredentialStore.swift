import Foundation
import KafkaLog
import KafkaSASL
import NIOConcurrencyHelpers

/// The SCRAM users, kept in `scram-credentials.json` in the log directory (Kafka keeps them in its
/// metadata log): each user's salt, iteration count, stored key and server key per mechanism, never
/// a password nor a salted password. Written atomically under a writers' lock, so alterations land in order;
/// readable by the broker's user only (the server key would let another process pose as the broker).
public final class ScramCredentialStore: Sendable {
    public typealias Credentials = [String: [ScramMechanism: ScramCredential]]

    private struct Stored: Codable {
        var user: String
        var mechanism: ScramMechanism
        var iterations: Int32
        var salt: String
        var storedKey: String
        var serverKey: String
    }

    static let fileName = "scram-credentials.json"
    private let path: String
    private let state: NIOLockedValueBox<Credentials>
    /// Orders the changes: held while one is written, so a SASL lookup never waits for the fsync.
    private let writer = NIOLockedValueBox(())

    public init(directory: String) throws {
        path = directory + "/" + Self.fileName
        var credentials: Credentials = [:]
        if let text = try LogDirectory.readText(path) {
            for entry in try JSONDecoder().decode([Stored].self, from: Data(text.utf8)) {
                guard let salt = Data(base64Encoded: entry.salt), let storedKey = Data(base64Encoded: entry.storedKey),
                      let serverKey = Data(base64Encoded: entry.serverKey) else {
                    throw ConfigError(key: Self.fileName, reason: "the credential of \(entry.user) is not base64")
                }
                credentials[entry.user, default: [:]][entry.mechanism] = ScramCredential(
                    salt: Array(salt), storedKey: Array(storedKey), serverKey: Array(serverKey), iterations: entry.iterations)
            }
        }
        state = NIOLockedValueBox(credentials)
    }

    public var all: Credentials { state.withLockedValue { $0 } }

    public func credential(user: String, mechanism: ScramMechanism) -> ScramCredential? {
        state.withLockedValue { $0[user]?[mechanism] }
    }

    /// Applies every change (nil deletes) at once and writes the file; on a failed write nothing changes.
    public func alter(_ changes: [(user: String, mechanism: ScramMechanism, credential: ScramCredential?)]) throws {
        try writer.withLockedValue { _ in
            var updated = all
            for change in changes {
                var users = updated[change.user] ?? [:]
                users[change.mechanism] = change.credential
                updated[change.user] = users.isEmpty ? nil : users
            }
            let stored = updated.sorted { $0.key < $1.key }.flatMap { user, mechanisms in
                mechanisms.sorted { $0.key.wireType < $1.key.wireType }.map { mechanism, credential in
                    Stored(user: user, mechanism: mechanism, iterations: credential.iterations,
                           salt: Data(credential.salt).base64EncodedString(), storedKey: Data(credential.storedKey).base64EncodedString(),
                           serverKey: Data(credential.serverKey).base64EncodedString())
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try LogDirectory.writeAtomically(String(decoding: try encoder.encode(stored), as: UTF8.self), to: path, mode: 0o600)
            state.withLockedValue { $0 = updated }
        }
    }
}
