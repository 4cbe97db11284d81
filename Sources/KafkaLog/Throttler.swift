#if canImport(Glibc)
import Glibc
#endif

/// Holds a worker to a byte rate (`log.cleaner.io.max.bytes.per.second`): after each piece of work
/// it sleeps for as long as the bytes so far are ahead of the rate. Measured over windows of a
/// second, so a pause does not earn a burst later.
struct Throttler {
    let bytesPerSecond: Double
    private var windowStart = Throttler.nowSeconds()
    private var bytesInWindow = 0.0

    init(bytesPerSecond: Double) {
        self.bytesPerSecond = bytesPerSecond
    }

    mutating func record(_ bytes: Int) {
        guard bytesPerSecond.isFinite, bytesPerSecond > 0, bytesPerSecond < 1e300 else { return }
        bytesInWindow += Double(bytes)
        let elapsed = Self.nowSeconds() - windowStart
        let due = bytesInWindow / bytesPerSecond
        if due > elapsed {
            usleep(UInt32(min((due - elapsed) * 1_000_000, 1_000_000)))
        }
        if elapsed >= 1 {
            windowStart = Self.nowSeconds()
            bytesInWindow = 0
        }
    }

    static func nowSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
