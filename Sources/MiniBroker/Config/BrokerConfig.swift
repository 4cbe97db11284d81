import Foundation
import KafkaLog

/// A refused configuration: names the key so an operator knows what to fix.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let reason: String

    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "invalid configuration '\(key)': \(reason)" }
}

/// The broker's static configuration: Kafka's `server.properties` keys that MiniBroker supports.
/// Values are kept as strings (as Kafka reports them) with typed accessors.
public struct BrokerConfig: Sendable {
    public static let definitions: [ConfigDefinition] = [
        ConfigDefinition("broker.id", .int, "0", check: ConfigDefinition.atLeast(0, .int)),
        ConfigDefinition("node.id", .int, nil, check: ConfigDefinition.atLeast(0, .int)),
        ConfigDefinition("listeners", .string, "PLAINTEXT://127.0.0.1:9092", check: { Listener.parseList($0).error }),
        ConfigDefinition("advertised.listeners", .string, nil, check: { Listener.parseList($0).error }),
        ConfigDefinition("listener.security.protocol.map", .string, "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
                         check: { SecurityProtocolMap.parse($0).error }),
        ConfigDefinition("sasl.enabled.mechanisms", .list, SaslMechanismName.supported.joined(separator: ","), check: { value in
            let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !names.isEmpty else { return "must name at least one mechanism" }
            let unknown = names.filter { !SaslMechanismName.supported.contains($0) }
            return unknown.isEmpty ? nil : "names \(unknown.joined(separator: ", ")): MiniBroker serves \(SaslMechanismName.supported.joined(separator: ", "))"
        }),
        ConfigDefinition("authorizer.class.name", .string, "", check: ConfigDefinition.oneOf(["", BrokerConfig.standardAuthorizer, BrokerConfig.aclAuthorizer])),
        ConfigDefinition("super.users", .string, "", check: { value in
            let bad = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.contains(":") }
            return bad.isEmpty ? nil : "must be principals separated by ';' (User:alice;User:admin), not '\(bad[0])'"
        }),
        ConfigDefinition("allow.everyone.if.no.acl.found", .boolean, "false"),
        ConfigDefinition("connections.max.reauth.ms", .long, "0", check: ConfigDefinition.between(0, Int64.max / 1_000_000, .long)),
        ConfigDefinition("connection.failed.authentication.delay.ms", .int, "100", check: ConfigDefinition.between(0, 60_000, .int)),
        // TLS (SSL and SASL_SSL listeners): PEM only, Kafka's PEM keys (KIP-651).
        ConfigDefinition("ssl.keystore.type", .string, "PEM", check: SslConfig.pemOnly),
        ConfigDefinition("ssl.keystore.location", .string, nil),
        ConfigDefinition("ssl.keystore.certificate.chain", .password, nil),
        ConfigDefinition("ssl.keystore.key", .password, nil),
        ConfigDefinition("ssl.key.password", .password, nil),
        ConfigDefinition("ssl.truststore.type", .string, "PEM", check: SslConfig.pemOnly),
        ConfigDefinition("ssl.truststore.location", .string, nil),
        ConfigDefinition("ssl.truststore.certificates", .password, nil),
        ConfigDefinition("ssl.client.auth", .string, "none", check: ConfigDefinition.oneOf(["none", "requested", "required"])),
        ConfigDefinition("ssl.enabled.protocols", .list, "TLSv1.2,TLSv1.3", check: SslConfig.protocolsCheck),
        ConfigDefinition("ssl.principal.mapping.rules", .string, "DEFAULT", check: { SslPrincipalMapper.problem(with: $0) }),
        ConfigDefinition("log.dirs", .string, "./data", check: { $0.isEmpty ? "must name a directory" : nil }),
        ConfigDefinition("log.dir", .string, nil),
        ConfigDefinition("num.partitions", .int, "1", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("default.replication.factor", .int, "1", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("auto.create.topics.enable", .boolean, "true"),
        ConfigDefinition("log.segment.bytes", .int, "1073741824", check: ConfigDefinition.atLeast(14, .int)),
        ConfigDefinition("log.index.interval.bytes", .int, "4096", check: ConfigDefinition.atLeast(0, .int)),
        ConfigDefinition("log.retention.hours", .int, "168"),
        ConfigDefinition("log.retention.minutes", .int, nil),
        ConfigDefinition("log.retention.ms", .long, nil),
        ConfigDefinition("log.retention.bytes", .long, "-1"),
        ConfigDefinition("log.retention.check.interval.ms", .long, "300000", check: ConfigDefinition.atLeast(1, .long)),
        ConfigDefinition("log.flush.interval.messages", .long, String(Int64.max), check: ConfigDefinition.atLeast(1, .long)),
        ConfigDefinition("log.flush.interval.ms", .long, nil, check: ConfigDefinition.atLeast(0, .long)),
        ConfigDefinition("log.cleanup.policy", .list, "delete", check: ConfigDefinition.cleanupPolicy),
        ConfigDefinition("log.cleaner.enable", .boolean, "true"),
        ConfigDefinition("log.cleaner.threads", .int, "1", check: ConfigDefinition.atLeast(0, .int)),
        ConfigDefinition("log.cleaner.io.max.bytes.per.second", .double, "1.7976931348623157E308",
                         check: { Double($0).map { $0 > 0 } ?? false ? nil : "must be a positive number" }),
        ConfigDefinition("log.cleaner.dedupe.buffer.size", .long, "134217728", check: ConfigDefinition.atLeast(1, .long)),
        ConfigDefinition("log.cleaner.backoff.ms", .long, "15000", check: ConfigDefinition.atLeast(0, .long)),
        ConfigDefinition("log.cleaner.min.cleanable.ratio", .double, "0.5", check: ConfigDefinition.fraction),
        ConfigDefinition("log.cleaner.min.compaction.lag.ms", .long, "0", check: ConfigDefinition.atLeast(0, .long)),
        ConfigDefinition("log.cleaner.max.compaction.lag.ms", .long, String(Int64.max), check: ConfigDefinition.atLeast(1, .long)),
        ConfigDefinition("log.cleaner.delete.retention.ms", .long, "86400000", check: ConfigDefinition.atLeast(0, .long)),
        ConfigDefinition("log.roll.ms", .long, "604800000", check: ConfigDefinition.atLeast(1, .long)),
        ConfigDefinition("log.message.timestamp.type", .string, "CreateTime", check: ConfigDefinition.oneOf(["CreateTime", "LogAppendTime"])),
        ConfigDefinition("log.message.timestamp.before.max.ms", .long, String(Int64.max), check: ConfigDefinition.atLeast(0, .long)),
        ConfigDefinition("log.message.timestamp.after.max.ms", .long, "3600000", check: ConfigDefinition.atLeast(0, .long)),
        ConfigDefinition("message.max.bytes", .int, "1048588", check: ConfigDefinition.atLeast(0, .int)),
        ConfigDefinition("fetch.max.bytes", .int, "57671680", check: ConfigDefinition.atLeast(1024, .int)),
        ConfigDefinition("max.request.partition.size.limit", .int, "2000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("socket.request.max.bytes", .int, "104857600", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("max.connections", .int, "2147483647", check: ConfigDefinition.atLeast(0, .int)),
        // Timers count nanoseconds in an Int64: a longer idle time would overflow when armed.
        ConfigDefinition("connections.max.idle.ms", .long, "600000", check: ConfigDefinition.between(-1, Int64.max / 1_000_000, .long)),
        ConfigDefinition("min.insync.replicas", .int, "1", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("compression.type", .string, "producer",
                         check: ConfigDefinition.oneOf(["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"])),
        ConfigDefinition("group.initial.rebalance.delay.ms", .int, "3000", check: ConfigDefinition.atLeast(0, .int)),
        ConfigDefinition("group.min.session.timeout.ms", .int, "6000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("group.max.session.timeout.ms", .int, "1800000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("group.consumer.heartbeat.interval.ms", .int, "5000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("group.consumer.session.timeout.ms", .int, "45000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("offsets.retention.minutes", .int, "10080", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("metrics.port", .int, "-1", check: ConfigDefinition.between(-1, 65535, .int)),
        ConfigDefinition("metrics.host", .string, "127.0.0.1", check: { $0.isEmpty ? "must name a host" : nil }),
        ConfigDefinition("quota.window.num", .int, "11", check: ConfigDefinition.between(2, 3600, .int)),
        ConfigDefinition("quota.window.size.seconds", .int, "1", check: ConfigDefinition.between(1, 3600, .int)),
        ConfigDefinition("transaction.max.timeout.ms", .int, "900000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("transaction.abort.timed.out.transaction.cleanup.interval.ms", .int, "10000",
                         check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("transactional.id.expiration.ms", .int, "604800000", check: ConfigDefinition.atLeast(1, .int)),
        ConfigDefinition("transaction.remove.expired.transaction.cleanup.interval.ms", .int, "3600000",
                         check: ConfigDefinition.atLeast(1, .int)),
    ]

    static let byName: [String: ConfigDefinition] = Dictionary(uniqueKeysWithValues: definitions.map { ($0.name, $0) })

    /// Values set explicitly (file, overrides, flags), by key.
    public private(set) var explicit: [String: String] = [:]

    public init() {}

    /// `listener.name.<listener>.plain.sasl.jaas.config`: a listener's PLAIN users, as Kafka configures them.
    static func isPlainJaasKey(_ key: String) -> Bool {
        key.hasPrefix("listener.name.") && key.hasSuffix(".plain.sasl.jaas.config") && key.split(separator: ".").count == 7
    }

    static let plainJaasDefinition = ConfigDefinition("listener.name.<listener>.plain.sasl.jaas.config", .password, nil,
                                                      check: { JaasConfig.parse($0).error })

    /// `listener.name.<listener>.ssl.*`: a TLS key for one listener, over the broker-wide `ssl.*` one.
    static func listenerSslDefinition(_ key: String) -> (listener: String, definition: ConfigDefinition)? {
        let parts = key.split(separator: ".", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "listener", parts[1] == "name", !parts[2].isEmpty, parts[3].hasPrefix("ssl."),
              let definition = byName[String(parts[3])] else { return nil }
        return (String(parts[2]), definition)
    }

    /// Sets one key, refusing unknown keys and bad values.
    public mutating func set(_ key: String, _ value: String) throws {
        guard let definition = Self.byName[key] ?? (Self.isPlainJaasKey(key) ? Self.plainJaasDefinition : nil)
            ?? Self.listenerSslDefinition(key)?.definition else {
            throw ConfigError(key: key, reason: "unknown or unsupported broker configuration key")
        }
        if let problem = definition.problem(with: value) {
            // A password's value is never repeated back (it would land in a terminal or a log).
            throw ConfigError(key: key, reason: definition.type == .password ? "the value \(problem)" : "'\(value)' \(problem)")
        }
        explicit[key] = value
    }

    /// Reads a `server.properties` file: `key=value` or `key: value` lines, `#` and `!` comments.
    public mutating func load(propertiesText text: String) throws {
        // A line ending in an odd number of backslashes goes on on the next one (Java's properties files:
        // how inline PEM keys are written), that line's leading blanks dropped.
        var lines: [(number: Int, text: String)] = []
        var pending: (number: Int, text: String)?
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if pending == nil && (line.hasPrefix("#") || line.hasPrefix("!")) { continue }
            let trailing = line.reversed().prefix { $0 == "\\" }.count
            let continues = trailing % 2 == 1
            if continues { line.removeLast() }
            let start = pending?.number ?? number
            let joined = (pending?.text ?? "") + line
            pending = continues ? (start, joined) : nil
            if !continues { lines.append((start, joined)) }
        }
        if let pending { lines.append(pending) }
        for (number, line) in lines {
            if line.isEmpty { continue }
            guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw ConfigError(key: line, reason: "line \(number + 1) is not key=value")
            }
            let key = line[..<separator].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
            try set(key, value)
        }
    }

    /// The effective value of a key, and whether it was set or defaulted.
    public func value(_ key: String) -> (value: String?, source: ConfigSource) {
        if let v = explicit[key] { return (v, .staticBrokerConfig) }
        return (Self.byName[key]?.defaultValue, .defaultConfig)
    }

    func string(_ key: String) -> String { value(key).value ?? "" }
    func int(_ key: String) -> Int { Int(string(key)) ?? 0 }
    func long(_ key: String) -> Int64 { Int64(string(key)) ?? 0 }
    func bool(_ key: String) -> Bool { string(key).lowercased() == "true" }

    // MARK: Typed views

    public var brokerId: Int32 { Int32(explicit["node.id"] ?? string("broker.id")) ?? 0 }
    public var listeners: [Listener] { Listener.parseList(string("listeners")).listeners }
    /// listener.security.protocol.map, by listener name.
    public var securityProtocols: [String: SecurityProtocol] { SecurityProtocolMap.parse(string("listener.security.protocol.map")).map }
    /// The security protocol of a listener: the map's, or its name's when the name is a protocol.
    public func securityProtocol(of listener: Listener) -> SecurityProtocol? {
        securityProtocols[listener.name] ?? SecurityProtocol(rawValue: listener.name)
    }
    public var saslEnabledMechanisms: [String] {
        string("sasl.enabled.mechanisms").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }
    /// Kafka's authorizer class names: either turns on ACLs (MiniBroker has one authorizer, Kafka's rules).
    static let standardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    static let aclAuthorizer = "kafka.security.authorizer.AclAuthorizer"
    /// authorizer.class.name is set: every request is checked against the ACLs.
    public var authorizerEnabled: Bool { !string("authorizer.class.name").isEmpty }
    /// super.users: principals allowed everything, `User:admin;User:ops`.
    public var superUsers: Set<String> {
        Set(string("super.users").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }
    public var allowEveryoneIfNoAclFound: Bool { bool("allow.everyone.if.no.acl.found") }
    /// connections.max.reauth.ms: how long an authenticated session lasts (0: as long as the connection).
    public var connectionsMaxReauthMs: Int64 { long("connections.max.reauth.ms") }
    /// connection.failed.authentication.delay.ms: how long a failed authentication waits before its answer and the close.
    public var failedAuthenticationDelayMs: Int64 { long("connection.failed.authentication.delay.ms") }
    /// The PLAIN users of a listener (`user_<name>="<password>"` in its JAAS config), by user name.
    public func plainUsers(listener: String) -> [String: String] {
        let key = "listener.name.\(listener.lowercased()).plain.sasl.jaas.config"
        return explicit[key].map { JaasConfig.parse($0).users } ?? [:]
    }
    /// A TLS key's value for one listener: `listener.name.<listener>.<key>`, else the broker's `<key>`.
    public func ssl(_ key: String, listener: String) -> String? {
        explicit["listener.name.\(listener.lowercased()).\(key)"] ?? value(key).value
    }
    public var advertisedListeners: [Listener] {
        guard let text = explicit["advertised.listeners"] else { return listeners }
        return Listener.parseList(text).listeners
    }
    public var logDirectory: String { explicit["log.dirs"].map { String($0.split(separator: ",").first ?? "") } ?? explicit["log.dir"] ?? string("log.dirs") }
    public var numPartitions: Int32 { Int32(int("num.partitions")) }
    public var autoCreateTopics: Bool { bool("auto.create.topics.enable") }
    public var socketRequestMaxBytes: Int { int("socket.request.max.bytes") }
    /// fetch.max.bytes: the most record bytes one Fetch answer carries (past its first batch).
    public var fetchMaxBytes: Int { int("fetch.max.bytes") }
    /// max.request.partition.size.limit: the most partitions one DescribeTopicPartitions answer describes.
    public var maxRequestPartitionSizeLimit: Int { int("max.request.partition.size.limit") }
    public var maxConnections: Int { int("max.connections") }
    /// connections.max.idle.ms; -1 (or 0) keeps idle connections open.
    public var connectionsMaxIdleMs: Int64 { max(long("connections.max.idle.ms"), 0) }
    public var retentionCheckIntervalMs: Int64 { long("log.retention.check.interval.ms") }
    public var groupInitialRebalanceDelayMs: Int { int("group.initial.rebalance.delay.ms") }
    public var groupMinSessionTimeoutMs: Int32 { Int32(int("group.min.session.timeout.ms")) }
    public var groupMaxSessionTimeoutMs: Int32 { Int32(int("group.max.session.timeout.ms")) }
    public var consumerHeartbeatIntervalMs: Int32 { Int32(int("group.consumer.heartbeat.interval.ms")) }
    public var consumerSessionTimeoutMs: Int64 { long("group.consumer.session.timeout.ms") }
    public var offsetsRetentionMs: Int64 { long("offsets.retention.minutes") * 60_000 }
    /// The longest transaction.timeout.ms a transactional producer may ask for.
    public var transactionMaxTimeoutMs: Int32 { Int32(int("transaction.max.timeout.ms")) }
    /// How often open transactions are checked against their timeout.
    public var transactionAbortCheckIntervalMs: Int64 { long("transaction.abort.timed.out.transaction.cleanup.interval.ms") }
    /// How long an idle transactional id is kept.
    public var transactionalIdExpirationMs: Int64 { long("transactional.id.expiration.ms") }
    public var transactionalIdExpiryCheckIntervalMs: Int64 { long("transaction.remove.expired.transaction.cleanup.interval.ms") }
    /// The log.cleaner.* settings.
    public var cleaner: CleanerConfig {
        var config = CleanerConfig()
        config.enabled = bool("log.cleaner.enable")
        config.threads = int("log.cleaner.threads")
        config.ioMaxBytesPerSecond = Double(string("log.cleaner.io.max.bytes.per.second")) ?? config.ioMaxBytesPerSecond
        config.dedupeBufferSize = Int(clamping: long("log.cleaner.dedupe.buffer.size"))
        config.backoffMs = long("log.cleaner.backoff.ms")
        return config
    }

    /// metrics.port: where the Prometheus endpoint listens; -1 (the default) turns metrics off, 0 picks a free port.
    public var metricsPort: Int { int("metrics.port") }
    public var metricsHost: String { string("metrics.host") }

    /// quota.window.num samples of quota.window.size.seconds: what client quotas are measured over.
    var quotaWindow: QuotaWindow { QuotaWindow(samples: int("quota.window.num"), sampleMs: Int64(int("quota.window.size.seconds")) * 1000) }

    /// log.retention.ms, else minutes, else hours, as Kafka resolves them.
    public var retentionMs: Int64 {
        if let ms = explicit["log.retention.ms"].flatMap({ Int64($0) }) { return ms }
        if let minutes = explicit["log.retention.minutes"].flatMap({ Int64($0) }) { return minutes * 60_000 }
        return long("log.retention.hours") * 3_600_000
    }

    /// Checks that need several keys at once (called after everything is set).
    public func validate() throws {
        guard !listeners.isEmpty else { throw ConfigError(key: "listeners", reason: "no listener configured") }
        var names = Set<String>()
        for listener in listeners {
            guard names.insert(listener.name).inserted else {
                throw ConfigError(key: "listeners", reason: "listener name \(listener.name) is used twice")
            }
            guard let security = securityProtocol(of: listener) else {
                throw ConfigError(key: "listener.security.protocol.map",
                                  reason: "listener \(listener.name) has no security protocol: map it, e.g. \(listener.name):SASL_PLAINTEXT")
            }
            if security.usesTls { try SslConfig(config: self, listener: listener.name).checkKeystoreIsSet() }
        }
        let ports = listeners.map(\.port).filter { $0 != 0 }
        guard Set(ports).count == ports.count else { throw ConfigError(key: "listeners", reason: "two listeners share a port") }
        for advertised in explicit["advertised.listeners"].map({ Listener.parseList($0).listeners }) ?? [] where !names.contains(advertised.name) {
            throw ConfigError(key: "advertised.listeners", reason: "\(advertised.name) is not a listener")
        }
        for key in explicit.keys where Self.isPlainJaasKey(key) || Self.listenerSslDefinition(key) != nil {
            let name = key.split(separator: ".")[2]
            guard listeners.contains(where: { $0.name.lowercased() == name }) else {
                throw ConfigError(key: key, reason: "no listener is named \(name)")
            }
        }
        guard groupMinSessionTimeoutMs <= groupMaxSessionTimeoutMs else {
            throw ConfigError(key: "group.min.session.timeout.ms",
                              reason: "\(groupMinSessionTimeoutMs) is above group.max.session.timeout.ms \(groupMaxSessionTimeoutMs)")
        }
        guard !logDirectory.isEmpty else { throw ConfigError(key: "log.dirs", reason: "no log directory configured") }
    }
}

/// `NAME://host:port`, as in `listeners`.
public struct Listener: Sendable, Equatable {
    public var name: String
    public var host: String
    public var port: Int

    public init(name: String, host: String, port: Int) {
        self.name = name
        self.host = host
        self.port = port
    }

    static func parseList(_ text: String) -> (listeners: [Listener], error: String?) {
        var result: [Listener] = []
        for item in text.split(separator: ",") {
            let entry = item.trimmingCharacters(in: .whitespaces)
            guard let scheme = entry.range(of: "://") else { return ([], "'\(entry)' is not NAME://host:port") }
            let name = String(entry[..<scheme.lowerBound])
            let address = entry[scheme.upperBound...]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                  (0...65535).contains(port) else { return ([], "'\(entry)' has no valid port") }
            var host = String(address[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            result.append(Listener(name: name, host: host.isEmpty ? "0.0.0.0" : host, port: port))
        }
        return (result, result.isEmpty ? "no listener given" : nil)
    }
}

/// `NAME:PROTOCOL,...`, as in listener.security.protocol.map.
enum SecurityProtocolMap {
    static func parse(_ text: String) -> (map: [String: SecurityProtocol], error: String?) {
        var map: [String: SecurityProtocol] = [:]
        for item in text.split(separator: ",") {
            let pair = item.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, !pair[0].isEmpty else { return ([:], "'\(item)' is not NAME:PROTOCOL") }
            guard let security = SecurityProtocol(rawValue: pair[1]) else {
                return ([:], "'\(pair[1])' is not one of \(SecurityProtocol.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            map[pair[0]] = security
        }
        return (map, nil)
    }
}
