import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The Prometheus endpoint on `metrics.host:metrics.port`: `GET /metrics` answers the text format
/// (0.0.4); any other path is 404, any other method 405. Its own listener, so that a scraper never
/// shares a connection or a port with Kafka clients.
enum MetricsEndpoint {
    static func bind(host: String, port: Int, group: EventLoopGroup, scrape: MetricsScrape) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(scrape: scrape))
                }
            }
            .bind(host: host, port: port).get()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let scrape: MetricsScrape
    private var head: HTTPRequestHead?

    init(scrape: MetricsScrape) {
        self.scrape = scrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path == "/metrics" else {
            return send(.notFound, Array("Not found: the metrics are at /metrics\n".utf8), to: head, context: context)
        }
        guard head.method == .GET || head.method == .HEAD else {
            return send(.methodNotAllowed, Array("Use GET\n".utf8), to: head, context: context)
        }
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        scrape.render(on: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let text):
                handler.send(.ok, text, to: head, context: context, contentType: "text/plain; version=0.0.4; charset=utf-8")
            case .failure(let error):
                handler.send(.internalServerError, Array("Metrics could not be read: \(error)\n".utf8), to: head, context: context)
            }
        }
    }

    private func send(_ status: HTTPResponseStatus, _ body: [UInt8], to request: HTTPRequestHead, context: ChannelHandlerContext,
                      contentType: String = "text/plain; charset=utf-8") {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.count))])
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let keepAlive = request.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
