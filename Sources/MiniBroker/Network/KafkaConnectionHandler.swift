import KafkaWire
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Asks a connection to finish its queued requests and close (graceful shutdown).
struct DrainConnection: Sendable {}

/// One client connection. Requests are handled one at a time, in arrival order, and each response is
/// written before the next request starts, as Kafka processes a connection: responses come back in
/// request order, and a long-polling fetch holds the requests behind it. Pipelined requests wait in
/// a bounded queue; past it, the handler stops reading from the socket.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = IOData

    static let maxQueuedRequests = 64

    private let dispatcher: RequestDispatcher
    private let logger: Logger
    private let listenerName: String
    /// On a SASL listener: nothing but ApiVersions and the SASL exchange until it authenticates.
    private var authenticator: SaslAuthenticator?
    /// A failed authentication's answer is waiting out its delay: nothing more is read nor handled.
    private var failing = false
    /// The connection's frame decoder, whose limit widens to socket.request.max.bytes once authenticated.
    private let frames: FrameDecoder?
    private let maxFrame: Int
    private var queue = CircularBuffer<ByteBuffer>()
    private var busy = false
    private var readPending = false
    /// Set at shutdown: finish what was received, then close.
    private var draining = false
    /// A client over its quota: nothing is read nor handled until the throttle time has passed
    /// (KIP-219's muted channel; the response that earned it has been sent).
    private var throttled = false
    /// When the throttle ends; cancelled if the connection goes first.
    private var throttleEnd: Scheduled<Void>?
    /// On a TLS listener: records are read into memory before they are encrypted (no sendfile).
    private let tls: Bool
    /// On an SSL listener (TLS without SASL): how the client certificate's subject names the principal.
    private let sslPrincipalMapper: SslPrincipalMapper?
    /// Who the connection is before any SASL exchange: anonymous, or its client certificate's principal.
    private var connectionPrincipal = KafkaPrincipal.anonymous
    private var handshakeCompleted = false

    init(dispatcher: RequestDispatcher, listenerName: String, authenticator: SaslAuthenticator?, frames: FrameDecoder? = nil,
         maxFrame: Int = Int(Int32.max), tls: Bool = false, sslPrincipalMapper: SslPrincipalMapper? = nil, logger: Logger) {
        self.dispatcher = dispatcher
        self.listenerName = listenerName
        self.authenticator = authenticator
        self.frames = frames
        self.maxFrame = maxFrame
        self.tls = tls
        self.sslPrincipalMapper = sslPrincipalMapper
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failing else { return }
        queue.append(unwrapInboundIn(data))
        processNext(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if failing { return }
        if throttled || queue.count >= Self.maxQueuedRequests {
            readPending = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            return tlsHandshakeCompleted(context: context)
        }
        // connections.max.idle.ms passed without a byte either way: close, as a drain does (a request
        // still being answered finishes first).
        let idle = (event as? IdleStateHandler.IdleStateEvent) == .all
        guard event is DrainConnection || idle else { return context.fireUserInboundEventTriggered(event) }
        if idle { logger.debug("closing idle connection", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"]) }
        draining = true
        // A shutdown does not wait out a client's throttle: what it sent is answered now.
        if throttled { endThrottle(context: context) }
        closeIfDrained(context: context)
    }

    private func closeIfDrained(context: ChannelHandlerContext) {
        if draining && !busy && queue.isEmpty { context.close(promise: nil) }
    }

    /// A throttled client that left: what it queued is not handled when its throttle would have ended
    /// (it was not answered, and the client retries it on a new connection).
    func channelInactive(context: ChannelHandlerContext) {
        if throttled {
            throttleEnd?.cancel()
            throttleEnd = nil
            queue.removeAll()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if tls && !handshakeCompleted {
            // Kafka counts a failed TLS handshake (plaintext sent to a TLS port, an untrusted certificate) as a failed authentication.
            dispatcher.broker.metrics.authenticated(false)
            logger.info("TLS handshake failed, closing connection: \(error)", metadata: ["remote": "\(clientHost(context))", "listener": "\(listenerName)"])
        } else {
            logger.debug("closing connection: \(error)", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        }
        context.close(promise: nil)
    }

    /// On an SSL listener the client certificate, if any, names the principal (ssl.principal.mapping.rules);
    /// a certificate that no rule maps is refused, as Kafka does.
    private func tlsHandshakeCompleted(context: ChannelHandlerContext) {
        handshakeCompleted = true
        guard let mapper = sslPrincipalMapper else { return }
        guard let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() else {
            return dispatcher.broker.metrics.authenticated(true)
        }
        guard let der = try? certificate.toDERBytes(), let subject = try? DistinguishedName.subject(ofCertificate: der) else {
            return refuseCertificate("its client certificate's subject does not parse", context: context)
        }
        guard let name = mapper.name(for: subject) else {
            return refuseCertificate("no ssl.principal.mapping.rules rule applies to \(subject)", context: context)
        }
        connectionPrincipal = KafkaPrincipal(name: name)
        dispatcher.broker.metrics.authenticated(true)
        logger.debug("authenticated by certificate", metadata: ["principal": "\(connectionPrincipal)", "remote": "\(clientHost(context))"])
    }

    /// A certificate that names no principal: nothing the client sent after its handshake (TLS may
    /// still decrypt it while the connection closes) is handled, as no one.
    private func refuseCertificate(_ reason: String, context: ChannelHandlerContext) {
        failing = true
        queue.removeAll()
        logger.info("closing connection: \(reason)", metadata: ["remote": "\(clientHost(context))", "listener": "\(listenerName)"])
        dispatcher.broker.metrics.authenticated(false)
        context.close(promise: nil)
    }

    private func processNext(context: ChannelHandlerContext) {
        guard !busy, !throttled, !failing, let frame = queue.popFirst() else { return closeIfDrained(context: context) }
        busy = true
        if readPending && queue.count < Self.maxQueuedRequests {
            readPending = false
            context.read()
        }
        var principal = connectionPrincipal
        if var sasl = authenticator {
            let before = sasl.principal
            let action = sasl.receive(frame, now: .now())
            authenticator = sasl
            switch action {
            case .dispatch(let authenticated):
                principal = authenticated
            case .respond(let response):
                if before == nil, let authenticated = sasl.principal {
                    dispatcher.broker.metrics.authenticated(true)
                    frames?.validSizes = 0...maxFrame
                    logger.debug("authenticated", metadata: ["principal": "\(authenticated)", "remote": "\(clientHost(context))"])
                }
                write(response, context: context)
                busy = false
                return processNext(context: context)
            case .fail(let response, let reason):
                return failAuthentication(response, reason: reason, context: context)
            case .close(let reason):
                logger.info("closing connection: \(reason)", metadata: ["remote": "\(clientHost(context))"])
                context.close(promise: nil)
                return
            }
        }
        // The handler and its context belong to the channel's loop; the answer is handled there.
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let request = RequestContext(clientHost: clientHost(context), listenerName: listenerName, principal: principal)
        var answer = dispatcher.handle(frame, eventLoop: context.eventLoop, context: request)
        if tls {
            let (blocking, loop) = (dispatcher.blocking, context.eventLoop)
            answer = answer.flatMap { frame in
                guard let frame, frame.hasFileRegions else { return loop.makeSucceededFuture(frame) }
                let copied: EventLoopFuture<ResponseFrame?> = blocking.run(on: loop) { try frame.copyingFileRegions() }
                // A pool that has stopped never runs the copy: its handles are closed here instead.
                copied.whenFailure { _ in for handle in frame.fileHandles { try? handle.close() } }
                return copied
            }
        }
        answer.hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            handler.answered(result, context: context)
        }
    }

    /// A failed authentication is answered after connection.failed.authentication.delay.ms, then the
    /// connection is closed (a client guessing passwords gets one guess per delay per connection).
    private func failAuthentication(_ response: ResponseFrame?, reason: String, context: ChannelHandlerContext) {
        dispatcher.broker.metrics.authenticated(false)
        logger.info("authentication failed, closing connection: \(reason)", metadata: ["remote": "\(clientHost(context))", "listener": "\(listenerName)"])
        failing = true
        queue.removeAll()
        let delay = authenticator?.server.failureDelayMs ?? 0
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(delay)) {
            let (handler, context) = loopBound.value
            if let response { handler.write(response, context: context) }
            context.close(promise: nil)
        }
    }

    private func answered(_ result: Result<ResponseFrame?, any Error>, context: ChannelHandlerContext) {
        busy = false
        switch result {
        case .success(let response?):
            write(response, context: context)
            if response.throttleMs > 0 { throttle(for: response.throttleMs, context: context) }
        case .success(nil):
            break
        case .failure(let error):
            logger.info("closing connection: \(error)", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
            context.close(promise: nil)
            return
        }
        processNext(context: context)
    }

    private func throttle(for ms: Int64, context: ChannelHandlerContext) {
        throttled = true
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        throttleEnd = context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
            let (handler, context) = loopBound.value
            handler.endThrottle(context: context)
        }
    }

    private func endThrottle(context: ChannelHandlerContext) {
        throttleEnd?.cancel()
        throttleEnd = nil
        throttled = false
        if readPending && queue.count < Self.maxQueuedRequests {
            readPending = false
            context.read()
        }
        processNext(context: context)
    }

    /// Kafka's form of a client address: "/127.0.0.1".
    private func clientHost(_ context: ChannelHandlerContext) -> String {
        "/" + (context.channel.remoteAddress?.ipAddress ?? "unknown")
    }

    private func write(_ response: ResponseFrame, context: ChannelHandlerContext) {
        guard context.channel.isActive, !response.parts.isEmpty else {
            for handle in response.fileHandles { try? handle.close() }
            return
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        for (index, part) in response.parts.enumerated() {
            context.write(wrapOutboundOut(part), promise: index == response.parts.count - 1 ? promise : nil)
        }
        context.flush()
        let handles = response.fileHandles
        promise.futureResult.whenComplete { _ in
            for handle in handles { try? handle.close() }
        }
    }
}
