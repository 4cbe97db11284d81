/// How quotas are measured: `quota.window.num` samples of `quota.window.size.seconds` each.
struct QuotaWindow: Sendable {
    var samples: Int = 11
    var sampleMs: Int64 = 1000
}

/// A rate over the last `samples` windows, measured as Kafka's sampled `Rate`: the total of the live
/// samples over the time they span, where the span is never taken shorter than `samples - 1` whole
/// windows (so a client's first second is not judged as if it were the whole window).
struct QuotaRate: Sendable {
    private var starts: [Int64]
    private var values: [Double]
    private var current = 0
    let window: QuotaWindow

    init(window: QuotaWindow, nowMs: Int64) {
        self.window = window
        let count = max(window.samples, 2)
        starts = Array(repeating: nowMs, count: count)
        values = Array(repeating: 0, count: count)
    }

    /// Adds `value` to the current sample, opening a new one when the current one is over.
    mutating func record(_ value: Double, nowMs: Int64) {
        if nowMs - starts[current] >= window.sampleMs {
            current = (current + 1) % starts.count
            starts[current] = nowMs
            values[current] = 0
        }
        values[current] += value
    }

    /// Value per second at `nowMs`, and the span (ms) it was measured over.
    func measure(nowMs: Int64) -> (perSecond: Double, spanMs: Int64) {
        let expired = nowMs - Int64(starts.count) * window.sampleMs
        var total = 0.0
        var oldest = nowMs
        for index in starts.indices where starts[index] > expired {
            total += values[index]
            oldest = min(oldest, starts[index])
        }
        let minimumSpan = Int64(starts.count - 1) * window.sampleMs
        let span = max(nowMs - oldest, minimumSpan)
        return (total * 1000 / Double(span), span)
    }

    /// How long the client must wait for the rate to come back to `quota`: the excess over the quota,
    /// as a fraction of it, times the span measured (Kafka's throttle time). 0 when within the quota; at most Int32.max, what a response can carry.
    func throttleMs(quota: Double, nowMs: Int64) -> Int64 {
        guard quota > 0 else { return 0 }
        let (rate, span) = measure(nowMs: nowMs)
        guard rate > quota else { return 0 }
        let ms = (rate - quota) / quota * Double(span)
        return ms >= Double(Int32.max) ? Int64(Int32.max) : Int64(ms.rounded())
    }
}
