// Imports only what an application imports: every type these tests use must come with the products.
import Consumers
import Foundation
import Producers
import Testing

/// Keys and values from [UInt8], String, Data and ByteBuffer, read back as text or bytes; the types
/// the client API shows (CompressionCodec, ErrorCode, RecordHeader, ByteBuffer) come with its products.
@Suite(.serialized) struct ClientPayloadTests {
    @Test func payloadsOfEveryKindGoInAndComeOutAsSent() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1"])
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        configuration.compression = CompressionCodec.lz4
        let producer = try KafkaProducer(configuration: configuration)
        var buffer = ByteBuffer()
        buffer.writeString("from a buffer")
        let records = [
            ProducerRecord(topic: "payloads", key: "text-key", value: "héllo"),
            ProducerRecord(topic: "payloads", key: Data([1, 2, 3]), value: buffer),
            ProducerRecord(topic: "payloads", value: Array("bytes".utf8)),
            ProducerRecord(topic: "payloads", value: "no key"[...]),
            ProducerRecord(topic: "payloads", key: Array("tombstone".utf8), value: nil),
        ]
        for record in records { _ = try await producer.send(record) }
        await producer.close()

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap)
        consumerConfiguration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        await consumer.assign([TopicPartition("payloads", 0)])
        var got: [ConsumerRecord] = []
        for try await record in consumer.records {
            got.append(record)
            if got.count == records.count { break }
        }
        await consumer.close()
        #expect(got.map(\.keyString) == ["text-key", "\u{1}\u{2}\u{3}", nil, nil, "tombstone"])
        #expect(got.map(\.valueString) == ["héllo", "from a buffer", "bytes", "no key", nil])
        #expect(got[1].keyBytes == [1, 2, 3] && got[0].valueBytes == Array("héllo".utf8))
        let headers: [RecordHeader] = got[0].headers
        #expect(headers.isEmpty)
        let value: ByteBuffer? = got[2].value
        #expect(value?.readableBytes == 5)
        #expect(ErrorCode.unknownTopicOrPartition.rawValue == 3)
    }
}
