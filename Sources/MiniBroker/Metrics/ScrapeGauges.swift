import NIOConcurrencyHelpers
import Prometheus

/// One gauge value read at scrape time.
struct GaugeSample {
    var name: String
    var help: String
    var labels: [(String, String)]
    var value: Double
}

/// Gauges whose values are read when Prometheus scrapes (log sizes and offsets, group lag, the
/// process), not counted as things happen. A label set that is gone (a deleted topic, an expired
/// group) is unregistered, so the answer never reports what no longer exists.
final class ScrapeGauges: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let gauges = NIOLockedValueBox<[String: Gauge]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func update(_ samples: [GaugeSample]) {
        gauges.withLockedValue { gauges in
            var seen = Set<String>()
            for sample in samples {
                // NUL separates the parts: no label value (a group id may hold ",topic=") can forge another's key.
                let key = ([sample.name] + sample.labels.flatMap { [$0.0, $0.1] }).joined(separator: "\u{0}")
                seen.insert(key)
                let gauge = gauges[key] ?? registry.gauge(name: sample.name, labels: sample.labels, help: sample.help)
                gauges[key] = gauge
                gauge.set(sample.value)
            }
            for (key, gauge) in gauges where !seen.contains(key) {
                registry.unregisterGauge(gauge)
                gauges[key] = nil
            }
        }
    }
}
