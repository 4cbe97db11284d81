import Foundation
import KafkaLog
import KafkaWire
import Logging
import NIOConcurrencyHelpers

/// The broker's state behind the request layer: configuration, the log directory, topics and the
/// producer id allocator. Shared by every connection; each piece locks what it owns.
public final class Broker: Sendable {
    public let config: BrokerConfig
    public let logs: LogManager
    public let topics: TopicRegistry
    public let logger: Logger
    public let clusterId: String
    /// Keeps compacted topics compacted; started by the server (`BrokerServer.run`), or cleaning on
    /// demand (`cleanDirtiest`) where a test drives the broker.
    public let cleaner: LogCleaner
    let producerIds: ProducerIdAllocator
    /// The client quotas (AlterClientQuotas) and the rates measured against them.
    let quotas: ClientQuotaManager
    /// The SCRAM users (AlterUserScramCredentials), which SASL listeners authenticate against.
    let scramCredentials: ScramCredentialStore
    /// The ACLs and the rules that check every request against them; nil without authorizer.class.name.
    let authorizer: Authorizer?
    /// The finalized feature levels (ApiVersions, UpdateFeatures).
    let features: FeatureControl
    /// What the broker counts for the Prometheus endpoint (off without metrics.port).
    public let metrics: BrokerMetrics

    public init(config: BrokerConfig, logger: Logger) throws {
        try config.validate()
        self.config = config
        self.logger = logger
        metrics = BrokerMetrics(enabled: config.metricsPort >= 0)
        logs = try LogManager(directory: config.logDirectory, logger: logger)
        clusterId = try Self.loadMetaProperties(directory: config.logDirectory, nodeId: config.brokerId)
        producerIds = try ProducerIdAllocator(path: config.logDirectory + "/producer-id-block")
        topics = TopicRegistry(logs: logs, brokerConfig: config, logger: logger)
        try topics.load()
        cleaner = LogCleaner(logs: logs, config: config.cleaner, logger: logger)
        features = try FeatureControl(directory: config.logDirectory)
        quotas = ClientQuotaManager(store: try ClientQuotaStore(directory: config.logDirectory), window: config.quotaWindow)
        scramCredentials = try ScramCredentialStore(directory: config.logDirectory)
        authorizer = config.authorizerEnabled
            ? Authorizer(store: try AclStore(directory: config.logDirectory), superUsers: config.superUsers,
                         allowEveryoneIfNoAclFound: config.allowEveryoneIfNoAclFound, logger: logger, metrics: metrics)
            : nil
    }

    public var brokerId: Int32 { config.brokerId }

    /// The address clients of the first listener are told to use.
    public var advertised: Listener { advertised(for: config.listeners[0].name) }

    /// The ports the listeners were bound to, by name (a listener configured with port 0 gets one then).
    let boundPorts = NIOLockedValueBox<[String: Int]>([:])

    /// The address clients that came in through `listenerName` are told to use: its entry in
    /// advertised.listeners, else the listener itself (with its bound port if it was configured as 0).
    /// An unknown name is answered with the first listener's address.
    public func advertised(for listenerName: String) -> Listener {
        let own = config.listeners.first { $0.name == listenerName } ?? config.listeners[0]
        if let advertised = config.advertisedListeners.first(where: { $0.name == own.name }), advertised.port != 0 { return advertised }
        var listener = config.advertisedListeners.first { $0.name == own.name } ?? own
        if listener.port == 0, let bound = boundPorts.withLockedValue({ $0[own.name] }) { listener.port = bound }
        return listener
    }

    private let maintenanceState = NIOLockedValueBox((retention: Int64(0), checkpoint: Int64(0)))
    static let checkpointIntervalMs: Int64 = 60_000

    /// Periodic work, called about once a second: flush.ms for every partition, retention every
    /// log.retention.check.interval.ms, checkpoints every minute (Kafka's default interval).
    public func runMaintenance(nowMs: Int64 = PartitionLog.currentTimeMs()) {
        let (retentionDue, checkpointDue) = maintenanceState.withLockedValue { last -> (Bool, Bool) in
            let r = nowMs - last.retention >= config.retentionCheckIntervalMs
            let c = nowMs - last.checkpoint >= Self.checkpointIntervalMs
            if r { last.retention = nowMs }
            if c { last.checkpoint = nowMs }
            return (r, c)
        }
        for (tp, log) in logs.all {
            do {
                if retentionDue { try log.applyRetention(nowMs: nowMs) }
                try log.flushIfDue(nowMs: nowMs)
            } catch {
                logger.error("maintenance of \(tp) failed: \(error)")
            }
        }
        if checkpointDue || retentionDue {
            do { try logs.checkpoint() } catch { logger.error("writing checkpoints failed: \(error)") }
        }
    }

    /// Flushes everything and writes the checkpoints and the clean-shutdown marker.
    public func shutdown() throws {
        try logs.shutdown()
        logger.info("log directory closed cleanly", metadata: ["dir": "\(logs.directory)"])
    }

    /// Reads or writes `meta.properties` (KRaft's: version, cluster.id, node.id) and returns the cluster id.
    static func loadMetaProperties(directory: String, nodeId: Int32) throws -> String {
        let path = directory + "/meta.properties"
        if let text = try LogDirectory.readText(path) {
            let values = TopicRegistry.parseProperties(text)
            if let id = values["cluster.id"], !id.isEmpty { return id }
        }
        let clusterId = KafkaUUID.random().base64URL
        try LogDirectory.writeAtomically("version=1\ncluster.id=\(clusterId)\nnode.id=\(nodeId)\ndirectory.id=\(KafkaUUID.random().base64URL)\n", to: path)
        return clusterId
    }
}

/// Hands out producer ids that are never reused, even across restarts: ids come from blocks of 1000
/// whose end is persisted before any id of the block is handed out (as Kafka's controller does).
final class ProducerIdAllocator: Sendable {
    static let blockSize: Int64 = 1000
    private let path: String
    /// The next id and the end of the persisted block, reachable only through the lock.
    private let state: NIOLockedValueBox<(next: Int64, blockEnd: Int64)>

    init(path: String) throws {
        self.path = path
        var stored: Int64 = 0
        if let text = try LogDirectory.readText(path) {
            // Producer ids must never be reused: a file that cannot be read as the end of the last
            // block is not guessed around, it stops the start with its name.
            guard let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), value >= 0,
                  value <= Int64.max - Self.blockSize else {
                throw LogError(.corrupt, "\(path) does not hold a producer id block end (a number from 0 to \(Int64.max - Self.blockSize)); it says '\(text.prefix(40))'")
            }
            stored = value
        }
        state = NIOLockedValueBox((stored, stored))
    }

    func allocate() throws -> Int64 {
        try state.withLockedValue { state in
            if state.next >= state.blockEnd {
                guard state.next <= Int64.max - Self.blockSize else { throw LogError(.invalidRequest, "producer ids are exhausted") }
                let end = state.next + Self.blockSize
                try LogDirectory.writeAtomically("\(end)\n", to: path)
                state.blockEnd = end
            }
            defer { state.next += 1 }
            return state.next
        }
    }
}
