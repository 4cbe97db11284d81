import Consumers
import Foundation
import MetricsTestKit
import Producers
import Testing

/// The clients' swift-metrics (issue 27): what a producer and a consumer did, counted under the
/// factory their configurations name.
@Suite(.serialized) struct ClientMetricsTests {
    @Test(.timeLimit(.minutes(1))) func recordsRequestsAndRebalancesAreCounted() async throws {
        let broker = try RunningBroker(overrides: ["num.partitions=1", "group.initial.rebalance.delay.ms=0"])
        let metrics = TestMetrics()
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrap)
        producerConfiguration.clientId = "metered-producer"
        producerConfiguration.metricsFactory = metrics
        let producer = try KafkaProducer(configuration: producerConfiguration)
        _ = try await producer.produce(contentsOf: (0..<50).map { ProducerRecord(topic: "metered", key: "k\($0)", value: "v\($0)") })
        await producer.close()
        #expect(metrics.counterTotal(label: "kafka_producer_records_sent_total",
                                     dimensions: [("client_id", "metered-producer"), ("topic", "metered")]) == 50)
        let produceTimer = try metrics.expectTimer("kafka_client_request_duration", [("client_id", "metered-producer"), ("api", "Produce")])
        #expect(!produceTimer.values.isEmpty && produceTimer.values.allSatisfy { $0 > 0 })

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: "metered-group")
        consumerConfiguration.clientId = "metered-consumer"
        consumerConfiguration.autoOffsetReset = .earliest
        consumerConfiguration.metricsFactory = metrics
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        try await consumer.subscribe(topics: ["metered"])
        var read = 0
        for try await _ in consumer.records {
            read += 1
            if read == 50 { break }
        }
        await consumer.close()
        #expect(metrics.counterTotal(label: "kafka_consumer_records_received_total",
                                     dimensions: [("client_id", "metered-consumer"), ("topic", "metered")]) == 50)
        #expect(metrics.counterTotal(label: "kafka_consumer_rebalances_total",
                                     dimensions: [("client_id", "metered-consumer"), ("group", "metered-group")]) == 1)
        for api in ["Fetch", "JoinGroup", "SyncGroup", "OffsetCommit"] {
            #expect(!(try metrics.expectTimer("kafka_client_request_duration", [("client_id", "metered-consumer"), ("api", api)]).values.isEmpty))
        }
        // A record the broker refuses for good is counted as an error, not as sent.
        var bigConfiguration = producerConfiguration
        bigConfiguration.maxRequestSize = 8 << 20
        let big = try KafkaProducer(configuration: bigConfiguration)
        await #expect(throws: KafkaClientError.self) { _ = try await big.send(ProducerRecord(topic: "metered", value: [UInt8](repeating: 1, count: 2 << 20))) }
        await big.close()
        #expect(metrics.counterTotal(label: "kafka_producer_record_errors_total",
                                     dimensions: [("client_id", "metered-producer"), ("topic", "metered")]) == 1)
    }
}
