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
        let statistics = DTLSStatisticsBox()
        let channel = try await bind(
            host: host,
            port: port,
            configuration: configuration,
            group: group,
            logger: logger,
            statistics: statistics
        ) { channel in
            try NIOAsyncChannel<DTLSServerEvent, DTLSServerCommand>(wrappingChannelSynchronously: channel)
        }
        return DTLSServer(channel: channel, statistics: statistics)
    }

    /// Binds one UDP socket for every client, with the DTLS handler in its pipeline; `finish` adds what sits above
    /// it (a handler reading `DTLSServerEvent`s and writing `DTLSServerCommand`s) on the channel's event loop.
    public static func bind<Output: Sendable>(
        host: String,
        port: Int,
        configuration: DTLSServerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        statistics: DTLSStatisticsBox,
        finish: @escaping @Sendable (any Channel) throws -> Output
    ) async throws -> Output {
        // The certificate is loaded before binding, so a bad one fails here and not at the first client.
        let certificate = try configuration.certificateSource.currentCertificate()
        let context = try DTLSContext.server(certificate: certificate)
        // Clients send runs of datagrams as one segmented write (GSO); with receive offload they arrive as one
        // read too, and the handler cuts them apart, instead of the kernel doing it a datagram at a time.
        let receiveOffload = configuration.receiveOffload && System.supportsUDPReceiveOffload
        let vectorRead = VectorRead(
            maximumDatagramSize: configuration.maximumDatagramSize,
            loopbackDatagramSize: configuration.loopbackDatagramSize,
            receiveOffload: receiveOffload
        )
        return try await DatagramBootstrap(group: group)
            // No SO_REUSEADDR: on UDP it would let a second edge bind the same port and silently take its traffic;
            // without it the second one fails with "address in use" (UDP has no TIME_WAIT to wait out).
            .channelOption(.socketOption(.so_rcvbuf), value: socketBufferSize)
            .channelOption(.socketOption(.so_sndbuf), value: socketBufferSize)
            .channelOption(.maxMessagesPerRead, value: 64)
            .channelOption(.datagramVectorReadMessageCount, value: vectorRead.count)
            .channelOption(.recvAllocator, value: vectorRead.allocator)
            .channelOption(.datagramReceiveOffload, value: receiveOffload)
            .channelOption(.datagramReceiveSegmentSize, value: receiveOffload)
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
                    return try finish(channel)
                }
            }
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
        try await connect(host: host, port: port, configuration: configuration, group: group) { channel in
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }

    /// Connects, completes the handshake, and returns what `finish` made of the channel (on its event loop,
    /// before the handshake, with the DTLS handler in place: records read above it are `ByteBuffer`s).
    /// `closePromise` learns why the session ended.
    public static func connect<Output: Sendable>(
        host: String,
        port: Int,
        configuration: DTLSClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        closePromise: EventLoopPromise<DTLSCloseReason>? = nil,
        finish: @escaping @Sendable (any Channel) throws -> Output
    ) async throws -> Output {
        let eventLoop = closePromise?.futureResult.eventLoop ?? group.next()
        let handshake = eventLoop.makePromise(of: Void.self)
        let channel: any Channel
        let output: Output
        do {
            (channel, output) = try await bootstrapConnect(
                host: host,
                port: port,
                eventLoop: eventLoop,
                configuration: configuration,
                handshake: handshake,
                closePromise: closePromise,
                finish: finish
            )
        } catch {
            // No handler took the promise (a bad configuration, an unresolvable host): settle it here.
            handshake.fail(error)
            throw error
        }
        do {
            try await handshake.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return output
    }

    private static func bootstrapConnect<Output: Sendable>(
        host: String,
        port: Int,
        eventLoop: any EventLoop,
        configuration: DTLSClientConfiguration,
        handshake: EventLoopPromise<Void>,
        closePromise: EventLoopPromise<DTLSCloseReason>?,
        finish: @escaping @Sendable (any Channel) throws -> Output
    ) async throws -> (any Channel, Output) {
        let vectorRead = VectorRead(
            maximumDatagramSize: configuration.maximumDatagramSize,
            loopbackDatagramSize: configuration.loopbackDatagramSize,
            receiveOffload: false
        )
        return try await DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: socketBufferSize)
            .channelOption(.socketOption(.so_sndbuf), value: socketBufferSize)
            .channelOption(.datagramVectorReadMessageCount, value: vectorRead.count)
            .channelOption(.recvAllocator, value: vectorRead.allocator)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try DTLSClientHandler(
                        configuration: configuration,
                        handshakePromise: handshake,
                        closePromise: closePromise
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return (channel, try finish(channel))
                }
            }
    }
}

/// Datagrams read with one recvmmsg call.
/// recvmmsg: several datagrams a system call instead of one. NIO splits one read buffer between them, so it holds
/// `count` datagrams of the largest size a peer may send (or each would be cut short): up to 32 of 1200 bytes, but
/// only 7 of 16 KiB (loopback), which carry as much and keep the buffer, allocated afresh whenever a datagram of the
/// last read is still held, at about 128 KiB rather than 528. With receive offload, one read may be a whole run of
/// datagrams, up to 64 KiB: 4 such slots.
struct VectorRead {
    let count: Int
    let allocator: FixedSizeRecvByteBufferAllocator

    init(maximumDatagramSize: Int, loopbackDatagramSize: Int?, receiveOffload: Bool) {
        let largest = receiveOffload ? 65_536 : max(maximumDatagramSize, loopbackDatagramSize ?? 0)
        let slot = DatagramSize.receiveSlot(largest: largest)
        count = min(32, max(4, 128 * 1024 / slot))
        allocator = FixedSizeRecvByteBufferAllocator(capacity: count * slot)
    }
}

/// Socket buffers large enough for a burst of handshakes or a window of records without kernel drops.
let socketBufferSize: SocketOptionValue = 4 * 1024 * 1024
