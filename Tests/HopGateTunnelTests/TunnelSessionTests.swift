import HopGateTunnel
import NIOCore
import Testing

/// Two whole tunnel ends back to back through a simulated lossy link. These use usrsctp's global stack and its
/// clock, so they belong to the serialized SCTP suite.
extension SCTPAssociationTests {
    static let key = String(repeating: "5a", count: 32)

    /// Records between the two sessions, with seeded loss, duplication and reordering, on a millisecond clock.
    struct RecordLink {
        var lossRate: Double
        var generator: SeededGenerator
        var now: UInt64 = 0
        private var inFlight: [(at: UInt64, toEdge: Bool, record: ByteBuffer)] = []

        init(lossRate: Double, seed: UInt64) {
            self.lossRate = lossRate
            self.generator = SeededGenerator(seed: seed)
        }

        mutating func send(_ record: ByteBuffer, toEdge: Bool) {
            guard Double.random(in: 0..<1, using: &generator) >= lossRate else { return }
            let extra =
                Double.random(in: 0..<1, using: &generator) < lossRate
                ? UInt64.random(in: 1...15, using: &generator) : 0
            inFlight.append((now + 5 + extra, toEdge, record))
            if Double.random(in: 0..<1, using: &generator) < lossRate / 2 {
                inFlight.append((now + 6 + extra, toEdge, record))
            }
        }

        mutating func due() -> [(toEdge: Bool, record: ByteBuffer)] {
            let ready = inFlight.filter { $0.at <= now }
            inFlight.removeAll { $0.at <= now }
            return ready.map { ($0.toEdge, $0.record) }
        }
    }

    /// The application at both ends: the edge sends request bodies, the client echoes each one back.
    final class EchoHarness {
        let edge: TunnelSession
        let client: TunnelSession
        var link: RecordLink
        var requests: [ExchangeID: (body: [UInt8], sent: Int, echoed: [UInt8], ended: Bool)] = [:]
        var clientSide: [ExchangeID: (received: [UInt8], ended: Bool, sentBack: Int, headSent: Bool, finished: Bool)] =
            [:]
        var edgeEstablished = false
        var clientEstablished = false
        var rejected: SessionHandshakeMessage.Reject?
        var edgeHeads: [ExchangeID] = []
        /// When set, records go here (for a real transport to send) instead of through the simulated link.
        var outbox: [(toEdge: Bool, record: ByteBuffer)]?
        /// The request bodies a real-transport test opens once both sessions are up.
        var plannedBodies: [[UInt8]] = []
        var aborted: [ExchangeID: AbortReason] = [:]
        var largestRecord = 0
        /// The size of each data frame the client received, in order: how the edge cut its bodies into messages.
        var clientDataFrameSizes: [Int] = []

        init(
            lossRate: Double,
            seed: UInt64,
            key: String,
            streams: UInt16 = 256,
            clientStreams: UInt16? = nil,
            initialCredit: UInt32 = 64 * 1024
        ) throws {
            var sctp = SCTPAssociation.Settings()
            sctp.streams = streams
            var clientSCTP = sctp
            clientSCTP.streams = clientStreams ?? streams
            var policy = EdgeHandshake.Policy()
            policy.initialCredit = initialCredit
            policy.keepaliveIntervalMilliseconds = 1000
            policy.idleTimeoutMilliseconds = 30_000
            edge = TunnelSession(edgeSessionID: 7, policy: policy, sctp: sctp)
            client = TunnelSession(
                client: ClientHandshake(
                    domain: "app.example.com",
                    credential: .clientAPIKey(key),
                    pathPrefixes: ["/"],
                    clientVersion: "test"
                ),
                sctp: clientSCTP
            )
            link = RecordLink(lossRate: lossRate, seed: seed)
            handle(try client.start(now: 0), atEdge: false)
        }

        func handle(_ outputs: [TunnelSession.Output], atEdge: Bool) {
            var queue = outputs
            while !queue.isEmpty {
                let output = queue.removeFirst()
                switch output {
                case .record(let record):
                    largestRecord = max(largestRecord, record.readableBytes)
                    if outbox != nil { outbox?.append((!atEdge, record)) } else { link.send(record, toEdge: !atEdge) }
                case .verify(.verifyKey(let domain, let key)):
                    let verdict: EdgeHandshake.Verdict =
                        domain == "app.example.com" && key == SCTPAssociationTests.key
                        ? .valid(resumptionToken: [1]) : .badKey
                    queue += edge.verdict(verdict, now: link.now)
                case .verify:
                    queue += edge.verdict(.badKey, now: link.now)
                case .established:
                    if !atEdge { clientEstablished = true }
                case .ready:
                    if atEdge { edgeEstablished = true }
                case .rejected(let reject):
                    rejected = reject
                case .exchangeOpened(let stream, _):
                    clientSide[stream] = ([], false, 0, false, false)
                case .head(let id, _):
                    edgeHeads.append(id)
                case .data(let stream, let bytes):
                    let received = Array(buffer: bytes)
                    if atEdge {
                        requests[stream]?.echoed += received
                    } else {
                        clientSide[stream]?.received += received
                        clientDataFrameSizes.append(received.count)
                    }
                    queue += (atEdge ? edge : client).consumed(bytes.readableBytes, on: stream, now: link.now)
                case .end(let stream):
                    if atEdge { requests[stream]?.ended = true } else { clientSide[stream]?.ended = true }
                case .aborted(let stream, let reason):
                    aborted[stream] = reason
                case .writable, .closed:
                    break
                }
            }
        }

        /// One millisecond: deliver records, advance timers, let both applications write what credit allows.
        func step() throws {
            for (toEdge, record) in link.due() {
                handle((toEdge ? edge : client).receive(record, now: link.now), atEdge: toEdge)
            }
            link.now += 1
            SCTPStack.advanceTimers(byMilliseconds: 1)
            try runApplications()
        }

        /// Timers and both applications: write what credit allows, answer what has arrived.
        func runApplications() throws {
            handle(edge.tick(now: link.now), atEdge: true)
            handle(client.tick(now: link.now), atEdge: false)
            for (stream, request) in requests where request.sent < request.body.count {
                let count = min(edge.sendableBytes(on: stream), request.body.count - request.sent, 16 * 1024)
                guard count > 0 else { continue }
                let chunk = ByteBuffer(bytes: request.body[request.sent..<(request.sent + count)])
                requests[stream]?.sent += count
                handle(try edge.sendData(chunk, on: stream, now: link.now), atEdge: true)
                if requests[stream]!.sent == request.body.count {
                    handle(try edge.sendEnd(on: stream, now: link.now), atEdge: true)
                }
            }
            for (stream, side) in clientSide where side.ended && !side.finished {
                if !side.headSent {
                    clientSide[stream]?.headSent = true
                    handle(
                        try client.sendHead(.responseHead(status: 200, headers: []), on: stream, now: link.now),
                        atEdge: false
                    )
                }
                let remaining = side.received.count - side.sentBack
                let count = min(client.sendableBytes(on: stream), remaining, 16 * 1024)
                if count > 0 {
                    let chunk = ByteBuffer(bytes: side.received[side.sentBack..<(side.sentBack + count)])
                    clientSide[stream]?.sentBack += count
                    handle(try client.sendData(chunk, on: stream, now: link.now), atEdge: false)
                }
                if clientSide[stream]!.sentBack == side.received.count {
                    clientSide[stream]?.finished = true
                    handle(try client.sendEnd(on: stream, now: link.now), atEdge: false)
                }
            }
        }
    }

    @Test(arguments: [(0.0, UInt64(1)), (0.05, 2)])
    func exchangesEchoByteExactThroughWholeSessions(loss: Double, seed: UInt64) throws {
        let harness = try EchoHarness(lossRate: loss, seed: seed, key: Self.key)
        var generator = SeededGenerator(seed: seed)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 30_000 {
            try harness.step()
        }
        #expect(harness.edgeEstablished && harness.clientEstablished)
        // 30 exchanges at once, bodies from empty to 400 KB: more than the 64 KB credit, so credit must flow.
        for index in 0..<30 {
            let size = index == 0 ? 0 : Int.random(in: 1...400_000, using: &generator)
            let body = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let head = TunnelFrame.requestHead(
                method: "POST",
                scheme: "https",
                authority: "app.example.com",
                path: "/\(index)",
                headers: []
            )
            let (stream, outputs) = try #require(try harness.edge.openExchange(head, now: harness.link.now))
            harness.requests[stream] = (body, 0, [], false)
            harness.handle(outputs, atEdge: true)
            if size == 0 { harness.handle(try harness.edge.sendEnd(on: stream, now: harness.link.now), atEdge: true) }
        }
        while harness.requests.values.contains(where: { !$0.ended }) && harness.link.now < 600_000 {
            try harness.step()
        }
        #expect(harness.link.now < 600_000, "the exchanges did not finish")
        #expect(harness.aborted.isEmpty, "\(harness.aborted)")
        for (stream, request) in harness.requests {
            #expect(
                request.echoed == request.body,
                "stream \(stream): \(request.echoed.count) of \(request.body.count) bytes"
            )
        }
        #expect(
            harness.edge.openExchanges == 0 && harness.client.openExchanges == 0,
            "finished exchanges free their streams"
        )
        #expect(harness.largestRecord <= 1163, "every record fits one 1200-byte datagram after DTLS")
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    @Test func aLateFrameForAFinishedExchangeNeverReachesTheNextOneOnItsStream() throws {
        // Three streams: 0 for control, so exchanges use 1 and 2 and the third exchange reuses stream 1.
        let harness = try EchoHarness(lossRate: 0, seed: 5, key: Self.key, streams: 3)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 10_000 {
            try harness.step()
        }
        let request = TunnelFrame.requestHead(
            method: "GET",
            scheme: "https",
            authority: "app.example.com",
            path: "/",
            headers: []
        )
        let (first, opened) = try #require(try harness.edge.openExchange(request, now: harness.link.now))
        harness.handle(opened, atEdge: true)
        while harness.clientSide[first] == nil && harness.link.now < 10_000 { try harness.step() }
        // The client answers the first exchange while, at the same moment, the edge gives it up and moves on.
        harness.handle(
            try harness.client.sendHead(.responseHead(status: 200, headers: []), on: first, now: harness.link.now),
            atEdge: false
        )
        harness.handle(
            try harness.client.sendData(ByteBuffer(string: "for the first"), on: first, now: harness.link.now),
            atEdge: false
        )
        harness.handle(
            harness.edge.abort(first, AbortReason(.cancelled, "browser left"), now: harness.link.now),
            atEdge: true
        )
        let (second, secondOutputs) = try #require(try harness.edge.openExchange(request, now: harness.link.now))
        harness.handle(secondOutputs, atEdge: true)
        let (third, thirdOutputs) = try #require(try harness.edge.openExchange(request, now: harness.link.now))
        harness.handle(thirdOutputs, atEdge: true)
        #expect(third.stream == first.stream && third.sequence != first.sequence, "\(first) \(second) \(third)")
        for _ in 0..<2_000 { try harness.step() }
        #expect(
            harness.edgeHeads.isEmpty,
            "the first exchange's late answer must not become \(third)'s: \(harness.edgeHeads)"
        )
        #expect(harness.clientSide[third] != nil && harness.clientSide[second] != nil)
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    @Test func theEdgeUsesOnlyTheStreamsBothEndsAgreedOn() throws {
        let harness = try EchoHarness(lossRate: 0, seed: 9, key: Self.key, streams: 256, clientStreams: 4)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 10_000 {
            try harness.step()
        }
        #expect(harness.edge.streamCount == 4)
        let request = TunnelFrame.requestHead(method: "GET", scheme: "https", authority: "a", path: "/", headers: [])
        var opened: [ExchangeID] = []
        while let (id, outputs) = try harness.edge.openExchange(request, now: harness.link.now) {
            harness.handle(outputs, atEdge: true)
            opened.append(id)
        }
        #expect(opened.map(\.stream).sorted() == [1, 2, 3], "stream 0 is control; the client has no stream 4")
        for _ in 0..<200 { try harness.step() }
        #expect(opened.allSatisfy { harness.clientSide[$0] != nil }, "every request reached the client")
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    @Test func aHeadTooLargeForOneMessageIsRefusedNotSent() throws {
        let harness = try EchoHarness(lossRate: 0, seed: 6, key: Self.key)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 10_000 {
            try harness.step()
        }
        let huge = TunnelFrame.requestHead(
            method: "GET",
            scheme: "https",
            authority: "app.example.com",
            path: "/",
            headers: [HeaderField("x-big", String(repeating: "v", count: 70_000))]
        )
        #expect(throws: AbortReason.self) { try harness.edge.openExchange(huge, now: harness.link.now) }
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }

    @Test func aWrongKeyIsRejectedAndNoAssociationIsMade() throws {
        let harness = try EchoHarness(lossRate: 0, seed: 3, key: String(repeating: "00", count: 32))
        while harness.rejected == nil && harness.link.now < 5_000 { try harness.step() }
        #expect(harness.rejected?.code == .badKey)
        #expect(!harness.edgeEstablished && !harness.clientEstablished)
    }

    @Test func theHandshakeSurvivesLostHellosAndWelcomes() throws {
        let harness = try EchoHarness(lossRate: 0.4, seed: 11, key: Self.key)
        while !(harness.edgeEstablished && harness.clientEstablished) && harness.link.now < 60_000 {
            try harness.step()
        }
        #expect(harness.edgeEstablished && harness.clientEstablished)
        _ = harness.edge.close("test over")
        _ = harness.client.close("test over")
    }
}
