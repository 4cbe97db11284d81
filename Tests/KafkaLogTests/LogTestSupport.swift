import Foundation
import KafkaLog
import KafkaWire
import Logging
import NIOCore

/// A fresh temporary log directory per test, removed afterwards.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "kafkalog-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let testLogger = Logger(label: "kafkalog-test")

/// A batch as a client sends it: base offset 0, `count` records with recognisable values.
func clientBatch(count: Int, valueSize: Int = 100, tag: String = "v", timestamp: Int64 = 1_700_000_000_000,
                 producerId: Int64 = -1, epoch: Int16 = -1, sequence: Int32 = -1, compression: CompressionCodec = .none) -> ByteBuffer {
    let records = (0..<count).map { i in
        Record(offset: Int64(i), timestamp: timestamp + Int64(i), key: ByteBuffer(string: "k\(i)"),
               value: ByteBuffer(string: tag + "-\(i)-" + String(repeating: "x", count: max(0, valueSize - 8))))
    }
    return try! RecordBatch(compression: compression, producerId: producerId, producerEpoch: epoch,
                            baseSequence: sequence, records: records).encoded()
}

/// Every record in the log from `offset`, read back through the fetch path.
func readAll(_ log: PartitionLog, from offset: Int64 = 0) throws -> [Record] {
    var records: [Record] = []
    var next = max(offset, log.logStartOffset)
    while true {
        guard case .slice(let slice) = try log.read(from: next, maxBytes: 1 << 20, minOneBatch: true) else { break }
        let bytes = try slice.file.read(at: slice.position, length: slice.length)
        let batches = try RecordBatch.decodeAll(bytes)
        guard !batches.isEmpty else { break }
        for batch in batches { records += batch.records.filter { $0.offset >= next } }
        next = (records.last?.offset ?? next) + 1
    }
    return records
}

func config(segmentBytes: Int = 1 << 30, indexIntervalBytes: Int = 4096) -> LogConfig {
    var c = LogConfig()
    c.segmentBytes = segmentBytes
    c.indexIntervalBytes = indexIntervalBytes
    return c
}
