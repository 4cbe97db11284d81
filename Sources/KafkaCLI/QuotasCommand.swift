import ArgumentParser
import KafkaClient

/// `kfk quotas ...`: client quotas per user and client id (kafka-configs.sh --entity-type users/clients).
struct Quotas: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quotas", abstract: "Describe and alter client quotas (producer_byte_rate, consumer_byte_rate, request_percentage).",
        subcommands: [Describe.self, Alter.self])

    /// The entity flags, as kafka-configs.sh names them.
    struct EntityOptions: ParsableArguments {
        @Option(help: "A user (principal name; ANONYMOUS without SASL).") var user: String?
        @Flag(name: .customLong("user-default"), help: "The default user quota.") var userDefault = false
        @Option(name: .customLong("client-id"), help: "A client id.") var clientId: String?
        @Flag(name: .customLong("client-default"), help: "The default client-id quota.") var clientDefault = false

        func validate() throws {
            if user != nil && userDefault { throw ValidationError("--user and --user-default exclude each other") }
            if clientId != nil && clientDefault { throw ValidationError("--client-id and --client-default exclude each other") }
        }

        var userName: ClientQuotaEntity.Name? { user.map { .named($0) } ?? (userDefault ? .defaultName : nil) }
        var clientName: ClientQuotaEntity.Name? { clientId.map { .named($0) } ?? (clientDefault ? .defaultName : nil) }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The quotas set, of every entity or of those the flags name.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var entity: EntityOptions

        struct Row: Encodable { let entity: String; let user: String?; let clientId: String?; let quotas: [String: Double] }

        func run() async throws {
            func match(_ name: ClientQuotaEntity.Name?) -> ClientQuotaMatch? {
                switch name {
                case .named(let n)?: return .exact(n)
                case .defaultName?: return .defaultName
                case nil: return nil
                }
            }
            let found = try await connection.withAdmin {
                try await $0.describeClientQuotas(user: match(entity.userName), clientId: match(entity.clientName))
            }
            func text(_ name: ClientQuotaEntity.Name?) -> String? {
                switch name {
                case .named(let n)?: return n
                case .defaultName?: return "<default>"
                case nil: return nil
                }
            }
            let rows = found.map { Row(entity: $0.key.description, user: text($0.key.user), clientId: text($0.key.clientId), quotas: $0.value) }
                .sorted { $0.entity < $1.entity }
            try Output.emit(rows, asJSON: connection.json, header: ["USER", "CLIENT_ID", "QUOTAS"], rows: rows.map { row in
                [row.user ?? "", row.clientId ?? "", row.quotas.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.format($0.value))" }.joined(separator: ",")]
            })
        }

        /// 1048576 rather than 1048576.0 for whole numbers.
        static func format(_ value: Double) -> String {
            value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        }
    }

    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set or remove quotas of one entity.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var entity: EntityOptions
        @Option(name: .customLong("add-config"), help: "quota=value to set, e.g. producer_byte_rate=1048576 (repeatable).") var add: [String] = []
        @Option(name: .customLong("delete-config"), help: "A quota to remove (repeatable).") var delete: [String] = []
        @Flag(name: .customLong("validate-only"), help: "Only check the change with the broker.") var validateOnly = false

        func run() async throws {
            guard entity.userName != nil || entity.clientName != nil else {
                throw ValidationError("name an entity: --user, --user-default, --client-id or --client-default")
            }
            guard !add.isEmpty || !delete.isEmpty else { throw ValidationError("give --add-config or --delete-config") }
            var set: [String: Double] = [:]
            for (key, text) in try Self.pairs(add, option: "--add-config") {
                guard let value = Double(text) else { throw ValidationError("--add-config \(key) needs a number, not '\(text)'") }
                set[key] = value
            }
            let target = ClientQuotaEntity(user: entity.userName, clientId: entity.clientName)
            try await connection.withAdmin { try await $0.alterClientQuotas(target, set: set, remove: delete, validateOnly: validateOnly) }
            if !connection.json { print("\(validateOnly ? "Validated" : "Altered") the quotas of \(target)") } else { try Output.json(["altered": !validateOnly]) }
        }
    }
}
