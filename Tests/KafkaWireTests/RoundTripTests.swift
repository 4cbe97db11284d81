import KafkaWire
import KafkaWireRandom
import NIOCore
import Testing

/// Property test over the whole generated codec: for every message of the specs and every valid
/// version, random values valid at that version encode, decode back equal, and re-encode to the
/// same bytes.
@Suite struct RoundTripTests {
    static let instancesPerVersion = 25

    @Test func everyMessageCoveredByTheRandomizer() {
        #expect(allRandomizableMessages.count == KafkaMessageRegistry.all.count)
        #expect(KafkaMessageRegistry.all.count >= 186)
    }

    @Test func everyMessageEveryVersionRoundTrips() throws {
        var pairs = 0
        for type in allRandomizableMessages {
            pairs += try Self.check(type)
        }
        // Every version of every message was exercised (ProduceRequest alone has 14).
        let expected = allRandomizableMessages.reduce(0) { $0 + $1.validVersions.count }
        #expect(pairs == expected)
    }

    static func check<M: RandomizableMessage>(_ type: M.Type) throws -> Int {
        var versions = 0
        for version in M.validVersions {
            var rng = RandomSource(seed: stableSeed(M.messageName, version))
            for instance in 0..<instancesPerVersion {
                let original = M.random(version: version, using: &rng)
                let bytes = original.encoded(version: version)
                var reader = bytes
                let decoded: M
                do {
                    decoded = try M(from: &reader, version: version)
                } catch {
                    Issue.record("\(M.messageName) v\(version) #\(instance): decode failed: \(error)")
                    continue
                }
                #expect(reader.readableBytes == 0, "\(M.messageName) v\(version): \(reader.readableBytes) bytes left")
                #expect(decoded == original, "\(M.messageName) v\(version) #\(instance) decoded differently")
                #expect(decoded.encoded(version: version) == bytes, "\(M.messageName) v\(version) re-encoded differently")
            }
            versions += 1
        }
        return versions
    }

    /// FNV-1a, so seeds do not change between runs the way String.hashValue does.
    static func stableSeed(_ name: String, _ version: Int16) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash ^ UInt64(version)
    }

    /// A truncated message never decodes silently: every strict prefix either throws or (for
    /// messages whose tail is optional) decodes to something that re-encodes shorter.
    @Test func truncatedMessagesThrow() throws {
        var rng = RandomSource(seed: 7)
        var request = ProduceRequest.random(version: 9, using: &rng)
        request.topicData = [.init(name: "t", partitionData: [.init(index: 0, records: ByteBuffer(bytes: [1, 2, 3]))])]
        let bytes = request.encoded(version: 9)
        for length in 0..<bytes.readableBytes {
            var prefix = bytes.getSlice(at: 0, length: length)!
            #expect(throws: KafkaWireError.self) { try ProduceRequest(from: &prefix, version: 9) }
        }
    }

    @Test func unknownTaggedFieldsAreKeptAndWrittenBackInTagOrder() throws {
        var response = ApiVersionsResponse(errorCode: 0, apiKeys: [.init(apiKey: 0, minVersion: 0, maxVersion: 11)])
        response.supportedFeatures = [.init(name: "f", minVersion: 1, maxVersion: 2)]  // known tag 0
        // Tags 0-3 are known in ApiVersionsResponse; 5 and 9 are not.
        response.unknownTaggedFields = [TaggedField(tag: 9, data: ByteBuffer(bytes: [0xAA])),
                                        TaggedField(tag: 5, data: ByteBuffer(bytes: [0xBB]))]
        let bytes = response.encoded(version: 3)
        var reader = bytes
        let decoded = try ApiVersionsResponse(from: &reader, version: 3)
        #expect(decoded.supportedFeatures == response.supportedFeatures)
        // Known tag 0 first, then the unknown ones sorted by tag.
        #expect(decoded.unknownTaggedFields.map(\.tag) == [5, 9])
        #expect(decoded.encoded(version: 3) == bytes)
        // A known tag whose bytes do not fit its type is an error, not a silently dropped field.
        response.unknownTaggedFields = [TaggedField(tag: 1, data: ByteBuffer(bytes: [0xBB]))]
        #expect(throws: KafkaWireError.self) { try ApiVersionsResponse.decode(response.encoded(version: 3), version: 3) }
    }

    @Test func fieldsAbsentFromAVersionKeepTheirDefaults() throws {
        var request = ProduceRequest(transactionalId: "tx", acks: -1, timeoutMs: 30_000)
        request.topicData = [.init(name: "orders", topicId: KafkaUUID(high: 1, low: 2), partitionData: [])]
        // v3 carries names but not topic ids.
        let v3 = try ProduceRequest.decode(request.encoded(version: 3), version: 3)
        #expect(v3.topicData.first?.name == "orders")
        #expect(v3.topicData.first?.topicId == .zero)
        // v13 carries topic ids but not names.
        let v13 = try ProduceRequest.decode(request.encoded(version: 13), version: 13)
        #expect(v13.topicData.first?.name == "")
        #expect(v13.topicData.first?.topicId == KafkaUUID(high: 1, low: 2))
        // v0-2 have no transactional id.
        #expect(try ProduceRequest.decode(request.encoded(version: 2), version: 2).transactionalId == nil)
    }

    @Test func specDefaultsApply() {
        let fetch = FetchRequest()
        #expect(fetch.replicaId == -1)
        #expect(fetch.maxBytes == 0x7fff_ffff)
        #expect(fetch.sessionEpoch == -1)
        #expect(MetadataRequest().allowAutoTopicCreation == true)
    }

    @Test func decodeRejectsVersionsOutsideTheSpec() {
        #expect(throws: KafkaWireError.self) { try ProduceRequest.decode(ByteBuffer(), version: 99) }
    }
}
