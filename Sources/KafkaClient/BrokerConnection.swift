#if canImport(Glibc)
import Glibc
#endif
import KafkaWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A failure of the client core, with what a user needs to act on it.
public struct KafkaClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The broker could not be reached or the connection dropped.
        case connection
        /// The broker and this client share no version of an API.
        case unsupportedVersion
        /// The broker answered with a Kafka error code.
        case broker(ErrorCode)
        /// An answer that does not parse or does not match the request.
        case protocolViolation
        case timeout
        /// A setting the client refuses, named by its Kafka config key.
        case configuration
        /// The client was closed.
        case closed
        /// The broker refused the client's credentials (SASL): not retriable, the broker's message says why.
        case authentication
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

extension KafkaClientError.Kind {
    /// The connection went away or an answer did not come in time: worth another try on a fresh
    /// connection. (Not `.closed`: that is this client closed, and nothing to retry.)
    public var isRetriableConnectionProblem: Bool {
        switch self {
        case .connection, .timeout: return true
        default: return false
        }
    }
}

/// The one classification every client uses: what to try again, and what ends the client.
extension KafkaClientError {
    /// Worth another try after a backoff: a connection problem (on a fresh connection) or a broker
    /// error Kafka calls retriable (NOT_LEADER_OR_FOLLOWER, COORDINATOR_LOAD_IN_PROGRESS, ...).
    public var isRetriable: Bool {
        switch kind {
        case .connection, .timeout: return true
        case .broker(let code): return code.isRetriable
        case .unsupportedVersion, .protocolViolation, .configuration, .closed, .authentication: return false
        }
    }

    /// The client cannot go on and should be closed: it was closed already, it and the broker share no
    /// version, a setting is refused, or the broker fenced or refused it for good (Kafka's fatal errors).
    public var isFatal: Bool {
        switch kind {
        case .closed, .unsupportedVersion, .configuration, .authentication: return true
        case .broker(let code): return Self.fatalCodes.contains(code)
        case .connection, .timeout, .protocolViolation: return false
        }
    }

    static let fatalCodes: Set<ErrorCode> = [
        .producerFenced, .fencedInstanceId, .transactionalIdAuthorizationFailed, .clusterAuthorizationFailed,
        .unsupportedVersion, .unsupportedForMessageFormat, .invalidProducerIdMapping,
    ]
}

/// One TCP connection to one broker. Requests are pipelined: each gets a correlation id and its
/// answer is matched by it. On connect the versions of every API are negotiated with ApiVersions
/// (the highest both sides support), falling back as Kafka clients do when the broker is older.
public final class BrokerConnection: @unchecked Sendable {
    public let host: String
    public let port: Int
    let channel: Channel
    let handler: ResponseMatcher
    private let correlation = NIOLockedValueBox<Int32>(0)
    /// When an authenticated session nears its end: from then on the client replaces the connection.
    private let retireAt = NIOLockedValueBox<NIODeadline?>(nil)
    /// The broker's version ranges, by API.
    public private(set) var brokerVersions: [ApiKey: ClosedRange<Int16>] = [:]
    /// The cluster's finalized feature levels as ApiVersions v3+ reported them (`transaction.version`,
    /// `group.version`, ...), by name; empty from an older broker.
    public private(set) var finalizedFeatures: [String: Int16] = [:]
    let clientId: String
    /// Where request latencies go (the client's metrics), if anywhere.
    let meters: ClientMeters?

    init(host: String, port: Int, channel: Channel, handler: ResponseMatcher, clientId: String, meters: ClientMeters? = nil) {
        self.host = host
        self.port = port
        self.channel = channel
        self.handler = handler
        self.clientId = clientId
        self.meters = meters
    }

    /// Connects and negotiates API versions.
    /// What went wrong, in words a Kafka user reads (the system's description of the errno), not
    /// NIO's structure dumps.
    static func cause(of error: Error) -> String {
        if let connection = error as? NIOConnectionError {
            let causes = connection.connectionErrors.map { cause(of: $0.error) }
            if let first = causes.first { return Set(causes).count == 1 ? first : causes.joined(separator: "; ") }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil { return "the host name does not resolve" }
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if error is ChannelError, case .connectTimeout(let amount) = error as? ChannelError {
            return "no answer within \(amount.nanoseconds / 1_000_000) ms"
        }
        return "\(error)"
    }

    /// `timeout` bounds the TCP connect, `requestTimeout` each request of the ApiVersions and SASL
    /// exchanges after it.
    public static func connect(host: String, port: Int, clientId: String, group: EventLoopGroup,
                               timeout: TimeAmount = .seconds(10), requestTimeout: TimeAmount = .seconds(30),
                               meters: ClientMeters? = nil, security: KafkaSecurity = .plaintext,
                               tlsContext: NIOSSLContext? = nil) async throws -> BrokerConnection {
        let handler = ResponseMatcher()
        let channel: Channel
        let tls = security.usesTls ? try tlsContext ?? security.tls.makeContext() : nil
        // SNI and hostname verification take a name; an IP address is checked against the certificate's IP entries.
        let serverHostname = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
        // Completed by the TLS handshake; a plain connection has none to wait for.
        let handshake = tls.map { _ in group.any().makePromise(of: Void.self) }
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls, let handshake {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(promise: handshake))
                        }
                        // Fetch answers run to a megabyte and more: read in place, not copied.
                        let frames = FrameSplitter(validSizes: 4...Int(Int32.max)) { size in
                            KafkaClientError(.protocolViolation, "response frame size \(size)")
                        }
                        try channel.pipeline.syncOperations.addHandler(FrameDecoder(frames, readsInPlace: tls == nil))
                        try channel.pipeline.syncOperations.addHandler(RequestFrameWriter())
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            handshake?.fail(error)
            throw KafkaClientError(.connection, "cannot connect to broker \(host):\(port): \(Self.cause(of: error))")
        }
        if let handshake {
            // A port that is not TLS may never answer a ClientHello (it waits for the rest of a "frame").
            let deadline = channel.eventLoop.scheduleTask(in: requestTimeout) {
                handshake.fail(KafkaClientError(.timeout, "TLS handshake with broker \(host):\(port) did not complete within "
                                                + "\(requestTimeout.nanoseconds / 1_000_000) ms (is this a TLS listener?)"))
                channel.close(promise: nil)
            }
            defer { deadline.cancel() }
            do {
                try await handshake.futureResult.get()
            } catch let timeout as KafkaClientError {
                channel.close(promise: nil)
                throw timeout
            } catch {
                channel.close(promise: nil)
                throw Self.handshakeError(error, host: host, port: port)
            }
        }
        let connection = BrokerConnection(host: host, port: port, channel: channel, handler: handler, clientId: clientId, meters: meters)
        do {
            try await connection.negotiateVersions(timeout: requestTimeout)
            if security.usesSasl {
                let lifetimeMs = try await connection.authenticate(security, timeout: requestTimeout)
                connection.startSession(lifetimeMs: lifetimeMs)
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// A session with a lifetime (connections.max.reauth.ms, KIP-368) is not re-authenticated in
    /// place: at 85 to 95 % of it the connection stops taking new requests (the client opens a
    /// fresh, freshly authenticated one), and at its end it closes, before the broker would.
    private func startSession(lifetimeMs: Int64) {
        guard lifetimeMs > 0 else { return }
        let renewMs = Int64(Double(lifetimeMs) * Double.random(in: 0.85...0.95))
        retireAt.withLockedValue { $0 = .now() + .milliseconds(renewMs) }
        let channel = channel
        channel.eventLoop.scheduleTask(in: .milliseconds(lifetimeMs)) { channel.close(promise: nil) }
    }

    private func negotiateVersions(timeout: TimeAmount) async throws {
        var version = ApiKey.apiVersions.validVersions.upperBound
        for _ in 0..<3 {
            let response = try await send(ApiVersionsRequest(clientSoftwareName: "swift-kafka", clientSoftwareVersion: "0.1"),
                                          version: version, timeout: timeout)
            if response.errorCode == ErrorCode.unsupportedVersion.rawValue {
                // An older broker lists its own ApiVersions range: retry within it.
                guard let theirs = response.apiKeys.first(where: { $0.apiKey == ApiKey.apiVersions.rawValue }) else { version = 0; continue }
                version = min(theirs.maxVersion, ApiKey.apiVersions.validVersions.upperBound)
                continue
            }
            guard response.errorCode == 0 else {
                throw KafkaClientError(.broker(ErrorCode(rawValue: response.errorCode)), "ApiVersions failed: \(ErrorCode(rawValue: response.errorCode))")
            }
            var versions: [ApiKey: ClosedRange<Int16>] = [:]
            for entry in response.apiKeys {
                if let api = ApiKey(rawValue: entry.apiKey), entry.minVersion <= entry.maxVersion {
                    versions[api] = entry.minVersion...entry.maxVersion
                }
            }
            brokerVersions = versions
            finalizedFeatures = Dictionary(response.finalizedFeatures.map { ($0.name, $0.maxVersionLevel) }, uniquingKeysWith: max)
            return
        }
        throw KafkaClientError(.unsupportedVersion, "\(host):\(port) and this client share no ApiVersions version")
    }

    /// The highest version of `api` both sides support, nil if none.
    public func version(of api: ApiKey) -> Int16? {
        guard let theirs = brokerVersions[api] else { return nil }
        let low = max(theirs.lowerBound, api.validVersions.lowerBound)
        let high = min(theirs.upperBound, api.validVersions.upperBound)
        return low <= high ? high : nil
    }

    /// Sends a request at the negotiated version.
    public func send<R: KafkaRequest>(_ request: R, timeout: TimeAmount? = nil) async throws -> R.Response {
        try await send(request, version: try negotiatedVersion(of: R.self), timeout: timeout)
    }

    /// Whether the connection is still open; a closed one is replaced by the client.
    public var isActive: Bool {
        channel.isActive && retireAt.withLockedValue { $0.map { NIODeadline.now() < $0 } ?? true }
    }

    /// The highest common version of `R`, or a clear error.
    public func negotiatedVersion<R: KafkaRequest>(of _: R.Type) throws -> Int16 {
        guard let version = version(of: R.apiKey) else {
            throw KafkaClientError(.unsupportedVersion, "\(host):\(port) does not support \(R.apiKey) in a version this client knows")
        }
        return version
    }

    /// Bytes fields this large (record batches) are written to the socket as they are, not copied
    /// into the frame; smaller ones cost less to copy than to gather.
    static let minimumDetachedSize = 4096

    private func frame<R: KafkaRequest>(_ request: R, version: Int16) -> (Int32, RequestFrame) {
        let id = correlation.withLockedValue { value -> Int32 in
            value = value == Int32.max ? 0 : value + 1
            return value
        }
        return (id, RequestFrame(request, version: version, correlationId: id, clientId: clientId, allocator: channel.allocator,
                                 minimumDetachedSize: Self.minimumDetachedSize))
    }

    /// Writes a request the broker does not answer (Produce with acks=0); `completion` runs on the
    /// connection's event loop once it is written.
    public func writeWithoutResponse<R: KafkaRequest>(_ request: R,
                                                      completion: @escaping @Sendable (Result<Void, KafkaClientError>) -> Void) throws {
        let (_, frame) = frame(request, version: try negotiatedVersion(of: R.self))
        let channel = channel, host = host, port = port
        onLoop {
            channel.writeAndFlush(frame).whenComplete { result in
                completion(result.mapError { KafkaClientError(.connection, "writing to \(host):\(port) failed: \($0)") })
            }
        }
    }

    /// Writes a request now, so requests written one after another reach the broker in that order
    /// (what the idempotent producer's sequences rely on); `completion` runs on the connection's event
    /// loop with the decoded answer. Without an answer within `timeout` the connection is closed, as
    /// Kafka clients do.
    ///
    /// Everything the write needs on the event loop (listening for the answer, its timer, the write
    /// itself) goes there in one task: futures chained from another thread cost a hop to the loop each.
    public func write<R: KafkaRequest>(_ request: R, version: Int16? = nil, timeout: TimeAmount? = nil,
                                       completion: @escaping @Sendable (Result<R.Response, KafkaClientError>) -> Void) throws {
        let version = try version ?? negotiatedVersion(of: R.self)
        let (id, frame) = frame(request, version: version)
        let channel = channel, handler = handler, host = host, port = port, meters = meters
        let headerVersion = R.apiKey.responseHeaderVersion(version)
        onLoop {
            let started = meters == nil ? .uptimeNanoseconds(0) : NIODeadline.now()
            let timer = timeout.map { timeout in
                channel.eventLoop.scheduleTask(in: timeout) {
                    // Only the side that removes the entry completes the request.
                    guard handler.abandon(correlationId: id) else { return }
                    // Worded here, when it happens: not for every request that gets its answer.
                    let description = "\(R.apiKey) to \(host):\(port) got no answer within \(timeout.nanoseconds / 1_000_000) ms"
                    meters?.requestCompleted(R.apiKey, nanoseconds: (NIODeadline.now() - started).nanoseconds, failed: true)
                    completion(.failure(KafkaClientError(.timeout, description)))
                    channel.close(promise: nil)
                }
            }
            handler.expect(correlationId: id, headerVersion: headerVersion) { result in
                timer?.cancel()
                if let meters {
                    var failed = false
                    if case .failure = result { failed = true }
                    meters.requestCompleted(R.apiKey, nanoseconds: (NIODeadline.now() - started).nanoseconds, failed: failed)
                }
                completion(result.flatMap { body in
                    var body = body
                    do {
                        return .success(try R.Response(from: &body, version: version))
                    } catch {
                        return .failure(KafkaClientError(.protocolViolation, "\(R.apiKey) v\(version) response from \(host):\(port) does not parse: \(error)"))
                    }
                })
            }
            channel.writeAndFlush(frame, promise: nil)
        }
    }

    /// Runs `body` on the connection's event loop: at once when already there, else as one task.
    /// (A writer that needs its requests in order, the producer, writes all of them from off the loop
    /// or all from on it, so the order is kept either way.)
    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if channel.eventLoop.inEventLoop { body() } else { channel.eventLoop.execute(body) }
    }

    /// Sends a request at a given version and waits for its answer.
    public func send<R: KafkaRequest>(_ request: R, version: Int16, timeout: TimeAmount? = nil) async throws -> R.Response {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try write(request, version: version, timeout: timeout) { continuation.resume(with: $0) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    public func close() {
        channel.close(promise: nil)
    }
}

/// Matches response frames to their requests by correlation id and fails every waiting request when
/// the connection ends.
final class ResponseMatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias Completion = @Sendable (Result<ByteBuffer, KafkaClientError>) -> Void
    private let pending = NIOLockedValueBox<[Int32: (headerVersion: Int16, completion: Completion)]>([:])
    private let closed = NIOLockedValueBox(false)

    func expect(correlationId: Int32, headerVersion: Int16, completion: @escaping Completion) {
        let isClosed = closed.withLockedValue { isClosed in
            if !isClosed { pending.withLockedValue { $0[correlationId] = (headerVersion, completion) } }
            return isClosed
        }
        if isClosed { completion(.failure(KafkaClientError(.connection, "the connection is closed"))) }
    }

    /// Forgets a request; false when its answer (or a failure) already came.
    func abandon(correlationId: Int32) -> Bool {
        pending.withLockedValue { $0.removeValue(forKey: correlationId) } != nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let id = frame.getInteger(at: frame.readerIndex, as: Int32.self),
              let waiting = pending.withLockedValue({ $0.removeValue(forKey: id) }) else {
            context.fireErrorCaught(KafkaClientError(.protocolViolation, "response with an unknown correlation id"))
            return
        }
        do {
            _ = try ResponseHeader(from: &frame, version: waiting.headerVersion)
            waiting.completion(.success(frame))
        } catch {
            waiting.completion(.failure(KafkaClientError(.protocolViolation, "unreadable response header: \(error)")))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(KafkaClientError(.connection, "the broker closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(error as? KafkaClientError ?? KafkaClientError(.connection, "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: KafkaClientError) {
        closed.withLockedValue { $0 = true }
        let waiting = pending.withLockedValue { all -> [Completion] in
            defer { all.removeAll() }
            return all.values.map(\.completion)
        }
        for completion in waiting { completion(.failure(error)) }
    }
}
