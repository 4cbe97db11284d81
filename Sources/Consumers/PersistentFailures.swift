import KafkaClient

/// Failures the consumer retries on its own (no broker reachable, a group it cannot join, a
/// subscription of which no topic exists), each with the time it started: `records` and `batches`
/// throw one once it has lasted default.api.timeout.ms, instead of waiting in silence.
struct PersistentFailures {
    enum Source: Hashable {
        /// Fetching: no connection to the partitions' leaders or the bootstrap servers.
        case fetch
        /// Finding, joining and syncing the group.
        case group
        /// The subscribed topics, from metadata.
        case topics
    }

    private var failing: [Source: (since: ContinuousClock.Instant, error: KafkaClientError)] = [:]

    /// Notes a failure; true when it is new (the source was not failing).
    @discardableResult
    mutating func note(_ source: Source, _ error: KafkaClientError) -> Bool {
        let new = failing[source] == nil
        failing[source] = (failing[source]?.since ?? .now, error)
        return new
    }

    mutating func cleared(_ source: Source) { failing[source] = nil }

    /// The oldest failure that has lasted `limit`, taken out (the next wait starts afresh).
    mutating func takeLasting(_ limit: Duration) -> KafkaClientError? {
        guard let (source, entry) = failing.min(by: { $0.value.since < $1.value.since }), ContinuousClock.now - entry.since >= limit else {
            return nil
        }
        failing[source] = nil
        return KafkaClientError(entry.error.kind, "\(entry.error.message) (for \(Self.seconds(ContinuousClock.now - entry.since)), past default.api.timeout.ms)")
    }

    private static func seconds(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return ms >= 10_000 ? "\(ms / 1000) s" : "\(ms) ms"
    }
}
