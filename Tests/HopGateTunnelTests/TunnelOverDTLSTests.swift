import HopGateDTLS
import HopGateTunnel
import Logging
import NIOCore
import NIOPosix
import Testing

/// The tunnel over real DTLS on loopback (SCTP over DTLS, RFC 8261): the same two sessions and applications as the
/// simulated tests, with records carried by `DTLSServer` and `DTLSClient` in real time.
extension SCTPAssociationTests {
    @Test(.timeLimit(.minutes(2)))
    func exchangesEchoByteExactOverRealDTLS() async throws {
        let harness = try EchoHarness(lossRate: 0, seed: 21, key: Self.key)
        var generator = SeededGenerator(seed: 21)
        harness.plannedBodies = (0..<30).map { index in
            (0..<(index == 0 ? 0 : Int.random(in: 1...400_000, using: &generator))).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
        }
        try await driveOverRealDTLS(harness)
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

extension SCTPAssociationTests.EchoHarness: RealDTLSApplications {
    var isEstablished: Bool { edgeEstablished && clientEstablished }
    var isFinished: Bool { !requests.isEmpty && !requests.values.contains { !$0.ended } }
    var clockNow: UInt64 {
        get { link.now }
        set { link.now = newValue }
    }

    func openExchanges() throws {
        for (index, body) in plannedBodies.enumerated() {
            let head = TunnelFrame.requestHead(
                method: "POST",
                scheme: "https",
                authority: "app.example.com",
                path: "/\(index)",
                headers: []
            )
            let (id, outputs) = try #require(try edge.openExchange(head, now: link.now))
            requests[id] = (body, 0, [], false)
            handle(outputs, atEdge: true)
            if body.isEmpty { handle(try edge.sendEnd(on: id, now: link.now), atEdge: true) }
        }
    }

    func takeOutbox() -> [(toEdge: Bool, record: ByteBuffer)] {
        defer { outbox = [] }
        return outbox ?? []
    }
}
