import Benchmark
import KafkaWire
import NIOCore

// Hot paths of the codec. Each benchmark reports throughput in operations per second; the
// operation is named in the benchmark's title (one MiB, one batch, one record...). Cheap operations
// run 1000 times per sample (scalingFactor .kilo) so set-up inside a sample is amortised.

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )

    let mebibyte = ByteBuffer(repeating: 0xA5, count: 1 << 20)
    Benchmark("CRC32C 1 MiB (hardware)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CRC32C.checksum(mebibyte)) }
    }
    Benchmark("CRC32C 1 MiB (portable)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(mebibyte.withUnsafeReadableBytes { CRC32C.portableChecksum($0) })
        }
    }

    // A batch as a producer sends it: 100 records of 100-byte values.
    let records = (0..<100).map { i in
        Record(offset: Int64(i), timestamp: 1_700_000_000_000 + Int64(i),
               key: ByteBuffer(string: "key-\(i)"), value: ByteBuffer(repeating: UInt8(i), count: 100))
    }
    let batch = try! RecordBatch(records: records).encoded()

    Benchmark("Batch header + CRC validation (100 x 100 B batch)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try RecordBatchView(validating: batch)) }
    }
    Benchmark("Batch offset assignment in place (100 x 100 B batch)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var view = try RecordBatchView(validating: batch)
        var offset: Int64 = 0
        for _ in benchmark.scaledIterations {
            view.setBaseOffset(offset)
            offset += 100
            blackHole(view.baseOffset)
        }
    }
    Benchmark("Record decode (100 records per iteration)") { benchmark in
        let view = try RecordBatchView(validating: batch)
        for _ in benchmark.scaledIterations { blackHole(try view.records()) }
    }
    Benchmark("Record encode (100 records per iteration)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try RecordBatch(records: records).encoded()) }
    }

    // A Produce v9 request carrying that batch: the broker's per-request decode.
    let produce = ProduceRequest(acks: -1, timeoutMs: 30_000, topicData: [
        .init(name: "bench", partitionData: [.init(index: 0, records: batch)]),
    ]).encoded(version: 9)
    Benchmark("ProduceRequest v9 decode", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            var buffer = produce
            blackHole(try ProduceRequest(from: &buffer, version: 9))
        }
    }
    let metadata = MetadataResponse(brokers: [.init(nodeId: 0, host: "127.0.0.1", port: 9092)], topics: (0..<20).map { t in
        .init(name: "topic-\(t)", topicId: KafkaUUID(high: UInt64(t), low: 1), partitions: (0..<6).map {
            .init(partitionIndex: $0, leaderId: 0, replicaNodes: [0], isrNodes: [0])
        })
    })
    Benchmark("MetadataResponse v12 encode (20 topics x 6 partitions)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(metadata.encoded(version: 12)) }
    }
}
