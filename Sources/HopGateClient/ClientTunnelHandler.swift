import HopGateTunnel
import NIOCore

/// Why a tunnel connection did not come up, or ended.
public enum TunnelClientError: Error, Equatable, CustomStringConvertible {
    /// The edge refused the session: its code says whether trying again can help.
    case rejected(SessionHandshakeMessage.Reject)
    /// The session ended (before or after its Welcome), and why.
    case closed(String)

    public var description: String {
        switch self {
        case .rejected(let reject): "the edge refused the session (\(reject.code)): \(reject.message)"
        case .closed(let why): "the tunnel session ended: \(why)"
        }
    }
}

/// The client's tunnel session on a DTLS client channel, above `DTLSClientHandler`: sends the Hello when added,
/// carries records both ways, drives SCTP's timers and the keepalive, and hands each request to `onExchange`.
final class ClientTunnelHandler: ChannelInboundHandler, TunnelSessionDriverDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    typealias ExchangeHandler = @Sendable (TunnelExchange, TunnelFrame) -> TunnelExchangeConsumer?

    static let tickInterval = TimeAmount.milliseconds(5)

    private let handshake: ClientHandshake
    private let sctp: SCTPAssociation.Settings
    private let onExchange: ExchangeHandler
    private let welcomePromise: EventLoopPromise<SessionHandshakeMessage.Welcome>
    private let endPromise: EventLoopPromise<TunnelClientError>
    private var driver: TunnelSessionDriver?
    private var context: ChannelHandlerContext?
    private var ticker: RepeatedTask?
    private var rejection: SessionHandshakeMessage.Reject?
    /// The edge's Welcome, until SCTP is up too.
    private var welcome: SessionHandshakeMessage.Welcome?

    /// - Parameters:
    ///   - welcomePromise: succeeded when the session is up, failed with a `TunnelClientError` if it never is.
    ///   - endPromise: succeeded with why the session ended, whenever it does.
    ///   - maximumRecordSize: the largest record the DTLS session below takes; SCTP packets fill such records.
    init(
        handshake: ClientHandshake,
        maximumRecordSize: Int,
        welcomePromise: EventLoopPromise<SessionHandshakeMessage.Welcome>,
        endPromise: EventLoopPromise<TunnelClientError>,
        onExchange: @escaping ExchangeHandler
    ) {
        self.handshake = handshake
        self.sctp = SCTPAssociation.Settings(maximumRecordSize: maximumRecordSize)
        self.welcomePromise = welcomePromise
        self.endPromise = endPromise
        self.onExchange = onExchange
    }

    var session: TunnelSessionDriver? { driver }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let driver = TunnelSessionDriver(
            session: TunnelSession(client: handshake, sctp: sctp),
            eventLoop: context.eventLoop
        )
        driver.delegate = self
        self.driver = driver
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) {
            _ in handler.value.tick()
        }
        driver.start()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        driver?.close("the tunnel handler was removed")
        ticker?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        driver?.receive(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver?.close("the DTLS session ended")
        context.fireChannelInactive()
    }

    private func tick() {
        SCTPStack.advanceTimers(toMilliseconds: TunnelSessionDriver.monotonicMilliseconds())
        driver?.tick()
    }

    // MARK: - TunnelSessionDriverDelegate

    func send(_ records: [ByteBuffer]) {
        guard let context else { return }
        for record in records { context.write(wrapOutboundOut(record), promise: nil) }
        context.flush()
    }

    func verify(_ action: EdgeHandshake.Action) {}

    func established(_ welcome: SessionHandshakeMessage.Welcome) {
        self.welcome = welcome
    }

    /// The session is up only once SCTP is: the edge routes requests to it from then on, so "connected" means
    /// serving. Through a lossy path a lost SCTP handshake packet takes a retransmission (a second or more), and a
    /// request sent on the word of the Welcome alone was refused as busy.
    func ready() {
        if let welcome { welcomePromise.succeed(welcome) }
    }

    func rejected(_ reject: SessionHandshakeMessage.Reject) {
        rejection = reject
    }

    func exchangeOpened(_ exchange: TunnelExchange, head: TunnelFrame) -> TunnelExchangeConsumer? {
        onExchange(exchange, head)
    }

    func closed(_ why: String) {
        ticker?.cancel()
        let error = rejection.map(TunnelClientError.rejected) ?? .closed(why)
        welcomePromise.fail(error)
        endPromise.succeed(error)
        // Closing the channel sends close_notify through the DTLS handler below.
        context?.close(promise: nil)
    }
}
