import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One of the edge's TCP listeners: HTTPS (TLS with a certificate per SNI name) or plain HTTP, each connection an
/// HTTP/1.1 pipeline ending in `HTTPProxyHandler`.
public struct EdgeHTTPListener: Sendable {
    public let channel: any Channel
    public var localAddress: SocketAddress? { channel.localAddress }

    static func bind(
        host: String,
        port: Int,
        tls: NIOSSLContext?,
        environment: HTTPProxyHandler.Environment,
        group: any EventLoopGroup
    ) async throws -> EdgeHTTPListener {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    // Protocol errors are answered by HTTPProxyHandler (400, or 431 for oversized headers).
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(HTTPProxyHandler(environment: environment))
                }
            }
            .bind(host: host, port: port)
            .get()
        return EdgeHTTPListener(channel: channel)
    }
}
