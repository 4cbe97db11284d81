import Foundation
import KafkaLog
import KafkaWire
import Logging
@testable import MiniBroker
import NIOCore
import NIOEmbedded
import Testing

/// The request layer without sockets: frames in, response frames out.
final class BrokerFixture {
    let directory: String
    let broker: Broker
    let dispatcher: RequestDispatcher
    let coordinator: GroupCoordinator
    let loop = EmbeddedEventLoop()
    var correlationId: Int32 = 0
    /// Who the requests come from (anonymous on a plaintext listener unless a test says otherwise).
    var context = RequestContext()
    /// Whether the directory goes with the fixture (a restart hands it to the next one).
    var ownsDirectory = true

    /// A broker on a new directory, or on `directory` as a restart leaves it.
    init(directory: String? = nil, overrides: [String: String] = [:]) throws {
        self.directory = directory ?? NSTemporaryDirectory() + "minibroker-test-" + UUID().uuidString
        var config = BrokerConfig()
        try config.set("log.dirs", self.directory)
        for (k, v) in overrides { try config.set(k, v) }
        broker = try Broker(config: config, logger: Logger(label: "test"))
        coordinator = try GroupCoordinator(broker: broker, loop: loop, logger: Logger(label: "test"))
        dispatcher = try RequestDispatcher(broker: broker, coordinator: coordinator, logger: Logger(label: "test"))
    }

    deinit {
        coordinator.stop()
        dispatcher.transactions.stop()
        if ownsDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Stops this broker (cleanly or as a crash leaves it) and starts another on its directory.
    func restart(clean: Bool = true, overrides: [String: String] = [:]) throws -> BrokerFixture {
        if clean { try broker.shutdown() }
        coordinator.stop()
        dispatcher.transactions.stop()
        ownsDirectory = false
        return try BrokerFixture(directory: directory, overrides: overrides)
    }

    /// Sends a request at a version and decodes the answer as that version's response.
    func send<R: KafkaRequest>(_ request: R, version: Int16) throws -> R.Response {
        let bytes = try sendRaw(apiKey: R.apiKey, version: version) { body in request.write(into: &body, version: version) }
        var body = try #require(bytes)
        _ = try ResponseHeader(from: &body, version: R.apiKey.responseHeaderVersion(version))
        let response = try R.Response(from: &body, version: version)
        #expect(body.readableBytes == 0)
        return response
    }

    /// The response bytes after the size prefix (nil when no response), or the thrown close.
    func sendRaw(apiKey: ApiKey, version: Int16, body: (inout ByteBuffer) -> Void) throws -> ByteBuffer? {
        correlationId += 1
        var frame = ByteBuffer()
        RequestHeader(requestApiKey: apiKey.rawValue, requestApiVersion: version, correlationId: correlationId, clientId: "test")
            .write(into: &frame, version: apiKey.requestHeaderVersion(min(version, apiKey.validVersions.upperBound)))
        body(&frame)
        let future = dispatcher.handle(frame, eventLoop: loop, context: context)
        loop.run()
        guard let response = try future.wait() else { return nil }
        var out = ByteBuffer()
        for part in response.parts {
            guard case .byteBuffer(var b) = part else { Issue.record("unexpected file region"); continue }
            out.writeBuffer(&b)
        }
        let prefix = out.readInteger(as: Int32.self)
        let size = try #require(prefix)
        #expect(Int(size) == out.readableBytes)
        return out
    }
}

@Suite struct RequestLayerTests {
    @Test func apiVersionsAdvertisesWhatIsServed() throws {
        let fixture = try BrokerFixture()
        let response = try fixture.send(ApiVersionsRequest(clientSoftwareName: "test", clientSoftwareVersion: "1.0"), version: 3)
        #expect(response.errorCode == 0)
        let produce = try #require(response.apiKeys.first { $0.apiKey == ApiKey.produce.rawValue })
        #expect(produce.minVersion == 0 && produce.maxVersion == 13)
        #expect(response.apiKeys.contains { $0.apiKey == ApiKey.fetch.rawValue && $0.minVersion == 4 })
        // Served on every listener, as Kafka does: a SASL listener's authenticator answers them, any
        // other listener says ILLEGAL_SASL_STATE.
        #expect(response.apiKeys.contains { $0.apiKey == ApiKey.saslHandshake.rawValue && $0.minVersion == 0 && $0.maxVersion == 1 })
        #expect(response.apiKeys.contains { $0.apiKey == ApiKey.saslAuthenticate.rawValue && $0.minVersion == 0 && $0.maxVersion == 2 })
        #expect(!response.apiKeys.contains { $0.apiKey == ApiKey.createDelegationToken.rawValue })
        #expect(try fixture.send(SaslHandshakeRequest(mechanism: "PLAIN"), version: 1).errorCode == ErrorCode.illegalSaslState.rawValue)
        #expect(try fixture.send(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: [0])), version: 2).errorCode == ErrorCode.illegalSaslState.rawValue)
    }

    @Test func unsupportedApiVersionsVersionGetsV0AnswerWithItsOwnRange() throws {
        let fixture = try BrokerFixture()
        // A future v9 with some body: answered as v0 with header v0, UNSUPPORTED_VERSION, and ApiVersions' range.
        let raw = try fixture.sendRaw(apiKey: .apiVersions, version: 9) { body in body.writeBytes([0x05, 0x61, 0x62, 0x63, 0x64, 0x02, 0x31, 0x00]) }
        var body = try #require(raw)
        let header = try ResponseHeader(from: &body, version: 0)
        #expect(header.correlationId == fixture.correlationId)
        let response = try ApiVersionsResponse(from: &body, version: 0)
        #expect(response.errorCode == ErrorCode.unsupportedVersion.rawValue)
        #expect(response.apiKeys.map(\.apiKey) == [ApiKey.apiVersions.rawValue])
        #expect(response.apiKeys.first?.maxVersion == 4)
    }

    @Test func unknownApiOrVersionClosesTheConnection() throws {
        let fixture = try BrokerFixture()
        var frame = ByteBuffer()
        frame.writeInteger(Int16(999))
        frame.writeInteger(Int16(0))
        frame.writeInteger(Int32(1))
        frame.writeInteger(Int16(-1))
        let future = fixture.dispatcher.handle(frame, eventLoop: fixture.loop)
        fixture.loop.run()
        #expect(throws: InvalidRequest.self) { try future.wait() }
        // Produce v2 is advertised (for librdkafka) but not served.
        #expect(throws: InvalidRequest.self) { try fixture.sendRaw(apiKey: .produce, version: 2) { ProduceRequest().write(into: &$0, version: 2) } }
        // A body that does not parse.
        #expect(throws: InvalidRequest.self) { try fixture.sendRaw(apiKey: .metadata, version: 12) { body in body.writeBytes([0xFF]) } }
    }

    @Test func metadataAutoCreatesWhenAllowed() throws {
        let fixture = try BrokerFixture(overrides: ["num.partitions": "3"])
        let response = try fixture.send(MetadataRequest(topics: [.init(name: "fresh")], allowAutoTopicCreation: true), version: 12)
        #expect(response.topics.first?.errorCode == 0 && response.topics.first?.partitions.count == 3)
        #expect(response.brokers.first?.nodeId == 0 && response.controllerId == 0)
        let denied = try fixture.send(MetadataRequest(topics: [.init(name: "other")], allowAutoTopicCreation: false), version: 12)
        #expect(denied.topics.first?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        let invalid = try fixture.send(MetadataRequest(topics: [.init(name: "bad name!")], allowAutoTopicCreation: true), version: 12)
        #expect(invalid.topics.first?.errorCode == ErrorCode.invalidTopicException.rawValue)
    }

    @Test func createTopicsValidation() throws {
        let fixture = try BrokerFixture()
        let request = CreateTopicsRequest(topics: [
            .init(name: "ok", numPartitions: 2, replicationFactor: 1, configs: [.init(name: "retention.ms", value: "1000")]),
            .init(name: "rf3", numPartitions: 1, replicationFactor: 3),
            .init(name: "badcfg", numPartitions: 1, replicationFactor: 1, configs: [.init(name: "retention.ms", value: "soon")]),
            .init(name: "unknowncfg", numPartitions: 1, replicationFactor: 1, configs: [.init(name: "no.such", value: "1")]),
            .init(name: "zero", numPartitions: 0, replicationFactor: 1),
            .init(name: "..", numPartitions: 1, replicationFactor: 1),
        ], timeoutMs: 1000)
        let response = try fixture.send(request, version: 7)
        let codes = Dictionary(uniqueKeysWithValues: response.topics.map { ($0.name, $0.errorCode) })
        #expect(codes["ok"] == 0)
        #expect(codes["rf3"] == ErrorCode.invalidReplicationFactor.rawValue)
        #expect(codes["badcfg"] == ErrorCode.invalidConfig.rawValue && codes["unknowncfg"] == ErrorCode.invalidConfig.rawValue)
        #expect(codes["zero"] == ErrorCode.invalidPartitions.rawValue && codes[".."] == ErrorCode.invalidTopicException.rawValue)
        let ok = try #require(response.topics.first { $0.name == "ok" })
        #expect(ok.topicId != .zero && ok.numPartitions == 2)
        #expect(ok.configs?.first { $0.name == "retention.ms" }?.value == "1000")
        #expect(ok.configs?.first { $0.name == "retention.ms" }?.configSource == 1)
        // Again: already exists. validate_only never creates.
        let again = try fixture.send(CreateTopicsRequest(topics: [.init(name: "ok", numPartitions: 1, replicationFactor: 1),
                                                                  .init(name: "dry", numPartitions: 1, replicationFactor: 1)],
                                                         timeoutMs: 1000, validateOnly: true), version: 7)
        #expect(again.topics.map(\.errorCode) == [ErrorCode.topicAlreadyExists.rawValue, 0])
        #expect(fixture.broker.topics.topic("dry") == nil)
    }

    @Test func oversizedAdminRequestsAreRefusedWholeAsKafkasControllerDoes() throws {
        let fixture = try BrokerFixture()
        // 10,000 records at most: a topic, its partitions and its config overrides each count one.
        let tooMany = try fixture.send(CreateTopicsRequest(topics: [
            .init(name: "huge", numPartitions: 1 << 24, replicationFactor: 1),
            .init(name: "small", numPartitions: 1, replicationFactor: 1),
        ], timeoutMs: 1000), version: 7)
        #expect(tooMany.topics.map(\.errorCode) == [ErrorCode.policyViolation.rawValue, ErrorCode.policyViolation.rawValue])
        #expect(tooMany.topics.first?.errorMessage == "Unable to perform excessively large batch operation.")
        #expect(fixture.broker.topics.topic("huge") == nil && fixture.broker.topics.topic("small") == nil)
        let justOver = try fixture.send(CreateTopicsRequest(topics: [.init(name: "over", numPartitions: 9_999, replicationFactor: 1,
                                                                           configs: [.init(name: "retention.ms", value: "1000")])],
                                                            timeoutMs: 1000, validateOnly: true), version: 7)
        #expect(justOver.topics.first?.errorCode == ErrorCode.policyViolation.rawValue)
        let atTheLimit = try fixture.send(CreateTopicsRequest(topics: [.init(name: "limit", numPartitions: 9_999, replicationFactor: 1)],
                                                              timeoutMs: 1000, validateOnly: true), version: 7)
        #expect(atTheLimit.topics.first?.errorCode == 0)

        _ = try fixture.send(CreateTopicsRequest(topics: [.init(name: "grow", numPartitions: 1, replicationFactor: 1)]), version: 7)
        let grow = try fixture.send(CreatePartitionsRequest(topics: [.init(name: "grow", count: 20_000, assignments: nil)],
                                                            timeoutMs: 1000, validateOnly: false), version: 3)
        #expect(grow.results.first?.errorCode == ErrorCode.policyViolation.rawValue)
        #expect(fixture.broker.topics.topic("grow")?.partitionCount == 1)
        let growSome = try fixture.send(CreatePartitionsRequest(topics: [.init(name: "grow", count: 3, assignments: nil)],
                                                                timeoutMs: 1000, validateOnly: false), version: 3)
        #expect(growSome.results.first?.errorCode == 0 && fixture.broker.topics.topic("grow")?.partitionCount == 3)
    }

    /// A long-poll fetch (max_wait_ms, min_bytes) is answered once enough has been appended, and not
    /// before: an append that leaves too little re-arms the wait from where the log then ended.
    @Test func longPollFetchWaitsForMinBytesAcrossAppends() throws {
        let fixture = try BrokerFixture()
        _ = try fixture.send(CreateTopicsRequest(topics: [.init(name: "w", numPartitions: 1, replicationFactor: 1)]), version: 7)
        let log = try #require(fixture.broker.topics.log("w", 0))
        func batch() throws -> ByteBuffer {
            try RecordBatch(records: [Record(timestamp: PartitionLog.currentTimeMs(), value: ByteBuffer(repeating: 1, count: 300))]).encoded()
        }
        let oneBatch = try batch().readableBytes
        var frame = ByteBuffer()
        RequestHeader(requestApiKey: ApiKey.fetch.rawValue, requestApiVersion: 12, correlationId: 1, clientId: "test")
            .write(into: &frame, version: ApiKey.fetch.requestHeaderVersion(12))
        FetchRequest(replicaId: -1, maxWaitMs: 60_000, minBytes: Int32(oneBatch + 1), maxBytes: 1 << 20, topics: [
            .init(topic: "w", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ]).write(into: &frame, version: 12)
        let answer = fixture.dispatcher.handle(frame, eventLoop: fixture.loop)
        let answeredBox = NIOLoopBoundBox(false, eventLoop: fixture.loop)
        answer.whenComplete { _ in answeredBox.value = true }
        var answered: Bool { answeredBox.value }
        fixture.loop.run()
        #expect(!answered, "an empty log answered a fetch waiting for min_bytes")
        _ = try log.append(try batch())
        fixture.loop.run()
        #expect(!answered, "one batch is less than min_bytes")
        _ = try log.append(try batch())
        fixture.loop.run()
        #expect(answered, "two batches reach min_bytes")
        let response = try #require(try answer.wait())
        let bytes = response.parts.reduce(0) { total, part in
            switch part {
            case .byteBuffer(let buffer): return total + buffer.readableBytes
            case .fileRegion(let region): return total + region.readableBytes
            }
        }
        #expect(bytes > 2 * oneBatch, "both batches sent")
        for handle in response.fileHandles { try handle.close() }  // the connection closes them once sent
    }

    @Test func produceErrorsMapToKafkaCodes() throws {
        let fixture = try BrokerFixture(overrides: ["message.max.bytes": "300"])
        _ = try fixture.send(CreateTopicsRequest(topics: [.init(name: "p", numPartitions: 1, replicationFactor: 1)]), version: 7)
        func produce(_ batch: ByteBuffer?, topic: String = "p", acks: Int16 = -1) throws -> ProduceResponse.PartitionProduceResponse? {
            try fixture.send(ProduceRequest(acks: acks, timeoutMs: 1000, topicData: [
                .init(name: topic, partitionData: [.init(index: 0, records: batch)]),
            ]), version: 9).responses.first?.partitionResponses.first
        }
        func batch(_ n: Int, size: Int = 10) throws -> ByteBuffer {
            try RecordBatch(records: (0..<n).map { Record(offset: Int64($0), timestamp: PartitionLog.currentTimeMs(),
                                                          value: ByteBuffer(repeating: 1, count: size)) }).encoded()
        }
        #expect(try produce(try batch(2))?.baseOffset == 0)
        #expect(try produce(try batch(1))?.baseOffset == 2)
        #expect(try produce(try batch(1, size: 500))?.errorCode == ErrorCode.messageTooLarge.rawValue)
        var corrupt = try batch(1)
        corrupt.setInteger(UInt8(7), at: corrupt.writerIndex - 1)
        let corruptAnswer = try produce(corrupt)
        #expect(corruptAnswer?.errorCode == ErrorCode.corruptMessage.rawValue && corruptAnswer?.baseOffset == -1)
        #expect(try produce(try batch(1), topic: "missing")?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        #expect(try produce(nil)?.errorCode == ErrorCode.invalidRecord.rawValue)
        #expect(try produce(try batch(1), acks: 5)?.errorCode == ErrorCode.invalidRequiredAcks.rawValue)
        // acks=0: no answer on success; a failure closes the connection.
        #expect(try fixture.sendRaw(apiKey: .produce, version: 9) {
            ProduceRequest(acks: 0, topicData: [.init(name: "p", partitionData: [.init(index: 0, records: try! batch(1))])]).write(into: &$0, version: 9)
        } == nil)
        #expect(throws: InvalidRequest.self) {
            try fixture.sendRaw(apiKey: .produce, version: 9) {
                ProduceRequest(acks: 0, topicData: [.init(name: "missing", partitionData: [.init(index: 0, records: try! batch(1))])]).write(into: &$0, version: 9)
            }
        }
    }

    @Test func describeAndAlterTopicConfigs() throws {
        let fixture = try BrokerFixture(overrides: ["log.segment.bytes": "1048576"])
        _ = try fixture.send(CreateTopicsRequest(topics: [.init(name: "c", numPartitions: 1, replicationFactor: 1)]), version: 7)
        func describe() throws -> [String: DescribeConfigsResponse.DescribeConfigsResourceResult] {
            let r = try fixture.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "c", configurationKeys: nil)],
                                                            includeSynonyms: true), version: 4)
            return Dictionary(uniqueKeysWithValues: r.results[0].configs.map { ($0.name, $0) })
        }
        var configs = try describe()
        #expect(configs["segment.bytes"]?.value == "1048576" && configs["segment.bytes"]?.configSource == 4)
        #expect(configs["retention.ms"]?.value == "604800000" && configs["retention.ms"]?.configSource == 5)
        #expect(configs["cleanup.policy"]?.configType == 7)
        let altered = try fixture.send(IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: "c", configs: [.init(name: "retention.ms", configOperation: 0, value: "60000")]),
        ]), version: 1)
        #expect(altered.responses[0].errorCode == 0)
        configs = try describe()
        #expect(configs["retention.ms"]?.value == "60000" && configs["retention.ms"]?.configSource == 1)
        #expect(fixture.broker.topics.log("c", 0)?.config.retentionMs == 60000)
        // AlterConfigs replaces the set: retention.ms goes back to its default.
        _ = try fixture.send(AlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "c", configs: [.init(name: "retention.bytes", value: "1000")])]), version: 2)
        configs = try describe()
        #expect(configs["retention.ms"]?.configSource == 5 && configs["retention.bytes"]?.value == "1000")
        let bad = try fixture.send(IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: "c", configs: [.init(name: "segment.bytes", configOperation: 2, value: "1")]),
        ]), version: 1)
        #expect(bad.responses[0].errorCode == ErrorCode.invalidConfig.rawValue)
    }
}
