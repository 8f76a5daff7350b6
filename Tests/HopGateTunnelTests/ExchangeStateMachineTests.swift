import HopGateTunnel
import NIOCore
import Testing

@Suite struct ExchangeStateMachineTests {
    static let request = TunnelFrame.requestHead(
        method: "POST",
        scheme: "https",
        authority: "app.example.com",
        path: "/upload",
        headers: []
    )
    static let ok = TunnelFrame.responseHead(status: 200, headers: [HeaderField("content-type", "text/plain")])

    private func bytes(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: 0x61, count: count) }

    @Test func aWholeExchangeFinishesBothEnds() throws {
        var edge = ExchangeStateMachine(role: .edge, initialCredit: 1000)
        var client = ExchangeStateMachine(role: .client, initialCredit: 1000)
        do {
            let action = client.receive(try edge.sendHead(Self.request))
            #expect(action == .head(Self.request))
        }
        do {
            let action = client.receive(try edge.sendData(bytes(300)))
            #expect(action == .data(bytes(300)))
        }
        do {
            let action = client.receive(try edge.sendEnd())
            #expect(action == .end)
        }
        do {
            let action = edge.receive(try client.sendHead(Self.ok))
            #expect(action == .head(Self.ok))
        }
        do {
            let action = edge.receive(try client.sendData(bytes(10)))
            #expect(action == .data(bytes(10)))
        }
        #expect(!edge.isFinished && !client.isFinished)
        do {
            let action = edge.receive(try client.sendEnd())
            #expect(action == .end)
        }
        #expect(edge.isFinished && client.isFinished)
    }

    @Test func creditLimitsTheSenderUntilTheReceiverConsumes() throws {
        var edge = ExchangeStateMachine(role: .edge, initialCredit: 100)
        var client = ExchangeStateMachine(role: .client, initialCredit: 100)
        _ = client.receive(try edge.sendHead(Self.request))
        _ = client.receive(try edge.sendData(bytes(100)))
        #expect(edge.sendableBytes == 0)
        #expect(throws: AbortReason.self) { try edge.sendData(bytes(1)) }
        // Consuming less than half the window grants nothing yet; reaching half grants all consumed so far.
        let early = client.consumed(30)
        #expect(early == nil)
        let grantFrame = client.consumed(20)
        let grant = try #require(grantFrame)
        #expect(grant == .credit(50))
        do {
            let action = edge.receive(grant)
            #expect(action == .creditGranted)
        }
        #expect(edge.sendableBytes == 50)
        do {
            let action = client.receive(try edge.sendData(bytes(50)))
            #expect(action == .data(bytes(50)))
        }
    }

    @Test func dataBeyondTheGrantedWindowIsAViolation() throws {
        var client = ExchangeStateMachine(role: .client, initialCredit: 100)
        _ = client.receive(Self.request)
        let action = client.receive(.data(bytes(101)))
        guard case .violation(.abort(let reason)) = action else {
            Issue.record("expected a violation, got \(action)")
            return
        }
        #expect(reason.code == .creditViolation)
        #expect(client.isFinished)
        let late = client.receive(.data(bytes(1)))
        #expect(late == .ignored)
    }

    @Test(arguments: [
        [TunnelFrame.data(ByteBuffer(string: "x"))],
        [TunnelFrame.end],
        [request, request],
        [ok],
        [request, .ping(1)],
        [request, .goAway(reason: "x")],
    ])
    func outOfOrderFramesAreProtocolErrors(frames: [TunnelFrame]) {
        var client = ExchangeStateMachine(role: .client, initialCredit: 1000)
        var last = ExchangeStateMachine.ReceiveAction.ignored
        for frame in frames { last = client.receive(frame) }
        guard case .violation(.abort(let reason)) = last else {
            Issue.record("expected a violation, got \(last)")
            return
        }
        #expect(reason.code == .protocolError)
    }

    @Test func informationalHeadsPrecedeTheFinalOne() throws {
        var edge = ExchangeStateMachine(role: .edge, initialCredit: 1000)
        var client = ExchangeStateMachine(role: .client, initialCredit: 1000)
        _ = client.receive(try edge.sendHead(Self.request))
        let early = TunnelFrame.responseHead(status: 103, headers: [HeaderField("link", "</style.css>; rel=preload")])
        do {
            let action = edge.receive(try client.sendHead(early))
            #expect(action == .head(early))
        }
        do {
            let action = edge.receive(try client.sendHead(Self.ok))
            #expect(action == .head(Self.ok))
        }
        let second = edge.receive(.responseHead(status: 200, headers: []))
        #expect(second != .head(Self.ok), "a second final head is a violation")
    }

    @Test func aSwitchingProtocolsResponseMakesARawPipeBothWays() throws {
        var edge = ExchangeStateMachine(role: .edge, initialCredit: 1000)
        var client = ExchangeStateMachine(role: .client, initialCredit: 1000)
        _ = client.receive(try edge.sendHead(Self.request))
        let switching = TunnelFrame.responseHead(status: 101, headers: [HeaderField("upgrade", "websocket")])
        _ = edge.receive(try client.sendHead(switching))
        #expect(edge.isUpgraded && client.isUpgraded)
        do {
            let action = client.receive(try edge.sendData(bytes(5)))
            #expect(action == .data(bytes(5)))
        }
        do {
            let action = edge.receive(try client.sendData(bytes(7)))
            #expect(action == .data(bytes(7)))
        }
    }

    @Test func anAbortEndsTheExchangeOnBothEnds() throws {
        var edge = ExchangeStateMachine(role: .edge, initialCredit: 1000)
        var client = ExchangeStateMachine(role: .client, initialCredit: 1000)
        _ = client.receive(try edge.sendHead(Self.request))
        let abortFrame = client.abort(AbortReason(.localServiceUnavailable, "127.0.0.1:8080 refused"))
        let abort = try #require(abortFrame)
        #expect(client.isFinished)
        let received = edge.receive(abort)
        #expect(received == .aborted(AbortReason(.localServiceUnavailable, "127.0.0.1:8080 refused")))
        #expect(edge.isFinished)
        #expect(edge.sendableBytes == 0)
        let again = edge.abort(AbortReason(.cancelled, "again"))
        #expect(again == nil)
    }

    @Test func aStalledReaderStallsOnlyItsOwnExchange() throws {
        var slowEdge = ExchangeStateMachine(role: .edge, initialCredit: 64)
        var slowClient = ExchangeStateMachine(role: .client, initialCredit: 64)
        var fastEdge = ExchangeStateMachine(role: .edge, initialCredit: 64)
        var fastClient = ExchangeStateMachine(role: .client, initialCredit: 64)
        _ = slowClient.receive(try slowEdge.sendHead(Self.request))
        _ = fastClient.receive(try fastEdge.sendHead(Self.request))
        var fastDelivered = 0
        for _ in 0..<100 {
            if slowEdge.sendableBytes > 0 {
                _ = slowClient.receive(try slowEdge.sendData(bytes(slowEdge.sendableBytes)))
            }
            let chunk = fastEdge.sendableBytes
            if chunk > 0, case .data(let data) = fastClient.receive(try fastEdge.sendData(bytes(chunk))) {
                fastDelivered += data.readableBytes
                if let grant = fastClient.consumed(data.readableBytes) { _ = fastEdge.receive(grant) }
            }
        }
        #expect(slowEdge.sendableBytes == 0, "the slow reader never consumed, so its sender waits")
        #expect(fastDelivered >= 64 * 50, "the other exchange keeps moving: \(fastDelivered) bytes")
    }

    /// Random frames in random order never crash the machine, and credit never goes negative.
    @Test func survivesRandomFrameSequences() throws {
        var generator = SeededGenerator(seed: 99)
        let choices: [TunnelFrame] = [
            Self.request, Self.ok, .responseHead(status: 101, headers: []), .responseHead(status: 100, headers: []),
            .data(bytes(10)), .data(bytes(700)), .end, .credit(5), .credit(UInt32.max),
            .abort(AbortReason(.cancelled, "")),
            .ping(1), .goAway(reason: ""),
        ]
        for round in 0..<20_000 {
            var machine = ExchangeStateMachine(role: round % 2 == 0 ? .edge : .client, initialCredit: 512)
            if round % 2 == 0 { _ = try? machine.sendHead(Self.request) }
            for _ in 0..<8 {
                _ = machine.receive(choices.randomElement(using: &generator)!)
                _ = machine.consumed(Int.random(in: 0...300, using: &generator))
                #expect(machine.sendableBytes >= 0)
            }
        }
    }
}
