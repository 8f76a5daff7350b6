import NIOCore
import NIOHTTP1
import NIOHTTP2
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
        acme: (any ACMEChallengeSource)? = nil,
        environment: HTTPProxyHandler.Environment,
        group: any EventLoopGroup
    ) async throws -> EdgeHTTPListener {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard let tls else {
                    return channel.eventLoop.makeCompletedFuture { try configureHTTP1(channel, environment) }
                }
                guard let acme else { return configureHTTPS(channel, tls: tls, environment) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ACMEValidationSniffer(source: acme) { configureHTTPS($0, tls: tls, environment) }
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        return EdgeHTTPListener(channel: channel)
    }
}

/// TLS, then ALPN picks the protocol: h2 gets one HTTPProxyHandler per stream, behind the HTTP/2 to HTTP/1 codec;
/// http/1.1 (or no ALPN) gets the HTTP/1.1 pipeline.
private func configureHTTPS(
    _ channel: any Channel,
    tls: NIOSSLContext,
    _ environment: HTTPProxyHandler.Environment
) -> EventLoopFuture<Void> {
    do {
        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
    } catch {
        return channel.eventLoop.makeFailedFuture(error)
    }
    return channel.configureHTTP2SecureUpgrade(
        h2ChannelConfigurator: { channel in
            channel.configureHTTP2Pipeline(
                mode: .server,
                initialLocalSettings: nioDefaultSettings + [
                    HTTP2Setting(parameter: .initialWindowSize, value: h2Window)
                ],
                targetWindowSize: h2Window
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers(
                        HTTP2FramePayloadToHTTP1ServerCodec(),
                        HTTPProxyHandler(environment: environment)
                    )
                }
            }.map { _ in }
        },
        http1ChannelConfigurator: { channel in
            channel.eventLoop.makeCompletedFuture { try configureHTTP1(channel, environment) }
        }
    )
}

/// How much of a request body a browser may send on an HTTP/2 stream before the edge takes it (the stream's flow
/// control window, and the connection's target). A window is all an upload can have in flight a round trip: with
/// HTTP/2's default, 64 KiB, a 30 ms path allows about 2 MB/s, and a 100 MiB h2 upload over loopback ran at
/// 213-247 MB/s; with 256 KiB, 323-381 (and 8 MB/s at 30 ms). The frames in it hold the HTTP/2 decoder's buffers
/// they were cut from while they wait, about 90 KB for each 16 KiB frame: a 1 MiB window (Go's default) raised
/// the edge's peak during such an upload from 28 to 56-62 MB, 256 KiB to 30-35 (with `PendingBytes`' compaction).
private let h2Window = 1 << 18

/// The HTTP/1.1 pipeline. Protocol errors are answered by HTTPProxyHandler (400, or 431 for oversized headers), and
/// so are pipelined requests, in order: NIO's HTTPServerPipelineHandler, which would hold them, also stops reading
/// the socket between every request and its response, two epoll_ctl calls a request on a keep-alive connection.
/// Responses are written by EdgeResponseEncoder rather than NIO's encoder and header validator: it does what they
/// do in one pass (about 11k instructions a response against their 17k, callgrind).
private func configureHTTP1(_ channel: any Channel, _ environment: HTTPProxyHandler.Environment) throws {
    let pipeline = channel.pipeline.syncOperations
    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    let encoder = EdgeResponseEncoder()
    try pipeline.addHandler(encoder)
    try pipeline.addHandler(HTTPProxyHandler(environment: environment, responseEncoder: encoder))
}
