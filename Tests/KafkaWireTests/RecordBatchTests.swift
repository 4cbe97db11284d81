import KafkaWire
import NIOCore
import Testing

@Suite struct RecordBatchTests {
    static func records(count: Int, base: Int64 = 0) -> [Record] {
        (0..<count).map { i in
            Record(offset: base + Int64(i), timestamp: 1_700_000_000_000 + Int64(i * 3),
                   key: i % 3 == 0 ? nil : ByteBuffer(string: "key-\(i)"),
                   value: i % 5 == 4 ? nil : ByteBuffer(string: String(repeating: "value \(i) ", count: i % 10 + 1)),
                   headers: i % 2 == 0 ? [] : [RecordHeader(key: "h", value: ByteBuffer(string: "v\(i)")),
                                               RecordHeader(key: "null", value: nil)])
        }
    }

    @Test(arguments: CompressionCodec.allCases)
    func encodeDecodeEveryCodec(codec: CompressionCodec) throws {
        let batch = RecordBatch(baseOffset: 42, partitionLeaderEpoch: 3, compression: codec, producerId: 7,
                                producerEpoch: 1, baseSequence: 10, records: Self.records(count: 50, base: 42))
        let bytes = try batch.encoded()
        let view = try RecordBatchView(validating: bytes)
        #expect(view.baseOffset == 42 && view.lastOffset == 91 && view.recordCount == 50)
        #expect(view.attributes.compression == codec)
        #expect(view.producerId == 7 && view.producerEpoch == 1 && view.baseSequence == 10 && view.lastSequence == 59)
        #expect(view.maxTimestamp == 1_700_000_000_000 + 49 * 3)
        let decoded = try RecordBatch(view)
        #expect(decoded.records == batch.records)
        // Re-encoding a decoded batch reproduces it exactly.
        #expect(try decoded.encoded() == bytes)
    }

    @Test func controlAndTransactionalFlags() throws {
        let batch = RecordBatch(isTransactional: true, isControl: true, producerId: 9, producerEpoch: 0,
                                records: [Record(key: ByteBuffer(bytes: [0, 0, 0, 1]), value: ByteBuffer(bytes: [0, 0, 0, 0, 0, 0]))])
        let view = try RecordBatchView(validating: try batch.encoded())
        #expect(view.attributes.isTransactional && view.attributes.isControl)
        #expect(try RecordBatch(view) == RecordBatch(view))
        #expect(try RecordBatch(view).isControl)
    }

    @Test func crcMismatchIsDetected() throws {
        var bytes = try RecordBatch(records: Self.records(count: 3)).encoded()
        let last = bytes.writerIndex - 1
        bytes.setInteger(bytes.getInteger(at: last, as: UInt8.self)! ^ 0x01, at: last)
        #expect(throws: KafkaWireError.self) { try RecordBatchView(validating: bytes) }
        #expect(try RecordBatchView(unchecked: bytes).recordCount == 3)
    }

    @Test func headerChecks() throws {
        let good = try RecordBatch(records: Self.records(count: 2)).encoded()
        // Wrong batchLength.
        var badLength = good
        badLength.setInteger(Int32(1000), at: 8)
        #expect(throws: KafkaWireError.self) { try RecordBatchView(validating: badLength) }
        // Shorter than a header.
        #expect(throws: KafkaWireError.self) { try RecordBatchView(validating: good.getSlice(at: 0, length: 40)!) }
        // Magic 0 and 1 are refused with a message naming the format.
        for magic in [Int8(0), 1] {
            var old = good
            old.setInteger(magic, at: 16)
            do {
                _ = try RecordBatchView(validating: old)
                Issue.record("magic \(magic) accepted")
            } catch let error as KafkaWireError {
                #expect(error.code == .unsupportedMagic)
                #expect(error.message.contains("v\(magic)"))
            }
        }
    }

    @Test func inPlaceRewrites() throws {
        let bytes = try RecordBatch(records: Self.records(count: 5)).encoded()
        var view = try RecordBatchView(validating: bytes)
        let crc = view.crc
        // Outside the CRC: no checksum change.
        view.setBaseOffset(1000)
        view.setPartitionLeaderEpoch(7)
        #expect(view.crc == crc && view.computeCRC() == crc)
        #expect(view.baseOffset == 1000 && view.lastOffset == 1004 && view.partitionLeaderEpoch == 7)
        // Same timestamp and type: nothing changes.
        view.setMaxTimestamp(view.maxTimestamp, timestampType: .createTime)
        #expect(view.crc == crc)
        // LogAppendTime: covered fields change, the CRC follows.
        view.setMaxTimestamp(1_800_000_000_000, timestampType: .logAppendTime)
        #expect(view.crc != crc)
        let revalidated = try RecordBatchView(validating: view.buffer)
        #expect(revalidated.attributes.timestampType == .logAppendTime && revalidated.maxTimestamp == 1_800_000_000_000)
        #expect(try revalidated.records().map(\.offset) == Array(1000...1004))
    }

    @Test func iteratorSplitsBatchesAndStopsAtAPartialOne() throws {
        var all = ByteBuffer()
        try RecordBatch(baseOffset: 0, records: Self.records(count: 3)).write(into: &all)
        try RecordBatch(baseOffset: 3, compression: .lz4, records: Self.records(count: 4, base: 3)).write(into: &all)
        let full = all.readableBytes
        try RecordBatch(baseOffset: 7, records: Self.records(count: 2, base: 7)).write(into: &all)
        let partial = all.getSlice(at: 0, length: full + 30)!
        var iterator = RecordBatchIterator(partial)
        let views = Array(IteratorSequence(iterator))
        #expect(views.map(\.baseOffset) == [0, 3])
        while iterator.next() != nil {}
        #expect(iterator.remainder.readableBytes == 30 && iterator.error == nil)
        #expect(try RecordBatch.decodeAll(all).flatMap(\.records).map(\.offset) == Array(0...8))
    }

    @Test func recordsAreBoundsChecked() throws {
        // A record count larger than the records section.
        var bytes = try RecordBatch(records: Self.records(count: 2)).encoded()
        bytes.setInteger(Int32(1_000_000), at: RecordBatchLayout.recordCount)
        let view = try RecordBatchView(unchecked: bytes)
        #expect(throws: KafkaWireError.self) { try view.records() }
        // Garbage in the records section.
        var garbage = try RecordBatch(records: Self.records(count: 4)).encoded()
        for i in stride(from: 61, to: garbage.writerIndex, by: 3) { garbage.setInteger(UInt8(0xFF), at: i) }
        #expect(throws: KafkaWireError.self) { try RecordBatchView(unchecked: garbage).records() }
    }

    /// Lengths and deltas of one, two and three varint bytes (the decoder reads the first two widths
    /// inline), negative deltas, and a varint cut off or overlong at the end of the records.
    @Test func recordsDecodeAcrossVarintWidths() throws {
        let sizes = [0, 1, 63, 64, 65, 127, 128, 8191, 8192, 70_000]
        let records = sizes.enumerated().map { index, size in
            Record(offset: Int64(index), timestamp: index % 2 == 0 ? 1_700_000_000_000 - Int64(index) * 1_000_000 : 1_700_000_000_000,
                   key: index % 3 == 0 ? ByteBuffer(repeating: 1, count: size / 2) : nil, value: ByteBuffer(repeating: UInt8(index), count: size),
                   headers: index == 4 ? [RecordHeader(key: String(repeating: "h", count: 200), value: ByteBuffer(repeating: 9, count: 300))] : [])
        }
        let view = try RecordBatchView(validating: try RecordBatch(records: records).encoded())
        #expect(try view.records() == records)
        var fields: [(Int64, Int64, Int?, Int?, Int)] = []
        try view.forEachRecordFields { offset, timestamp, key, value, headers, attributes in
            #expect(attributes == 0)
            fields.append((offset, timestamp, key?.readableBytes, value?.readableBytes, headers.count))
        }
        #expect(fields.map(\.0) == records.map(\.offset) && fields.map(\.1) == records.map(\.timestamp))
        #expect(fields.map(\.2) == records.map { $0.key?.readableBytes } && fields.map(\.3) == sizes)
        #expect(fields.map(\.4) == records.map(\.headers.count))

        // One record whose length prefix is cut after a continuation byte, then one with a 6-byte length.
        for tail: [UInt8] in [[0x80], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]] {
            var bytes = try RecordBatch(records: [Record(value: ByteBuffer(string: "x"))]).encoded()
            bytes.moveWriterIndex(to: RecordBatchLayout.headerSize)
            bytes.writeBytes(tail)
            bytes.setInteger(Int32(bytes.readableBytes - RecordBatchLayout.logOverhead), at: RecordBatchLayout.batchLength)
            #expect(throws: KafkaWireError.self) { try RecordBatchView(unchecked: bytes).records() }
        }
    }
}

@Suite struct RecordBatchBuilderTests {
    static let input: [(Int64, [UInt8]?, [UInt8]?, [(String, [UInt8]?)])] = [
        (1_700_000_000_000, Array("k1".utf8), Array("first".utf8), []),
        (1_700_000_000_005, nil, Array(repeating: 7, count: 300), [("h", Array("v".utf8)), ("null", nil)]),
        (1_699_999_999_990, Array("k3".utf8), nil, []),
    ]

    /// The builder writes exactly what encoding the same records as a RecordBatch writes.
    @Test(arguments: CompressionCodec.allCases)
    func buildsWhatRecordBatchEncodes(_ codec: CompressionCodec) throws {
        var builder = RecordBatchBuilder(capacity: 64)
        for (timestamp, key, value, headers) in Self.input {
            builder.append(timestamp: timestamp, key: key, value: value, headers: headers)
        }
        let built = try builder.build(compression: codec, producerId: 42, producerEpoch: 3, baseSequence: 17)
        let records = Self.input.enumerated().map { index, item in
            Record(offset: Int64(index), timestamp: item.0, key: item.1.map { ByteBuffer(bytes: $0) }, value: item.2.map { ByteBuffer(bytes: $0) },
                   headers: item.3.map { RecordHeader(key: $0.0, value: $0.1.map { ByteBuffer(bytes: $0) }) })
        }
        let view = try RecordBatchView(validating: built)
        #expect(view.recordCount == 3 && view.lastOffsetDelta == 2)
        #expect(view.baseTimestamp == 1_700_000_000_000 && view.maxTimestamp == 1_700_000_000_005)
        #expect(view.producerId == 42 && view.producerEpoch == 3 && view.baseSequence == 17)
        #expect(try view.records() == records)
        if codec == .none {
            let reference = try RecordBatch(producerId: 42, producerEpoch: 3, baseSequence: 17, records: records).encoded()
            #expect(built == reference)
        }
    }

    @Test func restampRewritesProducerFieldsAndKeepsTheCRCValid() throws {
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 5, key: nil, value: [1, 2, 3])
        var batch = try builder.build(compression: .zstd, producerId: 1, producerEpoch: 0, baseSequence: 0)
        RecordBatchBuilder.restamp(&batch, producerId: 9, producerEpoch: 2, baseSequence: 100)
        let view = try RecordBatchView(validating: batch)
        #expect(view.producerId == 9 && view.producerEpoch == 2 && view.baseSequence == 100)
        #expect(try view.records().map(\.value) == [ByteBuffer(bytes: [1, 2, 3])])
    }
}
