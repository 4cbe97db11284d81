import Foundation
import KafkaSASL
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// The SASL state machine of one connection, driven frame by frame without a socket.
@Suite struct SaslAuthenticatorTests {
    static let jaas = #"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_quoted="a \"b\" c";"#

    static func server(_ overrides: [String: String] = [:]) throws -> (SaslServer, BrokerFixture) {
        var all = ["listeners": "SASL_PLAINTEXT://127.0.0.1:0", "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas]
        all.merge(overrides) { $1 }
        let fixture = try BrokerFixture(overrides: all)
        try fixture.broker.upsertScramCredential(user: "bob", mechanism: .sha256, password: "bob-secret", iterations: 4096)
        return (SaslServer(config: fixture.broker.config, scram: fixture.broker.scramCredentials), fixture)
    }

    var correlationId: Int32 = 0

    static func frame<R: KafkaRequest>(_ request: R, version: Int16) -> ByteBuffer { HostileRequestTests.frame(request, version: version) }

    /// The response in an answer frame, decoded.
    static func decode<R: KafkaResponse>(_ type: R.Type, _ frame: ResponseFrame?, apiKey: ApiKey, version: Int16) throws -> R {
        var out = ByteBuffer()
        for part in try #require(frame).parts {
            guard case .byteBuffer(var buffer) = part else { throw SaslAuthenticationError("file region") }
            out.writeBuffer(&buffer)
        }
        _ = out.readInteger(as: Int32.self)
        _ = try ResponseHeader(from: &out, version: apiKey.responseHeaderVersion(version))
        return try R(from: &out, version: version)
    }

    static func respond(_ action: SaslAuthenticator.Action) -> ResponseFrame? {
        if case .respond(let frame) = action { return frame }
        Issue.record("expected a response, got \(action)")
        return nil
    }

    static func handshake(_ authenticator: inout SaslAuthenticator, _ mechanism: String, version: Int16 = 1, now: NIODeadline = .now()) throws -> SaslHandshakeResponse {
        let action = authenticator.receive(frame(SaslHandshakeRequest(mechanism: mechanism), version: version), now: now)
        switch action {
        case .respond(let frame), .fail(let frame?, _):
            return try decode(SaslHandshakeResponse.self, frame, apiKey: .saslHandshake, version: version)
        default:
            throw SaslAuthenticationError("no handshake answer: \(action)")
        }
    }

    static func authenticate(_ authenticator: inout SaslAuthenticator, _ bytes: [UInt8], version: Int16 = 2,
                             now: NIODeadline = .now()) throws -> (SaslAuthenticateResponse, failed: Bool) {
        let action = authenticator.receive(frame(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: bytes)), version: version), now: now)
        switch action {
        case .respond(let frame):
            return (try decode(SaslAuthenticateResponse.self, frame, apiKey: .saslAuthenticate, version: version), false)
        case .fail(let frame?, _):
            return (try decode(SaslAuthenticateResponse.self, frame, apiKey: .saslAuthenticate, version: version), true)
        default:
            throw SaslAuthenticationError("no authenticate answer: \(action)")
        }
    }

    static func isDispatched(_ action: SaslAuthenticator.Action, as principal: KafkaPrincipal) -> Bool {
        if case .dispatch(let p) = action { return p == principal }
        return false
    }

    static func isClosed(_ action: SaslAuthenticator.Action) -> Bool {
        if case .close = action { return true }
        return false
    }

    @Test func onlyApiVersionsAndTheHandshakeComeBeforeAuthentication() throws {
        let (server, _) = try Self.server()
        var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        #expect(Self.isDispatched(authenticator.receive(Self.frame(ApiVersionsRequest(), version: 3), now: .now()), as: .anonymous))
        #expect(Self.isClosed(authenticator.receive(Self.frame(MetadataRequest(topics: nil), version: 12), now: .now())))
        // SaslAuthenticate before a handshake: ILLEGAL_SASL_STATE, then the close.
        let (early, failed) = try Self.authenticate(&authenticator, PlainMessage(username: "alice", password: "alice-secret").bytes)
        #expect(failed && early.errorCode == ErrorCode.illegalSaslState.rawValue)
    }

    @Test func plainAuthenticatesTheJaasUsersOnly() throws {
        let (server, _) = try Self.server()
        for (user, password) in [("alice", "alice-secret"), ("quoted", "a \"b\" c")] {
            var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
            let handshake = try Self.handshake(&authenticator, "PLAIN")
            #expect(handshake.errorCode == 0 && handshake.mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
            let (answer, failed) = try Self.authenticate(&authenticator, PlainMessage(username: user, password: password).bytes)
            #expect(!failed && answer.errorCode == 0 && answer.sessionLifetimeMs == 0, "\(user)")
            #expect(Self.isDispatched(authenticator.receive(Self.frame(MetadataRequest(topics: nil), version: 12), now: .now()),
                                      as: KafkaPrincipal(name: user)))
            // After the exchange, a SaslAuthenticate without a handshake goes to the request layer, which
            // answers ILLEGAL_SASL_STATE and keeps the connection (Kafka's KafkaApis).
            #expect(Self.isDispatched(authenticator.receive(Self.frame(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: [1])), version: 2),
                                                            now: .now()), as: KafkaPrincipal(name: user)))
        }
        // bob is a SCRAM user: not a PLAIN one.
        for (user, password) in [("alice", "wrong"), ("alice", "alice-secre"), ("alice", "alice-secret!"), ("bob", "bob-secret"), ("nobody", "x")] {
            var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
            _ = try Self.handshake(&authenticator, "PLAIN")
            let (answer, failed) = try Self.authenticate(&authenticator, PlainMessage(username: user, password: password).bytes)
            #expect(failed && answer.errorCode == ErrorCode.saslAuthenticationFailed.rawValue)
            #expect(answer.errorMessage == "Authentication failed: Invalid username or password")
            #expect(authenticator.principal == nil)
        }
    }

    @Test func scramAuthenticatesInTwoRoundTrips() throws {
        let (server, _) = try Self.server()
        var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        _ = try Self.handshake(&authenticator, "SCRAM-SHA-256")
        var client = ScramClientExchange(mechanism: .sha256, username: "bob", password: "bob-secret")
        let (first, firstFailed) = try Self.authenticate(&authenticator, client.clientFirstMessage)
        #expect(!firstFailed && authenticator.principal == nil)
        let final = try client.clientFinalMessage(serverFirst: Array(first.authBytes.readableBytesView))
        let (last, lastFailed) = try Self.authenticate(&authenticator, final)
        #expect(!lastFailed)
        try client.verify(serverFinal: Array(last.authBytes.readableBytesView))
        #expect(authenticator.principal == KafkaPrincipal(name: "bob"))
    }

    @Test func anUnknownMechanismIsRefusedWithTheEnabledOnes() throws {
        let (server, _) = try Self.server(["sasl.enabled.mechanisms": "SCRAM-SHA-512"])
        var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        let answer = try Self.handshake(&authenticator, "PLAIN")
        #expect(answer.errorCode == ErrorCode.unsupportedSaslMechanism.rawValue && answer.mechanisms == ["SCRAM-SHA-512"])
    }

    @Test func sessionsExpireAndReauthenticationMustKeepThePrincipal() throws {
        let (server, _) = try Self.server(["connections.max.reauth.ms": "1000"])
        let start = NIODeadline.now()
        var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        _ = try Self.handshake(&authenticator, "PLAIN", now: start)
        let (answer, _) = try Self.authenticate(&authenticator, PlainMessage(username: "alice", password: "alice-secret").bytes, now: start)
        #expect(answer.sessionLifetimeMs == 1000)
        let metadata = Self.frame(MetadataRequest(topics: nil), version: 12)
        #expect(Self.isDispatched(authenticator.receive(metadata, now: start + .milliseconds(900)), as: KafkaPrincipal(name: "alice")))
        // Re-authenticating as the same user renews the session.
        _ = try Self.handshake(&authenticator, "PLAIN", now: start + .milliseconds(950))
        #expect(Self.isDispatched(authenticator.receive(metadata, now: start + .milliseconds(960)), as: KafkaPrincipal(name: "alice")))
        _ = try Self.authenticate(&authenticator, PlainMessage(username: "alice", password: "alice-secret").bytes, now: start + .milliseconds(970))
        #expect(Self.isDispatched(authenticator.receive(metadata, now: start + .milliseconds(1900)), as: KafkaPrincipal(name: "alice")))
        // Past the renewed expiry, the next request closes the connection.
        #expect(Self.isClosed(authenticator.receive(metadata, now: start + .milliseconds(1980))))

        var other = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        _ = try Self.handshake(&other, "PLAIN")
        _ = try Self.authenticate(&other, PlainMessage(username: "alice", password: "alice-secret").bytes)
        // Another mechanism, or another user, is refused.
        #expect(try Self.handshake(&other, "SCRAM-SHA-256").errorCode == ErrorCode.unsupportedSaslMechanism.rawValue)
        var third = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        _ = try Self.handshake(&third, "PLAIN")
        _ = try Self.authenticate(&third, PlainMessage(username: "alice", password: "alice-secret").bytes)
        _ = try Self.handshake(&third, "PLAIN")
        let (changed, failed) = try Self.authenticate(&third, PlainMessage(username: "quoted", password: "a \"b\" c").bytes)
        #expect(failed && changed.errorMessage?.contains("Cannot change principals") == true)
    }

    @Test func aVersionZeroHandshakeTakesBareTokens() throws {
        let (server, _) = try Self.server()
        var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        #expect(try Self.handshake(&authenticator, "PLAIN", version: 0).errorCode == 0)
        let action = authenticator.receive(ByteBuffer(bytes: PlainMessage(username: "alice", password: "alice-secret").bytes), now: .now())
        let frame = try #require(Self.respond(action))
        guard case .byteBuffer(let buffer) = frame.parts.first else { throw SaslAuthenticationError("no bytes") }
        #expect(Array(buffer.readableBytesView) == [0, 0, 0, 0])
        #expect(authenticator.principal == KafkaPrincipal(name: "alice"))
        var wrong = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        _ = try Self.handshake(&wrong, "PLAIN", version: 0)
        guard case .fail(nil, _) = wrong.receive(ByteBuffer(bytes: PlainMessage(username: "alice", password: "no").bytes), now: .now()) else {
            Issue.record("a bad bare token must close without an answer")
            return
        }
    }

    @Test func listenerConfigurationIsChecked() throws {
        func config(_ pairs: [String: String]) throws {
            var config = BrokerConfig()
            for (key, value) in pairs { try config.set(key, value) }
            try config.validate()
        }
        try config(["listeners": "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093"])
        try config(["listeners": "CLIENT://127.0.0.1:9093", "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT",
                    "listener.name.client.plain.sasl.jaas.config": Self.jaas])
        for bad: [String: String] in [
            ["listeners": "CLIENT://127.0.0.1:9093"],
            ["listeners": "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093"],
            ["listeners": "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9092"],
            ["listeners": "SSL://127.0.0.1:9093"],
            ["listener.security.protocol.map": "CLIENT:KERBEROS"],
            ["sasl.enabled.mechanisms": "GSSAPI"],
            ["listener.name.other.plain.sasl.jaas.config": Self.jaas],
            ["listener.name.plaintext.plain.sasl.jaas.config": "PlainLoginModule required user_a=\"b\";"],
            ["listener.name.plaintext.plain.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b;"],
            ["advertised.listeners": "OTHER://localhost:9092"],
        ] {
            #expect(throws: ConfigError.self, "\(bad)") { try config(bad) }
        }
    }
}
