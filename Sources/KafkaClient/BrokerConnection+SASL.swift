import KafkaSASL
import KafkaWire
import NIOCore

extension BrokerConnection {
    /// SaslHandshake, then the mechanism's tokens in SaslAuthenticate requests (KIP-152). Returns the
    /// session lifetime the broker gave (KIP-368; 0 for none). A refusal is an `.authentication`
    /// error carrying the broker's message: retrying with the same credentials cannot help.
    func authenticate(_ security: KafkaSecurity, timeout: TimeAmount) async throws -> Int64 {
        let handshake = try await send(SaslHandshakeRequest(mechanism: security.saslMechanism.rawValue),
                                       version: min(version(of: .saslHandshake) ?? 1, 1), timeout: timeout)
        guard handshake.errorCode == 0 else {
            let code = ErrorCode(rawValue: handshake.errorCode)
            // A broker without SASL on this listener may still list mechanisms: say what it answered.
            let listed = handshake.mechanisms.isEmpty ? "" : " (it lists \(handshake.mechanisms.joined(separator: ", ")))"
            throw KafkaClientError(.authentication, "\(host):\(port) refused SASL mechanism \(security.saslMechanism.rawValue): \(code)\(listed)")
        }
        guard let authenticateVersion = version(of: .saslAuthenticate) else {
            throw KafkaClientError(.unsupportedVersion, "\(host):\(port) does not support SaslAuthenticate in a version this client knows")
        }
        func exchange(_ bytes: [UInt8]) async throws -> SaslAuthenticateResponse {
            let response = try await send(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: bytes)), version: authenticateVersion, timeout: timeout)
            guard response.errorCode == 0 else {
                let code = ErrorCode(rawValue: response.errorCode)
                throw KafkaClientError(.authentication, "authentication with \(host):\(port) as \(security.saslUsername) failed: "
                                       + (response.errorMessage ?? "\(code)"))
            }
            return response
        }
        switch security.saslMechanism {
        case .plain:
            return try await exchange(PlainMessage(username: security.saslUsername, password: security.saslPassword).bytes).sessionLifetimeMs
        case .scramSHA256, .scramSHA512:
            let mechanism: ScramMechanism = security.saslMechanism == .scramSHA256 ? .sha256 : .sha512
            var client = ScramClientExchange(mechanism: mechanism, username: security.saslUsername, password: security.saslPassword)
            let first = try await exchange(client.clientFirstMessage)
            do {
                let final = try await exchange(try client.clientFinalMessage(serverFirst: Array(first.authBytes.readableBytesView)))
                try client.verify(serverFinal: Array(final.authBytes.readableBytesView))
                return final.sessionLifetimeMs
            } catch let error as SaslAuthenticationError {
                throw KafkaClientError(.authentication, "authentication with \(host):\(port) failed: \(error.message)")
            }
        }
    }
}
