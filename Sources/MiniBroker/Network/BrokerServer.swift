import KafkaWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The broker as a ServiceLifecycle service: listens, serves, and on graceful shutdown (SIGINT,
/// SIGTERM) stops accepting, lets in-flight requests finish, then flushes the log and writes the
/// checkpoints and the clean-shutdown marker.
public final class BrokerServer: Service, Sendable {
    public let broker: Broker
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    /// What `bind()` made: the listening channel, the group coordinator and the metrics endpoint.
    private let bound = NIOLockedValueBox<(channels: [Channel], coordinator: GroupCoordinator?, metrics: Channel?,
                                           transactions: TransactionCoordinator?)>(([], nil, nil, nil))
    /// Threads for work that may block (fsync, files): never the event loops'.
    private let blockingPool = NIOThreadPool(numberOfThreads: 2)
    /// Open client connections, to drain at shutdown.
    private let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    public init(broker: Broker, group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.broker = broker
        self.group = group
        self.logger = logger
    }

    /// Binds every listener; returns the first one's bound port (useful when configured with port 0).
    @discardableResult
    public func bind() async throws -> Int {
        blockingPool.start()
        let blocking = BlockingExecutor.threadPool(blockingPool)
        let coordinator = try GroupCoordinator(broker: broker, loop: group.next(), logger: logger, blocking: blocking)
        let dispatcher: RequestDispatcher
        do {
            dispatcher = try RequestDispatcher(broker: broker, coordinator: coordinator, logger: logger, blocking: blocking)
        } catch {
            coordinator.stop()
            throw error
        }
        let maxFrame = broker.config.socketRequestMaxBytes
        let maxConnections = broker.config.maxConnections
        let idleTimeout = TimeAmount.milliseconds(broker.config.connectionsMaxIdleMs)
        let logger = self.logger
        let connections = self.connections
        let metrics = broker.metrics
        let sasl = SaslServer(config: broker.config, scram: broker.scramCredentials)
        // TLS listeners' contexts: made once, before anything is bound, so a bad keystore stops the start.
        var tlsContexts: [String: NIOSSLContext] = [:]
        var mappers: [String: SslPrincipalMapper] = [:]
        do {
            for listener in broker.config.listeners where broker.config.securityProtocol(of: listener)?.usesTls == true {
                let ssl = SslConfig(config: broker.config, listener: listener.name)
                tlsContexts[listener.name] = try ssl.makeContext()
                mappers[listener.name] = try SslPrincipalMapper(ssl.principalMappingRules)
            }
        } catch {
            coordinator.stop()
            dispatcher.transactions.stop()
            throw error
        }
        func bootstrap(for listener: Listener) -> ServerBootstrap {
            let security = broker.config.securityProtocol(of: listener)
            let usesSasl = security?.usesSasl ?? false
            let tlsContext = tlsContexts[listener.name]
            // SASL_SSL's principal comes from SASL; only SSL takes it from the client certificate.
            let mapper = usesSasl ? nil : mappers[listener.name]
            return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                // max.connections: one past the limit is closed at once (the client backs off and retries).
                let admitted = connections.withLockedValue { open -> Bool in
                    guard open.count < maxConnections else { return false }
                    open[id] = channel
                    return true
                }
                guard admitted else {
                    logger.warning("refusing a connection: max.connections (\(maxConnections)) reached",
                                   metadata: ["remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                    return channel.close()
                }
                metrics.connectionOpened()
                channel.closeFuture.whenComplete { _ in
                    _ = connections.withLockedValue { $0.removeValue(forKey: id) }
                    metrics.connectionClosed()
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    if idleTimeout.nanoseconds > 0 {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    }
                    let frames = FrameDecoder.requests(maxFrameSize: maxFrame, readsInPlace: tlsContext == nil)
                    // Until a SASL connection authenticates, its frames are small (sasl.server.max.receive.size).
                    if usesSasl { frames.validSizes = 0...min(maxFrame, SaslServer.maxReceiveSize) }
                    try channel.pipeline.syncOperations.addHandler(frames)
                    try channel.pipeline.syncOperations.addHandler(KafkaConnectionHandler(
                        dispatcher: dispatcher, listenerName: listener.name,
                        authenticator: usesSasl ? SaslAuthenticator(server: sasl, listener: listener.name) : nil,
                        frames: usesSasl ? frames : nil, maxFrame: maxFrame, tls: tlsContext != nil, sslPrincipalMapper: mapper,
                        logger: logger))
                }
            }
        }
        // The metrics endpoint first: if its port is taken, the broker stops before it serves anyone.
        var metricsChannel: Channel?
        if broker.config.metricsPort >= 0 {
            do {
                let endpoint = try await MetricsEndpoint.bind(host: broker.config.metricsHost, port: broker.config.metricsPort, group: group,
                                                              scrape: MetricsScrape(broker: broker, coordinator: coordinator))
                metricsChannel = endpoint
                logger.info("metrics endpoint listening", metadata: [
                    "url": "http://\(broker.config.metricsHost):\(endpoint.localAddress?.port ?? broker.config.metricsPort)/metrics",
                ])
            } catch {
                coordinator.stop()
                throw error
            }
        }
        var channels: [Channel] = []
        do {
            for listener in broker.config.listeners {
                let channel = try await bootstrap(for: listener).bind(host: listener.host, port: listener.port).get()
                channels.append(channel)
                let port = channel.localAddress?.port ?? listener.port
                broker.boundPorts.withLockedValue { $0[listener.name] = port }
            }
        } catch {
            for channel in channels { try? await channel.close() }
            try? await metricsChannel?.close()
            coordinator.stop()
            dispatcher.transactions.stop()
            throw error
        }
        bound.withLockedValue { $0 = (channels, coordinator, metricsChannel, dispatcher.transactions) }
        let addresses = broker.config.listeners.map { listener in
            "\(listener.name)://\(listener.host):\(broker.boundPorts.withLockedValue { $0[listener.name] } ?? listener.port)"
        }
        logger.info("MiniBroker started", metadata: [
            "listeners": "\(addresses.joined(separator: ","))", "broker.id": "\(broker.brokerId)",
            "log.dirs": "\(broker.config.logDirectory)", "cluster.id": "\(broker.clusterId)",
        ])
        return broker.boundPorts.withLockedValue { $0[broker.config.listeners[0].name] } ?? broker.config.listeners[0].port
    }

    /// The port a listener was bound to, once `bind()` has run.
    public func port(of listenerName: String) -> Int? { broker.boundPorts.withLockedValue { $0[listenerName] } }

    public func run() async throws {
        if bound.withLockedValue({ $0.channels.isEmpty }) { try await bind() }
        let (channels, coordinator, metricsChannel, transactions) = bound.withLockedValue { $0 }
        // Retention, flush.ms and checkpoints delete files and fsync: on the blocking pool, once a second.
        broker.cleaner.start()
        let maintenance = Task { [broker, blockingPool] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                try? await blockingPool.runIfActive { broker.runMaintenance() }
            }
        }
        try? await gracefulShutdown()
        logger.info("MiniBroker stopping: no new connections, finishing in-flight requests")
        maintenance.cancel()
        coordinator?.stop()
        transactions?.stop()
        for channel in channels { try await channel.close() }
        try? await metricsChannel?.close()
        // Every connection finishes the requests it has received (a long-polling fetch included) and
        // closes; only then is the log flushed, so nothing is appended after the clean-shutdown marker.
        let open = connections.withLockedValue { Array($0.values) }
        for connection in open { connection.pipeline.fireUserInboundEventTriggered(DrainConnection()) }
        let deadline = ContinuousClock.now + .seconds(30)
        while !connections.withLockedValue({ $0.isEmpty }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for connection in connections.withLockedValue({ Array($0.values) }) { try? await connection.close() }
        _ = await maintenance.result
        try? await broker.cleaner.shutdown()
        try broker.shutdown()
        try? await blockingPool.shutdownGracefully()
        logger.info("MiniBroker stopped")
    }
}
