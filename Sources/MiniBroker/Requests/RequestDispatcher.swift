import KafkaLog
import KafkaWire
import Logging
import NIOCore

/// What a handler answers.
public enum BrokerResponse: Sendable {
    case message(any KafkaResponse)
    /// A fetch response whose records go out with sendfile.
    case fetch(FetchResponseParts)
    /// acks=0 produce: nothing goes back.
    case none
    /// Kafka closes the connection instead of answering (e.g. acks=0 produce that failed).
    case close(String)
}

/// A response ready for the socket: byte buffers and file regions in order, and the duplicated file
/// handles to close once they are sent.
public struct ResponseFrame: @unchecked Sendable {
    public var parts: [IOData]
    public var fileHandles: [NIOFileHandle]
    /// Client quotas: how long (ms) the connection reads nothing more once this is sent (KIP-219).
    public var throttleMs: Int64 = 0
}

extension ResponseFrame {
    /// The size placeholder and the response header of an answer.
    static func head(correlationId: Int32, apiKey: ApiKey, version: Int16) -> ByteBuffer {
        var head = ByteBuffer()
        head.writeInteger(Int32(0))  // size, set once the body is written
        ResponseHeader(correlationId: correlationId).write(into: &head, version: apiKey.responseHeaderVersion(version))
        return head
    }

    /// One encoded response. A response past Int32.max bytes cannot be framed; the connection is closed
    /// instead of trapping (every response is bounded well below that, this is the last line).
    init(_ message: any KafkaResponse, correlationId: Int32, apiKey: ApiKey, version: Int16) throws(InvalidRequest) {
        var head = Self.head(correlationId: correlationId, apiKey: apiKey, version: version)
        message.write(into: &head, version: version)
        guard let size = Int32(exactly: head.readableBytes - 4) else {
            throw InvalidRequest(description: "a \(apiKey) response of \(head.readableBytes) bytes does not fit a frame")
        }
        head.setInteger(size, at: head.readerIndex)
        self.init(parts: [.byteBuffer(head)], fileHandles: [])
    }
}

/// A request the connection must be closed for, as Kafka does (unknown API key, unsupported version,
/// a body that does not parse).
public struct InvalidRequest: Error, CustomStringConvertible {
    public let description: String
}

/// The request layer: decodes frames with KafkaWire, calls the handler of each API, and encodes
/// the answer. It translates between the protocol and the broker's state; it owns no state.
public final class RequestDispatcher: Sendable {
    let broker: Broker
    let coordinator: GroupCoordinator
    /// Transactions: on the group coordinator's loop for its timers, ending transactions through it.
    public let transactions: TransactionCoordinator
    let logger: Logger
    /// Where fsyncs and file creation or deletion run (admin APIs, flushes due at produce).
    let blocking: BlockingExecutor

    /// The versions MiniBroker serves, and so advertises. Produce is advertised from v0 as Kafka 4
    /// does for librdkafka (KAFKA-18659), but versions below 3 are refused when they arrive.
    public static let served: [ApiKey: ClosedRange<Int16>] = [
        .apiVersions: 0...4,
        .saslHandshake: 0...1,
        .saslAuthenticate: 0...2,
        .metadata: 0...13,
        .produce: 0...13,
        .fetch: 4...18,
        .listOffsets: 1...11,
        .createTopics: 2...7,
        .deleteTopics: 1...6,
        .createPartitions: 0...3,
        .describeConfigs: 1...4,
        .alterConfigs: 0...2,
        .incrementalAlterConfigs: 0...1,
        .deleteRecords: 0...2,
        .initProducerId: 0...6,
        .describeCluster: 0...2,
        .offsetForLeaderEpoch: 2...4,
        .findCoordinator: 0...6,
        .joinGroup: 0...9,
        .syncGroup: 0...5,
        .heartbeat: 0...4,
        .leaveGroup: 0...5,
        .offsetCommit: 2...10,
        .offsetFetch: 1...10,
        .describeGroups: 0...6,
        .listGroups: 0...5,
        .deleteGroups: 0...2,
        .offsetDelete: 0...0,
        .consumerGroupHeartbeat: 0...1,
        .consumerGroupDescribe: 0...0,
        .describeLogDirs: 1...4,
        .describeTopicPartitions: 0...0,
        .electLeaders: 0...2,
        .listPartitionReassignments: 0...0,
        .alterPartitionReassignments: 0...1,
        .describeQuorum: 0...2,
        .describeProducers: 0...0,
        .describeAcls: 1...3,
        .createAcls: 1...3,
        .deleteAcls: 1...3,
        .describeUserScramCredentials: 0...0,
        .alterUserScramCredentials: 0...0,
        .listConfigResources: 0...1,
        .describeClientQuotas: 0...1,
        .alterClientQuotas: 0...1,
        .updateFeatures: 0...2,
        // EndTxn v5, TxnOffsetCommit v5 and AddPartitionsToTxn v5 are transaction version 2's: advertised
        // only while transaction.version is 2 (`transactionVersion2Apis`).
        .addPartitionsToTxn: 0...5,
        .addOffsetsToTxn: 0...4,
        .endTxn: 0...5,
        .txnOffsetCommit: 0...5,
        .describeTransactions: 0...0,
        .listTransactions: 0...2,
        .writeTxnMarkers: 0...1,
    ]

    /// The highest versions of the APIs transaction version 2 moved, while transaction.version is below 2.
    static let transactionVersion1Caps: [ApiKey: Int16] = [.addPartitionsToTxn: 4, .endTxn: 4, .txnOffsetCommit: 4]

    public init(broker: Broker, coordinator: GroupCoordinator, logger: Logger, blocking: BlockingExecutor = .inPlace) throws {
        self.blocking = blocking
        self.broker = broker
        self.coordinator = coordinator
        self.logger = logger
        transactions = try TransactionCoordinator(broker: broker, groups: coordinator, loop: coordinator.loop, logger: logger, blocking: blocking)
    }

    /// Handles one request frame (without its size prefix). Returns nil when nothing is to be sent.
    public func handle(_ frame: ByteBuffer, eventLoop: EventLoop, context: RequestContext = RequestContext()) -> EventLoopFuture<ResponseFrame?> {
        var buffer = frame
        guard let rawKey = buffer.getInteger(at: buffer.readerIndex, as: Int16.self),
              let version = buffer.getInteger(at: buffer.readerIndex + 2, as: Int16.self) else {
            return eventLoop.makeFailedFuture(InvalidRequest(description: "frame of \(frame.readableBytes) bytes has no request header"))
        }
        guard let apiKey = ApiKey(rawValue: rawKey) else {
            return eventLoop.makeFailedFuture(InvalidRequest(description: "unknown API key \(rawKey)"))
        }
        let header: RequestHeader
        do {
            // An ApiVersions request at a version we do not know is still read with the header its
            // version implies, and answered as v0 (KIP-511).
            let headerVersion = apiKey.validVersions.contains(version) || apiKey == .apiVersions
                ? apiKey.requestHeaderVersion(min(version, apiKey.validVersions.upperBound)) : 1
            header = try RequestHeader(from: &buffer, version: headerVersion)
        } catch {
            return eventLoop.makeFailedFuture(InvalidRequest(description: "unreadable request header: \(error)"))
        }
        guard let served = Self.served[apiKey] else {
            return eventLoop.makeFailedFuture(InvalidRequest(description: "API \(apiKey) (key \(rawKey)) is not enabled"))
        }
        if apiKey == .apiVersions && !served.contains(version) {
            let answer = ApiVersionsResponse(errorCode: ErrorCode.unsupportedVersion.rawValue, apiKeys: [
                .init(apiKey: ApiKey.apiVersions.rawValue, minVersion: served.lowerBound, maxVersion: served.upperBound),
            ])
            return eventLoop.makeSucceededFuture(try? encode(.message(answer), header: header, apiKey: apiKey, version: 0))
        }
        guard served.contains(version), apiKey != .produce || version >= 3 else {
            return eventLoop.makeFailedFuture(InvalidRequest(description: "API \(apiKey) v\(version) is not enabled"))
        }
        // With client quotas configured, the handling time counts against request_percentage; with
        // metrics on, the whole time to the answer is recorded.
        let enforcing = broker.quotas.isEnforcing
        let measuring = broker.metrics.enabled
        let started = enforcing || measuring ? NIODeadline.now() : .uptimeNanoseconds(0)
        let client = QuotaClient(user: context.principal.name, clientId: header.clientId ?? "")
        let response: EventLoopFuture<BrokerResponse>
        do {
            response = try dispatch(apiKey, version: version, header: header, body: &buffer, eventLoop: eventLoop,
                                    context: context, client: client)
        } catch {
            return eventLoop.makeFailedFuture(InvalidRequest(description: "\(apiKey) v\(version) request does not parse: \(error)"))
        }
        guard enforcing || measuring else {
            return response.flatMapThrowing { answer in
                if case .close(let reason) = answer { throw InvalidRequest(description: reason) }
                return try self.encode(answer, header: header, apiKey: apiKey, version: version)
            }
        }
        let handlerNanos = (NIODeadline.now() - started).nanoseconds
        let requestBytes = frame.readableBytes
        return response.flatMapThrowing { answer in
            if case .close(let reason) = answer { throw InvalidRequest(description: reason) }
            var answer = answer, throttleMs: Int64 = 0
            if enforcing {
                (answer, throttleMs) = self.applyQuotas(answer, apiKey: apiKey, version: version, requestBytes: requestBytes,
                                                        client: client, handlerNanos: handlerNanos, nowMs: PartitionLog.currentTimeMs())
            }
            if measuring {
                self.countErrors(of: answer, apiKey: apiKey)
                if case .fetch(let parts) = answer { self.countFetched(parts) }
            }
            var frame = try self.encode(answer, header: header, apiKey: apiKey, version: version)
            if throttleMs > 0 {
                if frame == nil { frame = ResponseFrame(parts: [], fileHandles: []) }
                frame?.throttleMs = throttleMs
            }
            if measuring { self.broker.metrics.requestCompleted(apiKey, version: version, nanoseconds: (NIODeadline.now() - started).nanoseconds) }
            return frame
        }
    }

    private func decode<R: KafkaRequest>(_ type: R.Type, _ body: inout ByteBuffer, _ version: Int16) throws -> R {
        try R(from: &body, version: version)
    }

    private func dispatch(_ apiKey: ApiKey, version: Int16, header: RequestHeader, body: inout ByteBuffer,
                          eventLoop: EventLoop, context: RequestContext, client: QuotaClient) throws -> EventLoopFuture<BrokerResponse> {
        func now(_ message: any KafkaResponse) -> EventLoopFuture<BrokerResponse> { eventLoop.makeSucceededFuture(.message(message)) }
        func later<R: KafkaResponse>(_ future: EventLoopFuture<R>) -> EventLoopFuture<BrokerResponse> { future.map { .message($0) } }
        /// Admin APIs create, delete and fsync files: off the event loop.
        func offLoop<R: KafkaResponse>(_ body: @escaping @Sendable () -> R) -> EventLoopFuture<BrokerResponse> {
            blocking.run(on: eventLoop) { .message(body()) }
        }
        /// A request the authorizer refuses as a whole is answered here, its handler never runs.
        func gated<R: KafkaRequest>(_ request: R, _ serve: (R) -> EventLoopFuture<BrokerResponse>) -> EventLoopFuture<BrokerResponse> {
            if let refused = refusal(apiKey, request, context: context) { return now(refused) }
            return serve(request)
        }
        let clientId = header.clientId ?? ""
        let clientHost = context.clientHost
        let listener = context.listenerName
        switch apiKey {
        case .apiVersions:
            return now(apiVersions(try decode(ApiVersionsRequest.self, &body, version), version: version))
        // A SASL listener's authenticator answers these until the connection is authenticated; here
        // they come on a listener without SASL, or after the exchange: Kafka's answer for both.
        case .saslHandshake:
            _ = try decode(SaslHandshakeRequest.self, &body, version)
            return now(SaslHandshakeResponse(errorCode: ErrorCode.illegalSaslState.rawValue, mechanisms: []))
        case .saslAuthenticate:
            _ = try decode(SaslAuthenticateRequest.self, &body, version)
            return now(SaslAuthenticateResponse(errorCode: ErrorCode.illegalSaslState.rawValue,
                                                errorMessage: "SaslAuthenticate request received after successful authentication"))
        case .metadata:
            let request = try decode(MetadataRequest.self, &body, version)
            // Answering may create topics (auto.create.topics.enable): then off the loop.
            return mayAutoCreate(request, version: version) ? offLoop { self.metadata(request, version: version, listener: listener, context: context) }
                : now(metadata(request, version: version, listener: listener, context: context))
        case .produce:
            return produce(try decode(ProduceRequest.self, &body, version), version: version, eventLoop: eventLoop, context: context)
        case .fetch:
            return fetch(try decode(FetchRequest.self, &body, version), version: version, eventLoop: eventLoop, client: client, context: context)
        case .listOffsets:
            return now(listOffsets(try decode(ListOffsetsRequest.self, &body, version), version: version, context: context))
        case .createTopics:
            let request = try decode(CreateTopicsRequest.self, &body, version)
            return offLoop { self.createTopics(request, version: version, context: context) }
        case .deleteTopics:
            let request = try decode(DeleteTopicsRequest.self, &body, version)
            return offLoop { self.deleteTopics(request, version: version, context: context) }
        case .createPartitions:
            let request = try decode(CreatePartitionsRequest.self, &body, version)
            return offLoop { self.createPartitions(request, context: context) }
        case .describeConfigs:
            return now(describeConfigs(try decode(DescribeConfigsRequest.self, &body, version), version: version, context: context))
        case .alterConfigs:
            let request = try decode(AlterConfigsRequest.self, &body, version)
            return offLoop { self.alterConfigs(request, context: context) }
        case .incrementalAlterConfigs:
            let request = try decode(IncrementalAlterConfigsRequest.self, &body, version)
            return offLoop { self.incrementalAlterConfigs(request, context: context) }
        case .deleteRecords:
            let request = try decode(DeleteRecordsRequest.self, &body, version)
            return offLoop { self.deleteRecords(request, context: context) }
        case .initProducerId:
            let request = try decode(InitProducerIdRequest.self, &body, version)
            return offLoop { self.initProducerId(request, version: version, context: context) }
        case .describeCluster:
            // Anyone may describe the cluster (Kafka asks the authorizer only for clusterAuthorizedOperations).
            return now(describeCluster(try decode(DescribeClusterRequest.self, &body, version), listener: listener, context: context))
        case .offsetForLeaderEpoch:
            return now(offsetForLeaderEpoch(try decode(OffsetForLeaderEpochRequest.self, &body, version), context: context))
        case .findCoordinator:
            return now(findCoordinator(try decode(FindCoordinatorRequest.self, &body, version), version: version, listener: listener, context: context))
        case .joinGroup:
            return gated(try decode(JoinGroupRequest.self, &body, version)) { later(coordinator.joinGroup($0, version: version, clientId: clientId, clientHost: clientHost)) }
        case .syncGroup:
            return gated(try decode(SyncGroupRequest.self, &body, version)) { later(coordinator.syncGroup($0, version: version)) }
        case .heartbeat:
            return gated(try decode(HeartbeatRequest.self, &body, version)) { later(coordinator.heartbeat($0)) }
        case .leaveGroup:
            return gated(try decode(LeaveGroupRequest.self, &body, version)) { later(coordinator.leaveGroup($0, version: version)) }
        case .offsetCommit:
            return gated(try decode(OffsetCommitRequest.self, &body, version)) { self.offsetCommit($0, version: version, context: context) }
        case .offsetFetch:
            return offsetFetch(try decode(OffsetFetchRequest.self, &body, version), version: version, context: context)
        case .describeGroups:
            return describeGroups(try decode(DescribeGroupsRequest.self, &body, version), version: version, context: context)
        case .listGroups:
            return listGroups(try decode(ListGroupsRequest.self, &body, version), context: context)
        case .deleteGroups:
            return deleteGroups(try decode(DeleteGroupsRequest.self, &body, version), context: context)
        case .offsetDelete:
            return gated(try decode(OffsetDeleteRequest.self, &body, version)) { self.offsetDelete($0, context: context) }
        case .consumerGroupHeartbeat:
            // group.version 0 turns the KIP-848 protocol off: UNSUPPORTED_VERSION, as Kafka answers then.
            guard broker.features.consumerGroupsEnabled else {
                return now(ConsumerGroupHeartbeatResponse(errorCode: ErrorCode.unsupportedVersion.rawValue))
            }
            return gated(try decode(ConsumerGroupHeartbeatRequest.self, &body, version)) {
                later(coordinator.consumerGroupHeartbeat($0, version: version, clientId: clientId, clientHost: clientHost))
            }
        case .consumerGroupDescribe:
            let request = try decode(ConsumerGroupDescribeRequest.self, &body, version)
            guard broker.features.consumerGroupsEnabled else {
                return now(ConsumerGroupDescribeResponse(groups: request.groupIds.map {
                    .init(errorCode: ErrorCode.unsupportedVersion.rawValue, errorMessage: nil, groupId: $0)
                }))
            }
            return consumerGroupDescribe(request, context: context)
        case .describeLogDirs:
            return gated(try decode(DescribeLogDirsRequest.self, &body, version)) { now(self.describeLogDirs($0)) }
        case .describeTopicPartitions:
            return now(describeTopicPartitions(try decode(DescribeTopicPartitionsRequest.self, &body, version), context: context))
        case .electLeaders:
            return gated(try decode(ElectLeadersRequest.self, &body, version)) { now(self.electLeaders($0, version: version)) }
        case .listPartitionReassignments:
            return gated(try decode(ListPartitionReassignmentsRequest.self, &body, version)) { now(self.listPartitionReassignments($0)) }
        case .alterPartitionReassignments:
            return gated(try decode(AlterPartitionReassignmentsRequest.self, &body, version)) { now(self.alterPartitionReassignments($0)) }
        case .describeQuorum:
            return gated(try decode(DescribeQuorumRequest.self, &body, version)) { now(self.describeQuorum($0, version: version, listener: listener)) }
        case .describeProducers:
            return now(authorized(describeProducers(try decode(DescribeProducersRequest.self, &body, version)), context: context))
        case .describeAcls:
            return now(describeAcls(try decode(DescribeAclsRequest.self, &body, version), context: context))
        case .createAcls:
            let request = try decode(CreateAclsRequest.self, &body, version)
            return offLoop { self.createAcls(request, context: context) }
        case .deleteAcls:
            let request = try decode(DeleteAclsRequest.self, &body, version)
            return offLoop { self.deleteAcls(request, context: context) }
        case .describeUserScramCredentials:
            return gated(try decode(DescribeUserScramCredentialsRequest.self, &body, version)) { now(self.describeUserScramCredentials($0)) }
        case .alterUserScramCredentials:
            return gated(try decode(AlterUserScramCredentialsRequest.self, &body, version)) { request in offLoop { self.alterUserScramCredentials(request) } }
        case .listConfigResources:
            return gated(try decode(ListConfigResourcesRequest.self, &body, version)) { now(self.listConfigResources($0, version: version)) }
        case .updateFeatures:
            return gated(try decode(UpdateFeaturesRequest.self, &body, version)) { request in offLoop { self.updateFeatures(request, version: version) } }
        case .describeClientQuotas:
            return gated(try decode(DescribeClientQuotasRequest.self, &body, version)) { now(self.describeClientQuotas($0)) }
        case .addPartitionsToTxn:
            let request = try decode(AddPartitionsToTxnRequest.self, &body, version)
            return offLoop { self.addPartitionsToTxn(request, version: version, context: context) }
        case .addOffsetsToTxn:
            return gated(try decode(AddOffsetsToTxnRequest.self, &body, version)) { request in offLoop { self.addOffsetsToTxn(request, version: version) } }
        case .endTxn:
            return gated(try decode(EndTxnRequest.self, &body, version)) { self.endTxn($0, version: version, eventLoop: eventLoop) }
        case .txnOffsetCommit:
            return gated(try decode(TxnOffsetCommitRequest.self, &body, version)) {
                self.txnOffsetCommit($0, version: version, eventLoop: eventLoop, context: context)
            }
        case .describeTransactions:
            return now(authorized(describeTransactions(try decode(DescribeTransactionsRequest.self, &body, version)), context: context))
        case .listTransactions:
            let request = try decode(ListTransactionsRequest.self, &body, version)
            // A client's regular expression runs over every transactional id: off the event loop.
            guard request.transactionalIdPattern?.isEmpty == false else {
                return now(authorized(listTransactions(request, version: version), context: context))
            }
            return offLoop { self.authorized(self.listTransactions(request, version: version), context: context) }
        case .writeTxnMarkers:
            return gated(try decode(WriteTxnMarkersRequest.self, &body, version)) { self.writeTxnMarkers($0, eventLoop: eventLoop) }
        case .alterClientQuotas:
            return gated(try decode(AlterClientQuotasRequest.self, &body, version)) { request in offLoop { self.alterClientQuotas(request) } }
        default:
            throw InvalidRequest(description: "API \(apiKey) is not enabled")
        }
    }

    // MARK: Encoding

    private func encode(_ answer: BrokerResponse, header: RequestHeader, apiKey: ApiKey, version: Int16) throws(InvalidRequest) -> ResponseFrame? {
        switch answer {
        case .none, .close:
            return nil
        case .message(let message):
            return try ResponseFrame(message, correlationId: header.correlationId, apiKey: apiKey, version: version)
        case .fetch(let parts):
            return try parts.frame(after: ResponseFrame.head(correlationId: header.correlationId, apiKey: apiKey, version: version))
        }
    }
}
