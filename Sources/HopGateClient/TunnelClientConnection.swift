import HopGateDTLS
import HopGateTunnel
import NIOCore
import NIOPosix

/// One tunnel session from this client to an edge: DTLS, then the session handshake, then requests handed to
/// `onExchange` until the session ends.
public final class TunnelClientConnection: Sendable {
    /// What the edge granted: the session id, the bound domain, the limits and a resumption token.
    public let welcome: SessionHandshakeMessage.Welcome
    /// Succeeds with why the session ended.
    public let ended: EventLoopFuture<TunnelClientError>
    private let channel: any Channel
    private let handler: NIOLoopBound<ClientTunnelHandler>

    private init(
        welcome: SessionHandshakeMessage.Welcome,
        ended: EventLoopFuture<TunnelClientError>,
        channel: any Channel,
        handler: NIOLoopBound<ClientTunnelHandler>
    ) {
        self.welcome = welcome
        self.ended = ended
        self.channel = channel
        self.handler = handler
    }

    /// Dials the edge, runs DTLS and the session handshake. Throws a `DTLSError` when DTLS fails (unreachable,
    /// certificate), or a `TunnelClientError` when the edge refuses the session or it ends before its Welcome.
    /// `onExchange` gets each request (on the session's event loop) and returns where that exchange's events go,
    /// or nil to refuse it.
    public static func connect(
        host: String,
        port: Int,
        dtls: DTLSClientConfiguration,
        handshake: ClientHandshake,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onExchange: @escaping @Sendable (TunnelExchange, TunnelFrame) -> TunnelExchangeConsumer?
    ) async throws -> TunnelClientConnection {
        let eventLoop = group.next()
        let channel = try await DTLSClient.connect(
            host: host,
            port: port,
            configuration: dtls,
            group: eventLoop,
            finish: { $0 }
        )
        let welcomePromise = eventLoop.makePromise(of: SessionHandshakeMessage.Welcome.self)
        let endPromise = eventLoop.makePromise(of: TunnelClientError.self)
        let handler: NIOLoopBound<ClientTunnelHandler>
        do {
            handler = try await eventLoop.submit {
                let dtlsHandler = try channel.pipeline.syncOperations.handler(type: DTLSClientHandler.self)
                let handler = ClientTunnelHandler(
                    handshake: handshake,
                    maximumRecordSize: dtlsHandler.maximumRecordSize,
                    welcomePromise: welcomePromise,
                    endPromise: endPromise,
                    onExchange: onExchange
                )
                try channel.pipeline.syncOperations.addHandler(handler)
                return NIOLoopBound(handler, eventLoop: eventLoop)
            }.get()
        } catch {
            // The channel closed before the tunnel's handler was in place (an edge that is shutting down): nothing
            // else would complete the promises, and the caller reconnects.
            welcomePromise.fail(error)
            endPromise.succeed(.closed("the DTLS session ended before the tunnel started"))
            channel.close(promise: nil)
            throw error
        }
        // A channel that closes without a word from the tunnel (the DTLS layer gave up) still ends the session.
        channel.closeFuture.whenComplete { _ in
            welcomePromise.fail(TunnelClientError.closed("the DTLS session ended"))
            endPromise.succeed(.closed("the DTLS session ended"))
        }
        let welcome = try await welcomePromise.futureResult.get()
        return TunnelClientConnection(
            welcome: welcome,
            ended: endPromise.futureResult,
            channel: channel,
            handler: handler
        )
    }

    /// GOAWAY: the edge sends no new requests; those in flight may finish.
    public func goAway(_ reason: String) {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.session?.goAway(reason) }
    }

    /// How many exchanges are open now.
    public func openExchanges() async throws -> Int {
        let handler = self.handler
        return try await handler.eventLoop.submit { handler.value.session?.openExchanges ?? 0 }.get()
    }

    /// Whether exchanges are open or data is still on its way to the edge.
    public func isBusy() async throws -> Bool {
        let handler = self.handler
        return try await handler.eventLoop.submit { !(handler.value.session?.isIdle ?? true) }.get()
    }

    /// The last measured round trip to the edge.
    public func roundTripMilliseconds() async throws -> UInt64? {
        let handler = self.handler
        return try await handler.eventLoop.submit { handler.value.session?.session.roundTripMilliseconds }.get()
    }

    /// Ends the session now, with close_notify.
    public func close(_ why: String = "the client closed the session") async {
        let handler = self.handler
        try? await handler.eventLoop.submit { handler.value.session?.close(why) }.get()
        try? await channel.closeFuture.get()
    }
}
