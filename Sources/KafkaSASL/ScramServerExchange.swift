import Foundation

/// The broker's side of one SCRAM exchange: client-first in, server-first out; client-final in,
/// server-final out and the user authenticated. An unknown user is answered like a known one, with a
/// salt derived from its name, and fails at the proof: the exchange does not tell which users exist.
public struct ScramServerExchange: Sendable {
    public let mechanism: ScramMechanism
    /// Set once the proof has been checked.
    public private(set) var authenticatedUser: String?
    /// Extensions the client sent in its first message (Kafka's `tokenauth`, for one).
    public private(set) var extensions: [String: String] = [:]

    private enum State: Sendable {
        case awaitingClientFirst
        /// `bare` is the client-first message as sent, without its GS2 header: what the AuthMessage signs.
        case awaitingClientFinal(clientFirst: ScramClientFirstMessage, bare: String, serverFirst: ScramServerFirstMessage, credential: ScramCredential?)
        case complete
        case failed
    }

    private var state = State.awaitingClientFirst
    private let fakeSaltKey: [UInt8]

    /// `fakeSaltKey` keys the salts of users that do not exist (one per broker, so they stay the same
    /// from one attempt to the next).
    public init(mechanism: ScramMechanism, fakeSaltKey: [UInt8]) {
        self.mechanism = mechanism
        self.fakeSaltKey = fakeSaltKey
    }

    public var isComplete: Bool {
        if case .complete = state { return true }
        return false
    }

    /// Takes the client's next message and returns the answer. `credential` looks a user up.
    public mutating func evaluate(_ response: [UInt8], credential: (String) -> ScramCredential?) throws(SaslAuthenticationError) -> [UInt8] {
        let current = state
        state = .failed
        guard let text = String(validating: response, as: UTF8.self) else {
            throw SaslAuthenticationError("Invalid SCRAM message: not UTF-8")
        }
        switch current {
        case .awaitingClientFirst:
            let clientFirst = try ScramClientFirstMessage(parsing: text)
            guard clientFirst.authorizationId.isEmpty || clientFirst.authorizationId == clientFirst.username else {
                throw SaslAuthenticationError("Authentication failed: Client requested an authorization id that is different from username")
            }
            let found = credential(clientFirst.username)
            let salt = found?.salt ?? Array(mechanism.hmac(key: fakeSaltKey, Array(clientFirst.username.utf8)).prefix(32))
            let serverFirst = ScramServerFirstMessage(nonce: clientFirst.nonce + Base64.encode(randomBytes(24)),
                                                      salt: salt, iterations: found?.iterations ?? ScramMechanism.minIterations)
            extensions = clientFirst.extensions
            let bare = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false).dropFirst(2).first.map(String.init) ?? clientFirst.bare
            state = .awaitingClientFinal(clientFirst: clientFirst, bare: bare, serverFirst: serverFirst, credential: found)
            return Array(serverFirst.text.utf8)
        case .awaitingClientFinal(let clientFirst, let bare, let serverFirst, let found):
            let clientFinal = try ScramClientFinalMessage(parsing: text)
            // librdkafka before 2.1 repeats its own nonce in front of the server's (Debian's kcat has 2.0.2);
            // Kafka accepts it, so does this, and nothing else. The proof covers the message as sent.
            guard clientFinal.nonce == serverFirst.nonce || clientFinal.nonce == clientFirst.nonce + serverFirst.nonce else {
                throw SaslAuthenticationError("Invalid SCRAM client final message: nonce mismatch")
            }
            guard clientFinal.channelBinding == Array(clientFirst.gs2Header.utf8) else {
                throw SaslAuthenticationError("Invalid SCRAM client final message: channel binding mismatch")
            }
            // Signed as sent (extensions and all), not as re-encoded here.
            let withoutProof = text.range(of: ",p=", options: .backwards).map { String(text[..<$0.lowerBound]) } ?? clientFinal.withoutProof
            let authMessage = Array("\(bare),\(serverFirst.text),\(withoutProof)".utf8)
            guard let credential = found, clientFinal.proof.count == mechanism.hashLength else { throw invalidCredentials }
            let signature = mechanism.hmac(key: credential.storedKey, authMessage)
            let clientKey = zip(clientFinal.proof, signature).map { $0 ^ $1 }
            guard constantTimeEquals(mechanism.hash(clientKey), credential.storedKey) else { throw invalidCredentials }
            authenticatedUser = clientFirst.username
            state = .complete
            return Array(ScramServerFinalMessage.verifier(mechanism.hmac(key: credential.serverKey, authMessage)).text.utf8)
        case .complete, .failed:
            throw SaslAuthenticationError("Unexpected SCRAM message: the exchange is over")
        }
    }

    private var invalidCredentials: SaslAuthenticationError {
        SaslAuthenticationError("Authentication failed during authentication due to invalid credentials with SASL mechanism \(mechanism.mechanismName)")
    }
}
