import Foundation
import KafkaWire
@testable import MiniBroker
import NIOCore
import NIOSSL
import Testing

/// Certificates made by openssl for the test, in a directory of their own (nothing secret is committed).
final class TestCertificates {
    let directory = NSTemporaryDirectory() + "minibroker-tls-" + UUID().uuidString

    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
                     "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test CA"])
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { directory + "/" + name }

    /// Runs openssl in the directory. posix_spawn, not Foundation's Process: Process.run is not safe to
    /// call from tests running in parallel (it crashed another test starting a broker at the same time).
    func openssl(_ arguments: [String]) throws {
        let argv = ["/usr/bin/openssl"] + arguments.map { $0.hasSuffix(".pem") || $0.hasSuffix(".key") || $0.hasSuffix(".csr") ? path($0) : $0 }
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ) == 0 else { throw CocoaError(.executableNotLoadable) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["openssl": arguments.joined(separator: " ")]) }
    }

    /// A certificate for `subject` (openssl's -subj form) signed by the CA; returns its DER.
    @discardableResult
    func leaf(_ name: String, subject: String) throws -> [UInt8] {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name).key",
                     "-out", "\(name).csr", "-utf8", "-subj", subject])
        try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAserial", path("ca.srl"), "-CAcreateserial", "-out", "\(name).pem", "-days", "2"])
        guard let certificate = try NIOSSLCertificate.fromPEMFile(path("\(name).pem")).first else { throw CocoaError(.fileReadCorruptFile) }
        return try certificate.toDERBytes()
    }
}

@Suite struct DistinguishedNameTests {
    @Test func subjectsReadAsJavasRfc2253Form() throws {
        let certificates = try TestCertificates()
        let cases: [(String, String)] = [
            ("/C=US/ST=CA/L=San Jose/O=Example/OU=Eng/CN=Alice", "CN=Alice,OU=Eng,O=Example,L=San Jose,ST=CA,C=US"),
            // Java's escapes: , = + < > # ; " \ wherever they are, and every leading and trailing space.
            (#"/O=Smith\, Jones \+ Co/CN=#1 \"lead\" <x>;a=b"#, ##"CN=\#1 \"lead\" \<x\>\;a\=b,O=Smith\, Jones \+ Co"##),
            // A multi-valued RDN, and a type RFC 2253 has no keyword for (hex of its DER).
            ("/O=Example/CN=alice+UID=a1", "CN=alice+UID=a1,O=Example"),
            ("/emailAddress=a@b.c/DC=example/CN=x", "CN=x,DC=example,1.2.840.113549.1.9.1=#16056140622e63"),
            ("/CN=Zoë", "CN=Zoë"),
        ]
        for (index, (subject, expected)) in cases.enumerated() {
            let der = try certificates.leaf("c\(index)", subject: subject)
            #expect(try DistinguishedName.subject(ofCertificate: der) == expected, "\(subject)")
        }
    }

    @Test func escapingFollowsJava() throws {
        #expect(DistinguishedName.escape("  two  ") == #"\ \ two\ \ "#)
        #expect(DistinguishedName.escape("a\u{0}b") == #"a\00b"#)
        #expect(DistinguishedName.escape("x#y=z") == ##"x\#y\=z"##)
        // A separator followed by a combining mark is still escaped (scalars, not graphemes).
        #expect(DistinguishedName.escape(",\u{301}") == "\\,\u{301}")
        // A padded arc is not DER: 2.5.4.3 written as 55 04 80 03 must not read as CN.
        #expect(throws: DistinguishedName.Malformed.self) { try DistinguishedName.objectIdentifier([0x55, 0x04, 0x80, 0x03]) }
        #expect(try DistinguishedName.objectIdentifier([0x55, 0x04, 0x03]) == "2.5.4.3")
    }

    @Test func malformedCertificatesAreRefusedNotTrapped() throws {
        let certificates = try TestCertificates()
        let der = try certificates.leaf("fuzz", subject: "/O=Example/OU=Eng/CN=alice")
        #expect(throws: DistinguishedName.Malformed.self) { try DistinguishedName.subject(ofCertificate: []) }
        #expect(throws: DistinguishedName.Malformed.self) { try DistinguishedName.subject(ofCertificate: Array(der.prefix(40))) }
        // A length of 4 GiB, and one past the end.
        #expect(throws: DistinguishedName.Malformed.self) { try DistinguishedName.subject(ofCertificate: [0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]) }
        #expect(throws: DistinguishedName.Malformed.self) { try DistinguishedName.subject(ofCertificate: [0x30, 0x05, 0x30, 0x03]) }
        #expect(throws: DistinguishedName.Malformed.self) { try DistinguishedName.objectIdentifier([0x2A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) }
        // Every single-byte change of a real certificate either parses or is refused.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var mutated = der
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? DistinguishedName.subject(ofCertificate: mutated)
        }
    }
}

@Suite struct SslPrincipalMapperTests {
    /// Kafka's own examples of ssl.principal.mapping.rules (KIP-371).
    @Test func rulesMapSubjectsAsKafkaDoes() throws {
        let mapper = try SslPrincipalMapper("""
            RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,
            RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,
            RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,
            DEFAULT
            """)
        #expect(mapper.name(for: "CN=duke,OU=ServiceUsers,O=Org,C=US") == "duke")
        #expect(mapper.name(for: "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US") == "duke@sme")
        #expect(mapper.name(for: "cn=duke,ou=sme,dc=mycp,dc=com") == "DUKE")
        #expect(mapper.name(for: "OU=nobody") == "OU=nobody")
        // Without DEFAULT a subject no rule matches has no principal; the pattern must match all of it.
        let strict = try SslPrincipalMapper("RULE:CN=([a-z]+)/$1/")
        #expect(strict.name(for: "CN=alice") == "alice")
        #expect(strict.name(for: "CN=alice,O=Example") == nil)
        #expect(SslPrincipalMapper.defaultRules.name(for: "CN=a,O=b") == "CN=a,O=b")
        // Escapes: a slash in the pattern, a literal dollar in the replacement.
        let escaped = try SslPrincipalMapper(#"RULE:^CN=([a-z]+)\/x$/\$$1/"#)
        #expect(escaped.name(for: "CN=bob/x") == "$bob")
        // A group the pattern does not have: no principal (Java's replacement throws there).
        #expect(try SslPrincipalMapper("RULE:^CN=([a-z]+)$/$2/").name(for: "CN=bob") == nil)
    }

    @Test func badRulesAreRefusedAtStart() {
        for text in ["", "RULE:abc", "RULE:^CN=(.*$/$1/", "DEFAULT junk", "KERBEROS", "RULE:a/b/X"] {
            #expect(SslPrincipalMapper.problem(with: text) != nil, "\(text)")
        }
        var config = BrokerConfig()
        #expect(throws: ConfigError.self) { try config.set("ssl.principal.mapping.rules", "RULE:^CN=(.*$/$1/") }
    }
}

@Suite struct SslConfigTests {
    @Test func tlsListenersNeedAKeystoreAndKeysAreChecked() throws {
        var config = BrokerConfig()
        try config.set("listeners", "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,INTERNAL://127.0.0.1:0")
        try config.set("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,INTERNAL:SASL_SSL")
        #expect { try config.validate() } throws: { ($0 as? ConfigError)?.key == "ssl.keystore.location" }
        try config.set("ssl.keystore.location", "/etc/kafka/server.pem")
        try config.validate()
        // A listener's own key wins over the broker's.
        try config.set("listener.name.internal.ssl.client.auth", "required")
        #expect(SslConfig(config: config, listener: "INTERNAL").clientAuth == "required")
        #expect(SslConfig(config: config, listener: "SSL").clientAuth == "none")
        // KIP-684: SASL_SSL asks for certificates only by its own key.
        try config.set("ssl.client.auth", "required")
        #expect(SslConfig(config: config, listener: "SSL").clientAuth == "required")
        var saslSsl = config
        try saslSsl.set("listener.name.internal.ssl.client.auth", "none")
        #expect(SslConfig(config: saslSsl, listener: "INTERNAL").clientAuth == "none")
        var unset = BrokerConfig()
        try unset.set("listeners", "INTERNAL://127.0.0.1:0")
        try unset.set("listener.security.protocol.map", "INTERNAL:SASL_SSL")
        try unset.set("ssl.client.auth", "required")
        #expect(SslConfig(config: unset, listener: "INTERNAL").clientAuth == "none")
        // A keystore from a file and inline at once is refused, as Kafka refuses it.
        var both = config
        try both.set("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY-----")
        #expect { try both.validate() } throws: { ($0 as? ConfigError)?.key == "ssl.keystore.location" }
        try config.set("listener.name.nosuch.ssl.client.auth", "required")
        #expect { try config.validate() } throws: { ($0 as? ConfigError)?.key == "listener.name.nosuch.ssl.client.auth" }
        for (key, value) in [("ssl.keystore.type", "JKS"), ("ssl.truststore.type", "PKCS12"), ("ssl.client.auth", "maybe"),
                             ("ssl.enabled.protocols", "TLSv1.1,TLSv1.2"), ("ssl.enabled.protocols", ""),
                             ("listener.name.ssl.ssl.no.such", "x")] {
            #expect(throws: ConfigError.self, "\(key)=\(value)") { try config.set(key, value) }
        }
    }

    @Test func aKeystoreIsReadWithItsPasswordAndRefusedWithoutNamingIt() throws {
        let certificates = try TestCertificates()
        try certificates.leaf("server", subject: "/CN=minibroker")
        try certificates.openssl(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "server.key", "-out", "server-enc.key", "-passout", "pass:s3cret-pw"])
        let keystore = certificates.path("keystore.pem")
        let pem = try String(contentsOfFile: certificates.path("server-enc.key"), encoding: .utf8)
            + String(contentsOfFile: certificates.path("server.pem"), encoding: .utf8)
        try pem.write(toFile: keystore, atomically: true, encoding: .utf8)
        func context(_ settings: [String: String]) throws -> NIOSSLContext {
            var config = BrokerConfig()
            try config.set("listeners", "SSL://127.0.0.1:0")
            for (key, value) in settings { try config.set(key, value) }
            return try SslConfig(config: config, listener: "SSL").makeContext()
        }
        _ = try context(["ssl.keystore.location": keystore, "ssl.key.password": "s3cret-pw", "ssl.truststore.location": certificates.path("ca.pem"),
                         "ssl.client.auth": "required"])
        // Inline PEM, the key unencrypted, on single lines joined by a properties file's continuations, as Kafka takes it.
        func oneLine(_ file: String) throws -> String {
            try String(contentsOfFile: certificates.path(file), encoding: .utf8).split(separator: "\n").joined(separator: " \\\n    ")
        }
        var inline = BrokerConfig()
        try inline.load(propertiesText: """
            listeners=SSL://127.0.0.1:0
            ssl.keystore.certificate.chain=\(try oneLine("server.pem"))
            ssl.keystore.key=\(try oneLine("server.key"))
            ssl.truststore.certificates=\(try oneLine("ca.pem"))
            ssl.client.auth=required
            """)
        _ = try SslConfig(config: inline, listener: "SSL").makeContext()
        for (settings, key) in [(["ssl.keystore.location": keystore, "ssl.key.password": "wrong-pw-77"], "ssl.keystore.location"),
                                (["ssl.keystore.location": keystore], "ssl.keystore.location"),
                                (["ssl.keystore.location": certificates.path("missing.pem")], "ssl.keystore.location"),
                                (["ssl.keystore.location": certificates.path("server.key")], "ssl.keystore.location"),
                                (["ssl.keystore.location": keystore, "ssl.key.password": "s3cret-pw",
                                  "ssl.truststore.location": certificates.path("server.key")], "ssl.truststore.location")] {
            #expect { try context(settings) } throws: { error in
                guard let error = error as? ConfigError else { return false }
                return error.key == key && !error.description.contains("wrong-pw-77") && !error.description.contains("s3cret-pw")
            }
        }
    }

    @Test func passwordsAreNeverDescribed() throws {
        let fixture = try BrokerFixture(overrides: ["ssl.key.password": "s3cret-pw", "ssl.keystore.location": "/k.pem"])
        let answer = try fixture.send(DescribeConfigsRequest(resources: [.init(resourceType: 4, resourceName: "0", configurationKeys: nil)],
                                                             includeSynonyms: true, includeDocumentation: false), version: 4)
        let configs = Dictionary(uniqueKeysWithValues: (answer.results.first?.configs ?? []).map { ($0.name, $0) })
        let password = try #require(configs["ssl.key.password"])
        #expect(password.value == nil && password.isSensitive && password.synonyms.allSatisfy { $0.value == nil })
        #expect(configs["ssl.keystore.location"]?.value == "/k.pem" && configs["ssl.keystore.location"]?.isSensitive == false)
    }
}

@Suite struct TlsFetchCopyTests {
    /// Over TLS a fetch's records are read into memory instead of going out with sendfile.
    @Test func fileRegionsAreReadIntoBuffersAndTheirHandlesClosed() throws {
        let path = NSTemporaryDirectory() + "tls-copy-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let handle = try NIOFileHandle(_deprecatedPath: path)
        let frame = ResponseFrame(parts: [.byteBuffer(ByteBuffer(bytes: [1, 2, 3])),
                                          .fileRegion(FileRegion(fileHandle: handle, readerIndex: 1000, endIndex: 150_000)),
                                          .byteBuffer(ByteBuffer(bytes: [4]))], fileHandles: [handle])
        #expect(frame.hasFileRegions)
        let copied = try frame.copyingFileRegions()
        #expect(!copied.hasFileRegions && copied.fileHandles.isEmpty)
        var all: [UInt8] = []
        for part in copied.parts {
            if case .byteBuffer(let buffer) = part { all += buffer.readableBytesView }
        }
        #expect(all == [1, 2, 3] + bytes[1000..<150_000] + [4])
        #expect(!handle.isOpen)
    }
}
