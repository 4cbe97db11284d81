import KafkaSASL
import KafkaWire

// DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): the SCRAM users that SASL
// listeners authenticate against, with Kafka's checks and messages.

extension RequestDispatcher {
    /// Every user with a credential for a null or empty list; RESOURCE_NOT_FOUND for a named user
    /// without one, DUPLICATE_RESOURCE for a user named twice.
    func describeUserScramCredentials(_ request: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
        let all = broker.scramCredentials.all
        func infos(_ user: String) -> [DescribeUserScramCredentialsResponse.CredentialInfo] {
            (all[user] ?? [:]).sorted { $0.key.wireType < $1.key.wireType }.map { .init(mechanism: $0.key.wireType, iterations: $0.value.iterations) }
        }
        guard let named = request.users, !named.isEmpty else {
            return DescribeUserScramCredentialsResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil,
                                                        results: all.keys.sorted().map { .init(user: $0, errorCode: 0, errorMessage: nil, credentialInfos: infos($0)) })
        }
        var counts: [String: Int] = [:]
        for user in named { counts[user.name, default: 0] += 1 }
        var answered: Set<String> = []
        let results: [DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult] = named.compactMap { user in
            let name = user.name
            guard answered.insert(name).inserted else { return nil }
            if counts[name, default: 0] > 1 {
                return .init(user: name, errorCode: ErrorCode.duplicateResource.rawValue,
                             errorMessage: "Cannot describe SCRAM credentials for the same user twice in a single request: \(name)", credentialInfos: [])
            }
            guard all[name] != nil else {
                return .init(user: name, errorCode: ErrorCode.resourceNotFound.rawValue,
                             errorMessage: "Attempt to describe a user credential that does not exist: \(name)", credentialInfos: [])
            }
            return .init(user: name, errorCode: 0, errorMessage: nil, credentialInfos: infos(name))
        }
        return DescribeUserScramCredentialsResponse(throttleTimeMs: 0, errorCode: 0, errorMessage: nil, results: results)
    }

    /// Deletions and upsertions, checked per user: a user with any refused change keeps its
    /// credentials as they were; every other user's changes are stored together, durably.
    func alterUserScramCredentials(_ request: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
        typealias Result = AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult
        var order: [String] = []
        var ordered: Set<String> = []
        var errors: [String: (ErrorCode, String)] = [:]
        var changes: [String: [(ScramMechanism, ScramCredential?)]] = [:]
        var seen: Set<String> = []
        let existing = broker.scramCredentials.all
        func refuse(_ user: String, _ code: ErrorCode, _ message: String) {
            if errors[user] == nil { errors[user] = (code, message) }
        }
        func change(_ user: String, _ wireType: Int8, _ credential: () -> CredentialChange) {
            if ordered.insert(user).inserted { order.append(user) }
            guard !user.isEmpty else { return refuse(user, .unacceptableCredential, "Username must not be empty") }
            guard let mechanism = ScramMechanism(wireType: wireType) else {
                return refuse(user, .unsupportedSaslMechanism, "Unknown SCRAM mechanism")
            }
            guard seen.insert("\(user)\u{0}\(wireType)").inserted else {
                return refuse(user, .duplicateResource, "A user credential cannot be altered twice in the same request")
            }
            switch credential() {
            case .refused(let code, let message): refuse(user, code, message)
            case .set(let value): changes[user, default: []].append((mechanism, value))
            }
        }
        for deletion in request.deletions {
            change(deletion.name, deletion.mechanism) {
                guard let mechanism = ScramMechanism(wireType: deletion.mechanism), existing[deletion.name]?[mechanism] != nil else {
                    return .refused(.resourceNotFound, "Attempt to delete a user credential that does not exist")
                }
                return .set(nil)
            }
        }
        for upsertion in request.upsertions {
            change(upsertion.name, upsertion.mechanism) {
                guard let mechanism = ScramMechanism(wireType: upsertion.mechanism) else { return .refused(.unsupportedSaslMechanism, "Unknown SCRAM mechanism") }
                guard upsertion.iterations >= ScramMechanism.minIterations else {
                    return .refused(.unacceptableCredential, "Too few iterations: at least \(ScramMechanism.minIterations) for \(mechanism.mechanismName)")
                }
                guard upsertion.iterations <= ScramMechanism.maxIterations else {
                    return .refused(.unacceptableCredential, "Too many iterations: at most \(ScramMechanism.maxIterations) for \(mechanism.mechanismName)")
                }
                guard upsertion.salt.readableBytes > 0 else { return .refused(.unacceptableCredential, "Salt must not be empty") }
                guard upsertion.saltedPassword.readableBytes == mechanism.hashLength else {
                    return .refused(.unacceptableCredential, "The salted password of \(mechanism.mechanismName) must be \(mechanism.hashLength) bytes")
                }
                return .set(ScramCredential(mechanism: mechanism, saltedPassword: Array(upsertion.saltedPassword.readableBytesView),
                                            salt: Array(upsertion.salt.readableBytesView), iterations: upsertion.iterations))
            }
        }
        let accepted = order.filter { errors[$0] == nil }
        var storeError: String?
        do {
            try broker.scramCredentials.alter(accepted.flatMap { user in (changes[user] ?? []).map { (user, $0.0, $0.1) } })
            if !accepted.isEmpty { logger.info("SCRAM credentials altered", metadata: ["users": "\(accepted.joined(separator: ","))"]) }
        } catch {
            logger.error("storing SCRAM credentials failed: \(error)")
            storeError = "The credentials could not be stored: \(error)"
        }
        return AlterUserScramCredentialsResponse(throttleTimeMs: 0, results: order.map { user -> Result in
            if let (code, message) = errors[user] { return .init(user: user, errorCode: code.rawValue, errorMessage: message) }
            if let storeError { return .init(user: user, errorCode: ErrorCode.kafkaStorageError.rawValue, errorMessage: storeError) }
            return .init(user: user, errorCode: 0, errorMessage: nil)
        })
    }
}

/// One upsertion's or deletion's verdict.
private enum CredentialChange {
    case refused(ErrorCode, String)
    case set(ScramCredential?)
}
