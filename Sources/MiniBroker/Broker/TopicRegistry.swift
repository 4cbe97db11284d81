import Foundation
import KafkaLog
import KafkaWire
import Logging
import NIOConcurrencyHelpers

/// A topic as the broker knows it.
public struct TopicState: Sendable {
    public var name: String
    public var id: KafkaUUID
    public var partitionCount: Int32
    /// Topic-level config overrides (dynamic topic configs).
    public var overrides: [String: String]
}

/// Why a topic operation is refused, with the Kafka error it maps to.
public struct TopicError: Error, Sendable {
    public let code: ErrorCode
    public let message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The topics of the broker and their partition logs. Topic metadata lives beside the data, so the
/// log directory alone restores the broker:
///
///     <log.dirs>/<topic>-<n>/partition.metadata     "version: 0\ntopic_id: <base64url id>" (Kafka's format)
///     <log.dirs>/__topic_configs/<topic>.properties  the topic's config overrides
public final class TopicRegistry: Sendable {
    public static let maxNameLength = 249
    /// The broker's own topics (Kafka's Topic.isInternal): clients may read them but not produce
    /// to, delete, truncate, grow or reconfigure them.
    public static let internalTopics: Set<String> = ["__consumer_offsets", "__transaction_state"]

    public static func isInternal(_ name: String) -> Bool { internalTopics.contains(name) }
    let logs: LogManager
    let brokerConfig: BrokerConfig
    let logger: Logger
    /// The topics, reachable only through the lock (changes write files while holding it, so that
    /// two changes of one topic cannot interleave).
    private let table = NIOLockedValueBox(TopicTable())
    private var configDirectory: String { logs.directory + "/__topic_configs" }

    init(logs: LogManager, brokerConfig: BrokerConfig, logger: Logger) {
        self.logs = logs
        self.brokerConfig = brokerConfig
        self.logger = logger
    }

    /// Opens every partition and rebuilds the topic list from the directory. What cannot be trusted
    /// is left out with a log line naming it, never fatal: a topic config that no longer validates,
    /// a directory of an invalid topic name, partitions that do not follow on from partition 0.
    func load() throws {
        try LogDirectory.create(configDirectory)
        var overrides: [String: [String: String]] = [:]
        for file in try LogDirectory.list(configDirectory) where file.hasSuffix(".properties") {
            let name = String(file.dropLast(".properties".count))
            var values = Self.parseProperties(try LogDirectory.readText(configDirectory + "/" + file) ?? "")
            for (key, value) in values {
                if let problem = TopicConfig.problem(key: key, value: value) {
                    logger.warning("ignoring topic config in \(configDirectory)/\(file): \(problem)")
                    values[key] = nil
                }
            }
            overrides[name] = values
        }
        try logs.loadAll { [brokerConfig] topic in
            TopicConfig.logConfig(overrides: overrides[topic] ?? [:], broker: brokerConfig)
        }
        var partitionsByTopic: [String: Set<Int32>] = [:]
        for tp in logs.all.keys { partitionsByTopic[tp.topic, default: []].insert(tp.partition) }
        var loaded: [String: TopicState] = [:]
        for (name, partitions) in partitionsByTopic.sorted(by: { $0.key < $1.key }) {
            // A topic's partitions are 0..<n, created in that order: n is how far they run unbroken.
            // The count is never taken from a directory name ("x-2147483647" would mean 2^31 partitions).
            var count: Int32 = 0
            while partitions.contains(count) { count += 1 }
            let valid = TopicRegistry.nameProblem(name) == nil
            for p in partitions where !valid || p >= count {
                let tp = TopicPartition(name, p)
                let why = valid ? "partition \(p) does not follow on from partition 0 of \(name) (it has \(count))" : "\(name) is not a valid topic name"
                logger.warning("not loading \(logs.directory)/\(tp): \(why)")
                logs.unload(tp)
            }
            guard valid, count > 0 else { continue }
            var topic = TopicState(name: name, id: .zero, partitionCount: count, overrides: overrides[name] ?? [:])
            for p in 0..<count where topic.id == .zero {
                if let id = readTopicId(TopicPartition(name, p)) { topic.id = id }
            }
            if topic.id == .zero {
                topic.id = KafkaUUID.random()
                for p in 0..<count { try writeTopicId(topic.id, TopicPartition(name, p)) }
            }
            loaded[name] = topic
        }
        table.withLockedValue { $0 = TopicTable(loaded) }
        logger.info("loaded \(loaded.count) topic(s) from \(logs.directory)")
    }

    public var all: [TopicState] { table.withLockedValue { Array($0.topics.values) }.sorted { $0.name < $1.name } }

    public func topic(_ name: String) -> TopicState? { table.withLockedValue { $0.topics[name] } }

    public func topic(id: KafkaUUID) -> TopicState? { table.withLockedValue { $0.topic(id: id) } }

    /// Runs `body` with the table locked; its TopicError comes out as itself.
    private func withTable<T>(_ body: (inout TopicTable) throws(TopicError) -> T) throws(TopicError) -> T {
        let result: Result<T, TopicError> = table.withLockedValue { t in Result { () throws(TopicError) -> T in try body(&t) } }
        return try result.get()
    }

    public func log(_ topic: String, _ partition: Int32) -> PartitionLog? { logs.log(TopicPartition(topic, partition)) }

    // MARK: Names

    /// Kafka's topic name rules: 1-249 of [a-zA-Z0-9._-], not "." or "..".
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "Topic name is invalid: the empty string is not allowed" }
        if name == "." || name == ".." { return "Topic name is invalid: '.' and '..' are not allowed" }
        if name.utf8.count > maxNameLength {
            return "Topic name is invalid: '\(name)' is longer than the maximum of \(maxNameLength) characters"
        }
        let legal = name.utf8.allSatisfy { c in
            (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 46 || c == 95 || c == 45
        }
        return legal ? nil : "Topic name is invalid: '\(name)' contains a character other than ASCII alphanumerics, '.', '_' and '-'"
    }

    // MARK: Changes

    /// Creates a topic (or only checks that it could be created).
    @discardableResult
    public func create(name: String, partitions: Int32, overrides: [String: String], validateOnly: Bool) throws(TopicError) -> TopicState {
        if let problem = Self.nameProblem(name) { throw TopicError(.invalidTopicException, problem) }
        guard partitions > 0 else {
            throw TopicError(.invalidPartitions, "Number of partitions was set to an invalid non-positive value.")
        }
        for (key, value) in overrides {
            if let problem = TopicConfig.problem(key: key, value: value) { throw TopicError(.invalidConfig, problem) }
        }
        return try withTable { (t: inout TopicTable) throws(TopicError) in
            if t.topics[name] != nil { throw TopicError(.topicAlreadyExists, "Topic '\(name)' already exists.") }
            // Kafka refuses names that differ only by '.' versus '_' (their metric names would collide).
            if let other = t.collision(with: name) {
                throw TopicError(.invalidTopicException, "Topic '\(name)' collides with existing topic: \(other)")
            }
            let topic = TopicState(name: name, id: KafkaUUID.random(), partitionCount: partitions, overrides: overrides)
            if validateOnly { return topic }
            var created: Int32 = 0
            do {
                try writeOverrides(topic)
                for p in 0..<partitions {
                    let tp = TopicPartition(name, p)
                    _ = try logs.createLog(tp, config: TopicConfig.logConfig(overrides: overrides, broker: brokerConfig))
                    created = p + 1
                    try writeTopicId(topic.id, tp)
                }
                try logs.checkpoint()
            } catch {
                // Nothing of a topic that failed half-way stays: no directories, no open files.
                removeLogs(of: name, 0..<created)
                try? LogDirectory.remove(configDirectory + "/" + name + ".properties")
                logger.error("creating topic \(name) failed: \(error)")
                throw TopicError(.kafkaStorageError, "Creating topic '\(name)' failed: \(error)")
            }
            t.set(topic)
            logger.info("created topic", metadata: ["topic": "\(name)", "partitions": "\(partitions)", "id": "\(topic.id)"])
            return topic
        }
    }

    /// Closes and deletes the logs of partitions created by a change that failed.
    private func removeLogs(of name: String, _ partitions: Range<Int32>) {
        for p in partitions { try? logs.deleteLog(TopicPartition(name, p)) }
    }

    public func delete(name: String) throws(TopicError) -> TopicState {
        if Self.isInternal(name) {
            throw TopicError(.invalidRequest, "Cannot delete internal topic \(name): the broker keeps its state there.")
        }
        return try withTable { (t: inout TopicTable) throws(TopicError) in
            guard let topic = t.remove(name) else {
                throw TopicError(.unknownTopicOrPartition, "This server does not host this topic-partition.")
            }
            do {
                for p in 0..<topic.partitionCount { try logs.deleteLog(TopicPartition(name, p)) }
                try LogDirectory.remove(configDirectory + "/" + name + ".properties")
                try logs.checkpoint()
            } catch {
                logger.error("deleting topic \(name) failed: \(error)")
                throw TopicError(.kafkaStorageError, "Deleting topic '\(name)' failed: \(error)")
            }
            logger.info("deleted topic", metadata: ["topic": "\(name)"])
            return topic
        }
    }

    public func addPartitions(name: String, count: Int32, validateOnly: Bool) throws(TopicError) {
        if Self.isInternal(name) {
            throw TopicError(.invalidRequest, "Cannot add partitions to internal topic \(name).")
        }
        return try withTable { (t: inout TopicTable) throws(TopicError) in
            guard var topic = t.topics[name] else {
                throw TopicError(.unknownTopicOrPartition, "This server does not host this topic-partition.")
            }
            if count == topic.partitionCount {
                throw TopicError(.invalidPartitions, "Topic already has \(count) partition(s).")
            }
            guard count > topic.partitionCount else {
                throw TopicError(.invalidPartitions, "The topic \(name) currently has \(topic.partitionCount) partition(s); \(count) would not be an increase.")
            }
            if validateOnly { return }
            var created = topic.partitionCount
            do {
                for p in topic.partitionCount..<count {
                    let tp = TopicPartition(name, p)
                    _ = try logs.createLog(tp, config: TopicConfig.logConfig(overrides: topic.overrides, broker: brokerConfig))
                    created = p + 1
                    try writeTopicId(topic.id, tp)
                }
            } catch {
                removeLogs(of: name, topic.partitionCount..<created)
                logger.error("adding partitions to \(name) failed: \(error)")
                throw TopicError(.kafkaStorageError, "Adding partitions to '\(name)' failed: \(error)")
            }
            topic.partitionCount = count
            t.set(topic)
            logger.info("added partitions", metadata: ["topic": "\(name)", "partitions": "\(count)"])
        }
    }

    /// Replaces a topic's overrides (after validation) and applies them to its logs.
    public func setOverrides(name: String, _ overrides: [String: String], validateOnly: Bool) throws(TopicError) {
        for (key, value) in overrides {
            if let problem = TopicConfig.problem(key: key, value: value) { throw TopicError(.invalidConfig, problem) }
        }
        return try withTable { (t: inout TopicTable) throws(TopicError) in
            guard var topic = t.topics[name] else {
                throw TopicError(.unknownTopicOrPartition, "Topic '\(name)' does not exist.")
            }
            if validateOnly { return }
            topic.overrides = overrides
            do { try writeOverrides(topic) } catch {
                throw TopicError(.kafkaStorageError, "Saving configs of '\(name)' failed: \(error)")
            }
            t.set(topic)
            let config = TopicConfig.logConfig(overrides: overrides, broker: brokerConfig)
            for p in 0..<topic.partitionCount { logs.log(TopicPartition(name, p))?.config = config }
            logger.info("updated topic configs", metadata: ["topic": "\(name)", "configs": "\(overrides.sorted { $0.key < $1.key })"])
        }
    }

    // MARK: Files

    private func writeOverrides(_ topic: TopicState) throws {
        let path = configDirectory + "/" + topic.name + ".properties"
        if topic.overrides.isEmpty { return try LogDirectory.remove(path) }
        let text = topic.overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
        try LogDirectory.writeAtomically(text, to: path)
    }

    static func parseProperties(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            result[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return result
    }

    private func writeTopicId(_ id: KafkaUUID, _ tp: TopicPartition) throws {
        try LogDirectory.writeAtomically("version: 0\ntopic_id: \(id.base64URL)", to: logs.directory + "/\(tp)/partition.metadata")
    }

    private func readTopicId(_ tp: TopicPartition) -> KafkaUUID? {
        guard let text = try? LogDirectory.readText(logs.directory + "/\(tp)/partition.metadata") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("topic_id:") {
            return KafkaUUID(base64URL: line.dropFirst("topic_id:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}

extension KafkaUUID {
    /// Kafka's textual form of a Uuid: 22 characters of URL-safe base64 without padding.
    public var base64URL: String {
        var bytes = [UInt8]()
        withUnsafeBytes(of: high.bigEndian) { bytes += $0 }
        withUnsafeBytes(of: low.bigEndian) { bytes += $0 }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public init?(base64URL text: String) {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        guard let data = Data(base64Encoded: standard), data.count == 16 else { return nil }
        let bytes = [UInt8](data)
        let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        self.init(high: high, low: low)
    }
}

/// The topics by name, with an index by id kept in step (lookups by id are O(1)).
struct TopicTable {
    private(set) var topics: [String: TopicState] = [:]
    private var namesById: [KafkaUUID: String] = [:]

    init(_ topics: [String: TopicState] = [:]) {
        for topic in topics.values { set(topic) }
    }

    /// Names with '.' read as '_', to the topic holding it (Kafka refuses names that collide so).
    private var namesByNormalized: [String: String] = [:]

    func topic(id: KafkaUUID) -> TopicState? { namesById[id].flatMap { topics[$0] } }

    /// The existing topic whose name differs from `name` only by '.' against '_', if any.
    func collision(with name: String) -> String? { namesByNormalized[Self.normalized(name)] }

    static func normalized(_ name: String) -> String { name.replacingOccurrences(of: ".", with: "_") }

    mutating func set(_ topic: TopicState) {
        if let old = topics[topic.name], old.id != topic.id { namesById[old.id] = nil }
        topics[topic.name] = topic
        namesById[topic.id] = topic.name
        namesByNormalized[Self.normalized(topic.name)] = topic.name
    }

    mutating func remove(_ name: String) -> TopicState? {
        guard let topic = topics.removeValue(forKey: name) else { return nil }
        namesById[topic.id] = nil
        namesByNormalized[Self.normalized(name)] = nil
        return topic
    }
}
