import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP proxy on loopback that holds each of the broker's answers back for `delay`, so a test can
/// keep requests in flight as long as it needs. Clients find it when the broker advertises its port.
final class DelayingProxy: @unchecked Sendable {
    let port: Int
    /// Where connections go: set once the broker (which must know `port` first) is up.
    let targetPort = NIOLockedValueBox(0)
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let listener: Channel

    init(delay: TimeAmount) throws {
        let targetPort = targetPort
        listener = try ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)  // until the broker side is connected
            .childChannelInitializer { client in
                ClientBootstrap(group: client.eventLoop)
                    .channelInitializer { upstream in
                        upstream.eventLoop.makeCompletedFuture {
                            try upstream.pipeline.syncOperations.addHandler(Forwarder(to: client, delay: delay))
                        }
                    }
                    .connect(host: "127.0.0.1", port: targetPort.withLockedValue { $0 })
                    .flatMapThrowing { upstream in
                        try client.pipeline.syncOperations.addHandler(Forwarder(to: upstream, delay: nil))
                    }
                    .flatMap { client.setOption(.autoRead, value: true) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = listener.localAddress!.port!
    }

    /// A broker that clients reach through this proxy: it advertises the proxy's port.
    func broker(overrides: [String] = []) throws -> RunningBroker {
        let broker = try RunningBroker(overrides: ["advertised.listeners=PLAINTEXT://127.0.0.1:\(port)"] + overrides)
        targetPort.withLockedValue { $0 = broker.port }
        return broker
    }

    deinit {
        try? listener.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Passes what one side sends to the other, after `delay` when there is one (in order).
private final class Forwarder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let peer: Channel
    private let delay: TimeAmount?
    private var held: [(due: NIODeadline, bytes: ByteBuffer)] = []

    init(to peer: Channel, delay: TimeAmount?) {
        self.peer = peer
        self.delay = delay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let delay else { return peer.writeAndFlush(bytes, promise: nil) }
        let due = NIODeadline.now() + delay
        held.append((due, bytes))
        context.eventLoop.scheduleTask(deadline: due) { self.release() }
    }

    private func release() {
        let now = NIODeadline.now()
        while let first = held.first, first.due <= now {
            held.removeFirst()
            peer.writeAndFlush(first.bytes, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
    }
}
