import CoreMetrics
import KafkaWire
import NIOConcurrencyHelpers

/// The clients' metrics, through swift-metrics: the factory a configuration names, else the one
/// bootstrapped in `MetricsSystem` (bootstrap before making clients). Every series carries the
/// client id; meters are made once per label set and kept, so recording is a dictionary lookup
/// under a lock and the backend's own update.
///
///     kafka_client_request_duration      timer   api         every request to a broker, to its answer
///     kafka_client_request_errors_total  counter api         requests that failed (connection, timeout, parse)
///     kafka_producer_records_sent_total  counter topic       records the broker acknowledged
///     kafka_producer_record_errors_total counter topic       records that failed for good
///     kafka_producer_retries_total       counter topic       batches sent again
///     kafka_consumer_records_received_total counter topic    records fetched and decoded
///     kafka_consumer_rebalances_total    counter group       joins completed (each a rebalance)
public final class ClientMeters: Sendable {
    private let factory: any MetricsFactory
    private let clientId: String
    private let counters = NIOLockedValueBox<[String: Counter]>([:])
    private let timers = NIOLockedValueBox<[ApiKey: Timer]>([:])

    public init(factory: any MetricsFactory, clientId: String) {
        self.factory = factory
        self.clientId = clientId
    }

    /// Adds `amount` to the counter `label` with one more dimension (topic, group, api).
    public func count(_ label: String, _ dimension: (String, String), by amount: Int = 1) {
        guard amount > 0 else { return }
        let key = label + "\u{0}" + dimension.0 + "\u{0}" + dimension.1
        let counter = counters.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            let made = Counter(label: label, dimensions: [("client_id", clientId), dimension], factory: factory)
            counters[key] = made
            return made
        }
        counter.increment(by: Int64(amount))
    }

    /// A request to a broker answered (or failed) after `nanoseconds`.
    func requestCompleted(_ api: ApiKey, nanoseconds: Int64, failed: Bool) {
        let timer = timers.withLockedValue { timers in
            if let existing = timers[api] { return existing }
            let made = Timer(label: "kafka_client_request_duration", dimensions: [("client_id", clientId), ("api", api.name)], factory: factory)
            timers[api] = made
            return made
        }
        timer.recordNanoseconds(nanoseconds)
        if failed { count("kafka_client_request_errors_total", ("api", api.name)) }
    }
}
