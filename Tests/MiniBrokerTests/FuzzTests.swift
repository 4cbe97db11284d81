import BrokerFuzzer
import Foundation
import Testing

/// The stateful request fuzzer, for a fixed budget with a fixed seed, and every sequence it ever
/// failed on (Fuzz/Corpus), replayed. `make fuzz` runs it for longer.
@Suite struct FuzzTests {
    @Test func fixedSeedSequencesFindNothing() throws {
        var fuzzer = BrokerFuzzer(options: .init(seed: 20_261_202, requestsPerSequence: 200))
        try fuzzer.run(sequences: 12)
        let report = fuzzer.report
        // The run did what it says: answers decoded, restarts survived, commits read back.
        #expect(report.sequences == 12)
        #expect(report.answered > 1000 && report.restarts > 10 && report.committedOffsetsChecked > 50,
                "answered \(report.answered), restarts \(report.restarts), offsets checked \(report.committedOffsetsChecked)")
    }

    @Test func everyKeptFailingSequenceNowPasses() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/Corpus").standardized
        let files = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path))?.filter { $0.hasSuffix(".seq") }.sorted() ?? []
        #expect(!files.isEmpty, "no sequences in \(corpus.path)")
        for file in files {
            let text = try String(contentsOf: corpus.appendingPathComponent(file), encoding: .utf8)
            let steps = try #require(FuzzStep.parse(text), "\(file) does not parse")
            var fuzzer = BrokerFuzzer(options: .init(seed: 0))
            try fuzzer.runSequence(steps, name: file)
        }
    }
}
