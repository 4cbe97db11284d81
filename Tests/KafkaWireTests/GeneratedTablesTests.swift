import KafkaWire
import NIOCore
import Testing

@Suite struct GeneratedTablesTests {
    @Test func apiKeys() {
        #expect(ApiKey.allCases.count == 88)
        #expect(ApiKey.produce.rawValue == 0 && ApiKey.produce.validVersions == 0...13)
        #expect(ApiKey.fetch.validVersions == 0...18)
        #expect(ApiKey.apiVersions.firstFlexibleVersion == 3)
        #expect(ApiKey(rawValue: 74) == .listConfigResources)
        for api in ApiKey.allCases {
            #expect(api.requestType.apiKey == api && api.responseType.apiKey == api)
            #expect(api.requestType.validVersions == api.validVersions)
            #expect(api.responseType.validVersions == api.validVersions)
        }
    }

    @Test func headerVersions() {
        #expect(ApiKey.produce.requestHeaderVersion(8) == 1)
        #expect(ApiKey.produce.requestHeaderVersion(9) == 2)
        #expect(ApiKey.produce.responseHeaderVersion(9) == 1)
        #expect(ApiKey.controlledShutdown.requestHeaderVersion(0) == 0)
        // ApiVersions answers with header v0 whatever the version, so a client can always read it.
        #expect(ApiKey.apiVersions.requestHeaderVersion(3) == 2)
        #expect(ApiKey.apiVersions.responseHeaderVersion(3) == 0)
        #expect(ApiKey.apiVersions.responseHeaderVersion(4) == 0)
    }

    @Test func requestHeaderClientIdIsNeverCompact() throws {
        // RequestHeader v2 is flexible, yet ClientId keeps its int16 length (flexibleVersions "none").
        let header = RequestHeader(requestApiKey: 3, requestApiVersion: 12, correlationId: 5, clientId: "rdkafka")
        var bytes = header.encoded(version: 2)
        #expect(Array(bytes.readableBytesView) == [0, 3, 0, 12, 0, 0, 0, 5, 0, 7] + Array("rdkafka".utf8) + [0])
        #expect(try RequestHeader(from: &bytes, version: 2) == header)
    }

    @Test func errorCodes() {
        // errors.tsv lists -1...128 except 99 (POSITION_OUT_OF_RANGE, a KRaft snapshot error).
        #expect(ErrorCode.all.count == 129)
        #expect(ErrorCode.noError.rawValue == 0 && ErrorCode.noError.name == "NONE")
        #expect(ErrorCode.unknownServerError.rawValue == -1)
        #expect(ErrorCode.notLeaderOrFollower.rawValue == 6 && ErrorCode.notLeaderOrFollower.isRetriable)
        #expect(ErrorCode.corruptMessage.isRetriable)
        #expect(!ErrorCode.topicAuthorizationFailed.isRetriable && !ErrorCode.unknownProducerId.isRetriable)
        #expect(ErrorCode.unsupportedVersion.rawValue == 35)
        #expect(ErrorCode.offsetOutOfRange.message.contains("not within the range"))
        #expect(ErrorCode(rawValue: 9999).name == "UNKNOWN_ERROR_CODE_9999")
        #expect(ErrorCode.all.filter(\.isRetriable).count == 31)
    }

    @Test func dataTypesDecodeGroupPayloads() throws {
        let subscription = ConsumerProtocolSubscription(topics: ["a", "b"], userData: nil, ownedPartitions: [.init(topic: "a", partitions: [0, 1])])
        let bytes = subscription.encoded(version: 1)
        #expect(try ConsumerProtocolSubscription.decode(bytes, version: 1) == subscription)
    }
}
