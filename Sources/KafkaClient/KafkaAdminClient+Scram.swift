import KafkaSASL
import KafkaWire
import NIOCore

/// One SCRAM credential of a user, as DescribeUserScramCredentials lists it (never a secret).
public struct ScramCredentialInfo: Sendable, Hashable {
    public var mechanism: KafkaSecurity.SaslMechanism
    public var iterations: Int32
}

extension KafkaAdminClient {
    /// The SCRAM credentials of `users`, or of every user for nil; a named user without any is an
    /// error (RESOURCE_NOT_FOUND), as Kafka answers.
    public func describeUserScramCredentials(users: [String]? = nil) async throws -> [String: [ScramCredentialInfo]] {
        let request = DescribeUserScramCredentialsRequest(users: users?.map { .init(name: $0) })
        let response = try await client.anyConnection().send(request)
        try Self.check(response.errorCode, response.errorMessage, "describing SCRAM credentials failed")
        var result: [String: [ScramCredentialInfo]] = [:]
        for entry in response.results {
            try Self.check(entry.errorCode, entry.errorMessage, "describing the SCRAM credentials of \(entry.user) failed")
            result[entry.user] = entry.credentialInfos.compactMap { info in
                ScramMechanism(wireType: info.mechanism).flatMap { KafkaSecurity.SaslMechanism(rawValue: $0.mechanismName) }
                    .map { ScramCredentialInfo(mechanism: $0, iterations: info.iterations) }
            }
        }
        return result
    }

    /// Creates or replaces `user`'s credential for a SCRAM mechanism. The password is salted and
    /// hashed here, with a fresh random salt: only the salted password travels (KIP-554).
    public func upsertUserScramCredential(user: String, mechanism: KafkaSecurity.SaslMechanism, password: String,
                                          iterations: Int32 = ScramMechanism.minIterations) async throws {
        let scram = try Self.scramMechanism(mechanism)
        let salt = randomBytes(32)
        let upsertion = AlterUserScramCredentialsRequest.ScramCredentialUpsertion(
            name: user, mechanism: scram.wireType, iterations: iterations, salt: ByteBuffer(bytes: salt),
            saltedPassword: ByteBuffer(bytes: scram.saltedPassword(password, salt: salt, iterations: iterations)))
        try await alterScram(AlterUserScramCredentialsRequest(deletions: [], upsertions: [upsertion]), user: user)
    }

    /// Deletes `user`'s credential for a SCRAM mechanism.
    public func deleteUserScramCredential(user: String, mechanism: KafkaSecurity.SaslMechanism) async throws {
        let scram = try Self.scramMechanism(mechanism)
        try await alterScram(AlterUserScramCredentialsRequest(deletions: [.init(name: user, mechanism: scram.wireType)], upsertions: []), user: user)
    }

    private func alterScram(_ request: AlterUserScramCredentialsRequest, user: String) async throws {
        let response = try await client.anyConnection().send(request)
        for result in response.results {
            try Self.check(result.errorCode, result.errorMessage, "altering the SCRAM credentials of \(result.user) failed")
        }
    }

    private static func scramMechanism(_ mechanism: KafkaSecurity.SaslMechanism) throws -> ScramMechanism {
        guard let scram = ScramMechanism(mechanismName: mechanism.rawValue) else {
            throw KafkaClientError(.configuration, "\(mechanism.rawValue) has no stored credentials: SCRAM-SHA-256 or SCRAM-SHA-512")
        }
        return scram
    }
}
