#if canImport(Glibc)
import Glibc
#endif
import KafkaLog
import KafkaWire
import KafkaWireRandom
import MiniBroker
import NIOCore

/// The stateful request fuzzer. Each sequence starts a broker on a fresh data directory, sends it
/// requests of every API and version built by the generated randomizers from a small vocabulary of
/// names and boundary values, lets time pass and restarts it (cleanly or as a crash) now and then.
/// It checks that nothing traps (a trap ends the process: the journal names the sequence), that
/// every answer decodes as its API's response, that memory stays bounded, that the broker starts
/// again from whatever is on disk and that every acknowledged offset commit reads back.
public struct BrokerFuzzer {
    public struct Options: Sendable {
        public var seed: UInt64
        public var requestsPerSequence: Int
        /// Written before each step runs; removed when a sequence passes.
        public var journalPath: String?
        /// Resident memory past this is a failure.
        public var memoryLimitBytes: Int

        public init(seed: UInt64, requestsPerSequence: Int = 200, journalPath: String? = nil, memoryLimitBytes: Int = 4 << 30) {
            self.seed = seed
            self.requestsPerSequence = requestsPerSequence
            self.journalPath = journalPath
            self.memoryLimitBytes = memoryLimitBytes
        }
    }

    public struct Report: Sendable {
        public var sequences = 0
        public var steps = 0
        public var answered = 0
        /// Requests the broker closed the connection for (unknown API, unparsable body...).
        public var closed = 0
        public var restarts = 0
        public var committedOffsetsChecked = 0
    }

    public var options: Options
    public private(set) var report = Report()

    public init(options: Options) {
        self.options = options
    }

    /// Runs `count` sequences, seeds following from the first. Throws the first failure, with the
    /// sequence kept at `failurePath(seed)` when a journal is kept.
    public mutating func run(sequences count: Int) throws {
        for i in 0..<count {
            let seed = options.seed &+ UInt64(i)
            let steps = Self.generate(seed: seed, requests: options.requestsPerSequence)
            try runSequence(steps, name: "seed \(seed)")
        }
    }

    /// Runs sequences until `seconds` have passed.
    public mutating func run(forSeconds seconds: Double, progress: (Report) -> Void = { _ in }) throws {
        let start = PartitionLog.currentTimeMs()
        var i: UInt64 = 0
        while Double(PartitionLog.currentTimeMs() - start) < seconds * 1000 {
            let seed = options.seed &+ i
            try runSequence(Self.generate(seed: seed, requests: options.requestsPerSequence), name: "seed \(seed)")
            i += 1
            progress(report)
        }
    }

    /// The steps of one sequence: broker settings, a few topics to work on, then requests with time
    /// passing and restarts between them.
    public static func generate(seed: UInt64, requests: Int) -> [FuzzStep] {
        var rng = RandomSource(seed: seed)
        var steps: [FuzzStep] = []
        let settings: [(String, [String])] = [
            ("log.segment.bytes", ["16384", "1073741824"]),
            ("group.initial.rebalance.delay.ms", ["0", "3000"]),
            ("auto.create.topics.enable", ["true", "false"]),
            ("fetch.max.bytes", ["1024", "57671680"]),
            ("log.index.interval.bytes", ["0", "4096"]),
        ]
        for (key, values) in settings { steps.append(.config(key: key, value: values[rng.below(values.count)])) }
        for (name, partitions) in [("t0", 3), ("t1", 1)] {
            steps.append(.request(frame(CreateTopicsRequest(topics: [.init(name: name, numPartitions: Int32(partitions), replicationFactor: 1)]), version: 7)))
        }
        var memberIds: [String] = []
        for _ in 0..<requests {
            switch rng.below(100) {
            case 0..<8:
                steps.append(.advance(milliseconds: Int64(rng.below(6000))))
            case 8..<10:
                steps.append(.restart(clean: rng.bool()))
            case 10..<22:
                // A commit as a standalone consumer makes it (no member, generation -1): these are
                // the offsets that must read back after every restart.
                let partitions = (0..<1 + rng.below(3)).map { _ in
                    OffsetCommitRequest.OffsetCommitRequestPartition(partitionIndex: Int32(rng.below(4)), committedOffset: rng.integer(Int64.self),
                                                                     committedMetadata: rng.below(4) == 0 ? nil : "m")
                }
                let commit = OffsetCommitRequest(groupId: FuzzVocabulary.groups[rng.below(2)], generationIdOrMemberEpoch: -1, memberId: "",
                                                 topics: [.init(name: ["t0", "t1", "t2"][rng.below(3)], partitions: partitions)])
                steps.append(.request(frame(commit, version: Int16(2 + rng.below(8)))))
            default:
                rng.vocabulary = FuzzVocabulary.make(extraStrings: memberIds)
                steps.append(.request(randomRequest(&rng)))
                rng.vocabulary = nil
                // Member ids are the broker's to hand out; a few guesses in the broker's form.
                if memberIds.count < 8, rng.below(8) == 0 { memberIds.append("client-\(rng.below(4))") }
            }
        }
        return steps
    }

    /// A request of any API (mostly those served) at any version it has (mostly those served).
    static func randomRequest(_ rng: inout RandomSource) -> ByteBuffer {
        let served = RequestDispatcher.served.keys.sorted { $0.rawValue < $1.rawValue }
        let all = FuzzedBroker.requestTypes.keys.sorted { $0.rawValue < $1.rawValue }
        let apiKey = rng.below(10) == 0 ? all[rng.below(all.count)] : served[rng.below(served.count)]
        guard let type = FuzzedBroker.requestTypes[apiKey] else { return ByteBuffer() }
        let range = RequestDispatcher.served[apiKey].map { rng.below(8) == 0 ? type.validVersions : $0 } ?? type.validVersions
        let version = range.lowerBound + Int16(rng.below(Int(range.upperBound - range.lowerBound) + 1))
        return randomFrame(type, version: version, &rng)
    }

    static func randomFrame<R: KafkaRequest & RandomizableMessage>(_ type: R.Type, version: Int16, _ rng: inout RandomSource) -> ByteBuffer {
        // Requests past a few megabytes say nothing more than the broker's socket.request.max.bytes
        // already refuses, and cost the journal its time: draw again.
        for _ in 0..<4 {
            let built = frame(R.random(version: version, using: &rng), version: version, clientId: rng.bool() ? "fuzz" : nil)
            if built.readableBytes <= maxFrameBytes { return built }
        }
        return frame(ApiVersionsRequest(), version: 0)
    }

    static let maxFrameBytes = 4 << 20

    static func frame<R: KafkaRequest>(_ request: R, version: Int16, clientId: String? = "fuzz") -> ByteBuffer {
        var frame = ByteBuffer()
        RequestHeader(requestApiKey: R.apiKey.rawValue, requestApiVersion: version, correlationId: 7, clientId: clientId)
            .write(into: &frame, version: R.apiKey.requestHeaderVersion(version))
        request.write(into: &frame, version: version)
        return frame
    }

    /// Runs one sequence on a fresh directory (a replayed file or a generated one).
    public mutating func runSequence(_ steps: [FuzzStep], name: String) throws {
        let directory = Self.temporaryDirectory()
        defer { try? LogDirectory.removeTree(directory) }
        let journal = options.journalPath.flatMap { Journal(path: $0, header: "# minibroker-fuzz sequence (\(name))") }
        var overrides: [String: String] = [:]
        var broker: FuzzedBroker?
        for (index, step) in steps.enumerated() {
            journal?.write(step)
            func fail(_ message: String) -> FuzzFailure { FuzzFailure(step: index, message: "\(name): \(message)") }
            switch step {
            case .config(let key, let value):
                guard broker == nil else { throw fail("a config step after the broker started") }
                overrides[key] = value
            case .request(let frame):
                if broker == nil { broker = try started(directory, overrides, fail) }
                broker?.send(frame)
            case .advance(let ms):
                if broker == nil { broker = try started(directory, overrides, fail) }
                broker?.advance(milliseconds: ms)
            case .restart(let clean):
                if broker == nil { broker = try started(directory, overrides, fail) }
                guard let running = broker else { break }
                do { try running.restart(clean: clean) } catch {
                    throw fail("the broker did not start again after a \(clean ? "clean stop" : "crash"): \(error)")
                }
                report.restarts += 1
                let lost = running.verifyCommittedOffsets()
                report.committedOffsetsChecked += running.offsets.committed.values.reduce(0) { $0 + $1.count }
                if let first = lost.first { throw fail("after a restart: \(first)") }
            }
            if let problem = broker?.problems.first { throw fail(problem) }
            let resident = FuzzedBroker.residentBytes()
            if resident > options.memoryLimitBytes { throw fail("resident memory \(resident >> 20) MB past the limit") }
            report.steps += 1
        }
        if let broker {
            let lost = broker.verifyCommittedOffsets()
            if let first = lost.first { throw FuzzFailure(step: steps.count, message: "\(name): \(first)") }
            try broker.stop(clean: true)
            if let problem = broker.problems.first { throw FuzzFailure(step: steps.count, message: "\(name): \(problem)") }
            report.answered += broker.answered
            report.closed += broker.closed
        }
        report.sequences += 1
        journal?.remove()
    }

    private func started(_ directory: String, _ overrides: [String: String], _ fail: (String) -> FuzzFailure) throws -> FuzzedBroker {
        do { return try FuzzedBroker(directory: directory, overrides: overrides) } catch {
            throw fail("the broker did not start: \(error)")
        }
    }

    static func temporaryDirectory() -> String {
        var template = Array("/tmp/minibroker-fuzz-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress, let made = mkdtemp(base) else { return "/tmp/minibroker-fuzz-\(getpid())" }
            return String(cString: made)
        }
    }
}

/// The sequence being run, one step a line, written before the step runs (a write(2) per line:
/// it survives the process dying on that step).
final class Journal {
    let path: String
    private let descriptor: Int32

    init?(path: String, header: String) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return nil }
        append(header)
    }

    deinit { close(descriptor) }

    func write(_ step: FuzzStep) { append(step.line) }

    private func append(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            done += n
        }
    }

    func remove() { unlink(path) }
}
