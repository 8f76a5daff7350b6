import NIOCore
import Testing

@testable import HopGateTunnel

/// What leaves at once while a session defers sending (`defersSending`, as under a driver): small frames wait for
/// the turn's flush to leave bundled; credit grants and large data chunks do not wait.
extension SCTPAssociationTests {
    private static func records(_ outputs: [TunnelSession.Output]) -> Int {
        outputs.reduce(0) { count, output in
            if case .record = output { return count + 1 }
            return count
        }
    }

    private static func establishedHarness(seed: UInt64) throws -> EchoHarness {
        let harness = try EchoHarness(lossRate: 0, seed: seed, key: Self.key, initialCredit: 64 * 1024)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 10_000 {
            try harness.step()
        }
        #expect(harness.edgeEstablished && harness.clientEstablished)
        return harness
    }

    private static let upload = TunnelFrame.requestHead(
        method: "POST",
        scheme: "https",
        authority: "app.example.com",
        path: "/",
        headers: []
    )

    @Test func aCreditGrantLeavesAtOnceWhileSendingIsDeferred() throws {
        let harness = try Self.establishedHarness(seed: 11)
        let (id, opened) = try #require(try harness.edge.openExchange(Self.upload, now: harness.link.now))
        harness.handle(opened, atEdge: true)
        harness.handle(
            try harness.edge.sendData(ByteBuffer(repeating: 7, count: 40_000), on: id, now: harness.link.now),
            atEdge: true
        )
        harness.client.defersSending = true
        // Deliver by hand: the harness would consume the data itself.
        var received = 0
        while received < 40_000 && harness.link.now < 10_000 {
            for (toEdge, record) in harness.link.due() {
                let outputs = (toEdge ? harness.edge : harness.client).receive(record, now: harness.link.now)
                for output in outputs {
                    if !toEdge, case .data(_, let bytes) = output { received += bytes.readableBytes }
                }
                harness.handle(outputs.filter { if case .data = $0 { false } else { true } }, atEdge: toEdge)
            }
            harness.link.now += 1
            SCTPStack.advanceTimers(byMilliseconds: 1)
        }
        #expect(received == 40_000)
        // Below half the window: no grant, and nothing to send before the flush.
        let small = harness.client.consumed(1_000, on: id, now: harness.link.now)
        #expect(Self.records(small) == 0)
        // Past half the window: the grant leaves now, not at the end of the turn.
        let grant = harness.client.consumed(39_000, on: id, now: harness.link.now)
        #expect(Self.records(grant) > 0, "the credit frame waited for a flush: \(grant)")
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    /// An exchange's frames that come together wait as one message (one send into SCTP, one chunk), and another
    /// exchange's as another.
    @Test func anExchangesFramesThatComeTogetherWaitAsOneMessage() throws {
        let harness = try Self.establishedHarness(seed: 13)
        harness.edge.defersSending = true
        let (first, opened) = try #require(try harness.edge.openExchange(Self.upload, now: harness.link.now))
        #expect(Self.records(opened) == 0)
        #expect(harness.edge.queuedMessages == 1)
        let body = try harness.edge.sendData(ByteBuffer(repeating: 1, count: 1024), on: first, now: harness.link.now)
        let end = try harness.edge.sendEnd(on: first, now: harness.link.now)
        #expect(Self.records(body + end) == 0)
        #expect(harness.edge.queuedMessages == 1, "the head, body and end of one exchange wait as one message")
        let (_, second) = try #require(try harness.edge.openExchange(Self.upload, now: harness.link.now))
        #expect(harness.edge.queuedMessages == 2, "another exchange's head waits as a message of its own")
        let flushed = harness.edge.flush(now: harness.link.now)
        #expect(Self.records(flushed) > 0)
        #expect(harness.edge.queuedMessages == 0)
        harness.handle(opened + body + end + second + flushed, atEdge: true)
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    @Test func largeDataChunksLeaveAtOnceWhileSmallOnesWaitForTheFlush() throws {
        let harness = try Self.establishedHarness(seed: 12)
        harness.edge.defersSending = true
        let (id, opened) = try #require(try harness.edge.openExchange(Self.upload, now: harness.link.now))
        #expect(Self.records(opened) == 0, "a request head waits for the flush")
        harness.handle(opened + harness.edge.flush(now: harness.link.now), atEdge: true)
        let small = try harness.edge.sendData(ByteBuffer(repeating: 1, count: 1024), on: id, now: harness.link.now)
        #expect(Self.records(small) == 0, "a small chunk waits to leave bundled")
        let large = try harness.edge.sendData(
            ByteBuffer(repeating: 2, count: 32 * 1024),
            on: id,
            now: harness.link.now
        )
        #expect(Self.records(large) > 0, "a 32 KiB chunk fills packets of its own and leaves at once")
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }
}
