import HopGateDTLS
import HopGateLossyRelay
import HopGateTunnel
import Logging
import NIOCore
import NIOPosix
import Testing

/// The two applications of a tunnel test, however they move their bytes, as the real-DTLS driver sees them.
protocol RealDTLSApplications: AnyObject {
    var edge: TunnelSession { get }
    var client: TunnelSession { get }
    /// Both sessions are up.
    var isEstablished: Bool { get }
    /// Every exchange the test opened has ended at the edge.
    var isFinished: Bool { get }
    /// The sessions' clock, in milliseconds since the test began.
    var clockNow: UInt64 { get set }
    func handle(_ outputs: [TunnelSession.Output], atEdge: Bool)
    func runApplications() throws
    /// Opens the test's exchanges, once both sessions are up.
    func openExchanges() throws
    /// The records produced since the last call, to send over the real transport.
    func takeOutbox() -> [(toEdge: Bool, record: ByteBuffer)]
}

private enum DriverEvent {
    case edge(DTLSServerEvent)
    case client(ByteBuffer)
    case tick
}

/// Runs `applications` over a real `DTLSServer` and `DTLSClient` on loopback (through the lossy relay when `loss` is
/// above zero) until every exchange has ended. Everything the sessions do happens in this one task, so they need no
/// locks; SCTP's timers run on the process-wide monotonic clock. `onTick` runs every 2 ms.
func driveOverRealDTLS(
    _ applications: some RealDTLSApplications,
    loss: Double = 0,
    onTick: () -> Void = {}
) async throws {
    let logger = Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }
    let certificate = try DTLSCertificate.selfSigned(names: ["edge.test"])
    let server = try await DTLSServer.bind(
        host: "127.0.0.1",
        port: 0,
        configuration: DTLSServerConfiguration(certificateSource: FixedCertificateSource(certificate)),
        logger: logger
    )
    var port = server.localAddress!.port!
    var relay: LossyRelay?
    if loss > 0 {
        relay = try await LossyRelay.start(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: port),
            configuration: LossyRelayConfiguration(
                lossRate: loss,
                duplicationRate: loss / 5,
                reorderRate: loss,
                seed: 8
            )
        )
        port = relay!.port
    }
    let client = try await DTLSClient.connect(
        host: "127.0.0.1",
        port: port,
        configuration: DTLSClientConfiguration(
            serverName: "edge.test",
            verification: .fingerprint(certificate.fingerprint!)
        )
    )
    let clock = ContinuousClock()
    let started = clock.now
    let (events, continuation) = AsyncStream.makeStream(of: DriverEvent.self)

    try await server.channel.executeThenClose { serverInbound, serverOutbound in
        try await client.executeThenClose { clientInbound, clientOutbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { for try await event in serverInbound { continuation.yield(.edge(event)) } }
                group.addTask { for try await record in clientInbound { continuation.yield(.client(record)) } }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .milliseconds(2))
                        continuation.yield(.tick)
                    }
                }
                var edgeSession: DTLSSessionID?
                var opened = false
                _ = applications.takeOutbox()  // from now on, records leave through the real transport
                applications.handle(try applications.client.start(now: 0), atEdge: false)
                for await event in events {
                    let elapsed = clock.now - started
                    applications.clockNow =
                        UInt64(elapsed.components.seconds) * 1000
                        + UInt64(elapsed.components.attoseconds / 1_000_000_000_000_000)
                    switch event {
                    case .edge(.established(let id, _, _)):
                        edgeSession = id
                    case .edge(.record(_, let record)):
                        applications.handle(applications.edge.receive(record, now: applications.clockNow), atEdge: true)
                    case .edge(.closed):
                        Issue.record("the DTLS session closed")
                    case .client(let record):
                        applications.handle(
                            applications.client.receive(record, now: applications.clockNow),
                            atEdge: false
                        )
                    case .tick:
                        SCTPStack.advanceTimers(toMilliseconds: NIODeadline.now().uptimeNanoseconds / 1_000_000)
                        try applications.runApplications()
                        onTick()
                        if applications.isEstablished && !opened {
                            opened = true
                            try applications.openExchanges()
                        }
                    }
                    // Towards the edge over the client's channel; towards the client through the server's session.
                    if let edgeSession {
                        for (toEdge, record) in applications.takeOutbox() {
                            if toEdge {
                                try await clientOutbound.write(record)
                            } else {
                                try await serverOutbound.write(.send(edgeSession, record))
                            }
                        }
                    }
                    if opened && applications.isFinished { break }
                }
                group.cancelAll()
            }
        }
    }
    await relay?.stop()
}
