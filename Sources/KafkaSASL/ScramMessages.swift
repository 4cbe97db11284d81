import Foundation

// RFC 5802's four messages as Kafka exchanges them: no channel binding ("n"), an authorization id
// only if it names the user, and extensions (key=value) after the nonce.

/// `n,[a=authzid],n=user,r=nonce[,extensions]`
public struct ScramClientFirstMessage: Sendable, Equatable {
    public var username: String
    public var authorizationId: String
    public var nonce: String
    public var extensions: [String: String]

    public init(username: String, authorizationId: String = "", nonce: String, extensions: [String: String] = [:]) {
        self.username = username
        self.authorizationId = authorizationId
        self.nonce = nonce
        self.extensions = extensions
    }

    public init(parsing text: String) throws(SaslAuthenticationError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts[0] == "n" else {
            throw SaslAuthenticationError("Invalid SCRAM client first message: channel binding is not supported")
        }
        guard parts[1].isEmpty || parts[1].hasPrefix("a=") else { throw SaslAuthenticationError("Invalid SCRAM client first message") }
        authorizationId = try ScramName.decode(String(parts[1].dropFirst(2)))
        guard parts[2].hasPrefix("n="), parts[3].hasPrefix("r=") else { throw SaslAuthenticationError("Invalid SCRAM client first message") }
        username = try ScramName.decode(String(parts[2].dropFirst(2)))
        nonce = String(parts[3].dropFirst(2))
        guard !username.isEmpty, ScramName.isValidNonce(nonce) else { throw SaslAuthenticationError("Invalid SCRAM client first message") }
        extensions = try ScramName.extensions(parts[4...])
    }

    /// The message without its GS2 header: the part the AuthMessage signs.
    public var bare: String {
        var text = "n=\(ScramName.encode(username)),r=\(nonce)"
        for key in extensions.keys.sorted() { text += ",\(key)=\(extensions[key] ?? "")" }
        return text
    }

    public var gs2Header: String { authorizationId.isEmpty ? "n,," : "n,a=\(ScramName.encode(authorizationId))," }

    public var text: String { gs2Header + bare }
}

/// `r=nonce,s=salt,i=iterations`
public struct ScramServerFirstMessage: Sendable, Equatable {
    public var nonce: String
    public var salt: [UInt8]
    public var iterations: Int32

    public init(nonce: String, salt: [UInt8], iterations: Int32) {
        self.nonce = nonce
        self.salt = salt
        self.iterations = iterations
    }

    public init(parsing text: String) throws(SaslAuthenticationError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].hasPrefix("r="), parts[1].hasPrefix("s="), parts[2].hasPrefix("i="),
              let salt = Base64.decode(String(parts[1].dropFirst(2))), !salt.isEmpty,
              let iterations = Int32(parts[2].dropFirst(2)) else {
            throw SaslAuthenticationError("Invalid SCRAM server first message")
        }
        nonce = String(parts[0].dropFirst(2))
        guard ScramName.isValidNonce(nonce) else { throw SaslAuthenticationError("Invalid SCRAM server first message") }
        self.salt = salt
        self.iterations = iterations
    }

    public var text: String { "r=\(nonce),s=\(Base64.encode(salt)),i=\(iterations)" }
}

/// `c=channel-binding,r=nonce[,extensions],p=proof`
public struct ScramClientFinalMessage: Sendable, Equatable {
    public var channelBinding: [UInt8]
    public var nonce: String
    public var proof: [UInt8]

    public init(channelBinding: [UInt8], nonce: String, proof: [UInt8]) {
        self.channelBinding = channelBinding
        self.nonce = nonce
        self.proof = proof
    }

    public init(parsing text: String) throws(SaslAuthenticationError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].hasPrefix("c="), parts[1].hasPrefix("r="), let last = parts.last, last.hasPrefix("p="),
              let binding = Base64.decode(String(parts[0].dropFirst(2))),
              let proof = Base64.decode(String(last.dropFirst(2))) else {
            throw SaslAuthenticationError("Invalid SCRAM client final message")
        }
        channelBinding = binding
        nonce = String(parts[1].dropFirst(2))
        self.proof = proof
    }

    /// What the AuthMessage signs: everything before `,p=`.
    public var withoutProof: String { "c=\(Base64.encode(channelBinding)),r=\(nonce)" }

    public var text: String { withoutProof + ",p=\(Base64.encode(proof))" }
}

/// `v=signature`, or `e=error`.
public enum ScramServerFinalMessage: Sendable, Equatable {
    case verifier([UInt8])
    case error(String)

    public init(parsing text: String) throws(SaslAuthenticationError) {
        if text.hasPrefix("e=") {
            self = .error(String(text.dropFirst(2)))
        } else if text.hasPrefix("v="), let signature = Base64.decode(String(text.dropFirst(2).prefix { $0 != "," })) {
            self = .verifier(signature)
        } else {
            throw SaslAuthenticationError("Invalid SCRAM server final message")
        }
    }

    public var text: String {
        switch self {
        case .verifier(let signature): return "v=\(Base64.encode(signature))"
        case .error(let error): return "e=\(error)"
        }
    }
}

/// RFC 5802's saslname escaping and its other small syntax rules.
enum ScramName {
    static func encode(_ name: String) -> String {
        name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }

    /// `=2C` and `=3D` only; any other `=` is refused (RFC 5802 section 5.1).
    static func decode(_ text: String) throws(SaslAuthenticationError) -> String {
        var result = ""
        var rest = Substring(text)
        while let equals = rest.firstIndex(of: "=") {
            result += rest[..<equals]
            let escape = rest[equals...].prefix(3)
            switch escape {
            case "=2C": result += ","
            case "=3D": result += "="
            default: throw SaslAuthenticationError("Invalid SCRAM user name: '=' must be escaped")
            }
            rest = rest[equals...].dropFirst(3)
        }
        return result + rest
    }

    /// Printable ASCII but ','.
    static func isValidNonce(_ nonce: String) -> Bool {
        !nonce.isEmpty && nonce.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ",") }
    }

    static func extensions(_ parts: ArraySlice<String>) throws(SaslAuthenticationError) -> [String: String] {
        var result: [String: String] = [:]
        for part in parts {
            guard let equals = part.firstIndex(of: "="), equals != part.startIndex else {
                throw SaslAuthenticationError("Invalid SCRAM extension '\(part.prefix(64))'")
            }
            result[String(part[..<equals])] = String(part[part.index(after: equals)...])
        }
        return result
    }
}
