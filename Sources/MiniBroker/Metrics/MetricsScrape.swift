import KafkaWire
import NIOCore

/// What one scrape answers: the counters as they stand, and the gauges read now — each partition's
/// log size and offsets, each group's committed offsets and lag, the process.
struct MetricsScrape: Sendable {
    let broker: Broker
    let coordinator: GroupCoordinator
    let gauges: ScrapeGauges

    init(broker: Broker, coordinator: GroupCoordinator) {
        self.broker = broker
        self.coordinator = coordinator
        gauges = ScrapeGauges(registry: broker.metrics.registry)
    }

    /// The Prometheus text (format 0.0.4), as a future of `loop`.
    func render(on loop: EventLoop) -> EventLoopFuture<[UInt8]> {
        coordinator.committedOffsetsSnapshot().hop(to: loop).map { committed in
            let logs = broker.logs.all
            var samples: [GaugeSample] = []
            for (tp, log) in logs.sorted(by: { $0.key < $1.key }) {
                let labels = [("topic", tp.topic), ("partition", String(tp.partition))]
                samples.append(GaugeSample(name: "kafka_log_log_size", help: "Bytes of the partition's log (kafka.log:type=Log,name=Size)",
                                           labels: labels, value: Double(log.sizeInBytes)))
                samples.append(GaugeSample(name: "kafka_log_log_logendoffset", help: "The partition's log end offset (kafka.log:type=Log,name=LogEndOffset)",
                                           labels: labels, value: Double(log.logEndOffset)))
                samples.append(GaugeSample(name: "kafka_log_log_logstartoffset", help: "The partition's log start offset (kafka.log:type=Log,name=LogStartOffset)",
                                           labels: labels, value: Double(log.logStartOffset)))
            }
            for (group, offsets) in committed.sorted(by: { $0.key < $1.key }) {
                for (tp, offset) in offsets.sorted(by: { $0.key < $1.key }) {
                    let labels = [("group", group), ("topic", tp.topic), ("partition", String(tp.partition))]
                    samples.append(GaugeSample(name: "kafka_consumergroup_committed_offset",
                                               help: "A group's committed offset (kafka-consumer-groups.sh CURRENT-OFFSET)", labels: labels, value: Double(offset)))
                    // A partition gone since the commit has no lag to report.
                    if let end = logs[tp]?.logEndOffset {
                        samples.append(GaugeSample(name: "kafka_consumergroup_lag", help: "Log end offset minus the committed offset (kafka-consumer-groups.sh LAG)",
                                                   labels: labels, value: Double(max(end - offset, 0))))
                    }
                }
            }
            gauges.update(samples + ProcessMetrics.samples())
            return broker.metrics.registry.emitToBuffer()
        }
    }
}
