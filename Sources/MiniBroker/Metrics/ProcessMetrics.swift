#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The process's own gauges under the names every Prometheus client library uses (`process_*`),
/// read from /proc at scrape time.
enum ProcessMetrics {
    static func samples() -> [GaugeSample] {
        var samples: [GaugeSample] = []
        func add(_ name: String, _ help: String, _ value: Double) { samples.append(GaugeSample(name: name, help: help, labels: [], value: value)) }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        // /proc/self/stat: the fields after the command name's closing parenthesis, from field 3 on.
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"), ticks > 0 {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ number: Int) -> Double? { number - 3 < fields.count ? Double(fields[number - 3]) : nil }
            if let user = field(14), let system = field(15) { add("process_cpu_seconds_total", "User and system CPU time spent in seconds.", (user + system) / ticks) }
            if let virtual = field(23) { add("process_virtual_memory_bytes", "Virtual memory size in bytes.", virtual) }
            if let rss = field(24) { add("process_resident_memory_bytes", "Resident memory size in bytes.", rss * pageSize) }
            if let start = field(22), let boot = bootTime() { add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", boot + start / ticks) }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            add("process_open_fds", "Number of open file descriptors.", Double(fds.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            add("process_max_fds", "Maximum number of open file descriptors.", limit.rlim_cur == UInt(bitPattern: -1) ? -1 : Double(limit.rlim_cur))
        }
        return samples
    }

    /// The boot time (`btime` in /proc/stat), seconds since the epoch.
    private static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
