import HopGateDTLS
import HopGateTunnel
import Logging
import NIOCore
import NIOPosix

/// The edge's DTLS listener with its tunnel sessions: bound by `bind`, serving while `run` runs, and drained
/// gracefully (GOAWAY, in-flight exchanges finish, then close_notify) when `run`'s task is cancelled.
public final class EdgeTunnelListener: Sendable {
    /// Checks a credential: the store, Argon2id through the verified-key cache, tokens. Runs off the event loop.
    public typealias CredentialCheck = @Sendable (EdgeHandshake.Action) async -> EdgeHandshake.Verdict

    private struct VerificationJob: Sendable {
        let action: EdgeHandshake.Action
        let reply: @Sendable (EdgeHandshake.Verdict) -> Void
    }

    public let registry: TunnelSessionRegistry
    public let statistics: DTLSStatisticsBox
    public let localAddress: SocketAddress
    private let channel: any Channel
    private let handler: NIOLoopBound<EdgeTunnelHandler>
    private let jobs: AsyncStream<VerificationJob>
    private let jobsContinuation: AsyncStream<VerificationJob>.Continuation
    private let check: CredentialCheck
    private let logger: Logger

    private init(
        channel: any Channel,
        handler: NIOLoopBound<EdgeTunnelHandler>,
        registry: TunnelSessionRegistry,
        statistics: DTLSStatisticsBox,
        jobs: (AsyncStream<VerificationJob>, AsyncStream<VerificationJob>.Continuation),
        check: @escaping CredentialCheck,
        logger: Logger
    ) throws {
        self.channel = channel
        self.handler = handler
        self.registry = registry
        self.statistics = statistics
        guard let address = channel.localAddress else {
            throw DTLSError(.notEstablished, "the DTLS listener has no local address")
        }
        self.localAddress = address
        (self.jobs, self.jobsContinuation) = jobs
        self.check = check
        self.logger = logger
    }

    /// Binds the UDP socket. Sessions are accepted at once; their credential checks wait for `run`.
    public static func bind(
        host: String,
        port: Int,
        dtls: DTLSServerConfiguration,
        policy: EdgeHandshake.Policy = .init(),
        // Attempts in flight count too: a site of 100 clients behind one NAT address may all connect at once.
        limiter: FailureRateLimiter = .init(maximumFailures: 100),
        registry: TunnelSessionRegistry = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        metrics: EdgeMetrics? = nil,
        check: @escaping CredentialCheck
    ) async throws -> EdgeTunnelListener {
        let (jobs, continuation) = AsyncStream.makeStream(of: VerificationJob.self)
        let statistics = DTLSStatisticsBox()
        let (channel, handler) = try await DTLSServer.bind(
            host: host,
            port: port,
            configuration: dtls,
            group: group,
            logger: logger,
            statistics: statistics
        ) { channel in
            let handler = EdgeTunnelHandler(
                policy: policy,
                registry: registry,
                limiter: limiter,
                logger: logger,
                metrics: metrics
            ) { action, reply in
                continuation.yield(VerificationJob(action: action, reply: reply))
            }
            try channel.pipeline.syncOperations.addHandler(handler)
            return (channel, NIOLoopBound(handler, eventLoop: channel.eventLoop))
        }
        return try EdgeTunnelListener(
            channel: channel,
            handler: handler,
            registry: registry,
            statistics: statistics,
            jobs: (jobs, continuation),
            check: check,
            logger: logger
        )
    }

    /// Serves until the task is cancelled, then drains: GOAWAY to every client, up to `grace` for the exchanges in
    /// flight, then every session closed and the socket with them.
    public func run(grace: Duration = .seconds(10)) async {
        let check = self.check
        await withDiscardingTaskGroup { group in
            for await job in jobs {
                group.addTask { job.reply(await check(job.action)) }
            }
        }
        await drain(grace: grace)
    }

    private func drain(grace: Duration) async {
        let handler = self.handler
        try? await handler.eventLoop.submit { handler.value.goAway("the edge is shutting down") }.get()
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while clock.now < deadline {
            let open = (try? await handler.eventLoop.submit { handler.value.busySessions }.get()) ?? 0
            if open == 0 { break }
            // Not `Task.sleep`: this task is already cancelled, and the wait must still happen.
            try? await handler.eventLoop.scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        }
        jobsContinuation.finish()
        try? await handler.eventLoop.submit { handler.value.closeAll("the edge shut down") }.get()
        try? await channel.close()
    }

    /// How many DTLS sessions carry a tunnel session (handshaking or up).
    public func sessionCount() async throws -> Int {
        let handler = self.handler
        return try await handler.eventLoop.submit { handler.value.sessionCount }.get()
    }
}
