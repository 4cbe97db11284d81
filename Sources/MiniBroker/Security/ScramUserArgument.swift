import KafkaSASL

/// `SCRAM-SHA-256=[name=alice,password=alice-secret,iterations=8192]`: a SCRAM user as
/// `kafka-storage format --add-scram` takes it, for `minibroker --add-scram`.
public struct ScramUserArgument: Sendable {
    public var mechanism: ScramMechanism
    public var name: String
    public var password: String
    public var iterations: Int32 = ScramMechanism.minIterations

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(parsing text: String) throws(Invalid) {
        guard let equals = text.firstIndex(of: "="), text.hasSuffix("]"), text[text.index(after: equals)...].hasPrefix("[") else {
            throw Invalid(description: "the value is not MECHANISM=[name=...,password=...]")
        }
        guard let mechanism = ScramMechanism(mechanismName: String(text[..<equals])) else {
            throw Invalid(description: "'\(text[..<equals])' is not SCRAM-SHA-256 or SCRAM-SHA-512")
        }
        self.mechanism = mechanism
        var name: String?, password: String?
        for item in text[text.index(equals, offsetBy: 2)..<text.index(before: text.endIndex)].split(separator: ",") {
            guard let eq = item.firstIndex(of: "=") else { throw Invalid(description: "an item is not key=value (name, password, iterations)") }
            let value = String(item[item.index(after: eq)...])
            switch item[..<eq] {
            case "name": name = value
            case "password": password = value
            case "iterations":
                guard let count = Int32(value), (ScramMechanism.minIterations...ScramMechanism.maxIterations).contains(count) else {
                    throw Invalid(description: "iterations must be from \(ScramMechanism.minIterations) to \(ScramMechanism.maxIterations)")
                }
                iterations = count
            default:
                throw Invalid(description: "unknown key '\(item[..<eq])': name, password and iterations are accepted")
            }
        }
        guard let name, !name.isEmpty else { throw Invalid(description: "no name= given") }
        guard let password, !password.isEmpty else { throw Invalid(description: "no password= given") }
        self.name = name
        self.password = password
    }
}

extension Broker {
    /// Stores (or replaces) one user's SCRAM credential for a password, with a fresh salt.
    public func upsertScramCredential(user: String, mechanism: ScramMechanism, password: String, iterations: Int32) throws {
        try scramCredentials.alter([(user, mechanism, ScramCredential(mechanism: mechanism, password: password, iterations: iterations))])
    }
}
