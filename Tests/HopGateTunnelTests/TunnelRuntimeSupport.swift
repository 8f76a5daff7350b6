import HopGateClient
import HopGateDTLS
import HopGateEdge
import HopGateLossyRelay
import HopGateTunnel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An edge listener and what it needs, on loopback, with credentials checked against a fixed table instead of a
/// store (the store's checks have their own tests): `app.example.com` with `TunnelRuntimeEdge.key`.
struct TunnelRuntimeEdge {
    static let domain = "app.example.com"
    static let key = String(repeating: "5a", count: 32)

    let listener: EdgeTunnelListener
    let certificate: DTLSCertificate
    let runTask: Task<Void, Never>
    /// How many credential checks reached the (fake) store.
    let checks: NIOLockedValueBox<Int>

    static func start(limiter: FailureRateLimiter = .init(maximumFailures: 20)) async throws -> TunnelRuntimeEdge {
        let certificate = try DTLSCertificate.selfSigned(names: ["edge.test"])
        let checks = NIOLockedValueBox(0)
        let listener = try await EdgeTunnelListener.bind(
            host: "127.0.0.1",
            port: 0,
            dtls: DTLSServerConfiguration(certificateSource: FixedCertificateSource(certificate)),
            limiter: limiter,
            logger: Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }
        ) { action in
            checks.withLockedValue { $0 += 1 }
            switch action {
            case .verifyKey(let domain, let key):
                guard domain == Self.domain else { return .unknownDomain }
                return key == Self.key ? .valid(resumptionToken: [1, 2, 3]) : .badKey
            case .verifyToken:
                return .expiredToken
            default:
                return .serverBusy
            }
        }
        let runTask = Task { await listener.run(grace: .seconds(30)) }
        return TunnelRuntimeEdge(listener: listener, certificate: certificate, runTask: runTask, checks: checks)
    }

    var port: Int { listener.localAddress.port! }

    func clientDTLS() -> DTLSClientConfiguration {
        DTLSClientConfiguration(serverName: "edge.test", verification: .fingerprint(certificate.fingerprint!))
    }

    func connect(
        domain: String = Self.domain,
        key: String = Self.key,
        port: Int? = nil,
        onExchange: @escaping @Sendable (TunnelExchange, TunnelFrame) -> TunnelExchangeConsumer?
    ) async throws -> TunnelClientConnection {
        try await TunnelClientConnection.connect(
            host: "127.0.0.1",
            port: port ?? self.port,
            dtls: clientDTLS(),
            handshake: ClientHandshake(
                domain: domain,
                credential: .clientAPIKey(key),
                pathPrefixes: ["/"],
                clientVersion: "test"
            ),
            onExchange: onExchange
        )
    }

    /// The one session the registry has for the test domain, once it is there.
    func waitForSession() async throws -> EdgeTunnelSession {
        for _ in 0..<500 {
            if let session = listener.registry.sessions(for: Self.domain).first { return session }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TunnelClientError.closed("no session appeared in the registry")
    }

    func stop() async {
        runTask.cancel()
        await runTask.value
    }
}

/// The client's application in the runtime tests: answers 200 and echoes the request body as it arrives. It grants
/// credit back only as its own writes are taken, so a slow edge reader pushes back all the way to the request.
final class EchoResponder: @unchecked Sendable {
    // @unchecked: used only on `eventLoop`.
    let exchange: TunnelExchange
    let eventLoop: any EventLoop
    private var held = 0

    init(exchange: TunnelExchange, eventLoop: any EventLoop) {
        self.exchange = exchange
        self.eventLoop = eventLoop
    }

    static func accept(_ exchange: TunnelExchange, _ head: TunnelFrame) -> TunnelExchangeConsumer {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let responder = EchoResponder(exchange: exchange, eventLoop: eventLoop)
        exchange.sendHead(
            .responseHead(status: 200, headers: [HeaderField("content-type", "application/octet-stream")])
        )
        return TunnelExchangeConsumer(eventLoop: eventLoop) { responder.handle($0) }
    }

    private func handle(_ event: TunnelExchangeEvent) {
        switch event {
        case .data(let bytes):
            if exchange.write(bytes) {
                exchange.consumed(bytes.readableBytes)
            } else {
                held += bytes.readableBytes
            }
        case .writable:
            exchange.consumed(held)
            held = 0
        case .end:
            exchange.end()
        case .head, .aborted:
            break
        }
    }
}

/// The edge's application in the runtime tests: one request with a generated body of `size` bytes, written as
/// fast as the exchange takes it, and the echoed body checked on the fly. `reading` false stops it granting credit.
final class StreamingRequester: @unchecked Sendable {
    // @unchecked: used only on `eventLoop`.
    enum Outcome: Equatable {
        case finished(received: Int, intact: Bool)
        case aborted(AbortReason)
    }

    let size: Int
    let eventLoop: any EventLoop
    let outcome: EventLoopPromise<Outcome>
    private var exchange: TunnelExchange?
    private var sent = 0
    private var endSent = false
    private(set) var received = 0
    private var intact = true
    private var held = 0
    /// While false, received bytes are not granted back: the peer runs out of credit.
    var reading = true {
        didSet {
            if reading, held > 0 {
                exchange?.consumed(held)
                held = 0
            }
        }
    }

    init(size: Int, eventLoop: any EventLoop) {
        self.size = size
        self.eventLoop = eventLoop
        outcome = eventLoop.makePromise()
    }

    /// Opens the exchange on `session` and starts writing; the future holds the outcome.
    func start(on session: EdgeTunnelSession, path: String = "/") -> EventLoopFuture<Outcome> {
        let head = TunnelFrame.requestHead(
            method: "POST",
            scheme: "https",
            authority: TunnelRuntimeEdge.domain,
            path: path,
            headers: []
        )
        let consumer = TunnelExchangeConsumer(eventLoop: eventLoop) { self.handle($0) }
        session.openExchange(head, consumer: consumer).hop(to: eventLoop).whenComplete { result in
            guard case .success(let exchange?) = result else {
                self.outcome.succeed(.aborted(AbortReason(.refused, "the session took no new exchange")))
                return
            }
            self.exchange = exchange
            self.pump()
        }
        return outcome.futureResult
    }

    private func pump() {
        guard let exchange else { return }
        while sent < size {
            let count = min(64 * 1024, size - sent)
            let more = exchange.write(StreamingEcho.chunk(at: sent, count: count))
            sent += count
            if !more { return }
        }
        if !endSent {
            endSent = true
            exchange.end()
        }
    }

    private func handle(_ event: TunnelExchangeEvent) {
        switch event {
        case .head:
            break
        case .data(let bytes):
            if intact && !StreamingEcho.matches(bytes, at: received) { intact = false }
            received += bytes.readableBytes
            if reading {
                exchange?.consumed(bytes.readableBytes)
            } else {
                held += bytes.readableBytes
            }
        case .writable:
            pump()
        case .end:
            outcome.succeed(.finished(received: received, intact: intact))
        case .aborted(let reason):
            outcome.succeed(.aborted(reason))
        }
    }
}
