import Foundation
@testable import KafkaSASL
import Testing

@Suite struct ScramTests {
    /// RFC 7677, section 3: the SCRAM-SHA-256 example exchange (user "user", password "pencil").
    static let rfcNonce = "rOprNGfwEbeRWgbNEkqO"
    static let rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

    @Test func clientMatchesRFC7677() throws {
        var client = ScramClientExchange(mechanism: .sha256, username: "user", password: "pencil", nonce: Self.rfcNonce)
        #expect(String(decoding: client.clientFirstMessage, as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let final = try client.clientFinalMessage(serverFirst: Array(Self.rfcServerFirst.utf8))
        #expect(String(decoding: final, as: UTF8.self) == Self.rfcClientFinal)
        try client.verify(serverFinal: Array(Self.rfcServerFinal.utf8))
        #expect(throws: SaslAuthenticationError.self) {
            try client.verify(serverFinal: Array("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".utf8))
        }
    }

    @Test func serverAcceptsTheRFCProof() throws {
        let salt = Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!)
        let credential = ScramCredential(mechanism: .sha256, saltedPassword: ScramMechanism.sha256.saltedPassword("pencil", salt: salt, iterations: 4096),
                                         salt: salt, iterations: 4096)
        #expect(credential.matches(password: "pencil", mechanism: .sha256))
        #expect(!credential.matches(password: "pencil!", mechanism: .sha256))
        // The server's nonce is random, so the RFC's own messages cannot be replayed: a client drives it.
        for mechanism in ScramMechanism.allCases {
            let stored = ScramCredential(mechanism: mechanism, password: "pencil", iterations: 4096)
            var server = ScramServerExchange(mechanism: mechanism, fakeSaltKey: [1, 2, 3])
            var client = ScramClientExchange(mechanism: mechanism, username: "user", password: "pencil")
            let serverFirst = try server.evaluate(client.clientFirstMessage) { $0 == "user" ? stored : nil }
            let serverFinal = try server.evaluate(try client.clientFinalMessage(serverFirst: serverFirst)) { _ in nil }
            try client.verify(serverFinal: serverFinal)
            #expect(server.isComplete)
            #expect(server.authenticatedUser == "user")
        }
    }

    @Test func wrongPasswordAndUnknownUserFailAlikeAtTheProof() throws {
        let stored = ScramCredential(mechanism: .sha512, password: "right", iterations: 4096)
        var failures: [String] = []
        for (user, password) in [("alice", "wrong"), ("mallory", "right")] {
            var server = ScramServerExchange(mechanism: .sha512, fakeSaltKey: [9])
            var client = ScramClientExchange(mechanism: .sha512, username: user, password: password)
            let serverFirst = try server.evaluate(client.clientFirstMessage) { $0 == "alice" ? stored : nil }
            // An unknown user gets a salt and an iteration count like a known one's.
            let parsed = try ScramServerFirstMessage(parsing: String(decoding: serverFirst, as: UTF8.self))
            #expect(parsed.salt.count == 32 && parsed.iterations == 4096)
            let final = try client.clientFinalMessage(serverFirst: serverFirst)
            do {
                _ = try server.evaluate(final) { _ in nil }
                Issue.record("\(user) authenticated")
            } catch {
                failures.append(error.message)
            }
            #expect(server.authenticatedUser == nil)
            #expect(!server.isComplete)
        }
        #expect(failures.count == 2 && failures[0] == failures[1])
        #expect(failures[0].contains("invalid credentials with SASL mechanism SCRAM-SHA-512"))
    }

    @Test func malformedMessagesAreRefused() throws {
        let lookup: (String) -> ScramCredential? = { _ in ScramCredential(mechanism: .sha256, password: "p") }
        for bad in ["", "y,,n=user,r=abc", "p=tls-unique,,n=user,r=abc", "n,,n=,r=abc", "n,,n=us=er,r=abc", "n,,n=user,r=",
                    "n,a=other,n=user,r=abc", "n,,n=user", "n,,n=user,r=abc,=x"] {
            var server = ScramServerExchange(mechanism: .sha256, fakeSaltKey: [])
            #expect(throws: SaslAuthenticationError.self, "\(bad)") { try server.evaluate(Array(bad.utf8), credential: lookup) }
        }
        // Names with ',' and '=' travel escaped; the authorization id may repeat the user.
        let parsed = try ScramClientFirstMessage(parsing: "n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=xyz,tokenauth=true")
        #expect(parsed.username == "a,b=c" && parsed.authorizationId == "a,b=c" && parsed.extensions == ["tokenauth": "true"])
        // A final message with a changed nonce or channel binding fails, whatever the proof.
        var server = ScramServerExchange(mechanism: .sha256, fakeSaltKey: [])
        var client = ScramClientExchange(mechanism: .sha256, username: "u", password: "p")
        let serverFirst = try server.evaluate(client.clientFirstMessage, credential: lookup)
        let final = String(decoding: try client.clientFinalMessage(serverFirst: serverFirst), as: UTF8.self)
        let tampered = final.replacingOccurrences(of: "c=biws", with: "c=eSws")
        #expect(throws: SaslAuthenticationError.self) { try server.evaluate(Array(tampered.utf8), credential: lookup) }
        // After a failure the exchange is over.
        #expect(throws: SaslAuthenticationError.self) { try server.evaluate(Array(final.utf8), credential: lookup) }
    }

    /// librdkafka 2.0 sends its own nonce again in front of the server's; Kafka takes it, and only that.
    @Test func theOldLibrdkafkaFinalNonceIsAcceptedAndNoOtherPrefix() throws {
        let mechanism = ScramMechanism.sha256
        let stored = ScramCredential(mechanism: mechanism, password: "pw", iterations: 4096)
        func final(prefix: String, extensions: String = "") throws -> Bool {
            var server = ScramServerExchange(mechanism: mechanism, fakeSaltKey: [])
            let first = ScramClientFirstMessage(username: "u", nonce: "cnonce")
            let serverFirstText = String(decoding: try server.evaluate(Array(first.text.utf8)) { _ in stored }, as: UTF8.self)
            let serverFirst = try ScramServerFirstMessage(parsing: serverFirstText)
            let withoutProof = "c=biws,r=\(prefix)\(serverFirst.nonce)\(extensions)"
            let authMessage = Array("\(first.bare),\(serverFirstText),\(withoutProof)".utf8)
            let clientKey = mechanism.hmac(key: mechanism.saltedPassword("pw", salt: serverFirst.salt, iterations: 4096), Array("Client Key".utf8))
            let proof = zip(clientKey, mechanism.hmac(key: mechanism.hash(clientKey), authMessage)).map { $0 ^ $1 }
            do {
                _ = try server.evaluate(Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)) { _ in stored }
                return server.isComplete
            } catch {
                return false
            }
        }
        #expect(try final(prefix: ""))
        #expect(try final(prefix: "cnonce"))
        #expect(try !final(prefix: "x"))
        #expect(try !final(prefix: "cnoncecnonce"))
        // Extensions in the final message are signed as sent.
        #expect(try final(prefix: "", extensions: ",x=1"))
    }

    @Test func clientRefusesAWeakOrForeignServerFirst() {
        for serverFirst in ["r=abcdef,s=c2FsdA==,i=4095", "r=abcdef,s=c2FsdA==,i=16385", "r=zzzdef,s=c2FsdA==,i=4096",
                            "r=abc,s=c2FsdA==,i=4096", "r=abcdef,s=,i=4096", "garbage"] {
            var client = ScramClientExchange(mechanism: .sha256, username: "u", password: "p", nonce: "abc")
            #expect(throws: SaslAuthenticationError.self, "\(serverFirst)") { try client.clientFinalMessage(serverFirst: Array(serverFirst.utf8)) }
        }
    }

    @Test func mechanismsByNameAndWireType() {
        #expect(ScramMechanism(mechanismName: "SCRAM-SHA-256") == .sha256)
        #expect(ScramMechanism(wireType: 2) == .sha512)
        #expect(ScramMechanism(wireType: 0) == nil)
        #expect(ScramMechanism(mechanismName: "PLAIN") == nil)
    }
}

@Suite struct PlainTests {
    @Test func parsesKafkasForm() throws {
        let message = try PlainMessage(parsing: PlainMessage(username: "alice", password: "s3cret").bytes)
        #expect(message.username == "alice" && message.password == "s3cret" && message.authorizationId == "")
        #expect(try PlainMessage(parsing: Array("alice\0alice\0pw".utf8)).username == "alice")
    }

    @Test func refusesWhatKafkaRefuses() {
        for bad in ["alice\0pw", "\0\0pw", "\0alice\0", "bob\0alice\0pw", "a\0b\0c\0d"] {
            #expect(throws: SaslAuthenticationError.self, "\(bad.debugDescription)") { try PlainMessage(parsing: Array(bad.utf8)) }
        }
        #expect(throws: SaslAuthenticationError.self) { try PlainMessage(parsing: [0, 0x61, 0, 0xFF]) }
    }
}
