import NIOConcurrencyHelpers
import Synchronization

/// Who a request counts against: the connection's principal and the request's client id.
struct QuotaClient: Sendable {
    var user: String
    var clientId: String
}

/// Enforces the client quotas: a rate per (quota, entity the quota was found on), shared by every
/// connection of that entity, and the throttle time a request earns by going over it. The entity is
/// found as Kafka's default quota callback finds it: the most specific of the eight levels that
/// holds a quota of that kind. A default entity's quota is applied per name (each client id under
/// `/clients/<default>` gets its own rate), a named one's is shared by all of its connections.
final class ClientQuotaManager: Sendable {
    private struct SensorKey: Hashable {
        var kind: QuotaKind
        var user: String
        var clientId: String
    }

    private struct Sensor {
        var rate: QuotaRate
        var lastMs: Int64
    }

    private struct State {
        var quotas: ClientQuotaStore.Quotas
        /// The store's generation of `quotas`: an older alteration finishing late does not replace a newer one.
        var generation = 0
        var sensors: [SensorKey: Sensor] = [:]
        var lastSweepMs: Int64 = 0
    }

    let store: ClientQuotaStore
    let window: QuotaWindow
    /// Whether any quota is configured: while none is, a request pays one atomic load.
    private let enforcing: Synchronization.Atomic<Bool>
    private let state: NIOLockedValueBox<State>
    /// Sensors of clients idle this long are dropped (Kafka expires quota sensors after an hour).
    static let sensorExpiryMs: Int64 = 3_600_000

    init(store: ClientQuotaStore, window: QuotaWindow) {
        self.store = store
        self.window = window
        let quotas = store.all
        enforcing = Synchronization.Atomic(!quotas.isEmpty)
        state = NIOLockedValueBox(State(quotas: quotas))
    }

    var isEnforcing: Bool { enforcing.load(ordering: .relaxed) }

    /// The most a request quota throttles one request: one sample (Kafka bounds request-time
    /// throttling so; byte rates are not bounded).
    var maxRequestThrottleMs: Int64 { window.sampleMs }

    /// The most bytes `client`'s byte-rate quota of `kind` allows in a window (Kafka caps a
    /// consumer's fetch.max.bytes by it, so that one response never needs more than a window).
    func maxBytesInWindow(_ kind: QuotaKind, for client: QuotaClient) -> Int? {
        state.withLockedValue { state in
            Self.find(kind, for: client, in: state.quotas).map { found in
                let bytes = found.quota * Double(window.samples - 1) * Double(window.sampleMs) / 1000
                return bytes >= Double(Int.max) ? Int.max : max(Int(bytes), 1)
            }
        }
    }

    /// Applies a change made through AlterClientQuotas. Rates already measured are kept: a client
    /// over its new quota is throttled from its next request.
    func alter(_ entity: ClientQuotaEntity, _ changes: [QuotaKind: Double?]) throws {
        let (updated, generation) = try store.alter(entity, changes)
        state.withLockedValue { state in
            guard generation > state.generation else { return }
            state.quotas = updated
            state.generation = generation
            enforcing.store(!updated.isEmpty, ordering: .relaxed)
        }
    }

    /// The quota of `kind` that applies to `client`, and the entity it was found on.
    private static func find(_ kind: QuotaKind, for client: QuotaClient,
                             in quotas: ClientQuotaStore.Quotas) -> (quota: Double, key: SensorKey)? {
        for entity in ClientQuotaEntity.candidates(user: client.user, clientId: client.clientId) {
            guard let quota = quotas[entity]?[kind] else { continue }
            return (quota, SensorKey(kind: kind, user: entity.user == nil ? "" : client.user,
                                     clientId: entity.clientId == nil ? "" : client.clientId))
        }
        return nil
    }

    /// Whether `client` has a quota of `kind` at all.
    func hasQuota(_ kind: QuotaKind, for client: QuotaClient) -> Bool {
        state.withLockedValue { Self.find(kind, for: client, in: $0.quotas) != nil }
    }

    /// Takes `value` back out of `client`'s rate of `kind` (what a request answered empty did not use).
    func unrecord(_ kind: QuotaKind, _ value: Double, client: QuotaClient, nowMs: Int64) {
        state.withLockedValue { state in
            guard let (_, key) = Self.find(kind, for: client, in: state.quotas) else { return }
            state.sensors[key]?.rate.record(-value, nowMs: nowMs)
        }
    }

    /// Records `value` against `client`'s quota of `kind` and returns the throttle time it earned
    /// (0 within the quota). With `undoIfThrottled`, a throttled value is taken back out.
    func record(_ kind: QuotaKind, _ value: Double, client: QuotaClient, nowMs: Int64, undoIfThrottled: Bool = false) -> Int64 {
        state.withLockedValue { state in
            guard let (quota, key) = Self.find(kind, for: client, in: state.quotas) else { return 0 }
            var sensor = state.sensors[key] ?? Sensor(rate: QuotaRate(window: window, nowMs: nowMs), lastMs: nowMs)
            sensor.rate.record(value, nowMs: nowMs)
            sensor.lastMs = nowMs
            var throttle = sensor.rate.throttleMs(quota: quota, nowMs: nowMs)
            if kind == .requestPercentage { throttle = min(throttle, maxRequestThrottleMs) }
            if throttle > 0 && undoIfThrottled { sensor.rate.record(-value, nowMs: nowMs) }
            state.sensors[key] = sensor
            if nowMs - state.lastSweepMs >= 60_000 {
                state.lastSweepMs = nowMs
                state.sensors = state.sensors.filter { nowMs - $0.value.lastMs < Self.sensorExpiryMs }
            }
            return throttle
        }
    }
}
