/// The client's side of one SCRAM exchange: its first message, the final message computed from the
/// server's answer, and the check of the server's signature (the server proves it knows the key too).
public struct ScramClientExchange: Sendable {
    public let mechanism: ScramMechanism
    private let password: String
    private let clientFirst: ScramClientFirstMessage
    private var expectedServerSignature: [UInt8]?

    public init(mechanism: ScramMechanism, username: String, password: String, nonce: String? = nil, extensions: [String: String] = [:]) {
        self.mechanism = mechanism
        self.password = password
        clientFirst = ScramClientFirstMessage(username: username, nonce: nonce ?? Base64.encode(randomBytes(24)), extensions: extensions)
    }

    public var clientFirstMessage: [UInt8] { Array(clientFirst.text.utf8) }

    /// The client-final message for the server's first message.
    public mutating func clientFinalMessage(serverFirst bytes: [UInt8]) throws(SaslAuthenticationError) -> [UInt8] {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw SaslAuthenticationError("Invalid SCRAM server first message") }
        let serverFirst = try ScramServerFirstMessage(parsing: text)
        guard serverFirst.nonce.hasPrefix(clientFirst.nonce), serverFirst.nonce.count > clientFirst.nonce.count else {
            throw SaslAuthenticationError("Invalid SCRAM server first message: the server nonce does not extend the client's")
        }
        guard serverFirst.iterations >= ScramMechanism.minIterations else {
            throw SaslAuthenticationError("Requested iterations \(serverFirst.iterations) is less than the minimum \(ScramMechanism.minIterations) for \(mechanism.mechanismName)")
        }
        guard serverFirst.iterations <= ScramMechanism.maxIterations else {
            throw SaslAuthenticationError("Requested iterations \(serverFirst.iterations) is more than the maximum \(ScramMechanism.maxIterations) for \(mechanism.mechanismName)")
        }
        let salted = mechanism.saltedPassword(password, salt: serverFirst.salt, iterations: serverFirst.iterations)
        let clientKey = mechanism.hmac(key: salted, Array("Client Key".utf8))
        var final = ScramClientFinalMessage(channelBinding: Array(clientFirst.gs2Header.utf8), nonce: serverFirst.nonce, proof: [])
        let authMessage = Array("\(clientFirst.bare),\(serverFirst.text),\(final.withoutProof)".utf8)
        let signature = mechanism.hmac(key: mechanism.hash(clientKey), authMessage)
        final.proof = zip(clientKey, signature).map { $0 ^ $1 }
        expectedServerSignature = mechanism.hmac(key: mechanism.hmac(key: salted, Array("Server Key".utf8)), authMessage)
        return Array(final.text.utf8)
    }

    /// Checks the server's final message: its signature, or the error it reports.
    public func verify(serverFinal bytes: [UInt8]) throws(SaslAuthenticationError) {
        guard let expected = expectedServerSignature, let text = String(validating: bytes, as: UTF8.self) else {
            throw SaslAuthenticationError("Invalid SCRAM server final message")
        }
        switch try ScramServerFinalMessage(parsing: text) {
        case .error(let error):
            throw SaslAuthenticationError("SCRAM authentication failed: \(error)")
        case .verifier(let signature):
            guard constantTimeEquals(signature, expected) else { throw SaslAuthenticationError("Invalid SCRAM server signature") }
        }
    }
}
