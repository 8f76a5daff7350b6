import HopGateDTLS
import HopGateTunnel
import Logging
import NIOCore
import NIOPosix
import Testing

/// The tunnel over real DTLS on loopback (SCTP over DTLS, RFC 8261): the same two sessions and applications as the
/// simulated tests, with records carried by `DTLSServer` and `DTLSClient` in real time.
extension SCTPAssociationTests {
    private enum Event {
        case edge(DTLSServerEvent)
        case client(ByteBuffer)
        case tick
    }

    @Test(.timeLimit(.minutes(2)))
    func exchangesEchoByteExactOverRealDTLS() async throws {
        let logger = Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }
        let certificate = try DTLSCertificate.selfSigned(names: ["edge.test"])
        let server = try await DTLSServer.bind(
            host: "127.0.0.1",
            port: 0,
            configuration: DTLSServerConfiguration(certificateSource: FixedCertificateSource(certificate)),
            logger: logger
        )
        let client = try await DTLSClient.connect(
            host: "127.0.0.1",
            port: server.localAddress!.port!,
            configuration: DTLSClientConfiguration(
                serverName: "edge.test",
                verification: .fingerprint(certificate.fingerprint!)
            )
        )
        let harness = try EchoHarness(lossRate: 0, seed: 21, key: Self.key)
        let clock = ContinuousClock()
        let started = clock.now
        func milliseconds() -> UInt64 {
            UInt64((clock.now - started).components.seconds * 1000)
                + UInt64((clock.now - started).components.attoseconds / 1_000_000_000_000_000)
        }
        var generator = SeededGenerator(seed: 21)
        let bodies = (0..<30).map { index in
            (0..<(index == 0 ? 0 : Int.random(in: 1...400_000, using: &generator))).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
        }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)

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
                    // The client's Hello was queued when the harness started; it leaves with the first flush.
                    harness.outbox = []
                    harness.handle(try harness.client.start(now: 0), atEdge: false)
                    for await event in events {
                        harness.link.now = milliseconds()
                        switch event {
                        case .edge(.established(let id, _)):
                            edgeSession = id
                        case .edge(.record(_, let record)):
                            harness.handle(harness.edge.receive(record, now: harness.link.now), atEdge: true)
                        case .edge(.closed):
                            Issue.record("the DTLS session closed")
                        case .client(let record):
                            harness.handle(harness.client.receive(record, now: harness.link.now), atEdge: false)
                        case .tick:
                            SCTPStack.advanceTimers(toMilliseconds: NIODeadline.now().uptimeNanoseconds / 1_000_000)
                            try harness.runApplications()
                            if harness.edgeEstablished && harness.clientEstablished && !opened {
                                opened = true
                                for (index, body) in bodies.enumerated() {
                                    let head = TunnelFrame.requestHead(
                                        method: "POST",
                                        scheme: "https",
                                        authority: "app.example.com",
                                        path: "/\(index)",
                                        headers: []
                                    )
                                    let (id, outputs) = try #require(
                                        try harness.edge.openExchange(head, now: harness.link.now)
                                    )
                                    harness.requests[id] = (body, 0, [], false)
                                    harness.handle(outputs, atEdge: true)
                                    if body.isEmpty {
                                        harness.handle(
                                            try harness.edge.sendEnd(on: id, now: harness.link.now),
                                            atEdge: true
                                        )
                                    }
                                }
                            }
                        }
                        // Send what the sessions produced: towards the edge over the client's channel, and back.
                        if let edgeSession {
                            for (toEdge, record) in harness.outbox ?? [] {
                                if toEdge {
                                    try await clientOutbound.write(record)
                                } else {
                                    try await serverOutbound.write(.send(edgeSession, record))
                                }
                            }
                            harness.outbox = []
                        }
                        if opened && !harness.requests.values.contains(where: { !$0.ended }) { break }
                    }
                    group.cancelAll()
                }
            }
        }
        #expect(harness.requests.count == 30)
        for (id, request) in harness.requests {
            #expect(request.echoed == request.body, "\(id): \(request.echoed.count) of \(request.body.count) bytes")
        }
        #expect(harness.aborted.isEmpty)
        #expect(harness.largestRecord <= 1163)
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }
}
