import KafkaWire
import NIOConcurrencyHelpers
import Prometheus

/// What the broker counts while it serves, in a Prometheus registry (swift-prometheus, whose meters
/// are swift-metrics handlers). Names follow Prometheus' conventions in the form the JMX exporter
/// gives Kafka's own metrics, and each HELP names the Kafka metric it mirrors, so that dashboards
/// built for Kafka read them. Meters are made once per label set and kept: a request pays a
/// dictionary lookup under a lock and an atomic add, nothing when metrics are off.
public final class BrokerMetrics: Sendable {
    /// Off (no `metrics.port`): every record call returns at once.
    public let enabled: Bool
    public let registry = PrometheusCollectorRegistry()

    private struct RequestMeters {
        let requests: Counter
        let duration: DurationHistogram
    }

    private struct TopicMeters {
        let bytesIn: Counter
        let messagesIn: Counter
        let bytesOut: Counter
    }

    private let requestMeters = NIOLockedValueBox<[Int32: RequestMeters]>([:])
    private let topicMeters = NIOLockedValueBox<[String: TopicMeters]>([:])
    private let errorCounters = NIOLockedValueBox<[Int32: Counter]>([:])
    private let throttleCounters = NIOLockedValueBox<[String: Counter]>([:])
    private let denialCounters = NIOLockedValueBox<[AclResourceType: Counter]>([:])
    private let authenticationCounters = NIOLockedValueBox<[Bool: Counter]>([:])
    let connectionCount: Gauge
    let connectionsCreated: Counter
    let connectionsClosed: Counter

    /// Request latency buckets: Kafka requests take from tens of microseconds to a long poll.
    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(5), .seconds(30),
    ]

    public init(enabled: Bool) {
        self.enabled = enabled
        connectionCount = registry.gauge(
            name: "kafka_server_socket_server_metrics_connection_count", labels: [],
            help: "Open client connections (kafka.server:type=socket-server-metrics,name=connection-count)")
        connectionsCreated = registry.counter(
            name: "kafka_server_socket_server_metrics_connection_creation_total", labels: [],
            help: "Client connections accepted (kafka.server:type=socket-server-metrics,name=connection-creation-total)")
        connectionsClosed = registry.counter(
            name: "kafka_server_socket_server_metrics_connection_close_total", labels: [],
            help: "Client connections closed (kafka.server:type=socket-server-metrics,name=connection-close-total)")
    }

    /// One request answered: counted and timed by API and version (TotalTimeMs includes a long poll's wait).
    func requestCompleted(_ apiKey: ApiKey, version: Int16, nanoseconds: Int64) {
        guard enabled else { return }
        let key = Int32(apiKey.rawValue) << 16 | Int32(UInt16(bitPattern: version))
        let meters = requestMeters.withLockedValue { meters in
            if let existing = meters[key] { return existing }
            let labels = [("request", apiKey.name), ("version", String(version))]
            let made = RequestMeters(
                requests: registry.counter(name: "kafka_network_requestmetrics_requests_total", labels: labels,
                                               help: "Requests answered (kafka.network:type=RequestMetrics,name=RequestsPerSec)"),
                duration: registry.durationHistogram(name: "kafka_network_requestmetrics_totaltime_seconds", labels: labels,
                                                         buckets: Self.durationBuckets,
                                                         help: "Time from a request's arrival to its answer (kafka.network:type=RequestMetrics,name=TotalTimeMs)"))
            meters[key] = made
            return made
        }
        meters.requests.increment()
        meters.duration.record(.nanoseconds(nanoseconds))
    }

    /// An error code answered for a request (per partition where the answer is per partition).
    func requestError(_ apiKey: ApiKey, _ code: ErrorCode, count: Int = 1) {
        guard enabled, code != .noError else { return }
        let key = Int32(apiKey.rawValue) << 16 | Int32(UInt16(bitPattern: code.rawValue))
        let counter = errorCounters.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            let made = registry.counter(name: "kafka_network_requestmetrics_errors_total",
                                            labels: [("request", apiKey.name), ("error", code.name)],
                                            help: "Error codes answered (kafka.network:type=RequestMetrics,name=ErrorsPerSec)")
            counters[key] = made
            return made
        }
        counter.increment(by: Int64(count))
    }

    private func meters(of topic: String) -> TopicMeters {
        topicMeters.withLockedValue { meters in
            if let existing = meters[topic] { return existing }
            let labels = [("topic", topic)]
            let made = TopicMeters(
                bytesIn: registry.counter(name: "kafka_server_brokertopicmetrics_bytesin_total", labels: labels,
                                              help: "Record bytes appended (kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec)"),
                messagesIn: registry.counter(name: "kafka_server_brokertopicmetrics_messagesin_total", labels: labels,
                                                 help: "Records appended (kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec)"),
                bytesOut: registry.counter(name: "kafka_server_brokertopicmetrics_bytesout_total", labels: labels,
                                               help: "Record bytes sent to fetchers (kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec)"))
            meters[topic] = made
            return made
        }
    }

    /// A batch appended to `topic`.
    func appended(topic: String, bytes: Int, records: Int64) {
        guard enabled else { return }
        let meters = meters(of: topic)
        meters.bytesIn.increment(by: Int64(bytes))
        meters.messagesIn.increment(by: records)
    }

    /// Record bytes of `topic` in a fetch answer.
    func fetched(topic: String, bytes: Int) {
        guard enabled, bytes > 0 else { return }
        meters(of: topic).bytesOut.increment(by: Int64(bytes))
    }

    /// A deleted topic's meters go with it.
    func topicDeleted(_ topic: String) {
        guard enabled, let meters = topicMeters.withLockedValue({ $0.removeValue(forKey: topic) }) else { return }
        for counter in [meters.bytesIn, meters.messagesIn, meters.bytesOut] { registry.unregisterCounter(counter) }
    }

    /// Throttle time a client earned over its `quota` (producer_byte_rate, consumer_byte_rate, request_percentage).
    func throttled(_ quota: String, ms: Int64) {
        guard enabled, ms > 0 else { return }
        let counter = throttleCounters.withLockedValue { counters in
            if let existing = counters[quota] { return existing }
            let made = registry.counter(name: "kafka_server_quota_throttle_time_ms_total", labels: [("quota", quota)],
                                            help: "Throttle time given to clients over their quotas (kafka.server:type=Produce|Fetch|Request,name=throttle-time)")
            counters[quota] = made
            return made
        }
        counter.increment(by: ms)
    }

    /// A request (or part of one) the authorizer refused, by the resource type it was refused on.
    func authorizationDenied(_ type: AclResourceType) {
        guard enabled else { return }
        denialCounters.withLockedValue { counters in
            if let existing = counters[type] { return existing }
            let made = registry.counter(name: "kafka_server_authorizer_denied_total", labels: [("resource_type", "\(type)")],
                                        help: "Authorization decisions that denied, by resource type (Kafka's authorizer deny count)")
            counters[type] = made
            return made
        }.increment()
    }

    /// One finished SASL authentication, successful or not.
    func authenticated(_ success: Bool) {
        guard enabled else { return }
        authenticationCounters.withLockedValue { counters in
            if let existing = counters[success] { return existing }
            let name = success ? "kafka_server_socket_server_metrics_successful_authentication_total"
                               : "kafka_server_socket_server_metrics_failed_authentication_total"
            let made = registry.counter(name: name, labels: [],
                                        help: "SASL authentications that \(success ? "succeeded" : "failed") (socket-server-metrics)")
            counters[success] = made
            return made
        }.increment()
    }

    func connectionOpened() {
        guard enabled else { return }
        connectionsCreated.increment()
        connectionCount.increment()
    }

    func connectionClosed() {
        guard enabled else { return }
        connectionsClosed.increment()
        connectionCount.decrement()
    }
}
