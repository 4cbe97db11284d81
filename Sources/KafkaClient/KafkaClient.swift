import CoreMetrics
import Foundation
import KafkaWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A broker of the cluster as Metadata describes it.
public struct BrokerAddress: Hashable, Sendable {
    public var nodeId: Int32
    public var host: String
    public var port: Int
}

/// A partition: its leader and, for the producer, nothing else matters on a single node.
public struct PartitionInfo: Hashable, Sendable {
    public var partition: Int32
    /// -1: no leader now.
    public var leader: Int32

    public init(partition: Int32, leader: Int32) {
        self.partition = partition
        self.leader = leader
    }
}

public struct TopicInfo: Hashable, Sendable {
    public var name: String
    public var id: KafkaUUID
    /// Sorted by partition number.
    public var partitions: [PartitionInfo]

    public init(name: String, id: KafkaUUID, partitions: [PartitionInfo]) {
        self.name = name
        self.id = id
        self.partitions = partitions
    }
}

/// What the client knows of the cluster. The producer, the consumer and the admin client of a
/// `KafkaClient` all read this one cache (each keeps the latest snapshot, so a record costs no hop
/// to the client's actor); topic ids and the id → name index are kept here and nowhere else.
public struct ClusterMetadata: Sendable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: BrokerAddress]
    public var topics: [String: TopicInfo]
    /// Topics the broker reported an error for, with the error.
    public var topicErrors: [String: ErrorCode]
    /// Topic names by id, for answers that name topics by id only (Produce v13, Fetch v13+,
    /// OffsetFetch v10). Rebuilt from `topics` by every refresh.
    public private(set) var topicNames: [KafkaUUID: String] = [:]

    public init(clusterId: String? = nil, controllerId: Int32 = -1, brokers: [Int32: BrokerAddress] = [:],
                topics: [String: TopicInfo] = [:], topicErrors: [String: ErrorCode] = [:]) {
        self.clusterId = clusterId
        self.controllerId = controllerId
        self.brokers = brokers
        self.topics = topics
        self.topicErrors = topicErrors
        reindexTopicNames()
    }

    mutating func reindexTopicNames() {
        topicNames = Dictionary(topics.values.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        topicNames[.zero] = nil
    }

    /// How many partitions a topic has, if it is known.
    public func partitionCount(of topic: String) -> Int32? {
        topics[topic].map { Int32(truncatingIfNeeded: $0.partitions.count) }
    }

    /// A partition's leader, or nil when the topic is unknown or the partition has no leader now.
    public func leader(of partition: TopicPartition) -> Int32? {
        guard let partitions = topics[partition.topic]?.partitions else { return nil }
        // Partitions are kept sorted and are normally 0..<count: look there first.
        let index = Int(partition.partition)
        let info = index >= 0 && index < partitions.count && partitions[index].partition == partition.partition
            ? partitions[index] : partitions.first { $0.partition == partition.partition }
        guard let leader = info?.leader, leader >= 0 else { return nil }
        return leader
    }

    /// A topic's id, or the zero id when it is not known (requests of versions that name topics by
    /// name ignore it).
    public func topicId(of topic: String) -> KafkaUUID { topics[topic]?.id ?? .zero }

    /// The topic an answer names: its name where the answer has one, else the name of its id.
    public func topicName(_ name: String?, id: KafkaUUID) -> String {
        if let name, !name.isEmpty { return name }
        return topicNames[id] ?? ""
    }
}

/// What a connection carries. A broker answers a connection's requests in order, so requests that
/// may be parked at the broker get connections of their own: a consumer's Fetches (up to
/// fetch.max.wait.ms) and its group coordinator's requests (JoinGroup waits for the rebalance), so
/// that commits and heartbeats never wait behind a Fetch (Java's consumer does the same), and a
/// transactional producer's EndTxn (it waits for the markers). Those are per `ClientLane`: the
/// producer, consumer and admin client sharing a `KafkaClient` never queue behind each other's
/// parked requests, while Produce, Metadata and admin requests (answered at once) share `.data`.
public enum ConnectionPurpose: Hashable, Sendable {
    case data
    case fetch(ClientLane)
    case groupCoordinator(ClientLane)
    case transactionCoordinator(ClientLane)

    var lane: ClientLane? {
        switch self {
        case .data: return nil
        case .fetch(let lane), .groupCoordinator(let lane), .transactionCoordinator(let lane): return lane
        }
    }
}

/// One user of a shared `KafkaClient` (a consumer, a producer): its connections for requests that
/// may be parked at the broker are its own. `shared` is the lane of occasional requests (the admin
/// client's).
public struct ClientLane: Hashable, Sendable {
    let id: Int

    public static let shared = ClientLane(id: 0)

    private init(id: Int) {
        self.id = id
    }

    /// A lane no other user has.
    public init() {
        id = nextLaneId.withLockedValue { last in
            last += 1
            return last
        }
    }
}

private let nextLaneId = NIOLockedValueBox(0)

/// What a transactional producer needs of a consumer group to commit offsets inside a transaction
/// (KIP-447): the broker refuses the commit of a member that is no longer in the group's
/// generation, so a zombie cannot commit. From `KafkaConsumer.groupMetadata()`.
public struct ConsumerGroupMetadata: Sendable, Equatable {
    public var groupId: String
    public var generationId: Int32
    public var memberId: String
    public var groupInstanceId: String?

    public init(groupId: String, generationId: Int32 = -1, memberId: String = "", groupInstanceId: String? = nil) {
        self.groupId = groupId
        self.generationId = generationId
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
    }
}

/// The shared core of the producer, the consumer and the admin client: bootstrap from
/// `bootstrap.servers`, one connection per broker and purpose (pipelined), negotiated API versions,
/// one TLS context and one metadata cache. Each producer or consumer makes its own unless it is
/// given one (`KafkaProducer(configuration:client:)`, `KafkaConsumer(configuration:client:)`,
/// `KafkaAdminClient(client:)`): clients of one process that share it share the cluster's metadata,
/// the bootstrap connection and the connections for Produce, Metadata and admin requests.
public actor KafkaClient {
    public let bootstrapServers: [(host: String, port: Int)]
    public let clientId: String
    let group: EventLoopGroup
    private struct ConnectionKey: Hashable {
        var node: Int32
        var purpose: ConnectionPurpose
    }
    private var connections: [ConnectionKey: BrokerConnection] = [:]
    private var bootstrapConnection: BrokerConnection?
    /// Set by `close()`: a connection that completes afterwards (a connect under way) is closed, not kept.
    private var closed = false
    /// Lanes closed by `closeConnections(of:)`: their connections are not made again.
    private var closedLanes: Set<ClientLane> = []
    public private(set) var metadata: ClusterMetadata?
    /// The client's metrics (request latencies here; records, retries and rebalances in the producer
    /// and consumer), or nil for none.
    public nonisolated let meters: ClientMeters?
    /// request.timeout.ms for what the client asks itself (ApiVersions when it connects, Metadata): a
    /// broker that accepts connections and never answers is an error after it, not a hang.
    public nonisolated let requestTimeout: TimeAmount
    /// security.protocol and SASL credentials: every connection authenticates before it is used.
    public nonisolated let security: KafkaSecurity
    /// The TLS context every connection shares: its PEM files are read once, at the first connection.
    private var sharedTLSContext: NIOSSLContext?

    private func tlsContext() throws -> NIOSSLContext? {
        guard security.usesTls else { return nil }
        if let sharedTLSContext { return sharedTLSContext }
        let context = try security.tls.makeContext()
        sharedTLSContext = context
        return context
    }

    /// The client a producer or consumer makes for itself from its configuration's settings, with its
    /// metrics going to `metricsFactory` (nil: the one bootstrapped in `MetricsSystem`).
    package static func forOwner(bootstrapServers: String, clientId: String, metricsFactory: (any MetricsFactory)?,
                                 requestTimeoutMs: Int, security: KafkaSecurity) throws -> KafkaClient {
        try KafkaClient(bootstrapServers: bootstrapServers, clientId: clientId,
                        meters: ClientMeters(factory: metricsFactory ?? MetricsSystem.factory, clientId: clientId),
                        requestTimeout: .milliseconds(Int64(requestTimeoutMs)), security: security)
    }

    /// `bootstrapServers` as Kafka writes it: "host:port,host:port".
    public init(bootstrapServers: String, clientId: String = "swift-kafka", group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                meters: ClientMeters? = nil, requestTimeout: TimeAmount = .seconds(30), security: KafkaSecurity = .plaintext) throws {
        try security.validate()
        var servers: [(String, Int)] = []
        for item in bootstrapServers.split(separator: ",") {
            let entry = item.trimmingCharacters(in: .whitespaces)
            guard let colon = entry.lastIndex(of: ":"), let port = Int(entry[entry.index(after: colon)...]), (1...65535).contains(port) else {
                throw KafkaClientError(.connection, "bootstrap server '\(entry)' is not host:port")
            }
            servers.append((String(entry[..<colon]), port))
        }
        guard !servers.isEmpty else { throw KafkaClientError(.connection, "no bootstrap server given") }
        self.bootstrapServers = servers
        self.clientId = clientId
        self.group = group
        self.meters = meters
        self.requestTimeout = requestTimeout
        self.security = security
    }

    /// A connection to any bootstrap server (the first that answers).
    public func anyConnection() async throws -> BrokerConnection {
        if let connection = bootstrapConnection, connection.isActive { return connection }
        // Another open connection for requests answered at once; never a lane's (a Fetch or a
        // JoinGroup may be parked on it, and its owner may close it).
        if let connection = connections.first(where: { $0.key.purpose == .data && $0.value.isActive })?.value { return connection }
        var failures: [String] = []
        for server in bootstrapServers {
            do {
                let connection = try await BrokerConnection.connect(host: server.host, port: server.port, clientId: clientId, group: group,
                                                                    requestTimeout: requestTimeout, meters: meters, security: security,
                                                                    tlsContext: try tlsContext())
                try keepUnlessClosed(connection)
                bootstrapConnection = connection
                return connection
            } catch let error as KafkaClientError where error.kind == .closed || error.kind == .authentication {
                throw error
            } catch {
                failures.append("\(error)")
            }
        }
        throw KafkaClientError(.connection, "no bootstrap server reachable: \(failures.joined(separator: "; "))")
    }

    /// The connection to a broker by node id for `purpose`, opened on first use.
    public func connection(to nodeId: Int32, for purpose: ConnectionPurpose = .data) async throws -> BrokerConnection {
        let key = ConnectionKey(node: nodeId, purpose: purpose)
        if let existing = connections[key], existing.isActive { return existing }
        if let refused = closedLaneError(purpose) { throw refused }
        var known = metadata
        if known?.brokers[nodeId] == nil { known = try await refreshMetadata(topics: []) }
        guard let address = known?.brokers[nodeId] else {
            throw KafkaClientError(.connection, "broker \(nodeId) is not in the cluster metadata")
        }
        let connection = try await BrokerConnection.connect(host: address.host, port: address.port, clientId: clientId, group: group,
                                                            requestTimeout: requestTimeout, meters: meters, security: security,
                                                            tlsContext: try tlsContext())
        try keepUnlessClosed(connection, for: purpose)
        // Another caller may have connected while this one waited: keep one connection per broker and purpose.
        if let other = connections[key], other.isActive {
            connection.close()
            return other
        }
        connections[key]?.close()
        connections[key] = connection
        return connection
    }

    /// The group coordinator of `group` (FindCoordinator, key type 0): its node and the connection
    /// kept for coordinator requests (commits, heartbeats, offsets), apart from the data connection.
    public func groupCoordinator(of group: String, timeout: TimeAmount? = nil,
                                 lane: ClientLane = .shared) async throws -> (node: Int32, connection: BrokerConnection) {
        try await coordinator(of: group, keyType: 0, kind: "group", purpose: .groupCoordinator(lane), timeout: timeout)
    }

    /// The transaction coordinator of `transactionalId` (FindCoordinator, key type 1) and a
    /// connection of its own.
    public func transactionCoordinator(of transactionalId: String, timeout: TimeAmount? = nil,
                                       lane: ClientLane = .shared) async throws -> (node: Int32, connection: BrokerConnection) {
        try await coordinator(of: transactionalId, keyType: 1, kind: "transactional id", purpose: .transactionCoordinator(lane), timeout: timeout)
    }

    private func coordinator(of key: String, keyType: Int8, kind: String, purpose: ConnectionPurpose,
                             timeout: TimeAmount?) async throws -> (node: Int32, connection: BrokerConnection) {
        let response = try await anyConnection().send(FindCoordinatorRequest(key: key, keyType: keyType, coordinatorKeys: [key]), timeout: timeout)
        // v4+ answers per key, older versions at the top level.
        let (code, node, message) = response.coordinators.first.map { ($0.errorCode, $0.nodeId, $0.errorMessage) }
            ?? (response.errorCode, response.nodeId, response.errorMessage)
        guard code == 0 else {
            let error = ErrorCode(rawValue: code)
            throw KafkaClientError(.broker(error), "finding the coordinator of \(kind) '\(key)' failed: \(error)\(message.map { ": \($0)" } ?? "")")
        }
        return (node, try await connection(to: node, for: purpose))
    }

    /// Fetches metadata for `topics` (nil: all topics) and caches it.
    @discardableResult
    public func refreshMetadata(topics: [String]?, allowAutoTopicCreation: Bool = false) async throws -> ClusterMetadata {
        let connection = try await anyConnection()
        let request = MetadataRequest(topics: topics?.map { .init(name: $0) }, allowAutoTopicCreation: allowAutoTopicCreation)
        let response: MetadataResponse
        do {
            response = try await connection.send(request, timeout: requestTimeout)
        } catch {
            bootstrapConnection = nil
            throw error
        }
        var result = metadata ?? ClusterMetadata()
        result.clusterId = response.clusterId
        result.controllerId = response.controllerId
        // A full listing replaces the cached topics (deleted ones must go); a partial one updates them.
        if topics == nil {
            result.topics = [:]
            result.topicErrors = [:]
        }
        result.brokers = Dictionary(uniqueKeysWithValues: response.brokers.map {
            ($0.nodeId, BrokerAddress(nodeId: $0.nodeId, host: $0.host, port: Int($0.port)))
        })
        for topic in response.topics {
            guard let name = topic.name else { continue }
            if topic.errorCode != 0 {
                let error = ErrorCode(rawValue: topic.errorCode)
                result.topicErrors[name] = error
                // A passing problem (LEADER_NOT_AVAILABLE during an election) keeps what was known of
                // the topic, without leaders; a topic that does not exist is forgotten.
                if error.isRetriable && error != .unknownTopicOrPartition && error != .unknownTopicId, var known = metadata?.topics[name] {
                    known.partitions = known.partitions.map { PartitionInfo(partition: $0.partition, leader: -1) }
                    result.topics[name] = known
                } else {
                    result.topics[name] = nil
                }
                continue
            }
            result.topicErrors[name] = nil
            result.topics[name] = TopicInfo(name: name, id: topic.topicId, partitions: topic.partitions.map {
                PartitionInfo(partition: $0.partitionIndex, leader: $0.leaderId)
            }.sorted { $0.partition < $1.partition })
        }
        result.reindexTopicNames()
        metadata = result
        return result
    }

    /// A connection made while `close()` ran, or while its owner closed its lane, is closed at once.
    private func keepUnlessClosed(_ connection: BrokerConnection, for purpose: ConnectionPurpose = .data) throws {
        let refused = closed ? KafkaClientError(.closed, "the client is closed") : closedLaneError(purpose)
        guard let refused else { return }
        connection.close()
        throw refused
    }

    /// Why a connection for `purpose` may not be made: its owner closed its lane.
    private func closedLaneError(_ purpose: ConnectionPurpose) -> KafkaClientError? {
        guard let lane = purpose.lane, closedLanes.contains(lane) else { return nil }
        return KafkaClientError(.closed, "the producer or consumer of this connection is closed")
    }

    /// Closes the connections of one lane (a producer or consumer done with a shared client); the
    /// client and its other connections stay.
    public func closeConnections(of lane: ClientLane) {
        if lane != .shared { closedLanes.insert(lane) }
        for (key, connection) in connections where key.purpose.lane == lane {
            connection.close()
            connections[key] = nil
        }
    }

    public func close() {
        closed = true
        for connection in connections.values { connection.close() }
        bootstrapConnection?.close()
        connections.removeAll()
        bootstrapConnection = nil
    }
}
