import HopGateDTLS
import HopGateTunnel
import Logging
import NIOCore

/// Runs the edge's tunnel sessions on the DTLS server's channel, above `DTLSServerHandler`: one `TunnelSession`
/// per DTLS session, its records in and out, its credential checks sent off the event loop and limited per source
/// network and domain, its timers, and the registry of live sessions the proxy routes by. All of it runs on the
/// channel's one event loop, which is also where this process drives usrsctp for these sessions.
final class EdgeTunnelHandler: ChannelInboundHandler {
    typealias InboundIn = DTLSServerEvent
    typealias OutboundOut = DTLSServerCommand

    /// Checks a credential off the event loop and calls back (on any thread) with the verdict.
    typealias Verify = @Sendable (EdgeHandshake.Action, @escaping @Sendable (EdgeHandshake.Verdict) -> Void) -> Void

    /// How often SCTP's timers and the sessions' keepalives are driven.
    static let tickInterval = TimeAmount.milliseconds(5)

    private let policy: EdgeHandshake.Policy
    private let registry: TunnelSessionRegistry
    private let verify: Verify
    private let logger: Logger
    private var limiter: FailureRateLimiter
    private var runners: [DTLSSessionID: EdgeSessionRunner] = [:]
    private var context: ChannelHandlerContext?
    private var ticker: RepeatedTask?
    private var nextSessionID: UInt64 = 1
    private var goingAway: String?
    private let metrics: EdgeMetrics?
    private var ticks = 0

    init(
        policy: EdgeHandshake.Policy,
        registry: TunnelSessionRegistry,
        limiter: FailureRateLimiter,
        logger: Logger,
        metrics: EdgeMetrics?,
        verify: @escaping Verify
    ) {
        self.metrics = metrics
        self.policy = policy
        self.registry = registry
        self.limiter = limiter
        self.logger = logger
        self.verify = verify
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) {
            _ in handler.value.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker?.cancel()
        for runner in runners.values { runner.driver.close("the edge is shutting down") }
        runners.removeAll()
        self.context = nil
    }

    var sessionCount: Int { runners.count }

    // MARK: - DTLS events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .established(let id, let peer, let maximumRecordSize):
            guard goingAway == nil else {
                context.writeAndFlush(wrapOutboundOut(.close(id)), promise: nil)
                return
            }
            let sessionID = nextSessionID
            nextSessionID += 1
            let session = TunnelSession(
                edgeSessionID: sessionID,
                policy: policy,
                sctp: SCTPAssociation.Settings(maximumRecordSize: maximumRecordSize)
            )
            let driver = TunnelSessionDriver(session: session, eventLoop: context.eventLoop)
            let runner = EdgeSessionRunner(dtlsID: id, peer: peer, driver: driver, handler: self)
            driver.delegate = runner
            runners[id] = runner
        case .record(let id, let record):
            runners[id]?.driver.receive(record)
        case .closed(let id, let reason):
            guard let runner = runners[id] else { return }
            runner.dtlsClosed = true
            runner.driver.close("the DTLS session ended (\(reason))")
        }
    }

    private func tick() {
        SCTPStack.advanceTimers(toMilliseconds: TunnelSessionDriver.monotonicMilliseconds())
        for runner in runners.values {
            runner.driver.tick()
            if let published = runner.published {
                published.suspect.store(runner.driver.session.isSuspect, ordering: .relaxed)
            }
        }
        ticks += 1
        if ticks % 200 == 0, let metrics {  // once a second
            metrics.tunnelRoundTrips(runners.values.compactMap { $0.driver.session.roundTripMilliseconds })
        }
    }

    // MARK: - From the sessions

    fileprivate func send(_ records: [ByteBuffer], for id: DTLSSessionID) {
        guard let context else { return }
        for record in records { context.write(wrapOutboundOut(.send(id, record)), promise: nil) }
        context.flush()
    }

    fileprivate func verify(_ action: EdgeHandshake.Action, for runner: EdgeSessionRunner) {
        let domain: String
        switch action {
        case .verifyKey(let name, _), .verifyToken(let name, _): domain = name
        default: return
        }
        let keys = ["network:" + Self.sourceNetwork(of: runner.peer), "domain:" + domain.lowercased()]
        let startedAt = TunnelSessionDriver.monotonicMilliseconds()
        guard limiter.beginAttempt(keys, now: startedAt) else {
            logger.warning(
                "tunnel handshake rate-limited",
                metadata: ["peer": "\(runner.peer.hostAndPort)", "domain": "\(domain)"]
            )
            runner.driver.verdict(.rateLimited)
            return
        }
        let loopBound = NIOLoopBound((self, runner), eventLoop: runner.driver.eventLoop)
        verify(action) { verdict in
            loopBound.eventLoop.execute {
                let (handler, runner) = loopBound.value
                if case .valid = verdict { handler.limiter.attemptSucceeded(keys, startedAt: startedAt) }
                runner.driver.verdict(verdict)
            }
        }
    }

    /// The session is routable once SCTP is up: before that it could take no exchange.
    fileprivate func ready(_ runner: EdgeSessionRunner) {
        guard let hello = runner.driver.session.clientHello, let welcome = runner.driver.session.establishedWelcome
        else { return }
        let session = EdgeTunnelSession(
            welcome: welcome,
            hello: hello,
            peer: runner.peer,
            driver: NIOLoopBound(runner.driver, eventLoop: runner.driver.eventLoop)
        )
        runner.published = session
        registry.add(session)
        metrics?.handshake("accepted")
        logger.info(
            "tunnel session up",
            metadata: [
                "session": "\(welcome.sessionID)", "domain": "\(welcome.boundDomain)",
                "peer": "\(runner.peer.hostAndPort)",
                "paths": "\(session.pathPrefixes.joined(separator: ","))", "client": "\(hello.clientVersion)",
            ]
        )
        if let goingAway { runner.driver.goAway(goingAway) }
    }

    fileprivate func rejected(_ runner: EdgeSessionRunner, _ reject: SessionHandshakeMessage.Reject) {
        metrics?.handshake("\(reject.code)")
        logger.notice(
            "tunnel handshake rejected",
            metadata: ["peer": "\(runner.peer.hostAndPort)", "code": "\(reject.code)", "reason": "\(reject.message)"]
        )
    }

    fileprivate func closed(_ runner: EdgeSessionRunner, why: String) {
        runners[runner.dtlsID] = nil
        if let session = runner.published {
            registry.remove(session)
            logger.info("tunnel session ended", metadata: ["session": "\(session.id)", "reason": "\(why)"])
        }
        // The DTLS session outlives the tunnel session only if the tunnel ended first: end it with close_notify.
        if !runner.dtlsClosed, let context {
            context.writeAndFlush(wrapOutboundOut(.close(runner.dtlsID)), promise: nil)
        }
    }

    // MARK: - Shutting down

    /// GOAWAY to every session, and to every session that comes up from now on.
    func goAway(_ reason: String) {
        goingAway = reason
        for runner in runners.values { runner.driver.goAway(reason) }
    }

    /// Ends every session, each with close_notify.
    func closeAll(_ why: String) {
        for runner in runners.values { runner.driver.close(why) }
    }

    /// How many sessions still have exchanges open or data on its way.
    var busySessions: Int { runners.values.filter { !$0.driver.isIdle }.count }

    /// Where a failed handshake counts: the IPv4 address, or the IPv6 /64 (one host usually has a whole /64).
    static func sourceNetwork(of peer: SocketAddress) -> String {
        switch peer {
        case .v6(let address):
            let bytes = withUnsafeBytes(of: address.address.sin6_addr) { Array($0.prefix(8)) }
            return bytes.map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
        default:
            return peer.ipAddress ?? "\(peer)"
        }
    }
}

/// One DTLS session's tunnel session at the edge, and the driver's delegate for it.
private final class EdgeSessionRunner: TunnelSessionDriverDelegate {
    let dtlsID: DTLSSessionID
    let peer: SocketAddress
    let driver: TunnelSessionDriver
    unowned let handler: EdgeTunnelHandler
    var published: EdgeTunnelSession?
    /// The DTLS session is already gone: nothing more to send it.
    var dtlsClosed = false

    init(dtlsID: DTLSSessionID, peer: SocketAddress, driver: TunnelSessionDriver, handler: EdgeTunnelHandler) {
        self.dtlsID = dtlsID
        self.peer = peer
        self.driver = driver
        self.handler = handler
    }

    func send(_ records: [ByteBuffer]) { handler.send(records, for: dtlsID) }

    func verify(_ action: EdgeHandshake.Action) { handler.verify(action, for: self) }

    func established(_ welcome: SessionHandshakeMessage.Welcome) {}

    func ready() { handler.ready(self) }

    func rejected(_ reject: SessionHandshakeMessage.Reject) { handler.rejected(self, reject) }

    func exchangeOpened(_ exchange: TunnelExchange, head: TunnelFrame) -> TunnelExchangeConsumer? { nil }

    func closed(_ why: String) { handler.closed(self, why: why) }
}
