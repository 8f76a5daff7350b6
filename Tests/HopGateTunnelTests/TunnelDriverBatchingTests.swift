import HopGateTunnel
import NIOCore
import NIOEmbedded
import Testing

/// How a driver batches what applications queue in one event-loop turn: together, but not all the way to the end
/// of a long turn (see `TunnelSessionDriver.deferredCallsPerSend`).
extension SCTPAssociationTests {
    /// Counts what the driver sends; the records go nowhere (subclasses may send them on).
    class RecordCounter: TunnelSessionDriverDelegate {
        var sends = 0
        var records = 0
        func send(_ records: [ByteBuffer]) {
            sends += 1
            self.records += records.count
        }
        func verify(_ action: EdgeHandshake.Action) {}
        func established(_ welcome: SessionHandshakeMessage.Welcome) {}
        func ready() {}
        func rejected(_ reject: SessionHandshakeMessage.Reject) {}
        func exchangeOpened(_ exchange: TunnelExchange, head: TunnelFrame) -> TunnelExchangeConsumer? { nil }
        func closed(_ why: String) {}
    }

    /// An edge driver on an embedded loop over a session that is up (established through the simulated link).
    func establishedEdgeDriver() throws -> (EchoHarness, TunnelSessionDriver, RecordCounter, EmbeddedEventLoop) {
        let harness = try EchoHarness(lossRate: 0, seed: 3, key: Self.key)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 30_000 {
            try harness.step()
        }
        try #require(harness.edgeEstablished && harness.clientEstablished)
        let loop = EmbeddedEventLoop()
        let driver = TunnelSessionDriver(session: harness.edge, eventLoop: loop, now: { harness.link.now })
        let counter = RecordCounter()
        driver.delegate = counter
        return (harness, driver, counter, loop)
    }

    func openRequests(_ count: Int, on driver: TunnelSessionDriver, loop: EmbeddedEventLoop) throws {
        for index in 0..<count {
            let head = TunnelFrame.requestHead(
                method: "GET",
                scheme: "https",
                authority: "app.example.com",
                path: "/\(index)",
                headers: []
            )
            let consumer = TunnelExchangeConsumer(eventLoop: loop) { _ in }
            _ = try #require(try driver.openExchange(head, consumer: consumer))
        }
    }

    @Test func requestsOpenedInOneTurnLeaveTogetherAtItsEnd() throws {
        let (harness, driver, counter, loop) = try establishedEdgeDriver()
        try openRequests(TunnelSessionDriver.deferredCallsPerSend - 1, on: driver, loop: loop)
        #expect(counter.sends == 0, "nothing leaves before the turn ends")
        loop.run()
        #expect(counter.sends == 1, "one send for the whole turn")
        #expect(counter.records >= 1)
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    @Test func aLongTurnSendsEveryFewRequestsInsteadOfHoldingAllToItsEnd() throws {
        let (harness, driver, counter, loop) = try establishedEdgeDriver()
        let perSend = TunnelSessionDriver.deferredCallsPerSend
        // Only a little more than one send's worth: nothing acknowledges here, and SCTP's initial congestion window
        // holds back what goes past a few packets.
        try openRequests(perSend + 2, on: driver, loop: loop)
        #expect(counter.sends == 1, "a send after \(perSend) requests, within the turn")
        loop.run()
        #expect(counter.sends == 2, "the last two leave at the end of the turn")
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }
}
