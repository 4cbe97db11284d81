import ArgumentParser
import KafkaClient
import KafkaWire

/// `kfk cluster ...`: the brokers, their API versions and log directories.
struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Describe the cluster, its API versions and log directories.",
        subcommands: [Describe.self, ApiVersions.self, LogDirs.self, Features.self, UpgradeFeature.self])

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The cluster id, the controller and the brokers.")
        @OptionGroup var connection: ConnectionOptions

        struct Broker: Encodable { let id: Int32; let host: String; let port: Int; let controller: Bool }
        struct Result: Encodable { let clusterId: String?; let controllerId: Int32; let brokers: [Broker] }

        func run() async throws {
            let cluster = try await connection.withAdmin { try await $0.describeCluster() }
            let result = Result(clusterId: cluster.clusterId, controllerId: cluster.controllerId, brokers: cluster.brokers.map {
                Broker(id: $0.nodeId, host: $0.host, port: $0.port, controller: $0.nodeId == cluster.controllerId)
            })
            if connection.json { return try Output.json(result) }
            print("Cluster: \(result.clusterId ?? "(none)")  Controller: \(result.controllerId)")
            Output.table(["BROKER", "HOST", "PORT", "CONTROLLER"], result.brokers.map { [String($0.id), $0.host, String($0.port), $0.controller ? "yes" : ""] })
        }
    }

    struct ApiVersions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "api-versions", abstract: "The API versions a broker serves.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The broker to ask (default: a bootstrap broker).") var broker: Int32?

        struct Row: Encodable { let api: String; let key: Int16; let minVersion: Int16; let maxVersion: Int16 }

        func run() async throws {
            let versions = try await connection.withAdmin { try await $0.apiVersions(broker: broker) }
            let rows = versions.sorted { $0.key.rawValue < $1.key.rawValue }.map {
                Row(api: $0.key.name, key: $0.key.rawValue, minVersion: $0.value.lowerBound, maxVersion: $0.value.upperBound)
            }
            try Output.emit(rows, asJSON: connection.json, header: ["API", "KEY", "VERSIONS"],
                            rows: rows.map { [$0.api, String($0.key), "\($0.minVersion)-\($0.maxVersion)"] })
        }
    }

    struct LogDirs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "log-dirs", abstract: "Each broker's log directories: space and partition sizes.")
        @OptionGroup var connection: ConnectionOptions

        struct Partition: Encodable { let topic: String; let partition: Int32; let size: Int64; let offsetLag: Int64 }
        struct Dir: Encodable { let broker: Int32; let path: String; let error: String?; let totalBytes: Int64; let usableBytes: Int64; let partitions: [Partition] }

        func run() async throws {
            let dirs = try await connection.withAdmin { try await $0.describeLogDirs() }.map { d in
                Dir(broker: d.broker, path: d.path, error: d.error == .noError ? nil : "\(d.error)", totalBytes: d.totalBytes, usableBytes: d.usableBytes,
                    partitions: d.partitions.map { Partition(topic: $0.topicPartition.topic, partition: $0.topicPartition.partition, size: $0.size, offsetLag: $0.offsetLag) })
            }
            if connection.json { return try Output.json(dirs) }
            for dir in dirs {
                print("Broker \(dir.broker): \(dir.path)  total \(dir.totalBytes) B, usable \(dir.usableBytes) B\(dir.error.map { "  error \($0)" } ?? "")")
                Output.table(["TOPIC", "PARTITION", "SIZE", "OFFSET_LAG"], dir.partitions.map { [$0.topic, String($0.partition), String($0.size), String($0.offsetLag)] })
            }
        }
    }

    struct Features: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Feature levels: supported and finalized (kafka-features.sh describe).")
        @OptionGroup var connection: ConnectionOptions

        struct Row: Encodable { let feature: String; let supportedMin: Int16?; let supportedMax: Int16?; let finalized: Int16 }

        func run() async throws {
            let levels = try await connection.withAdmin { try await $0.describeFeatures() }
            let rows = Set(levels.supported.keys).union(levels.finalized.keys).sorted().map {
                Row(feature: $0, supportedMin: levels.supported[$0]?.lowerBound, supportedMax: levels.supported[$0]?.upperBound,
                    finalized: levels.finalized[$0] ?? 0)
            }
            try Output.emit(rows, asJSON: connection.json, header: ["FEATURE", "SUPPORTED", "FINALIZED"], rows: rows.map { row in
                var supported = "-"
                if let low = row.supportedMin, let high = row.supportedMax { supported = "\(low)-\(high)" }
                return [row.feature, supported, String(row.finalized)]
            })
        }
    }

    struct UpgradeFeature: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-feature", abstract: "Set a feature level (kafka-features.sh upgrade / downgrade).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "feature=level, e.g. group.version=0.") var feature: String
        @Flag(help: "Allow a lower level (a safe downgrade).") var downgrade = false
        @Flag(name: .customLong("dry-run"), help: "Only check the change with the broker.") var dryRun = false

        func run() async throws {
            let parts = feature.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let level = Int16(parts[1]) else { throw ValidationError("give feature=level, not '\(feature)'") }
            let name = String(parts[0])
            try await connection.withAdmin {
                try await $0.updateFeatures([name: level], upgradeType: downgrade ? .safeDowngrade : .upgrade, validateOnly: dryRun)
            }
            if connection.json { try Output.json(["feature": name, "level": String(level), "applied": String(!dryRun)]) } else {
                print("\(dryRun ? "Validated" : "Set") \(name) to level \(level)")
            }
        }
    }
}
