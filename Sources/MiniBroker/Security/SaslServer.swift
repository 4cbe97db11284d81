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
    /// Kafka's sasl.server.max.receive.size default: the largest frame a connection may send before it
    /// has authenticated (a SASL token is small; a 100 MB frame from anyone is not).
    static let maxReceiveSize = 524_288
    /// Keys the made-up salts SCRAM answers unknown users with: one per broker run.
    let fakeSaltKey: [UInt8]

    init(config: BrokerConfig, scram: ScramCredentialStore) {
        mechanisms = config.saslEnabledMechanisms
        self.scram = scram
        plainUsers = Dictionary(config.listeners.map { ($0.name, config.plainUsers(listener: $0.name)) }, uniquingKeysWith: { $1 })
        sessionLifetimeMs = config.connectionsMaxReauthMs
        failureDelayMs = config.failedAuthenticationDelayMs
        fakeSaltKey = randomBytes(32)
    }

    /// PLAIN's check against the listener's JAAS users, as Kafka's PlainServerCallbackHandler does.
    /// SCRAM users are not PLAIN users: checking a password against a salted credential would make
    /// the broker run the key derivation for anyone who connects (and time it by user).
    func verifyPlain(_ message: PlainMessage, listener: String) throws(SaslAuthenticationError) -> KafkaPrincipal {
        let expected = plainUsers[listener]?[message.username]
        // Compared in full even for an unknown user, so the time taken does not tell which users exist.
        let matches = constantTimeEquals(Array((expected ?? "").utf8), Array(message.password.utf8))
        guard expected != nil, matches else { throw SaslAuthenticationError("Authentication failed: Invalid username or password") }
        return KafkaPrincipal(name: message.username)
    }
}
