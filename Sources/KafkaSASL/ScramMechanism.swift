import Crypto

/// The SCRAM mechanisms Kafka supports (KIP-84), with the bounds Kafka puts on their iteration counts.
public enum ScramMechanism: String, Sendable, CaseIterable, Hashable, Codable {
    case sha256 = "SCRAM-SHA-256"
    case sha512 = "SCRAM-SHA-512"

    /// Kafka's own bounds: fewer rounds are too weak, more let one client burn the broker's CPU.
    public static let minIterations: Int32 = 4096
    public static let maxIterations: Int32 = 16384

    /// The mechanism's name in SaslHandshake and `sasl.mechanism`.
    public var mechanismName: String { rawValue }

    /// Its number in AlterUserScramCredentials / DescribeUserScramCredentials (0 is UNKNOWN).
    public var wireType: Int8 {
        switch self {
        case .sha256: return 1
        case .sha512: return 2
        }
    }

    public init?(wireType: Int8) {
        guard let mechanism = Self.allCases.first(where: { $0.wireType == wireType }) else { return nil }
        self = mechanism
    }

    public init?(mechanismName: String) { self.init(rawValue: mechanismName) }

    /// Bytes of the hash: the length of keys, proofs and signatures.
    public var hashLength: Int {
        switch self {
        case .sha256: return SHA256.byteCount
        case .sha512: return SHA512.byteCount
        }
    }

    func hash(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: data))
        case .sha512: return Array(SHA512.hash(data: data))
        }
    }

    func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch self {
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
        }
    }

    /// RFC 5802's Hi(): PBKDF2 with the mechanism's HMAC and one block of output.
    public func saltedPassword(_ password: String, salt: [UInt8], iterations: Int32) -> [UInt8] {
        let key = Array(password.utf8)
        var u = hmac(key: key, salt + [0, 0, 0, 1])
        var result = u
        if iterations > 1 {
            for _ in 2...Int(iterations) {
                u = hmac(key: key, u)
                for index in result.indices { result[index] ^= u[index] }
            }
        }
        return result
    }
}

/// Compares secrets byte by byte in time that depends on their lengths only (not on where they differ).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference: UInt8 = 0
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0 && a.count == b.count
}

/// Random bytes from the system's cryptographic generator (getrandom on Linux): salts, nonces, keys.
public func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}
