import HopGateTunnel
import NIOCore
import Testing

@Suite struct SessionHandshakeTests {
    let key = String(repeating: "ab", count: 32)

    private func hello(version: UInt16 = 1, credential: SessionHandshakeMessage.Credential? = nil) throws -> ByteBuffer
    {
        try SessionHandshakeMessage.hello(
            .init(
                protocolVersion: version,
                domain: "app.example.com",
                credential: credential ?? .clientAPIKey(key),
                pathPrefixes: ["/"],
                clientVersion: "0.1.0"
            )
        ).encoded()
    }

    @Test func aValidKeyIsWelcomedWithAResumptionToken() throws {
        var client = ClientHandshake(
            domain: "app.example.com",
            credential: .clientAPIKey(key),
            pathPrefixes: ["/", "/admin"],
            clientVersion: "0.1.0"
        )
        var edge = EdgeHandshake(sessionID: 42)
        let check = edge.receive(try client.helloRecord())
        #expect(check == .verifyKey(domain: "app.example.com", key: key))
        let answer = edge.verdict(.valid(resumptionToken: [1, 2, 3]))
        guard case .welcome(let record, let welcome, let hello) = answer else {
            Issue.record("expected a Welcome, got \(answer)")
            return
        }
        #expect(hello.pathPrefixes == ["/", "/admin"])
        #expect(welcome.sessionID == 42 && welcome.resumptionToken == [1, 2, 3])
        let outcome = client.receive(record)
        #expect(outcome == .welcomed(welcome))
    }

    @Test func aResumptionTokenIsCheckedInsteadOfTheKey() throws {
        var edge = EdgeHandshake(sessionID: 1)
        let action = edge.receive(try hello(credential: .resumptionToken([9, 9])))
        #expect(action == .verifyToken(domain: "app.example.com", token: [9, 9]))
    }

    @Test(arguments: [
        (EdgeHandshake.Verdict.badKey, SessionHandshakeMessage.Reject.Code.badKey),
        (.unknownDomain, .unknownDomain),
        (.expiredToken, .expiredToken),
        (.rateLimited, .rateLimited),
        (.serverBusy, .serverBusy),
    ])
    func eachFailedCheckIsRejectedWithItsCode(
        verdict: EdgeHandshake.Verdict,
        code: SessionHandshakeMessage.Reject.Code
    ) throws {
        var edge = EdgeHandshake(sessionID: 1)
        _ = edge.receive(try hello())
        let answer = edge.verdict(verdict)
        guard case .reject(let record, let reject) = answer else {
            Issue.record("expected a Reject, got \(answer)")
            return
        }
        #expect(reject.code == code)
        var client = ClientHandshake(
            domain: "app.example.com",
            credential: .clientAPIKey(key),
            pathPrefixes: ["/"],
            clientVersion: ""
        )
        let outcome = client.receive(record)
        #expect(outcome == .rejected(reject))
        let later = edge.verdict(.valid(resumptionToken: []))
        #expect(later == .none, "a finished handshake takes no second verdict")
    }

    @Test func anOldProtocolVersionIsRejectedWithoutAnyCheck() throws {
        var edge = EdgeHandshake(sessionID: 1)
        let answer = edge.receive(try hello(version: 0))
        guard case .reject(_, let reject) = answer else {
            Issue.record("expected a Reject, got \(answer)")
            return
        }
        #expect(reject.code == .unsupportedVersion)
        #expect(reject.message.contains("upgrade hopgate"))
    }

    @Test(arguments: [
        ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"), ByteBuffer(),
        ByteBuffer(bytes: [0x48, 0x47, 0x54, 0x01, 3, 0, 2, 0, 0]),
    ])
    func garbageInsteadOfAHelloIsRejected(record: ByteBuffer) {
        var edge = EdgeHandshake(sessionID: 1)
        let answer = edge.receive(record)
        guard case .reject(_, let reject) = answer else {
            Issue.record("expected a Reject, got \(answer)")
            return
        }
        #expect(reject.code == .malformedHello)
    }

    @Test func aRetransmittedHelloDuringTheCheckIsIgnored() throws {
        var edge = EdgeHandshake(sessionID: 1)
        _ = edge.receive(try hello())
        let again = edge.receive(try hello())
        #expect(again == .none)
    }

    /// What a client answers to a Welcome for `domain` with these limits.
    private func clientOutcome(
        boundDomain: String,
        credit: UInt32,
        keepalive: UInt32 = 1000,
        idle: UInt32 = 3000
    ) throws -> ClientHandshake.Outcome {
        var client = ClientHandshake(
            domain: "app.example.com",
            credential: .clientAPIKey(key),
            pathPrefixes: ["/"],
            clientVersion: ""
        )
        let record = try SessionHandshakeMessage.welcome(
            .init(
                sessionID: 1,
                boundDomain: boundDomain,
                maximumConcurrentExchanges: 10,
                maximumHeaderBytes: 60_000,
                initialCredit: credit,
                keepaliveIntervalMilliseconds: keepalive,
                idleTimeoutMilliseconds: idle,
                resumptionToken: []
            )
        ).encoded()
        return client.receive(record)
    }

    @Test(arguments: [(0, 1000, 3000), (65536, 3000, 3000), (UInt32.max, 1000, 3000)] as [(UInt32, UInt32, UInt32)])
    func theClientRefusesAWelcomeWithUnusableLimits(credit: UInt32, keepalive: UInt32, idle: UInt32) throws {
        let outcome = try clientOutcome(
            boundDomain: "app.example.com",
            credit: credit,
            keepalive: keepalive,
            idle: idle
        )
        guard case .failed(let why) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(why.contains("unusable"))
    }

    @Test func theClientRefusesAWelcomeForAnotherDomain() throws {
        let outcome = try clientOutcome(boundDomain: "evil.example.com", credit: 65536)
        guard case .failed(let why) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(why.contains("evil.example.com"))
    }

    @Test func aSaneWelcomeIsAccepted() throws {
        let outcome = try clientOutcome(boundDomain: "app.example.com", credit: 65536)
        guard case .welcomed = outcome else {
            Issue.record("expected a Welcome, got \(outcome)")
            return
        }
    }
}

@Suite struct FailureRateLimiterTests {
    @Test func tooManyFailuresLimitAnAddressUntilTheWindowPasses() {
        var limiter = FailureRateLimiter(maximumFailures: 3, windowMilliseconds: 1000, capacity: 100)
        for now in [0, 10, 20] as [UInt64] {
            do {
                let limited = limiter.isLimited("10.0.0.1:5000", now: now)
                #expect(!limited)
            }
            limiter.recordFailure("10.0.0.1:5000", now: now)
        }
        do {
            let limited = limiter.isLimited("10.0.0.1:5000", now: 30)
            #expect(limited)
        }
        do {
            let limited = limiter.isLimited("10.0.0.2:5000", now: 30)
            #expect(!limited, "other addresses are unaffected")
        }
        do {
            let limited = limiter.isLimited("10.0.0.1:5000", now: 1001)
            #expect(!limited, "the oldest failure left the window")
        }
    }

    @Test func aSuccessForgives() {
        var limiter = FailureRateLimiter(maximumFailures: 1, windowMilliseconds: 1000, capacity: 100)
        limiter.recordFailure("a", now: 0)
        do {
            let limited = limiter.isLimited("a", now: 1)
            #expect(limited)
        }
        limiter.recordSuccess("a")
        do {
            let limited = limiter.isLimited("a", now: 2)
            #expect(!limited)
        }
    }

    @Test func memoryIsBoundedUnderAFloodOfAddresses() {
        var limiter = FailureRateLimiter(maximumFailures: 5, windowMilliseconds: 60_000, capacity: 1000)
        for index in 0..<50_000 { limiter.recordFailure("198.51.100.\(index % 250):\(index)", now: UInt64(index)) }
        #expect(limiter.trackedKeys == 1000)
    }

    @Test func concurrentAttemptsCountBeforeTheyFinish() {
        var limiter = FailureRateLimiter(maximumFailures: 2, windowMilliseconds: 1000, capacity: 100)
        let first = limiter.beginAttempt(["net:10.0.0.1", "domain:a.example"], now: 0)
        let second = limiter.beginAttempt(["net:10.0.0.1", "domain:a.example"], now: 1)
        let third = limiter.beginAttempt(["net:10.0.0.1", "domain:b.example"], now: 2)
        #expect(first && second)
        #expect(!third, "two attempts are still running from that network")
        limiter.attemptSucceeded(["net:10.0.0.1", "domain:a.example"], startedAt: 0)
        let fourth = limiter.beginAttempt(["net:10.0.0.1", "domain:b.example"], now: 3)
        #expect(fourth, "a success gives its attempt back")
        let limitedDomain = limiter.isLimited("domain:b.example", now: 3)
        #expect(!limitedDomain)
    }

    @Test func refusedAttemptsCountNothing() {
        var limiter = FailureRateLimiter(maximumFailures: 1, windowMilliseconds: 1000, capacity: 100)
        _ = limiter.beginAttempt(["net:x", "domain:a"], now: 0)
        let refused = limiter.beginAttempt(["net:x", "domain:b"], now: 1)
        #expect(!refused)
        let domainB = limiter.isLimited("domain:b", now: 1)
        #expect(!domainB, "the refused attempt did not count against the other key")
    }
}
