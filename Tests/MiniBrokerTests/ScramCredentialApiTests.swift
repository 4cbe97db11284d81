import Foundation
import KafkaSASL
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

@Suite struct ScramCredentialApiTests {
    static func upsertion(_ user: String, _ mechanism: ScramMechanism, password: String, iterations: Int32 = 4096)
        -> AlterUserScramCredentialsRequest.ScramCredentialUpsertion {
        let salt: [UInt8] = Array("salt-of-\(user)".utf8)
        return .init(name: user, mechanism: mechanism.wireType, iterations: iterations, salt: ByteBuffer(bytes: salt),
                     saltedPassword: ByteBuffer(bytes: mechanism.saltedPassword(password, salt: salt, iterations: iterations)))
    }

    @Test func credentialsAreStoredDescribedDeletedAndSurviveARestart() throws {
        let fixture = try BrokerFixture()
        #expect(try fixture.send(DescribeUserScramCredentialsRequest(users: nil), version: 0).results.isEmpty)
        let altered = try fixture.send(AlterUserScramCredentialsRequest(deletions: [], upsertions: [
            Self.upsertion("alice", .sha256, password: "a-secret"), Self.upsertion("alice", .sha512, password: "a-secret", iterations: 8192),
            Self.upsertion("bob", .sha256, password: "b-secret"),
        ]), version: 0)
        #expect(altered.results.map(\.user) == ["alice", "bob"] && altered.results.allSatisfy { $0.errorCode == 0 })
        let all = try fixture.send(DescribeUserScramCredentialsRequest(users: []), version: 0)
        #expect(all.results.map(\.user) == ["alice", "bob"])
        #expect(all.results[0].credentialInfos.map { "\($0.mechanism)/\($0.iterations)" } == ["1/4096", "2/8192"])
        // The stored credential checks the password it was made from, and only that one.
        let stored = try #require(fixture.broker.scramCredentials.credential(user: "alice", mechanism: .sha512))
        #expect(stored.matches(password: "a-secret", mechanism: .sha512) && !stored.matches(password: "b-secret", mechanism: .sha512))
        // Neither the password nor the salted password is in the file, and only the broker's user reads it.
        let path = fixture.directory + "/scram-credentials.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let salted = Data(ScramMechanism.sha256.saltedPassword("a-secret", salt: Array("salt-of-alice".utf8), iterations: 4096)).base64EncodedString()
        #expect(!text.contains("a-secret") && !text.contains(salted))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)

        let deleted = try fixture.send(AlterUserScramCredentialsRequest(deletions: [.init(name: "alice", mechanism: 1)], upsertions: []), version: 0)
        #expect(deleted.results.map(\.errorCode) == [0])
        let restarted = try fixture.restart()
        let after = try restarted.send(DescribeUserScramCredentialsRequest(users: [.init(name: "alice"), .init(name: "bob")]), version: 0)
        #expect(after.results.map { $0.credentialInfos.map(\.mechanism) } == [[2], [1]])
        #expect(restarted.broker.scramCredentials.credential(user: "bob", mechanism: .sha256)?.matches(password: "b-secret", mechanism: .sha256) == true)
    }

    @Test func refusedChangesLeaveTheirUserAsItWasAndAnswerKafkasErrors() throws {
        let fixture = try BrokerFixture()
        _ = try fixture.send(AlterUserScramCredentialsRequest(deletions: [], upsertions: [Self.upsertion("carol", .sha256, password: "c")]), version: 0)
        var shortSalted = Self.upsertion("dave", .sha256, password: "d")
        shortSalted.saltedPassword = ByteBuffer(string: "x")
        var noSalt = Self.upsertion("erin", .sha256, password: "e")
        noSalt.salt = ByteBuffer()
        var unknown = Self.upsertion("frank", .sha256, password: "f")
        unknown.mechanism = 9
        let answer = try fixture.send(AlterUserScramCredentialsRequest(
            deletions: [.init(name: "ghost", mechanism: 1), .init(name: "carol", mechanism: 1)],
            upsertions: [Self.upsertion("carol", .sha256, password: "again"), Self.upsertion("", .sha256, password: "x"),
                         Self.upsertion("low", .sha256, password: "x", iterations: 4095), Self.upsertion("high", .sha512, password: "x", iterations: 16385),
                         shortSalted, noSalt, unknown, Self.upsertion("ok", .sha512, password: "fine")]), version: 0)
        let codes = Dictionary(uniqueKeysWithValues: answer.results.map { ($0.user, ErrorCode(rawValue: $0.errorCode)) })
        #expect(codes["ghost"] == .resourceNotFound)
        #expect(codes["carol"] == .duplicateResource)
        #expect(codes[""] == .unacceptableCredential && codes["low"] == .unacceptableCredential && codes["high"] == .unacceptableCredential)
        #expect(codes["dave"] == .unacceptableCredential && codes["erin"] == .unacceptableCredential)
        #expect(codes["frank"] == .unsupportedSaslMechanism)
        #expect(codes["ok"] == .noError)
        #expect(answer.results.first { $0.user == "low" }?.errorMessage?.contains("Too few iterations") == true)
        // carol's refused pair changed nothing: the old password still matches.
        #expect(fixture.broker.scramCredentials.credential(user: "carol", mechanism: .sha256)?.matches(password: "c", mechanism: .sha256) == true)
        #expect(fixture.broker.scramCredentials.all.keys.sorted() == ["carol", "ok"])
        let named = try fixture.send(DescribeUserScramCredentialsRequest(users: [.init(name: "nobody"), .init(name: "ok"), .init(name: "ok")]), version: 0)
        #expect(named.results.map(\.errorCode) == [ErrorCode.resourceNotFound.rawValue, ErrorCode.duplicateResource.rawValue])
        try HostileRequestTests.stillServes(fixture)
    }

    @Test func addScramArgumentsParseAsKafkaStorageTakesThem() throws {
        let user = try ScramUserArgument(parsing: "SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]")
        #expect(user.mechanism == .sha512 && user.name == "alice" && user.password == "alice-secret" && user.iterations == 8192)
        for bad in ["SCRAM-SHA-1=[name=a,password=b]", "SCRAM-SHA-256=[name=a]", "SCRAM-SHA-256=[password=b]", "SCRAM-SHA-256=name=a,password=b",
                    "SCRAM-SHA-256=[name=a,password=b,iterations=100]", "SCRAM-SHA-256=[name=a,password=b,salt=x]"] {
            #expect(throws: ScramUserArgument.Invalid.self, "\(bad)") { try ScramUserArgument(parsing: bad) }
        }
    }
}
