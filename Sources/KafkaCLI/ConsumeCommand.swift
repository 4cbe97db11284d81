import ArgumentParser
import Consumers
import Foundation
import KafkaWire
import NIOConcurrencyHelpers
import NIOCore

/// `kfk consume T`: prints a topic's records (kafka-console-consumer.sh).
struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the records of a topic, one per line (--json: one JSON object per line).",
        discussion: """
            Without --group every partition is read, from the end (or the start with --from-beginning); with --group the \
            consumer joins the group and commits what it printed. Ends after --max-messages, after --timeout-ms without a \
            record, or on Ctrl-C.
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The topic.") var topic: String
    @Option(help: "Join this consumer group (offsets are committed).") var group: String?
    @Flag(name: .customLong("from-beginning"), help: "Start at the earliest offset where nothing is committed.") var fromBeginning = false
    @Option(help: "Read only this partition.") var partition: Int32?
    @Option(help: "With --partition: start at this offset.") var offset: Int64?
    @Option(name: .customLong("max-messages"), help: "Stop after this many records.") var maxMessages: Int?
    @Option(name: .customLong("timeout-ms"), help: "Stop when no record came for this long.") var timeoutMs: Int?
    @Flag(name: .customLong("print-key"), help: "Print the key before the value.") var printKey = false
    @Option(name: .customLong("key-separator"), help: "Between key and value with --print-key.") var keySeparator = "\t"
    @Option(name: .customLong("isolation-level"), help: "read_committed (records of committed transactions only) or read_uncommitted.")
    var isolationLevel = "read_committed"

    func validate() throws {
        guard ["read_committed", "read_uncommitted"].contains(isolationLevel) else {
            throw ValidationError("--isolation-level must be read_committed or read_uncommitted")
        }
        if offset != nil && partition == nil { throw ValidationError("--offset needs --partition") }
        if group != nil && partition != nil { throw ValidationError("--group and --partition exclude each other") }
        if let maxMessages, maxMessages < 1 { throw ValidationError("--max-messages must be at least 1") }
        if let timeoutMs, timeoutMs < 1 { throw ValidationError("--timeout-ms must be at least 1") }
    }

    struct Line: Encodable {
        let topic: String, partition: Int32, offset: Int64, timestamp: Int64
        let key: String?, value: String?
    }

    func run() async throws {
        let bootstrap = try connection.bootstrapServers()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, groupId: group)
        configuration.security = try connection.security()
        configuration.clientId = "kfk-consumer"
        configuration.logger = .stderrWarnings("kfk")
        configuration.autoOffsetReset = fromBeginning ? .earliest : .latest
        // Exactly what was printed is committed (auto-commit would count what was fetched ahead too).
        configuration.enableAutoCommit = false
        configuration.isolationLevel = isolationLevel == "read_uncommitted" ? .readUncommitted : .readCommitted
        let partitions: [TopicPartition]
        if group == nil {
            let described = try await connection.withAdmin { try await $0.describeTopics([topic]) }
            let all = described.first?.partitions.map { TopicPartition(topic, $0.partition) } ?? []
            partitions = partition.map { p in all.filter { $0.partition == p } } ?? all
            guard !partitions.isEmpty else { throw CLIError.reported(CLIError("topic \(topic) has no partition \(partition.map(String.init) ?? "")")) }
        } else {
            partitions = []
        }
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: configuration)
            if group != nil {
                try await consumer.subscribe(topics: [topic])
            } else {
                await consumer.assign(partitions)
                if let offset, let first = partitions.first { try await consumer.seek(first, to: offset) }
            }
        } catch {
            throw CLIError.reported(error)
        }
        // What was printed, per partition (the next offset), and whether the consumer was finished: the
        // loop and the --timeout-ms watchdog both end the run, whichever comes first.
        let progress = NIOLockedValueBox((printed: [TopicPartition: Int64](), finished: false, lastRecord: ContinuousClock.now))
        let groupId = group
        /// Commits exactly what was printed (with --group), then closes, which ends `records`; once.
        @Sendable func finish() async throws {
            let (printed, first) = progress.withLockedValue { state in
                defer { state.finished = true }
                return (state.printed, !state.finished)
            }
            guard first else { return }
            var failure: CLIError?
            if let groupId, !printed.isEmpty {
                do { try await consumer.commit(offsets: printed) } catch {
                    failure = CLIError("committing the offsets of group \(groupId) failed: \(error)")
                }
            }
            await consumer.close()
            if let failure { throw failure }
        }
        // Ctrl-C or SIGTERM ends the run as the other ends do: what was printed is committed first.
        let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { Task { try? await finish() } }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        let watchdog = timeoutMs.map { ms in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(min(ms, 100)))
                    if ContinuousClock.now - progress.withLockedValue({ $0.lastRecord }) >= .milliseconds(ms) { break }
                }
                if !Task.isCancelled { try await finish() }
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var count = 0
        do {
            for try await record in consumer.records {
                let key = record.key.map { String(buffer: $0) }, value = record.value.map { String(buffer: $0) }
                let stillRunning = progress.withLockedValue { state -> Bool in
                    guard !state.finished else { return false }
                    state.lastRecord = .now
                    state.printed[record.topicPartition] = record.offset + 1
                    return true
                }
                guard stillRunning else { break }
                if connection.json {
                    let line = Line(topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp,
                                    key: key, value: value)
                    print(String(decoding: try encoder.encode(line), as: UTF8.self))
                } else {
                    print((printKey ? (key ?? "null") + keySeparator : "") + (value ?? "null"))
                }
                count += 1
                if let maxMessages, count >= maxMessages { break }
            }
            watchdog?.cancel()
            try await finish()
            try await watchdog?.value
        } catch {
            watchdog?.cancel()
            await consumer.close()
            throw CLIError.reported(error)
        }
        await consumer.close()
        FileHandle.standardError.write(Data("kfk: processed \(count) records\n".utf8))
    }
}
