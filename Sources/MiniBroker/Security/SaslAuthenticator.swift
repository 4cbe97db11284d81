import KafkaSASL
import KafkaWire
import NIOCore

/// One SASL connection's authentication, as Kafka's SaslServerAuthenticator runs it: ApiVersions and
/// SaslHandshake are the only requests served before the exchange completes (KIP-43), SaslAuthenticate
/// carries the mechanism's tokens (KIP-152; after a v0 handshake the tokens come as bare frames), and
/// an authenticated session lasts connections.max.reauth.ms unless the client re-authenticates on the
/// same connection, as the same principal, with the same mechanism (KIP-368). Owned by the
/// connection's handler, on its event loop.
struct SaslAuthenticator {
    enum Action {
        /// Not a SASL request: the request layer answers it for this principal.
        case dispatch(KafkaPrincipal)
        /// The answer to a SASL step; the connection goes on.
        case respond(ResponseFrame)
        /// The answer (if any), sent once connection.failed.authentication.delay.ms has passed, then the close.
        case fail(ResponseFrame?, reason: String)
        /// Closed at once, unanswered.
        case close(reason: String)
    }

    private enum Exchange {
        case plain
        case scram(ScramServerExchange)
    }

    private enum State {
        case handshakeRequired
        /// Tokens of `mechanism` are expected; `raw` after a v0 handshake.
        case tokenExpected(mechanism: String, exchange: Exchange, raw: Bool)
        case authenticated
    }

    let server: SaslServer
    let listener: String
    private var state = State.handshakeRequired
    /// Set by the first completed exchange; a re-authentication must keep it.
    private(set) var principal: KafkaPrincipal?
    private var sessionMechanism: String?
    private var sessionExpiry: NIODeadline?

    init(server: SaslServer, listener: String) {
        self.server = server
        self.listener = listener
    }

    mutating func receive(_ frame: ByteBuffer, now: NIODeadline) -> Action {
        if case .tokenExpected(let mechanism, let exchange, true) = state {
            return rawToken(frame, mechanism: mechanism, exchange: exchange, now: now)
        }
        var body = frame
        guard let rawKey = body.getInteger(at: body.readerIndex, as: Int16.self),
              let version = body.getInteger(at: body.readerIndex + 2, as: Int16.self),
              let apiKey = ApiKey(rawValue: rawKey) else {
            return .close(reason: "unreadable request during SASL authentication")
        }
        var exchanging = false
        if case .tokenExpected = state { exchanging = true }
        // Past the session's end only a re-authentication goes on.
        if principal != nil, apiKey != .saslHandshake, !(apiKey == .saslAuthenticate && exchanging), let expiry = sessionExpiry, now > expiry {
            return .close(reason: "the authenticated session of \(principal.map { "\($0)" } ?? "?") expired; re-authentication required")
        }
        switch apiKey {
        case .saslHandshake where (0...1).contains(version):
            guard let header = try? RequestHeader(from: &body, version: apiKey.requestHeaderVersion(version)),
                  let request = try? SaslHandshakeRequest(from: &body, version: version) else {
                return .close(reason: "SaslHandshake request does not parse")
            }
            return handshake(request, version: version, correlationId: header.correlationId)
        case .saslAuthenticate where (0...2).contains(version):
            guard let header = try? RequestHeader(from: &body, version: apiKey.requestHeaderVersion(version)),
                  let request = try? SaslAuthenticateRequest(from: &body, version: version) else {
                return .close(reason: "SaslAuthenticate request does not parse")
            }
            return authenticate(request, version: version, correlationId: header.correlationId, now: now)
        case .apiVersions:
            return .dispatch(principal ?? .anonymous)
        default:
            // A session being re-authenticated is still valid: its requests go on being answered.
            guard let principal else { return .close(reason: "Unexpected Kafka request of type \(apiKey) during SASL handshake") }
            return .dispatch(principal)
        }
    }

    private mutating func handshake(_ request: SaslHandshakeRequest, version: Int16, correlationId: Int32) -> Action {
        func answer(_ error: ErrorCode) -> ResponseFrame {
            frame(SaslHandshakeResponse(errorCode: error.rawValue, mechanisms: server.mechanisms), .saslHandshake, version, correlationId)
        }
        switch state {
        case .tokenExpected:
            return .fail(answer(.illegalSaslState), reason: "SaslHandshake during a SASL exchange")
        case .authenticated where version == 0:
            // Re-authentication needs v1 (KIP-368); a v0 handshake after authentication is the request layer's to refuse.
            return .dispatch(principal ?? .anonymous)
        case .handshakeRequired, .authenticated:
            break
        }
        guard server.mechanisms.contains(request.mechanism) else {
            return .fail(answer(.unsupportedSaslMechanism), reason: "client asked for SASL mechanism \(request.mechanism.prefix(64)), not enabled")
        }
        if let sessionMechanism, sessionMechanism != request.mechanism {
            return .fail(answer(.unsupportedSaslMechanism), reason: "re-authentication with \(request.mechanism.prefix(64)) after \(sessionMechanism)")
        }
        let exchange: Exchange
        if let scram = ScramMechanism(mechanismName: request.mechanism) {
            exchange = .scram(ScramServerExchange(mechanism: scram, fakeSaltKey: server.fakeSaltKey))
        } else {
            exchange = .plain
        }
        state = .tokenExpected(mechanism: request.mechanism, exchange: exchange, raw: version == 0)
        return .respond(answer(.noError))
    }

    private mutating func authenticate(_ request: SaslAuthenticateRequest, version: Int16, correlationId: Int32, now: NIODeadline) -> Action {
        func answer(_ error: ErrorCode, _ message: String?, _ bytes: [UInt8] = [], lifetime: Int64 = 0) -> ResponseFrame {
            frame(SaslAuthenticateResponse(errorCode: error.rawValue, errorMessage: message, authBytes: ByteBuffer(bytes: bytes),
                                           sessionLifetimeMs: lifetime), .saslAuthenticate, version, correlationId)
        }
        guard case .tokenExpected(let mechanism, let exchange, false) = state else {
            // After authentication the request layer answers it (ILLEGAL_SASL_STATE), as Kafka's KafkaApis does.
            if let principal { return .dispatch(principal) }
            return .fail(answer(.illegalSaslState, "Unexpected SaslAuthenticate request: no SASL exchange is in progress"),
                         reason: "SaslAuthenticate outside an exchange")
        }
        switch evaluate(Array(request.authBytes.readableBytesView), mechanism: mechanism, exchange: exchange, now: now) {
        case .failure(let error):
            return .fail(answer(.saslAuthenticationFailed, error.message), reason: error.message)
        case .success(let (response, complete)):
            let lifetime = complete ? server.sessionLifetimeMs : 0
            return .respond(answer(.noError, nil, response, lifetime: lifetime))
        }
    }

    /// A token after a v0 handshake: answered as a bare frame; a failure closes without an answer.
    private mutating func rawToken(_ frame: ByteBuffer, mechanism: String, exchange: Exchange, now: NIODeadline) -> Action {
        switch evaluate(Array(frame.readableBytesView), mechanism: mechanism, exchange: exchange, now: now) {
        case .failure(let error):
            return .fail(nil, reason: error.message)
        case .success(let (response, _)):
            var buffer = ByteBuffer()
            buffer.writeInteger(Int32(response.count))
            buffer.writeBytes(response)
            return .respond(ResponseFrame(parts: [.byteBuffer(buffer)], fileHandles: []))
        }
    }

    /// Runs one step of the mechanism; on completion, the session starts (or is renewed).
    private mutating func evaluate(_ token: [UInt8], mechanism: String, exchange: Exchange,
                                   now: NIODeadline) -> Result<(response: [UInt8], complete: Bool), SaslAuthenticationError> {
        let raw: Bool
        if case .tokenExpected(_, _, let isRaw) = state { raw = isRaw } else { raw = false }
        state = principal == nil ? .handshakeRequired : .authenticated
        var authenticated: KafkaPrincipal
        var response: [UInt8] = []
        do throws(SaslAuthenticationError) {
            switch exchange {
            case .plain:
                authenticated = try server.verifyPlain(try PlainMessage(parsing: token), listener: listener)
            case .scram(var scram):
                let scramMechanism = scram.mechanism
                response = try scram.evaluate(token) { self.server.scram.credential(user: $0, mechanism: scramMechanism) }
                if scram.extensions["tokenauth"] == "true" {
                    throw SaslAuthenticationError("Authentication failed: delegation tokens are not supported")
                }
                guard scram.isComplete, let user = scram.authenticatedUser else {
                    state = .tokenExpected(mechanism: mechanism, exchange: .scram(scram), raw: raw)
                    return .success((response, false))
                }
                authenticated = KafkaPrincipal(name: user)
            }
        } catch {
            return .failure(error)
        }
        if let principal, principal != authenticated {
            return .failure(SaslAuthenticationError("Cannot change principals during re-authentication from \(principal) to \(authenticated)"))
        }
        principal = authenticated
        sessionMechanism = mechanism
        sessionExpiry = server.sessionLifetimeMs > 0 ? now + .milliseconds(server.sessionLifetimeMs) : nil
        state = .authenticated
        return .success((response, true))
    }

    private func frame(_ message: any KafkaResponse, _ apiKey: ApiKey, _ version: Int16, _ correlationId: Int32) -> ResponseFrame {
        (try? ResponseFrame(message, correlationId: correlationId, apiKey: apiKey, version: version)) ?? ResponseFrame(parts: [], fileHandles: [])
    }
}
