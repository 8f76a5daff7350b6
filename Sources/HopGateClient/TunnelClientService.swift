import HopGateDTLS
import HopGateTunnel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Why the client stopped for good (no retry can help): the process exits with its own status.
public struct TunnelClientStopped: Error, CustomStringConvertible {
    public let reject: SessionHandshakeMessage.Reject
    public var description: String {
        switch reject.code {
        case .badKey: "the edge refused the client API key: \(reject.message)"
        case .unknownDomain: "the edge does not know this domain: \(reject.message)"
        case .unsupportedVersion: "this client is too old or too new for the edge: \(reject.message)"
        default: "the edge refused the session: \(reject.message)"
        }
    }
}

/// `hopgate connect` as a Service: keeps one tunnel session to the edge up, forever. It reconnects with exponential
/// backoff (0.5 s doubling to 30 s, full jitter), presents its resumption token when it has one, and stops only
/// for a Reject that retrying cannot fix (bad key, unknown domain, version). On graceful shutdown it sends GOAWAY,
/// lets in-flight requests finish for up to `grace`, and closes.
public final class TunnelClientService: Service {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var dtls: DTLSClientConfiguration
        public var domain: String
        public var key: String
        public var clientVersion: String
        public var grace: Duration = .seconds(30)
        public var initialBackoff: Duration = .milliseconds(500)
        public var maximumBackoff: Duration = .seconds(30)

        public init(
            host: String,
            port: Int,
            dtls: DTLSClientConfiguration,
            domain: String,
            key: String,
            clientVersion: String
        ) {
            self.host = host
            self.port = port
            self.dtls = dtls
            self.domain = domain
            self.key = key
            self.clientVersion = clientVersion
        }
    }

    private let settings: Settings
    private let forwarder: LocalForwarder
    private let logger: Logger
    private let group: any EventLoopGroup

    public init(
        settings: Settings,
        forwarder: LocalForwarder,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.settings = settings
        self.forwarder = forwarder
        self.logger = logger
        self.group = group
    }

    public func run() async throws {
        var failures = 0
        var token: [UInt8]?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            logger.info(
                "connecting",
                metadata: [
                    "server": "\(settings.host):\(settings.port)",
                    "domain": "\(settings.domain)",
                ]
            )
            let connection: TunnelClientConnection
            do {
                connection = try await connect(token: token)
            } catch TunnelClientError.rejected(let reject) where reject.code == .expiredToken {
                token = nil  // the edge forgot it (restart with a new secret, key rotated): present the key
                continue
            } catch TunnelClientError.rejected(let reject) where !reject.code.isRetryable {
                logger.error("stopped", metadata: ["reason": "\(TunnelClientStopped(reject: reject))"])
                throw TunnelClientStopped(reject: reject)
            } catch {
                failures += 1
                await waitToReconnect(after: failures, because: Self.explain(error))
                continue
            }
            let streak = failures
            failures = 0
            token = connection.welcome.resumptionToken
            let rtt = try? await connection.roundTripMilliseconds()
            logger.info(
                "connected",
                metadata: [
                    "domain": "\(connection.welcome.boundDomain)", "session": "\(connection.welcome.sessionID)",
                    "targets": "\(forwarder.targets.map(\.description).joined(separator: ", "))",
                    "rtt_ms": "\(rtt.map { "\($0)" } ?? "pending")",
                ]
            )
            let served = ContinuousClock.now
            let why = await serve(connection)
            if Task.isShuttingDownGracefully || Task.isCancelled {
                logger.info("stopped", metadata: ["reason": "shutdown"])
                return
            }
            // A session that ends soon after it began counts as one more failure, so that reconnects back off
            // rather than loop: an edge that is shutting down still completes handshakes, then says GOAWAY.
            failures = ContinuousClock.now - served < Self.shortSession ? streak + 1 : 1
            await waitToReconnect(after: failures, because: why)
        }
    }

    /// How long a session must last for the next reconnect to start from the shortest backoff again.
    static let shortSession = Duration.seconds(10)

    /// Says why and when the client reconnects, then waits that long (less if the process shuts down).
    private func waitToReconnect(after failures: Int, because reason: String) async {
        let delay = backoff(after: failures)
        logger.warning("reconnecting", metadata: ["in_seconds": "\(Self.seconds(delay))", "reason": "\(reason)"])
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
    }

    private func connect(token: [UInt8]?) async throws -> TunnelClientConnection {
        let forwarder = self.forwarder
        return try await TunnelClientConnection.connect(
            host: settings.host,
            port: settings.port,
            dtls: settings.dtls,
            handshake: ClientHandshake(
                domain: settings.domain,
                credential: token.map { .resumptionToken($0) } ?? .clientAPIKey(settings.key),
                pathPrefixes: forwarder.pathPrefixes,
                clientVersion: settings.clientVersion
            ),
            group: group
        ) { exchange, head in forwarder.accept(exchange, head: head) }
    }

    /// Serves until the session ends (returning why) or a graceful shutdown drains it.
    private func serve(_ connection: TunnelClientConnection) async -> String {
        let grace = settings.grace
        return await withTaskGroup(of: String?.self) { group in
            group.addTask { "\((try? await connection.ended.get()) ?? .closed("unknown"))" }
            group.addTask {
                do {
                    try await gracefulShutdown()
                } catch {
                    // Cancelled: either the session ended first, or the whole service is being cancelled; then
                    // the session must end now, or the other task would wait for it forever.
                    await connection.close("the client was cancelled")
                    return nil
                }
                connection.goAway("the client is shutting down")
                let clock = ContinuousClock()
                let deadline = clock.now + grace
                while clock.now < deadline, (try? await connection.isBusy()) ?? false {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                await connection.close("the client shut down")
                return "shutdown"
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            for await _ in group {}
            return first ?? "shutdown"
        }
    }

    /// Full jitter over an exponential ceiling: reconnecting clients spread out instead of arriving together.
    private func backoff(after failures: Int) -> Duration {
        let ceiling = min(
            settings.maximumBackoff,
            settings.initialBackoff * Int(1 << min(failures - 1, 16))
        )
        let nanoseconds =
            Int64(ceiling.components.seconds) * 1_000_000_000
            + ceiling.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(nanoseconds, 1)))
    }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Says which of the three kinds of failure this is: the edge unreachable, its certificate, or the session.
    static func explain(_ error: any Error) -> String {
        if let dtls = error as? DTLSError {
            switch dtls.code {
            case .certificateRejected, .fingerprintMismatch:
                return "the edge's certificate was not accepted: \(dtls)"
            case .handshakeTimeout: return "the edge did not answer (unreachable, or UDP blocked): \(dtls)"
            default: return "DTLS failed: \(dtls)"
            }
        }
        return "\(error)"
    }
}
