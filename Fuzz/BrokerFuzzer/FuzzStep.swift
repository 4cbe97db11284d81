import NIOCore

/// One thing a fuzzed sequence does. A sequence is written as text, one step a line, before each
/// step runs: when the process dies on a step, the file is the reproducer.
///
///     config <key>=<value>      a broker setting (before the first request)
///     request <hex frame>       a request frame (header and body, without the size prefix)
///     advance <ms>              let the broker's timers run that much virtual time
///     restart clean|crash       stop the broker (cleanly, or as a crash leaves it) and start it again
public enum FuzzStep: Equatable, Sendable {
    case config(key: String, value: String)
    case request(ByteBuffer)
    case advance(milliseconds: Int64)
    case restart(clean: Bool)

    public var line: String {
        switch self {
        case .config(let key, let value): return "config \(key)=\(value)"
        case .request(let frame): return "request " + Self.hex(frame)
        case .advance(let ms): return "advance \(ms)"
        case .restart(let clean): return "restart " + (clean ? "clean" : "crash")
        }
    }

    public init?(line: Substring) {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        guard let verb = parts.first else { return nil }
        let argument = parts.count > 1 ? parts[1] : ""
        switch verb {
        case "config":
            guard let eq = argument.firstIndex(of: "=") else { return nil }
            self = .config(key: String(argument[..<eq]), value: String(argument[argument.index(after: eq)...]))
        case "request":
            guard argument.utf8.count % 2 == 0 else { return nil }
            var frame = ByteBuffer()
            var high: UInt8?
            for c in argument.utf8 {
                guard let nibble = Self.nibble(c) else { return nil }
                if let h = high { frame.writeInteger(h << 4 | nibble); high = nil } else { high = nibble }
            }
            self = .request(frame)
        case "advance":
            guard let ms = Int64(argument), ms >= 0 else { return nil }
            self = .advance(milliseconds: ms)
        case "restart":
            guard argument == "clean" || argument == "crash" else { return nil }
            self = .restart(clean: argument == "clean")
        default:
            return nil
        }
    }

    /// A whole sequence file: `#` lines are comments.
    public static func parse(_ text: String) -> [FuzzStep]? {
        var steps: [FuzzStep] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            guard let step = FuzzStep(line: line) else { return nil }
            steps.append(step)
        }
        return steps
    }

    /// Two lowercase hex digits a byte, in one pass (frames run to megabytes).
    private static func hex(_ frame: ByteBuffer) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(frame.readableBytes * 2)
        for byte in frame.readableBytesView {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        default: return nil
        }
    }
}
