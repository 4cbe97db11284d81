import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// The broker's Prometheus meters (issue 24), driven through the request layer: what a request does
/// is what the meters say, and nothing is recorded with metrics off.
@Suite struct BrokerMetricsTests {
    static func text(_ fixture: BrokerFixture) -> String { fixture.broker.metrics.registry.emitToString() }

    /// The value of the sample line `series` (name with labels, as emitted).
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func requestsBytesRecordsAndErrorsAreCounted() throws {
        let fixture = try BrokerFixture(overrides: ["metrics.port": "0"])
        try HostileRequestTests.create(fixture, "counted")
        let batch = try HostileRequestTests.batch(records: 25, size: 40)
        #expect(try HostileRequestTests.produce(fixture, "counted", batch)?.errorCode == 0)
        #expect(try HostileRequestTests.produce(fixture, "missing", batch)?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        let text = Self.text(fixture)
        #expect(Self.sample(text, #"kafka_server_brokertopicmetrics_messagesin_total{topic="counted"}"#) == 25)
        #expect(Self.sample(text, #"kafka_server_brokertopicmetrics_bytesin_total{topic="counted"}"#) == Double(batch.readableBytes))
        #expect(Self.sample(text, #"kafka_network_requestmetrics_requests_total{request="Produce",version="9"}"#) == 2)
        #expect(Self.sample(text, #"kafka_network_requestmetrics_totaltime_seconds_count{request="Produce",version="9"}"#) == 2)
        #expect(Self.sample(text, #"kafka_network_requestmetrics_errors_total{request="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"}"#) == 1)
        #expect(text.contains("# HELP kafka_server_brokertopicmetrics_bytesin_total Record bytes appended (kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec)"))
        // A deleted topic's counters leave the answer.
        let deleted = try fixture.send(DeleteTopicsRequest(topicNames: ["counted"], timeoutMs: 1000), version: 5)
        #expect(deleted.responses.first?.errorCode == 0)
        #expect(!Self.text(fixture).contains(#"topic="counted""#))
    }

    @Test func nothingIsRecordedWithMetricsOff() throws {
        let fixture = try BrokerFixture()
        try HostileRequestTests.create(fixture, "quiet")
        #expect(try HostileRequestTests.produce(fixture, "quiet", try HostileRequestTests.batch(records: 5))?.errorCode == 0)
        #expect(!fixture.broker.metrics.enabled)
        #expect(!Self.text(fixture).contains("messagesin"))
    }

    @Test func scrapedGaugesAreSetAndDroppedWhenGone() throws {
        let fixture = try BrokerFixture(overrides: ["metrics.port": "0"])
        let gauges = ScrapeGauges(registry: fixture.broker.metrics.registry)
        gauges.update([GaugeSample(name: "kafka_log_log_size", help: "size", labels: [("topic", "a")], value: 10),
                       GaugeSample(name: "kafka_log_log_size", help: "size", labels: [("topic", "b")], value: 20)])
        var text = Self.text(fixture)
        #expect(Self.sample(text, #"kafka_log_log_size{topic="a"}"#) == 10 && Self.sample(text, #"kafka_log_log_size{topic="b"}"#) == 20)
        gauges.update([GaugeSample(name: "kafka_log_log_size", help: "size", labels: [("topic", "b")], value: 25)])
        text = Self.text(fixture)
        #expect(Self.sample(text, #"kafka_log_log_size{topic="a"}"#) == nil && Self.sample(text, #"kafka_log_log_size{topic="b"}"#) == 25)
        // A label value that reads like more labels is its own series.
        gauges.update([GaugeSample(name: "kafka_consumergroup_lag", help: "lag", labels: [("group", "a,topic=b")], value: 1),
                       GaugeSample(name: "kafka_consumergroup_lag", help: "lag", labels: [("group", "a"), ("topic", "b")], value: 2)])
        text = Self.text(fixture)
        #expect(Self.sample(text, #"kafka_consumergroup_lag{group="a,topic=b"}"#) == 1 && Self.sample(text, #"kafka_consumergroup_lag{group="a",topic="b"}"#) == 2)
        #expect(ProcessMetrics.samples().contains { $0.name == "process_resident_memory_bytes" && $0.value > 0 })
    }
}
