#if canImport(Glibc)
import Glibc
#endif
import KafkaLog
import KafkaWire
import KafkaWireRandom
import Logging
import MiniBroker
import NIOCore
import NIOEmbedded

/// What the fuzzer found wrong: the step it happened at and what was seen.
public struct FuzzFailure: Error, CustomStringConvertible, Sendable {
    public let step: Int
    public let message: String
    public var description: String { "step \(step): \(message)" }
}

/// The broker under test: the request layer on a data directory, driven without sockets on an
/// embedded event loop whose clock the fuzzer moves. Every answer is decoded with the generated
/// codec as the response of the request's API and version, and must be consumed exactly.
final class FuzzedBroker {
    let directory: String
    private(set) var overrides: [String: String]
    private(set) var broker: Broker
    private(set) var coordinator: GroupCoordinator
    private(set) var dispatcher: RequestDispatcher
    private(set) var loop = EmbeddedEventLoop()
    /// Problems seen by answers that completed (some complete later, when time moves).
    var problems: [String] = []
    var offsets = OffsetModel()
    /// Member ids the broker handed out: the vocabulary grows by them so that later requests use them.
    var memberIds: [String] = []
    private(set) var answered = 0
    private(set) var closed = 0

    static let logger: Logger = {
        var logger = Logger(label: "minibroker-fuzz")
        logger.logLevel = .critical
        return logger
    }()

    init(directory: String, overrides: [String: String]) throws {
        self.directory = directory
        self.overrides = overrides
        (broker, coordinator, dispatcher) = try Self.start(directory: directory, overrides: overrides, loop: loop)
    }

    private static func start(directory: String, overrides: [String: String], loop: EmbeddedEventLoop) throws
        -> (Broker, GroupCoordinator, RequestDispatcher) {
        var config = BrokerConfig()
        try config.set("log.dirs", directory)
        for (key, value) in overrides.sorted(by: { $0.key < $1.key }) { try config.set(key, value) }
        let broker = try Broker(config: config, logger: logger)
        let coordinator = try GroupCoordinator(broker: broker, loop: loop, logger: logger)
        return (broker, coordinator, try RequestDispatcher(broker: broker, coordinator: coordinator, logger: logger))
    }

    /// Request types by API key, to decode what the broker answers.
    static let requestTypes: [ApiKey: any (KafkaRequest & RandomizableMessage).Type] = {
        var table: [ApiKey: any (KafkaRequest & RandomizableMessage).Type] = [:]
        for type in allRandomizableMessages {
            if let request = type as? any (KafkaRequest & RandomizableMessage).Type { table[request.apiKey] = request }
        }
        return table
    }()

    func send(_ frame: ByteBuffer) {
        guard let rawKey = frame.getInteger(at: frame.readerIndex, as: Int16.self),
              let version = frame.getInteger(at: frame.readerIndex + 2, as: Int16.self),
              let apiKey = ApiKey(rawValue: rawKey), let type = Self.requestTypes[apiKey] else {
            // Not a request the codec knows: the broker must close, which is all there is to check.
            let bound = NIOLoopBound(self, eventLoop: loop)
            dispatcher.handle(frame, eventLoop: loop).whenComplete { _ in bound.value.closed += 1 }
            loop.run()
            return
        }
        // Everything here runs on the embedded loop; answers that come later reach the broker through it.
        let bound = NIOLoopBound(self, eventLoop: loop)
        dispatcher.handle(frame, eventLoop: loop).whenComplete { result in
            let fuzzed = bound.value
            switch result {
            case .failure:
                fuzzed.closed += 1
            case .success(nil):
                fuzzed.answered += 1
            case .success(let response?):
                fuzzed.answered += 1
                fuzzed.check(response, to: frame, type, apiKey: apiKey, version: version)
            }
        }
        loop.run()
    }

    private func check<R: KafkaRequest & RandomizableMessage>(_ response: ResponseFrame, to frame: ByteBuffer, _ type: R.Type,
                                                             apiKey: ApiKey, version: Int16) {
        var body: ByteBuffer
        do { body = try ResponseBytes.read(response) } catch {
            return problems.append("\(apiKey) v\(version): reading the response failed: \(error)")
        }
        // An ApiVersions at a version the broker does not serve is answered as v0 (KIP-511).
        let served = RequestDispatcher.served[apiKey]
        let answerVersion = apiKey == .apiVersions && !(served?.contains(version) ?? false) ? 0 : version
        do {
            _ = try ResponseHeader(from: &body, version: apiKey.responseHeaderVersion(answerVersion))
            let decoded = try R.Response(from: &body, version: answerVersion)
            guard body.readableBytes == 0 else {
                return problems.append("\(apiKey) v\(version): \(body.readableBytes) bytes left after the response")
            }
            var request = frame
            _ = try RequestHeader(from: &request, version: apiKey.requestHeaderVersion(version))
            if let decodedRequest = try? R(from: &request, version: version) {
                offsets.observe(decodedRequest, decoded, version: version, topics: broker.topics)
                if let join = decoded as? JoinGroupResponse, !join.memberId.isEmpty, memberIds.count < 64 { memberIds.append(join.memberId) }
            }
        } catch {
            problems.append("\(apiKey) v\(version): the response does not decode: \(error)")
        }
    }

    /// Lets `milliseconds` of virtual time pass: session expiry, join delays, long polls.
    func advance(milliseconds: Int64) {
        loop.advanceTime(by: .milliseconds(milliseconds))
    }

    /// Stops the broker, answers whatever still waits, and starts a new one on the same directory.
    func restart(clean: Bool) throws {
        try stop(clean: clean)
        loop = EmbeddedEventLoop()
        (broker, coordinator, dispatcher) = try Self.start(directory: directory, overrides: overrides, loop: loop)
    }

    /// Waiting requests are answered (long polls time out; joins and syncs get NOT_COORDINATOR), so
    /// no promise is left behind; a clean stop then writes the clean-shutdown state.
    func stop(clean: Bool) throws {
        coordinator.stop()
        dispatcher.transactions.stop()
        loop.run()
        // Every timer left is one-shot now: run them all (the longest a request can ask is Int32.max ms).
        loop.advanceTime(by: .milliseconds(Int64(Int32.max) + 1000))
        if clean { try broker.shutdown() }
    }

    /// Reads back every offset the model says was committed.
    func verifyCommittedOffsets() -> [String] {
        var lost: [String] = []
        for (group, table) in offsets.committed.sorted(by: { $0.key < $1.key }) {
            let byTopic = Dictionary(grouping: table.keys, by: \.topic)
            let request = OffsetFetchRequest(groupId: group, topics: byTopic.keys.sorted().map { topic in
                .init(name: topic, partitionIndexes: byTopic[topic, default: []].map(\.partition).sorted())
            })
            var frame = ByteBuffer()
            RequestHeader(requestApiKey: ApiKey.offsetFetch.rawValue, requestApiVersion: 7, correlationId: 0, clientId: "fuzz-check")
                .write(into: &frame, version: ApiKey.offsetFetch.requestHeaderVersion(7))
            request.write(into: &frame, version: 7)
            let outcome = NIOLoopBoundBox<(fetched: [TopicPartition: Int64], failure: String?)>(([:], nil), eventLoop: loop)
            dispatcher.handle(frame, eventLoop: loop).whenComplete { result in
                var fetched: [TopicPartition: Int64] = [:]
                do {
                    guard case .success(let response?) = result else { throw FuzzFailure(step: -1, message: "no answer") }
                    var body = try ResponseBytes.read(response)
                    _ = try ResponseHeader(from: &body, version: ApiKey.offsetFetch.responseHeaderVersion(7))
                    let answer = try OffsetFetchResponse(from: &body, version: 7)
                    for topic in answer.topics { for p in topic.partitions { fetched[TopicPartition(topic.name, p.partitionIndex)] = p.committedOffset } }
                    outcome.value = (fetched, nil)
                } catch {
                    outcome.value = ([:], "OffsetFetch of \(group) failed: \(error)")
                }
            }
            loop.run()
            let (fetched, failure) = outcome.value
            if let failure { lost.append(failure); continue }
            for (tp, offset) in table where fetched[tp] != offset {
                lost.append("group \(group) committed \(offset) at \(tp) but reads back \(fetched[tp].map(String.init) ?? "nothing")")
            }
        }
        return lost
    }

    /// Resident memory of this process, from /proc (0 where there is none).
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var size = 0, resident = 0
        guard fscanf_statm(file, &size, &resident) else { return 0 }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    private static func fscanf_statm(_ file: UnsafeMutablePointer<FILE>, _ size: inout Int, _ resident: inout Int) -> Bool {
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return false }
        let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let s = Int(fields[0]), let r = Int(fields[1]) else { return false }
        size = s
        resident = r
        return true
    }
}
