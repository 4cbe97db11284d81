import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// Client quotas (issue 24): the rate they are measured by, the entity a connection's quota is found
/// on, the two APIs, and the throttle a request over its quota earns.
@Suite struct ClientQuotaTests {
    typealias Entity = AlterClientQuotasRequest.EntityData
    typealias Op = AlterClientQuotasRequest.OpData

    static func alter(_ fixture: BrokerFixture, _ entity: [Entity], _ ops: [Op], validateOnly: Bool = false) throws -> AlterClientQuotasResponse.EntryData {
        let response = try fixture.send(AlterClientQuotasRequest(entries: [.init(entity: entity, ops: ops)], validateOnly: validateOnly), version: 1)
        return try #require(response.entries.first)
    }

    static func describe(_ fixture: BrokerFixture, _ components: [DescribeClientQuotasRequest.ComponentData],
                         strict: Bool = false) throws -> DescribeClientQuotasResponse {
        try fixture.send(DescribeClientQuotasRequest(components: components, strict: strict), version: 1)
    }

    /// Entities of a describe answer as "user=a,client-id=<default>" strings with their values.
    static func entries(_ response: DescribeClientQuotasResponse) -> [String: [String: Double]] {
        Dictionary(uniqueKeysWithValues: (response.entries ?? []).map { entry in
            (entry.entity.map { "\($0.entityType)=\($0.entityName ?? "<default>")" }.joined(separator: ","),
             Dictionary(uniqueKeysWithValues: entry.values.map { ($0.key, $0.value) }))
        })
    }

    @Test func theRateIsMeasuredOverTheWindowAndThrottlesByTheExcess() {
        let window = QuotaWindow(samples: 11, sampleMs: 1000)
        var rate = QuotaRate(window: window, nowMs: 0)
        // 20 units at once: judged over 10 windows (never fewer), 2 per second, twice a quota of 1.
        rate.record(20, nowMs: 0)
        #expect(rate.measure(nowMs: 0).perSecond == 2)
        #expect(rate.throttleMs(quota: 1, nowMs: 0) == 10_000)
        #expect(rate.throttleMs(quota: 2, nowMs: 0) == 0)
        // Within the quota after the window has passed: the old samples expired.
        rate.record(1, nowMs: 12_000)
        #expect(rate.throttleMs(quota: 1, nowMs: 12_000) == 0)
        // A steady 3 per second over 15 s, with a quota of 1: throttled by twice the span.
        var steady = QuotaRate(window: window, nowMs: 0)
        for second in 0..<15 { steady.record(3, nowMs: Int64(second) * 1000) }
        let (perSecond, span) = steady.measure(nowMs: 14_999)
        #expect(span >= 10_000 && span <= 11_000 && perSecond > 2.5 && perSecond < 3.5)
        #expect(steady.throttleMs(quota: 1, nowMs: 14_999) == Int64(((perSecond - 1) * Double(span)).rounded()))
    }

    @Test func aConnectionsQuotaIsFoundOnTheMostSpecificEntityThatHasOne() throws {
        let directory = NSTemporaryDirectory() + "quota-store-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let quotas = ClientQuotaManager(store: try ClientQuotaStore(directory: directory), window: QuotaWindow(samples: 2, sampleMs: 1000))
        #expect(!quotas.isEnforcing)
        let alice = QuotaClient(user: "alice", clientId: "app"), bob = QuotaClient(user: "bob", clientId: "app")
        try quotas.alter(.init(user: nil, clientId: .named("app")), [.producerByteRate: 1000])
        try quotas.alter(.init(user: .named("alice"), clientId: nil), [.producerByteRate: 100])
        #expect(quotas.isEnforcing)
        // alice's own quota (level 3) comes before client id "app" (level 7); bob has only the latter.
        #expect(quotas.record(.producerByteRate, 900, client: alice, nowMs: 0) > 0)
        #expect(quotas.record(.producerByteRate, 900, client: bob, nowMs: 0) == 0)
        // A default client-id quota applies to each client id on its own.
        try quotas.alter(.init(user: nil, clientId: .named("app")), [.producerByteRate: nil])
        try quotas.alter(.init(user: nil, clientId: .defaultName), [.consumerByteRate: 100])
        // (A 2-sample window is judged over at least 1 s: 100 a second is 100 at once.)
        #expect(quotas.record(.consumerByteRate, 80, client: QuotaClient(user: "bob", clientId: "one"), nowMs: 0) == 0)
        #expect(quotas.record(.consumerByteRate, 80, client: QuotaClient(user: "bob", clientId: "two"), nowMs: 0) == 0)
        #expect(quotas.record(.consumerByteRate, 80, client: QuotaClient(user: "bob", clientId: "one"), nowMs: 0) > 0)
        #expect(!quotas.hasQuota(.producerByteRate, for: bob) && quotas.hasQuota(.producerByteRate, for: alice))
        // A throttled value taken back out leaves the rate as it was.
        let carol = QuotaClient(user: "carol", clientId: "three")
        #expect(quotas.record(.consumerByteRate, 1000, client: carol, nowMs: 0, undoIfThrottled: true) > 0)
        #expect(quotas.record(.consumerByteRate, 100, client: carol, nowMs: 0) == 0)
    }

    @Test func quotasAreAlteredDescribedByFilterAndKeptAcrossARestart() throws {
        let fixture = try BrokerFixture()
        let set = try Self.alter(fixture, [Entity(entityType: "user", entityName: "alice"), Entity(entityType: "client-id", entityName: nil)],
                                 [Op(key: "producer_byte_rate", value: 1024, remove: false), Op(key: "request_percentage", value: 12.5, remove: false)])
        #expect(set.errorCode == 0 && set.entity.map(\.entityType) == ["user", "client-id"])
        #expect(try Self.alter(fixture, [Entity(entityType: "client-id", entityName: "app")], [Op(key: "consumer_byte_rate", value: 2048, remove: false)]).errorCode == 0)
        #expect(try Self.alter(fixture, [Entity(entityType: "user", entityName: nil)], [Op(key: "consumer_byte_rate", value: 4096, remove: false)]).errorCode == 0)
        // validateOnly checks and stores nothing.
        #expect(try Self.alter(fixture, [Entity(entityType: "user", entityName: "zed")], [Op(key: "consumer_byte_rate", value: 1, remove: false)],
                               validateOnly: true).errorCode == 0)
        let all = Self.entries(try Self.describe(fixture, []))
        #expect(all == ["user=alice,client-id=<default>": ["producer_byte_rate": 1024, "request_percentage": 12.5],
                        "client-id=app": ["consumer_byte_rate": 2048], "user=<default>": ["consumer_byte_rate": 4096]])
        // exact, default and any-name matches; strict leaves out entities with other types.
        #expect(Self.entries(try Self.describe(fixture, [.init(entityType: "user", matchType: 0, match: "alice")])).keys.sorted() == ["user=alice,client-id=<default>"])
        #expect(Self.entries(try Self.describe(fixture, [.init(entityType: "user", matchType: 0, match: "alice")], strict: true)).isEmpty)
        #expect(Self.entries(try Self.describe(fixture, [.init(entityType: "user", matchType: 1, match: nil)])).keys.sorted() == ["user=<default>"])
        #expect(Self.entries(try Self.describe(fixture, [.init(entityType: "user", matchType: 2, match: nil)])).keys.sorted()
                == ["user=<default>", "user=alice,client-id=<default>"])
        #expect(Self.entries(try Self.describe(fixture, [.init(entityType: "client-id", matchType: 2, match: nil)], strict: true)).keys.sorted() == ["client-id=app"])
        // Removing a key; removing the last one removes the entity.
        #expect(try Self.alter(fixture, [Entity(entityType: "client-id", entityName: "app")], [Op(key: "consumer_byte_rate", value: 0, remove: true)]).errorCode == 0)
        let restarted = try fixture.restart()
        #expect(Self.entries(try Self.describe(restarted, [])) == ["user=alice,client-id=<default>": ["producer_byte_rate": 1024, "request_percentage": 12.5],
                                                                   "user=<default>": ["consumer_byte_rate": 4096]])
    }

    @Test func badQuotaRequestsGetKafkasErrors() throws {
        let fixture = try BrokerFixture()
        func refused(_ entity: [Entity], _ ops: [Op]) throws -> String? {
            let answer = try Self.alter(fixture, entity, ops)
            #expect(answer.errorCode == ErrorCode.invalidRequest.rawValue)
            return answer.errorMessage
        }
        let user = [Entity(entityType: "user", entityName: "alice")]
        #expect(try refused(user, [Op(key: "bogus_rate", value: 1, remove: false)]) == "Invalid configuration key bogus_rate")
        #expect(try refused(user, [Op(key: "producer_byte_rate", value: 0, remove: false)]) == "Quota producer_byte_rate must be greater than 0")
        #expect(try refused(user, [Op(key: "producer_byte_rate", value: 10.5, remove: false)]) == "producer_byte_rate cannot be a fractional value.")
        #expect(try refused(user, [Op(key: "consumer_byte_rate", value: .infinity, remove: false)]) == "Quota consumer_byte_rate must be greater than 0")
        #expect(try refused([], [Op(key: "producer_byte_rate", value: 1, remove: false)]) == "Invalid empty client quota entity")
        #expect(try refused([Entity(entityType: "user", entityName: "")], [Op(key: "producer_byte_rate", value: 1, remove: false)]) == "Empty user not supported")
        #expect(try refused([Entity(entityType: "group", entityName: "g")], [Op(key: "producer_byte_rate", value: 1, remove: false)])
                == "Unhandled client quota entity type: group")
        #expect(try refused(user, [Op(key: "controller_mutation_rate", value: 1, remove: false)])?.contains("not enforced") == true)
        #expect(Self.entries(try Self.describe(fixture, [])).isEmpty)
        // Describe filters: a type twice, a match type's name rule, an unknown type.
        let twice = try Self.describe(fixture, [.init(entityType: "user", matchType: 2, match: nil), .init(entityType: "user", matchType: 1, match: nil)])
        #expect(twice.errorCode == ErrorCode.invalidRequest.rawValue && twice.entries == nil
                && twice.errorMessage == "Entity type user cannot appear more than once in the filter.")
        #expect(try Self.describe(fixture, [.init(entityType: "user", matchType: 0, match: nil)]).errorMessage
                == "Request specified MATCH_TYPE_EXACT, but set match string to null.")
        #expect(try Self.describe(fixture, [.init(entityType: "user", matchType: 7, match: nil)]).errorMessage == "Unknown match type 7")
        #expect(try Self.describe(fixture, [.init(entityType: "topic", matchType: 2, match: nil)]).errorCode == ErrorCode.unsupportedVersion.rawValue)
    }

    /// Sends a produce of `bytes` as client "test" and returns the frame the connection would send.
    static func produceFrame(_ fixture: BrokerFixture, version: Int16 = 9, acks: Int16 = -1) throws -> ResponseFrame? {
        let request = ProduceRequest(acks: acks, timeoutMs: 1000, topicData: [
            .init(name: "metered", partitionData: [.init(index: 0, records: try HostileRequestTests.batch(records: 10, size: 1000))]),
        ])
        let future = fixture.dispatcher.handle(HostileRequestTests.frame(request, version: version), eventLoop: fixture.loop)
        fixture.loop.run()
        return try future.wait()
    }

    static func throttleTime(of frame: ResponseFrame?, version: Int16 = 9) throws -> Int32 {
        var bytes = ByteBuffer()
        for part in try #require(frame).parts { if case .byteBuffer(var b) = part { bytes.writeBuffer(&b) } }
        _ = bytes.readInteger(as: Int32.self)
        _ = try ResponseHeader(from: &bytes, version: ApiKey.produce.responseHeaderVersion(version))
        return try ProduceResponse(from: &bytes, version: version).throttleTimeMs
    }

    @Test func aProduceOverItsQuotaIsAppendedAndAnsweredWithItsThrottleTime() throws {
        let fixture = try BrokerFixture(overrides: ["quota.window.num": "2"])
        try HostileRequestTests.create(fixture, "metered")
        // No quota: nothing throttled.
        let free = try Self.produceFrame(fixture)
        let freeThrottle = try Self.throttleTime(of: free)
        #expect(free?.throttleMs == 0 && freeThrottle == 0)
        // 5 KB/s for client id "test" (the fixture's): ~10 KB requests over a 1 s minimum span.
        #expect(try Self.alter(fixture, [Entity(entityType: "client-id", entityName: "test")],
                               [Op(key: "producer_byte_rate", value: 5000, remove: false)]).errorCode == 0)
        let throttled = try Self.produceFrame(fixture)
        let ms = try #require(throttled?.throttleMs)
        #expect(ms > 0 && ms <= 2000)
        let reported = try Self.throttleTime(of: throttled)
        #expect(reported == Int32(ms))
        // The data went in all the same.
        #expect(fixture.broker.topics.log("metered", 0)?.logEndOffset == 20)
        // acks=0: no answer, but the connection is still held back.
        let silent = try Self.produceFrame(fixture, acks: 0)
        #expect((silent?.throttleMs ?? 0) > 0 && silent?.parts.isEmpty == true)
        // Another client id is not throttled by "test"'s quota.
        #expect(fixture.broker.quotas.record(.producerByteRate, 1e6, client: QuotaClient(user: "ANONYMOUS", clientId: "other"), nowMs: 0) == 0)
    }

    @Test func aThrottledFetchIsAnsweredEmptyAndDoesNotCount() throws {
        let fixture = try BrokerFixture(overrides: ["quota.window.num": "2"])
        try HostileRequestTests.create(fixture, "metered")
        for _ in 0..<3 { #expect(try HostileRequestTests.produce(fixture, "metered", try HostileRequestTests.batch(records: 10, size: 1000))?.errorCode == 0) }
        #expect(try Self.alter(fixture, [Entity(entityType: "client-id", entityName: "test")],
                               [Op(key: "consumer_byte_rate", value: 15000, remove: false)]).errorCode == 0)
        func fetch(_ offset: Int64) throws -> (FetchResponse, Int64) {
            let request = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
                                       topics: [.init(topic: "metered", partitions: [.init(partition: 0, fetchOffset: offset, logStartOffset: -1, partitionMaxBytes: 1 << 20)])])
            let future = fixture.dispatcher.handle(HostileRequestTests.frame(request, version: 11), eventLoop: fixture.loop)
            fixture.loop.run()
            let frame = try #require(try future.wait())
            var bytes = ByteBuffer()
            for part in frame.parts {
                switch part {
                case .byteBuffer(var b): bytes.writeBuffer(&b)
                case .fileRegion(let region):
                    // The record bytes themselves do not matter here: stand-ins of their length.
                    bytes.writeRepeatingByte(0, count: region.readableBytes)
                }
            }
            for handle in frame.fileHandles { try handle.close() }
            _ = bytes.readInteger(as: Int32.self)
            _ = try ResponseHeader(from: &bytes, version: ApiKey.fetch.responseHeaderVersion(11))
            return (try FetchResponse(from: &bytes, version: 11), frame.throttleMs)
        }
        // The quota caps one answer at what a window allows (15 KB/s × 1 s), less than the 30 KB there.
        let (first, firstThrottle) = try fetch(0)
        let records = try #require(first.responses.first?.partitions.first?.records)
        #expect(first.throttleTimeMs == 0 && firstThrottle == 0 && records.readableBytes == 15_000)
        // The next one goes over: answered empty with the throttle time.
        let (second, secondThrottle) = try fetch(10)
        #expect(secondThrottle > 0 && second.throttleTimeMs == Int32(secondThrottle) && second.responses.isEmpty)
    }

    @Test func aFetchThrottledByRequestTimeDoesNotChargeItsBytes() throws {
        let fixture = try BrokerFixture(overrides: ["quota.window.num": "2"])
        try HostileRequestTests.create(fixture, "metered")
        for _ in 0..<3 { #expect(try HostileRequestTests.produce(fixture, "metered", try HostileRequestTests.batch(records: 10, size: 1000))?.errorCode == 0) }
        let test = [Entity(entityType: "client-id", entityName: "test")]
        #expect(try Self.alter(fixture, test, [Op(key: "consumer_byte_rate", value: 15000, remove: false),
                                               Op(key: "request_percentage", value: 1e-9, remove: false)]).errorCode == 0)
        func fetch() throws -> (Int, Int64) {
            let request = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
                                       topics: [.init(topic: "metered", partitions: [.init(partition: 0, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20)])])
            let future = fixture.dispatcher.handle(HostileRequestTests.frame(request, version: 11), eventLoop: fixture.loop)
            fixture.loop.run()
            let frame = try #require(try future.wait())
            for handle in frame.fileHandles { try handle.close() }
            let recordBytes = frame.parts.reduce(0) { total, part in
                if case .fileRegion(let region) = part { return total + region.readableBytes }
                return total
            }
            return (recordBytes, frame.throttleMs)
        }
        // Over the request quota (any handling time is): answered empty, so its 15 KB do not count.
        let (firstBytes, firstThrottle) = try fetch()
        #expect(firstBytes == 0 && firstThrottle > 0)
        #expect(try Self.alter(fixture, test, [Op(key: "request_percentage", value: 0, remove: true)]).errorCode == 0)
        // The byte quota has all of its window left: the same 15 KB go out, unthrottled.
        let (secondBytes, secondThrottle) = try fetch()
        #expect(secondBytes == 15_000 && secondThrottle == 0)
    }
}
