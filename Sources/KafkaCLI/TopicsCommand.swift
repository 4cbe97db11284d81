import ArgumentParser
import KafkaClient
import KafkaWire

/// `kfk topics ...`: kafka-topics.sh's jobs.
struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "List, describe, create, alter and delete topics.",
        subcommands: [List.self, Describe.self, Create.self, AlterConfig.self, AddPartitions.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every topic with its partition count.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: .customLong("exclude-internal"), help: "Leave out internal topics.") var excludeInternal = false

        struct Row: Encodable { let topic: String; let partitions: Int; let `internal`: Bool }

        func run() async throws {
            let topics = try await connection.withAdmin { try await $0.describeTopics(nil) }.filter { !excludeInternal || !$0.isInternal }
            let rows = topics.map { Row(topic: $0.name, partitions: $0.partitions.count, internal: $0.isInternal) }
            try Output.emit(rows, asJSON: connection.json, header: ["TOPIC", "PARTITIONS", "INTERNAL"],
                            rows: rows.map { [$0.topic, String($0.partitions), $0.`internal` ? "yes" : ""] })
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A topic's partitions (leader, replicas, in-sync replicas) and its configs.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topic.") var topic: String
        @Flag(name: .customLong("all-configs"), help: "Every config, not only those set on the topic.") var allConfigs = false

        struct Partition: Encodable { let partition: Int32; let leader: Int32; let replicas: [Int32]; let isr: [Int32] }
        struct Result: Encodable { let topic: String; let topicId: String; let partitions: [Partition]; let configs: [String: String?] }

        func run() async throws {
            let (description, configs) = try await connection.withAdmin { admin in
                (try await admin.describeTopics([topic]).first, try await admin.describeTopicConfigs(topic))
            }
            guard let description else { throw CLIError.reported(CLIError("no topic '\(topic)'")) }
            let shown = configs.values.filter { allConfigs || $0.isOverride }.sorted { $0.name < $1.name }
            let result = Result(topic: description.name, topicId: "\(description.id)",
                                partitions: description.partitions.map { Partition(partition: $0.partition, leader: $0.leader, replicas: $0.replicas, isr: $0.isr) },
                                configs: Dictionary(uniqueKeysWithValues: shown.map { ($0.name, $0.value) }))
            if connection.json { return try Output.json(result) }
            print("Topic: \(result.topic)  TopicId: \(result.topicId)  PartitionCount: \(result.partitions.count)")
            Output.table(["PARTITION", "LEADER", "REPLICAS", "ISR"], result.partitions.map {
                [String($0.partition), String($0.leader), $0.replicas.map(String.init).joined(separator: ","), $0.isr.map(String.init).joined(separator: ",")]
            })
            if !shown.isEmpty {
                print("")
                Output.table(["CONFIG", "VALUE"], shown.map { [$0.name, $0.value ?? "(null)"] })
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topic.") var topic: String
        @Option(help: "Partitions (default: the broker's num.partitions).") var partitions: Int32 = -1
        @Option(name: .customLong("replication-factor"), help: "Replicas of each partition (default: the broker's).") var replicationFactor: Int16 = -1
        @Option(name: .customLong("config"), help: "A topic config, key=value (repeatable).") var configs: [String] = []
        @Flag(name: .customLong("validate-only"), help: "Check the request without creating.") var validateOnly = false

        func run() async throws {
            let configs = try Self.pairs(self.configs, option: "--config")
            try await connection.withAdmin { admin in
                try await admin.createTopics([NewTopic(name: topic, partitions: partitions, replicationFactor: replicationFactor, configs: configs)],
                                             validateOnly: validateOnly)
            }
            if connection.json { try Output.json(["created": topic]) } else { print(validateOnly ? "Topic \(topic) would be created." : "Created topic \(topic).") }
        }
    }

    struct AlterConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "alter-config", abstract: "Set or remove a topic's configs.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topic.") var topic: String
        @Option(name: .customLong("add-config"), help: "key=value to set (repeatable).") var add: [String] = []
        @Option(name: .customLong("delete-config"), help: "A key to remove, back to the broker's value (repeatable).") var delete: [String] = []

        func validate() throws {
            guard !add.isEmpty || !delete.isEmpty else { throw ValidationError("give --add-config or --delete-config") }
        }

        func run() async throws {
            let set = try Self.pairs(add, option: "--add-config")
            try await connection.withAdmin { try await $0.alterTopicConfigs(topic, set: set, delete: delete) }
            if connection.json { try Output.json(["altered": topic]) } else { print("Altered the configs of topic \(topic).") }
        }
    }

    struct AddPartitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-partitions", abstract: "Grow a topic to a number of partitions.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topic.") var topic: String
        @Option(help: "The total partition count after the change.") var partitions: Int32

        func run() async throws {
            try await connection.withAdmin { try await $0.createPartitions(topic, totalCount: partitions) }
            if connection.json { try Output.json(["topic": topic, "partitions": String(partitions)]) } else {
                print("Topic \(topic) now has \(partitions) partitions.")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete topics.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topics.") var topics: [String]

        func run() async throws {
            try await connection.withAdmin { try await $0.deleteTopics(topics) }
            if connection.json { try Output.json(["deleted": topics]) } else { print("Deleted \(topics.joined(separator: ", ")).") }
        }
    }
}
