import Logging
import NIOCore
import NIOPosix

/// A bound DTLS server: its events and commands as async sequences, its counters, and its address.
public struct DTLSServer: Sendable {
    public let channel: NIOAsyncChannel<DTLSServerEvent, DTLSServerCommand>
    public let statistics: DTLSStatisticsBox
    public var localAddress: SocketAddress? { channel.channel.localAddress }

    /// Binds one UDP socket for every client.
    public static func bind(
        host: String,
        port: Int,
        configuration: DTLSServerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> DTLSServer {
        // The certificate is loaded before binding, so a bad one fails here and not at the first client.
        let certificate = try configuration.certificateSource.currentCertificate()
        let context = try DTLSContext.server(certificate: certificate)
        let statistics = DTLSStatisticsBox()
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: socketBufferSize)
            .channelOption(.socketOption(.so_sndbuf), value: socketBufferSize)
            .channelOption(.maxMessagesPerRead, value: 64)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try DTLSServerHandler(
                        configuration: configuration,
                        certificate: certificate,
                        context: context,
                        logger: logger,
                        statistics: statistics
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return try NIOAsyncChannel<DTLSServerEvent, DTLSServerCommand>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        return DTLSServer(channel: channel, statistics: statistics)
    }
}

/// Connects DTLS clients.
public enum DTLSClient {
    /// Connects to `host:port`, completes the handshake, and returns the session as a channel of records.
    /// Throws the `DTLSError` that says why the handshake failed.
    public static func connect(
        host: String,
        port: Int,
        configuration: DTLSClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let eventLoop = group.next()
        let handshake = eventLoop.makePromise(of: Void.self)
        let channel = try await DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: socketBufferSize)
            .channelOption(.socketOption(.so_sndbuf), value: socketBufferSize)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try DTLSClientHandler(configuration: configuration, handshakePromise: handshake)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        do {
            try await handshake.futureResult.get()
        } catch {
            try? await channel.channel.close()
            throw error
        }
        return channel
    }
}

/// Socket buffers large enough for a burst of handshakes or a window of records without kernel drops.
let socketBufferSize: SocketOptionValue = 4 * 1024 * 1024
