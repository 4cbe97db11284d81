import ArgumentParser
import BrokerFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// `make fuzz`: the stateful request fuzzer for as long as asked. A failing sequence is kept as a
/// file in the corpus directory; `swift test` replays every file there as a regression test.
@main
struct MiniBrokerFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minibroker-fuzz",
        abstract: "Drives MiniBroker's request layer with random request sequences and restarts; keeps failing sequences.")

    @Option(help: "Seed of the first sequence (the next ones follow from it).") var seed: UInt64 = 1
    @Option(help: "Run for this many seconds.") var duration: Double = 60
    @Option(help: "Requests per sequence.") var requests: Int = 200
    @Option(help: "Where the running sequence is written before each step (the reproducer when the process dies).")
    var journal: String = ".build/minibroker-fuzz.seq"
    @Option(help: "Where failing sequences are kept.") var corpus: String = "Fuzz/Corpus"
    @Option(parsing: .upToNextOption, help: "Replay these sequence files instead of generating.") var replay: [String] = []
    @Flag(help: "Write the hardening review's known cases into the corpus directory and stop.") var writeKnownCases = false

    func run() throws {
        if writeKnownCases {
            for (name, steps) in KnownCases.all {
                let path = corpus + "/known-" + name + ".seq"
                guard let file = fopen(path, "w") else { throw ValidationError("cannot write \(path)") }
                fputs(KnownCases.file(steps, name: name), file)
                fclose(file)
            }
            print("wrote \(KnownCases.all.count) sequences to \(corpus)")
            return
        }
        var fuzzer = BrokerFuzzer(options: .init(seed: seed, requestsPerSequence: requests, journalPath: journal))
        do {
            if !replay.isEmpty {
                for path in replay {
                    guard let text = Self.read(path), let steps = FuzzStep.parse(text) else {
                        throw ValidationError("\(path) is not a fuzz sequence file")
                    }
                    try fuzzer.runSequence(steps, name: path)
                }
            } else {
                try fuzzer.run(forSeconds: duration) { report in
                    if report.sequences % 10 == 0 { print("\(report.sequences) sequences, \(report.steps) steps, \(report.restarts) restarts") }
                }
            }
        } catch let failure as FuzzFailure {
            let kept = corpus + "/failure-\(Int(time(nil)))-seed\(seed).seq"
            if rename(journal, kept) == 0 { print("failing sequence kept in \(kept)") }
            print("FAILED: \(failure)")
            throw ExitCode.failure
        }
        let r = fuzzer.report
        print("\(r.sequences) sequences, \(r.steps) steps: \(r.answered) answered, \(r.closed) closed, \(r.restarts) restarts, \(r.committedOffsetsChecked) committed offsets read back")
    }

    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
