import HopGateClient
import HopGateDTLS
import HopGateEdge
import HopGateTunnel
import NIOCore
import NIOPosix
import Testing

/// The tunnel as `hopgate serve` and `hopgate connect` run it: `EdgeTunnelListener` and `TunnelClientConnection`
/// on loopback, with sessions driven by NIO handlers and applications on other event loops.
extension SCTPAssociationTests {
    @Test(.timeLimit(.minutes(3)))
    func aHundredConcurrentExchangesThroughTheRuntimeArriveByteExact() async throws {
        let edge = try await TunnelRuntimeEdge.start()
        let client = try await edge.connect { exchange, head in EchoResponder.accept(exchange, head) }
        let session = try await edge.waitForSession()
        #expect(client.welcome.boundDomain == TunnelRuntimeEdge.domain)

        let baseline = residentKiB()
        var generator = SeededGenerator(seed: 44)
        let largeSize = 64 * 1024 * 1024
        let sizes = [largeSize, 0] + (0..<98).map { _ in Int.random(in: 1...300_000, using: &generator) }
        let requesters = sizes.map {
            StreamingRequester(size: $0, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        }
        let outcomes = requesters.map { $0.start(on: session) }
        let sampler = Task {
            var peakGrowthKiB = 0
            while !Task.isCancelled {
                peakGrowthKiB = max(peakGrowthKiB, residentKiB() - baseline)
                try? await Task.sleep(for: .milliseconds(100))
            }
            return peakGrowthKiB
        }
        for (index, outcome) in outcomes.enumerated() {
            let result = try await outcome.get()
            #expect(
                result == .finished(received: sizes[index], intact: true),
                "exchange \(index) of \(sizes[index]) bytes"
            )
        }
        sampler.cancel()
        let growthMiB = await sampler.value / 1024
        print("runtime: 100 exchanges with 64 MiB each way; resident memory grew by at most \(growthMiB) MiB")
        #expect(growthMiB < 64)
        let open = try await client.openExchanges()
        #expect(open == 0, "finished exchanges are forgotten at the client")
        await client.close()
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func aReaderThatStopsStallsOnlyItsOwnExchange() async throws {
        let edge = try await TunnelRuntimeEdge.start()
        let client = try await edge.connect { exchange, head in EchoResponder.accept(exchange, head) }
        let session = try await edge.waitForSession()
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        let stalled = StreamingRequester(size: 32 * 1024 * 1024, eventLoop: loop)
        try await loop.submit { stalled.reading = false }.get()
        let stalledOutcome = stalled.start(on: session)
        // The others start once the stalled one has filled its window.
        try await Task.sleep(for: .milliseconds(500))
        let others = (0..<20).map { _ in StreamingRequester(size: 2 * 1024 * 1024, eventLoop: loop) }
        let started = ContinuousClock.now
        for outcome in others.map({ $0.start(on: session) }) {
            let result = try await outcome.get()
            #expect(result == .finished(received: 2 * 1024 * 1024, intact: true))
        }
        let elapsed = ContinuousClock.now - started
        let stalledReceived = try await loop.submit { stalled.received }.get()
        // It got one window of credit's worth, no more, while the others moved 40 MiB each way.
        let window = Int(EdgeHandshake.Policy().initialCredit)
        #expect(stalledReceived <= window, "the stalled reader received \(stalledReceived) bytes")
        print("runtime: 20 exchanges of 2 MiB each way finished in \(elapsed) beside a stalled reader")

        try await loop.submit { stalled.reading = true }.get()
        let result = try await stalledOutcome.get()
        #expect(result == .finished(received: 32 * 1024 * 1024, intact: true))
        await client.close()
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func refusedSessionsGetTheirRejectCodeAndNeverReachSCTP() async throws {
        let edge = try await TunnelRuntimeEdge.start()
        let associations = SCTPAssociation.liveCount
        let cases: [(domain: String, key: String, code: SessionHandshakeMessage.Reject.Code)] = [
            (TunnelRuntimeEdge.domain, String(repeating: "00", count: 32), .badKey),
            ("other.example.com", TunnelRuntimeEdge.key, .unknownDomain),
        ]
        for (domain, key, code) in cases {
            do {
                _ = try await edge.connect(domain: domain, key: key) { _, _ in nil }
                Issue.record("\(domain) was accepted")
            } catch TunnelClientError.rejected(let reject) {
                #expect(reject.code == code)
            }
        }
        // Garbage instead of a Hello, over a plain DTLS session: a Reject, then close_notify.
        let raw = try await DTLSClient.connect(host: "127.0.0.1", port: edge.port, configuration: edge.clientDTLS())
        try await raw.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: [0xFF, 0x00, 0x13, 0x37, 0x42]))
            var records: [ByteBuffer] = []
            for try await record in inbound { records.append(record) }
            let first = try #require(records.first)
            let message = try SessionHandshakeMessage(decoding: first)
            guard case .reject(let reject) = message else {
                Issue.record("expected a Reject, got \(message)")
                return
            }
            #expect(reject.code == .malformedHello)
        }
        #expect(SCTPAssociation.liveCount == associations, "no association was made for a refused session")
        let sessions = try await edge.listener.sessionCount()
        #expect(sessions == 0)
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func failedAttemptsFromOneNetworkAreRateLimitedBeforeTheStore() async throws {
        let edge = try await TunnelRuntimeEdge.start(limiter: FailureRateLimiter(maximumFailures: 3))
        for _ in 0..<3 {
            await #expect(throws: TunnelClientError.self) {
                _ = try await edge.connect(key: String(repeating: "00", count: 32)) { _, _ in nil }
            }
        }
        let checksBefore = edge.checks.withLockedValue { $0 }
        do {
            _ = try await edge.connect { _, _ in nil }
            Issue.record("a fourth attempt within the window was accepted")
        } catch TunnelClientError.rejected(let reject) {
            #expect(reject.code == .rateLimited)
        }
        #expect(edge.checks.withLockedValue { $0 } == checksBefore, "a limited attempt costs no credential check")
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func closingSessionsForADomainDisconnectsItsClientAtOnce() async throws {
        let edge = try await TunnelRuntimeEdge.start()
        let client = try await edge.connect { exchange, head in EchoResponder.accept(exchange, head) }
        _ = try await edge.waitForSession()
        let started = ContinuousClock.now
        let closed = edge.listener.registry.closeSessions(for: TunnelRuntimeEdge.domain, reason: "unregistered")
        #expect(closed == 1)
        let why = try await client.ended.get()
        #expect(ContinuousClock.now - started < .seconds(1), "the client heard close_notify, not its idle timeout")
        guard case .closed = why else {
            Issue.record("expected the session to close, got \(why)")
            return
        }
        #expect(edge.listener.registry.count == 0)
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func shuttingTheEdgeDownLetsAnExchangeInFlightFinish() async throws {
        let edge = try await TunnelRuntimeEdge.start()
        let client = try await edge.connect { exchange, head in EchoResponder.accept(exchange, head) }
        let session = try await edge.waitForSession()
        let requester = StreamingRequester(
            size: 8 * 1024 * 1024,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next()
        )
        let outcome = requester.start(on: session)
        try await Task.sleep(for: .milliseconds(50))
        edge.runTask.cancel()  // GOAWAY, then up to 30 s for what is in flight
        let result = try await outcome.get()
        #expect(result == .finished(received: 8 * 1024 * 1024, intact: true))
        await edge.runTask.value
        let why = try await client.ended.get()
        if case .rejected = why { Issue.record("the session ended with \(why)") }
        let late = try await session.openExchange(
            .requestHead(method: "GET", scheme: "https", authority: "x", path: "/", headers: []),
            consumer: TunnelExchangeConsumer(eventLoop: MultiThreadedEventLoopGroup.singleton.next()) { _ in }
        ).get()
        #expect(late == nil, "a drained session takes no new exchanges")
    }
}
