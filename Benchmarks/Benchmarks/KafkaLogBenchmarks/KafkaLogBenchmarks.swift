import Benchmark
import Foundation
import KafkaLog
import KafkaWire
import Logging
import NIOCore

// Hot paths of the log: append (validate, assign offsets in place, one write into the page cache) and
// the read that serves a fetch (offset -> segment -> offset index -> the byte range sendfile sends).

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )
    let logger = Logger(label: "kafkalog-bench")
    let root = NSTemporaryDirectory() + "kafkalog-bench-" + UUID().uuidString
    func open(_ name: String, _ config: LogConfig = LogConfig()) throws -> PartitionLog {
        try PartitionLog(directory: root + "/" + name, topicPartition: TopicPartition(name, 0), config: config,
                         logStartOffset: nil, recoveryPoint: nil, clean: true, logger: logger)
    }

    // A batch as a producer sends it: 100 records of 100-byte values (11.6 KB).
    let records = (0..<100).map { i in
        Record(offset: Int64(i), timestamp: 1_700_000_000_000 + Int64(i),
               key: ByteBuffer(string: "key-\(i)"), value: ByteBuffer(repeating: UInt8(i), count: 100))
    }
    let batch = try! RecordBatch(records: records).encoded()

    // 1000 appends (11.6 MB) per sample into a fresh log, deleted after the sample.
    Benchmark("Log append (100 x 100 B batch, default flush policy)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let log = try open("append-\(UUID().uuidString)")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try log.append(batch)) }
        benchmark.stopMeasurement()
        try log.delete()
    }

    // 20,000 batches (2 M records, 232 MB) in 16 MiB segments, an index entry every 4 KiB; made before
    // and deleted after each read benchmark.
    final class ReadFixture: @unchecked Sendable {
        var log: PartitionLog?
        var end: Int64 = 0
    }
    let fixture = ReadFixture()
    let fill: Benchmark.BenchmarkSetupHook = {
        var segmented = LogConfig()
        segmented.segmentBytes = 16 << 20
        let log = try open("read-\(UUID().uuidString)", segmented)
        for _ in 0..<20_000 { _ = try log.append(batch) }
        fixture.log = log
        fixture.end = log.logEndOffset
    }
    let remove: Benchmark.BenchmarkTeardownHook = {
        try fixture.log?.delete()
        fixture.log = nil
    }

    Benchmark("Fetch read at a random offset (segment + index lookup, 1 MiB slice)", configuration: .init(scalingFactor: .kilo),
              closure: { benchmark in
                  let log = fixture.log!, end = fixture.end
                  var rng = SystemRandomNumberGenerator()
                  for _ in benchmark.scaledIterations {
                      blackHole(try log.read(from: Int64.random(in: 0..<end, using: &rng), maxBytes: 1 << 20, minOneBatch: true))
                  }
              }, setup: fill, teardown: remove)
    Benchmark("Fetch read at the log end (a consumer keeping up)", configuration: .init(scalingFactor: .kilo),
              closure: { benchmark in
                  let log = fixture.log!, end = fixture.end
                  for _ in benchmark.scaledIterations {
                      blackHole(try log.read(from: end - 100, maxBytes: 1 << 20, minOneBatch: true))
                  }
              }, setup: fill, teardown: remove)
}
