import Foundation

/// The share of the machine's CPU time the hypervisor gave to other guests ("steal" in /proc/stat).
/// On a shared VM a run's latency follows it more than the code under test, so each run reports it.
struct CPUSteal {
    private let start: (steal: UInt64, total: UInt64)?

    init() { start = Self.read() }

    /// Percent of all CPU time since `init` that was stolen; nil where /proc/stat is not there.
    var percentSinceStart: Double? {
        guard let start, let now = Self.read(), now.total > start.total else { return nil }
        return Double(now.steal - start.steal) * 100 / Double(now.total - start.total)
    }

    /// The "cpu" line: user nice system idle iowait irq softirq steal (guest time is inside user).
    private static func read() -> (steal: UInt64, total: UInt64)? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard fields.count == 8 else { return nil }
        return (fields[7], fields.reduce(0, +))
    }
}
