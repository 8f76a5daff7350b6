import HopGateTunnel
import NIOCore
import NIOEmbedded
import Testing

/// How body bytes become messages: each a whole number of SCTP packets, gathered across the application's writes,
/// with what is left over sent when the event loop's turn ends (see `TunnelSession.dataChunkSize`).
extension SCTPAssociationTests {
    /// Sends the driver's records on to the client over the harness's simulated link.
    final class RecordForwarder: RecordCounter {
        let harness: EchoHarness
        init(harness: EchoHarness) { self.harness = harness }
        override func send(_ records: [ByteBuffer]) {
            super.send(records)
            for record in records { harness.link.send(record, toEdge: false) }
        }
    }

    @Test(arguments: [UInt32(512), 1148, 1500, 16372])
    func aFullDataMessageIsTheLargestWholeNumberOfPackets(pathMTU: UInt32) {
        var settings = SCTPAssociation.Settings()
        settings.pathMTU = pathMTU
        let session = TunnelSession(edgeSessionID: 1, sctp: settings)
        // A packet carries one I-DATA chunk of pathMTU - 20 bytes; the message adds 9 bytes to the body.
        let packetPayload = (Int(pathMTU) - 20) / 4 * 4
        let message = session.dataChunkSize + 9
        #expect(message % packetPayload == 0, "\(message) bytes is not a whole number of \(packetPayload)-byte packets")
        #expect(message <= SCTPAssociation.maximumMessageSize)
        #expect(message + packetPayload > SCTPAssociation.maximumMessageSize, "a larger message would still fit")
        _ = session.close("test over")
    }

    @Test func writesBecomeWholePacketMessagesAndTheRestLeavesWhenTheTurnEnds() throws {
        let harness = try EchoHarness(lossRate: 0, seed: 5, key: Self.key, initialCredit: 1024 * 1024)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 30_000 {
            try harness.step()
        }
        try #require(harness.edgeEstablished && harness.clientEstablished)
        let loop = EmbeddedEventLoop()
        let driver = TunnelSessionDriver(session: harness.edge, eventLoop: loop, now: { harness.link.now })
        let forwarder = RecordForwarder(harness: harness)
        driver.delegate = forwarder
        let head = TunnelFrame.requestHead(
            method: "POST",
            scheme: "https",
            authority: "app.example.com",
            path: "/upload",
            headers: []
        )
        let consumer = TunnelExchangeConsumer(eventLoop: loop) { _ in }
        let exchange = try #require(try driver.openExchange(head, consumer: consumer))
        // Three 64 KiB reads of a local connection, in one turn; the exchange stays open.
        let writes = 3
        for _ in 0..<writes { exchange.write(ByteBuffer(repeating: 7, count: 64 * 1024)) }
        loop.run()
        let total = writes * 64 * 1024
        while harness.clientDataFrameSizes.reduce(0, +) < total && harness.link.now < 30_000 {
            try harness.step()
        }
        let chunk = harness.edge.dataChunkSize
        // Before: 65527 bytes and 9 bytes for each write, the 9 a packet of their own.
        #expect(harness.clientDataFrameSizes == [chunk, chunk, chunk, total - 3 * chunk])
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }
}
