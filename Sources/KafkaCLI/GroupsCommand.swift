import ArgumentParser
import Foundation
import KafkaClient
import KafkaWire

/// `kfk groups ...`: kafka-consumer-groups.sh's jobs.
struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups", abstract: "List, describe, reset the offsets of and delete consumer groups.",
        subcommands: [List.self, Describe.self, ResetOffsets.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every group with its state.")
        @OptionGroup var connection: ConnectionOptions

        struct Row: Encodable { let group: String; let state: String; let protocolType: String; let type: String }

        func run() async throws {
            let rows = try await connection.withAdmin { try await $0.listGroups() }.map {
                Row(group: $0.groupId, state: $0.state, protocolType: $0.protocolType, type: $0.type)
            }
            try Output.emit(rows, asJSON: connection.json, header: ["GROUP", "STATE", "PROTOCOL_TYPE", "TYPE"],
                            rows: rows.map { [$0.group, $0.state, $0.protocolType, $0.type] })
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A group's members and assignments, committed offsets and lag.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The group.") var group: String

        struct Member: Encodable { let memberId: String; let groupInstanceId: String?; let clientId: String; let host: String; let assignment: [String] }
        struct Offset: Encodable { let topic: String; let partition: Int32; let currentOffset: Int64?; let logEndOffset: Int64; let lag: Int64?; let memberId: String? }
        struct Result: Encodable { let group: String; let state: String; let assignor: String; let members: [Member]; let offsets: [Offset] }

        func run() async throws {
            let result = try await connection.withAdmin { admin -> Result in
                let description = try await admin.describeGroup(group)
                let committed = try await admin.committedOffsets(group)
                let owners = Dictionary(description.members.flatMap { m in m.assignment.map { ($0, m.memberId) } }, uniquingKeysWith: { a, _ in a })
                let partitions = Set(committed.keys).union(owners.keys).sorted()
                let ends = partitions.isEmpty ? [:] : try await admin.listOffsets(partitions, .latest)
                return Result(group: description.groupId, state: description.state, assignor: description.assignor,
                              members: description.members.map {
                                  Member(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, clientId: $0.clientId, host: $0.clientHost,
                                         assignment: $0.assignment.map(\.description))
                              },
                              offsets: partitions.map { tp in
                                  let end = ends[tp] ?? -1
                                  let current = committed[tp]
                                  return Offset(topic: tp.topic, partition: tp.partition, currentOffset: current, logEndOffset: end,
                                                lag: current.map { max(end - $0, 0) }, memberId: owners[tp])
                              })
            }
            if connection.json { return try Output.json(result) }
            print("Group: \(result.group)  State: \(result.state)  Assignor: \(result.assignor.isEmpty ? "-" : result.assignor)")
            if !result.members.isEmpty {
                Output.table(["MEMBER", "CLIENT_ID", "HOST", "ASSIGNMENT"], result.members.map {
                    [$0.memberId, $0.clientId, $0.host, $0.assignment.joined(separator: ",")]
                })
                print("")
            }
            Output.table(["TOPIC", "PARTITION", "CURRENT_OFFSET", "LOG_END_OFFSET", "LAG", "MEMBER"], result.offsets.map {
                [$0.topic, String($0.partition), $0.currentOffset.map(String.init) ?? "-", String($0.logEndOffset), $0.lag.map(String.init) ?? "-", $0.memberId ?? "-"]
            })
        }
    }

    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-offsets", abstract: "Move a group's committed offsets (the group must have no members). A dry run unless --execute.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The group.") var group: String
        @Option(help: "A topic whose partitions to reset (repeatable).") var topic: [String] = []
        @Flag(name: .customLong("all-topics"), help: "Every topic the group has offsets for.") var allTopics = false
        @Flag(name: .customLong("to-earliest")) var toEarliest = false
        @Flag(name: .customLong("to-latest")) var toLatest = false
        @Option(name: .customLong("to-offset"), help: "An offset (kept within each partition's log).") var toOffset: Int64?
        @Option(name: .customLong("to-datetime"), help: "The first offset at or after a time: ISO 8601 (2026-12-02T10:00:00Z) or epoch ms.")
        var toDatetime: String?
        @Option(name: .customLong("shift-by"), help: "Move each committed offset by this many.") var shiftBy: Int64?
        @Flag(help: "Commit the new offsets (without it, only print them).") var execute = false
        @Flag(name: .customLong("dry-run"), help: "Only print the new offsets (the default).") var dryRun = false

        func validate() throws {
            let targets = [toEarliest, toLatest, toOffset != nil, toDatetime != nil, shiftBy != nil].filter { $0 }.count
            guard targets == 1 else { throw ValidationError("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by") }
            guard allTopics != !topic.isEmpty else { throw ValidationError("give --topic (repeatable) or --all-topics") }
            guard !(execute && dryRun) else { throw ValidationError("--execute and --dry-run exclude each other") }
        }

        static func parseTime(_ text: String) throws -> Int64 {
            if let ms = Int64(text) { return ms }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) {
                return Int64(date.timeIntervalSince1970 * 1000)
            }
            throw ValidationError("--to-datetime: '\(text)' is neither ISO 8601 nor epoch milliseconds")
        }

        struct Row: Encodable { let topic: String; let partition: Int32; let newOffset: Int64 }

        func run() async throws {
            let time = try toDatetime.map(Self.parseTime)
            let rows = try await connection.withAdmin { admin -> [Row] in
                let committed = try await admin.committedOffsets(group)
                var partitions: [TopicPartition]
                if allTopics {
                    partitions = committed.keys.sorted()
                } else {
                    let described = try await admin.describeTopics(topic)
                    partitions = described.flatMap { t in t.partitions.map { TopicPartition(t.name, $0.partition) } }.sorted()
                }
                guard !partitions.isEmpty else { throw CLIError("no partitions to reset") }
                let earliest = try await admin.listOffsets(partitions, .earliest)
                let latest = try await admin.listOffsets(partitions, .latest)
                var atTime: [TopicPartition: Int64]?
                if let time { atTime = try await admin.listOffsets(partitions, .timestamp(time)) }
                let targets = partitions.map { tp -> Row in
                    let low = earliest[tp] ?? 0, high = latest[tp] ?? 0
                    let wanted: Int64
                    if toEarliest { wanted = low } else if toLatest { wanted = high } else if let toOffset { wanted = toOffset }
                    else if let shiftBy { wanted = (committed[tp] ?? low).addingReportingOverflow(shiftBy).partialValue }
                    else { wanted = atTime?[tp].flatMap { $0 >= 0 ? $0 : nil } ?? high }
                    return Row(topic: tp.topic, partition: tp.partition, newOffset: min(max(wanted, low), high))
                }
                if execute {
                    try await admin.alterGroupOffsets(group, Dictionary(uniqueKeysWithValues: targets.map { (TopicPartition($0.topic, $0.partition), $0.newOffset) }))
                }
                return targets
            }
            try Output.emit(rows, asJSON: connection.json, header: ["TOPIC", "PARTITION", "NEW_OFFSET"],
                            rows: rows.map { [$0.topic, String($0.partition), String($0.newOffset)] })
            if !connection.json && !execute { print("(dry run: add --execute to commit these offsets)") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete groups (each must have no members).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The groups.") var groups: [String]

        func run() async throws {
            try await connection.withAdmin { try await $0.deleteGroups(groups) }
            if connection.json { try Output.json(["deleted": groups]) } else { print("Deleted \(groups.joined(separator: ", ")).") }
        }
    }
}
