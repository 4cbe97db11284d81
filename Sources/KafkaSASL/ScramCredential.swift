/// What a broker keeps of a SCRAM user (RFC 5802): the salt, the iteration count and two keys derived
/// from the salted password. Neither the password nor the salted password can be recovered from it.
public struct ScramCredential: Sendable, Hashable, Codable {
    public var salt: [UInt8]
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]
    public var iterations: Int32

    public init(salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8], iterations: Int32) {
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
        self.iterations = iterations
    }

    /// The credential for a salted password, as AlterUserScramCredentials carries it.
    public init(mechanism: ScramMechanism, saltedPassword: [UInt8], salt: [UInt8], iterations: Int32) {
        let clientKey = mechanism.hmac(key: saltedPassword, Array("Client Key".utf8))
        self.init(salt: salt, storedKey: mechanism.hash(clientKey),
                  serverKey: mechanism.hmac(key: saltedPassword, Array("Server Key".utf8)), iterations: iterations)
    }

    /// The credential for a password, with a fresh random salt.
    public init(mechanism: ScramMechanism, password: String, iterations: Int32 = ScramMechanism.minIterations) {
        let salt = randomBytes(32)
        self.init(mechanism: mechanism, saltedPassword: mechanism.saltedPassword(password, salt: salt, iterations: iterations),
                  salt: salt, iterations: iterations)
    }

    /// Whether `password` is the one this credential was made from (PLAIN users checked against the
    /// SCRAM store).
    public func matches(password: String, mechanism: ScramMechanism) -> Bool {
        let salted = mechanism.saltedPassword(password, salt: salt, iterations: iterations)
        let clientKey = mechanism.hmac(key: salted, Array("Client Key".utf8))
        return constantTimeEquals(mechanism.hash(clientKey), storedKey)
    }
}
