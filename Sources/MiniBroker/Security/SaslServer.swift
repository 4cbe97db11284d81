import KafkaSASL

/// What every SASL connection of the broker authenticates against: the enabled mechanisms, each
/// listener's PLAIN users, the SCRAM credential store, and the session and failure timings.
public final class SaslServer: Sendable {
    public let mechanisms: [String]
    let scram: ScramCredentialStore
    /// PLAIN users from each listener's JAAS config, by listener name.
    private let plainUsers: [String: [String: String]]
    /// connections.max.reauth.ms: an authenticated session's lifetime (0: the connection's).
    let sessionLifetimeMs: Int64
    /// connection.failed.authentication.delay.ms
    let failureDelayMs: Int64
    /// Keys the made-up salts SCRAM answers unknown users with: one per broker run.
    let fakeSaltKey: [UInt8]

    init(config: BrokerConfig, scram: ScramCredentialStore) {
        mechanisms = config.saslEnabledMechanisms
        self.scram = scram
        plainUsers = Dictionary(config.listeners.map { ($0.name, config.plainUsers(listener: $0.name)) }, uniquingKeysWith: { $1 })
        sessionLifetimeMs = config.connectionsMaxReauthMs
        failureDelayMs = config.failedAuthenticationDelayMs
        var generator = SystemRandomNumberGenerator()
        fakeSaltKey = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// PLAIN's check: the listener's JAAS users first, then the user's SCRAM credential (the password
    /// a SCRAM user was created with also works over PLAIN, as one store serves both).
    func verifyPlain(_ message: PlainMessage, listener: String) throws(SaslAuthenticationError) -> KafkaPrincipal {
        let invalid = SaslAuthenticationError("Authentication failed: Invalid username or password")
        if let expected = plainUsers[listener]?[message.username] {
            guard constantTimeEquals(Array(expected.utf8), Array(message.password.utf8)) else { throw invalid }
            return KafkaPrincipal(name: message.username)
        }
        for mechanism in [ScramMechanism.sha512, .sha256] {
            if let credential = scram.credential(user: message.username, mechanism: mechanism) {
                guard credential.matches(password: message.password, mechanism: mechanism) else { throw invalid }
                return KafkaPrincipal(name: message.username)
            }
        }
        throw invalid
    }

    private func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
