import KafkaSASL
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// The SASL state machine under hostile input, which the stateful fuzzer does not reach (it speaks to a
/// plaintext listener): mutated frames never trap it, and a mutated credential never authenticates.
@Suite struct SaslAuthenticatorFuzzTests {
    /// A seeded generator, so that a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Changes 1 to 3 distinct bytes of `bytes`, each to a different value (two changes of one byte
    /// could cancel out).
    static func mutate(_ bytes: [UInt8], _ random: inout SplitMix) -> [UInt8] {
        var mutated = bytes
        let indices = Set((0..<Int.random(in: 1...3, using: &random)).map { _ in Int.random(in: 0..<max(bytes.count, 1), using: &random) })
        for index in indices where index < mutated.count {
            mutated[index] ^= UInt8.random(in: 1...255, using: &random)
        }
        return mutated
    }

    @Test func mutatedFramesNeverTrapAndMutatedCredentialsNeverAuthenticate() throws {
        let (server, fixture) = try SaslAuthenticatorTests.server()
        defer { withExtendedLifetime(fixture) {} }
        var random = SplitMix(state: 0x5A5_1F00D)
        let plain = PlainMessage(username: "alice", password: "alice-secret").bytes
        // The control: the same steps with the credential intact authenticate.
        var control = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
        _ = control.receive(SaslAuthenticatorTests.frame(SaslHandshakeRequest(mechanism: "PLAIN"), version: 1), now: .now())
        _ = control.receive(SaslAuthenticatorTests.frame(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: plain)), version: 2), now: .now())
        #expect(control.principal == KafkaPrincipal(name: "alice"))
        for round in 0..<3000 {
            var authenticator = SaslAuthenticator(server: server, listener: "SASL_PLAINTEXT")
            let mechanism = round % 3 == 0 ? "SCRAM-SHA-256" : "PLAIN"
            let handshakeVersion: Int16 = round % 5 == 0 ? 0 : 1
            var handshake = SaslAuthenticatorTests.frame(SaslHandshakeRequest(mechanism: mechanism), version: handshakeVersion)
            // A third of the rounds mutate the handshake frame itself: header, lengths, the mechanism.
            if round % 3 == 1 {
                handshake = ByteBuffer(bytes: Self.mutate(Array(handshake.readableBytesView), &random))
            }
            _ = authenticator.receive(handshake, now: .now())
            let token: [UInt8]
            if mechanism == "PLAIN" {
                token = Self.mutate(plain, &random)
            } else {
                let client = ScramClientExchange(mechanism: .sha256, username: "bob", password: "bob-secret")
                token = Self.mutate(client.clientFirstMessage, &random)
            }
            // After a v0 handshake tokens come bare; otherwise in SaslAuthenticate, whose frame is also mutated at times.
            var authenticate = handshakeVersion == 0 ? ByteBuffer(bytes: token)
                : SaslAuthenticatorTests.frame(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: token)), version: Int16(round % 3))
            if round % 7 == 3 {
                authenticate = ByteBuffer(bytes: Self.mutate(Array(authenticate.readableBytesView), &random))
            }
            _ = authenticator.receive(authenticate, now: .now())
            // SCRAM's first message mutated may still parse; its proof can only come from the password.
            if mechanism != "PLAIN", authenticator.principal == nil {
                _ = authenticator.receive(SaslAuthenticatorTests.frame(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: Self.mutate(
                    Array("c=biws,r=x,p=AAAA".utf8), &random))), version: 2), now: .now())
            }
            // Every round's credential was changed: none may authenticate, whatever happened to the frames.
            #expect(authenticator.principal == nil, "round \(round): a mutated credential authenticated: \(token) handshake v\(handshakeVersion)")
        }
    }
}
