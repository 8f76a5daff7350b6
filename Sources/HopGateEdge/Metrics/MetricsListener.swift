import NIOCore
import NIOHTTP1
import NIOPosix

/// The Prometheus endpoint: `GET /metrics` on its own listener (loopback by default), apart from public traffic.
enum MetricsListener {
    static func bind(
        _ address: ListenAddress,
        metrics: EdgeMetrics,
        group: any EventLoopGroup
    ) async throws
        -> any Channel
    {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: EdgeMetrics
    private var request: HTTPRequestHead?

    init(metrics: EdgeMetrics) { self.metrics = metrics }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let request else { return }
            let found = request.method == .GET && request.uri.split(separator: "?").first == "/metrics"
            let body = ByteBuffer(string: found ? metrics.render() : "Metrics are at /metrics.\n")
            var headers = HTTPHeaders()
            headers.add(
                name: "Content-Type",
                value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8"
            )
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            let head = HTTPResponseHead(version: request.version, status: found ? .ok : .notFound, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            self.request = nil
        }
    }
}
