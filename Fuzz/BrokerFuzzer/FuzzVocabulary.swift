import KafkaLog
import KafkaWire
import KafkaWireRandom
import NIOCore

/// The values the fuzzer's requests are drawn from: few enough names that requests meet each
/// other's topics, groups and configs, and the boundary values that parse but break arithmetic.
enum FuzzVocabulary {
    static let topics = ["t0", "t1", "t2", "__consumer_offsets", "x.y", "x_y"]
    static let groups = ["g0", "g1", "__consumer_offsets"]
    static let configKeys = [
        "cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes", "index.interval.bytes",
        "message.timestamp.type", "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "min.insync.replicas",
        "compression.type", "segment.ms", "no.such.config",
    ]
    static let numbers = [
        "-1", "0", "1", "14", "1024", "2147483647", "2147483648", "-2147483648", "9223372036854775807",
        "9223372036854775806", "-9223372036854775808", "99999999999999999999", "LogAppendTime", "compact", "delete", "producer", "zstd",
    ]
    static let other = ["", "consumer", "range", "roundrobin", "cooperative-sticky", "uniform", "client", "instance-0", String(repeating: "a", count: 40_000)]

    /// The pool every string field draws from (member ids the broker hands out are added as they come).
    static var strings: [String] { topics + groups + configKeys + numbers + other }

    static func make(extraStrings: [String] = []) -> RandomSource.Vocabulary {
        RandomSource.Vocabulary(strings: strings + extraStrings, bytes: recordBatches)
    }

    static let timestamps: [Int64] = [0, -1, 1, Int64.min, Int64.max, Int64.max - 1, 1_700_000_000_000]

    /// Record batches, valid or with one header field changed and the CRC made to match, so that
    /// they pass the checks a random byte string never gets past; now and then two in a row.
    static func recordBatches(_ rng: inout RandomSource) -> ByteBuffer {
        var bytes = batch(&rng)
        if rng.below(8) == 0 {
            var second = batch(&rng)
            bytes.writeBuffer(&second)
        }
        return bytes
    }

    static func batch(_ rng: inout RandomSource) -> ByteBuffer {
        let now = currentTimeMs()
        let codecs: [CompressionCodec] = [.none, .none, .none, .gzip, .snappy, .lz4, .zstd]
        let codec = codecs[rng.below(codecs.count)]
        let count = 1 + rng.below(4)
        let timestamp = rng.below(3) == 0 ? timestamps[rng.below(timestamps.count)] : now
        let idempotent = rng.below(3) == 0
        let records = (0..<count).map { i in
            Record(offset: Int64(i), timestamp: timestamp,
                   key: rng.below(4) == 0 ? nil : ByteBuffer(string: groups[rng.below(groups.count)]),
                   value: rng.below(6) == 0 ? nil : ByteBuffer(repeating: UInt8(truncatingIfNeeded: i), count: rng.below(64)),
                   headers: rng.below(6) == 0 ? [RecordHeader(key: "h", value: ByteBuffer(string: "v"))] : [])
        }
        let batch = RecordBatch(compression: codec, producerId: idempotent ? Int64(rng.below(3)) : -1,
                                producerEpoch: idempotent ? Int16(rng.below(2)) : -1,
                                baseSequence: idempotent ? Int32(rng.below(3)) : -1, records: records)
        guard var bytes = try? batch.encoded() else { return ByteBuffer() }
        guard rng.below(3) == 0 else { return bytes }
        // One header field set to a boundary value, CRC recomputed over it.
        let start = bytes.readerIndex
        switch rng.below(8) {
        case 0: bytes.setInteger(rng.integer(Int32.self), at: start + RecordBatchLayout.recordCount)
        case 1: bytes.setInteger(rng.integer(Int32.self), at: start + RecordBatchLayout.lastOffsetDelta)
        case 2: bytes.setInteger(rng.integer(Int64.self), at: start + RecordBatchLayout.baseOffset)
        case 3: bytes.setInteger(rng.integer(Int16.self), at: start + RecordBatchLayout.attributes)
        case 4: bytes.setInteger(rng.integer(Int64.self), at: start + RecordBatchLayout.maxTimestamp)
        case 5: bytes.setInteger(rng.integer(Int64.self), at: start + RecordBatchLayout.producerId)
        case 6: bytes.setInteger(rng.integer(Int32.self), at: start + RecordBatchLayout.baseSequence)
        default: bytes.setInteger(rng.integer(Int32.self), at: start + RecordBatchLayout.batchLength)
        }
        if let view = try? RecordBatchView(unchecked: bytes) {
            bytes.setInteger(view.computeCRC(), at: start + RecordBatchLayout.crc)
        }
        return bytes
    }

    static func currentTimeMs() -> Int64 { PartitionLog.currentTimeMs() }
}
