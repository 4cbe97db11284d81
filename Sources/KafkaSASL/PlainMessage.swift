/// SASL PLAIN's one message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
public struct PlainMessage: Sendable, Equatable {
    public var authorizationId: String
    public var username: String
    public var password: String

    public init(authorizationId: String = "", username: String, password: String) {
        self.authorizationId = authorizationId
        self.username = username
        self.password = password
    }

    /// Kafka's rules: both names and the password present, an authorization id only if it is the user.
    public init(parsing bytes: [UInt8]) throws(SaslAuthenticationError) {
        let parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw SaslAuthenticationError("Invalid SASL/PLAIN response: expected 3 tokens, got \(parts.count)") }
        guard let authzid = String(validating: parts[0], as: UTF8.self), let username = String(validating: parts[1], as: UTF8.self),
              let password = String(validating: parts[2], as: UTF8.self) else {
            throw SaslAuthenticationError("Invalid SASL/PLAIN response: not UTF-8")
        }
        guard !username.isEmpty else { throw SaslAuthenticationError("Authentication failed: username not specified") }
        guard !password.isEmpty else { throw SaslAuthenticationError("Authentication failed: password not specified") }
        guard authzid.isEmpty || authzid == username else {
            throw SaslAuthenticationError("Authentication failed: Client requested an authorization id that is different from username")
        }
        self.init(authorizationId: authzid, username: username, password: password)
    }

    public var bytes: [UInt8] { Array(authorizationId.utf8) + [0] + Array(username.utf8) + [0] + Array(password.utf8) }
}
