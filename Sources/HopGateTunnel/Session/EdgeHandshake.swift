import NIOCore

/// The edge's side of the session handshake: reads the Hello, asks its owner to check the credential (the Argon2
/// check runs off the event loop, so the answer comes back later), and answers Welcome or Reject. Pure: the owner
/// performs every action it returns.
public struct EdgeHandshake: Sendable {
    /// What the edge offers every session.
    public struct Policy: Sendable {
        /// Tunnel protocol versions this edge speaks.
        public var supportedVersions: ClosedRange<UInt16> = 1...1
        public var maximumConcurrentExchanges: UInt32 = 255
        /// Below SCTP's 64 KiB message limit, so any head a peer may send fits one message with its lines.
        public var maximumHeaderBytes: UInt32 = 60 * 1024
        /// Each exchange's window each way: what a sender may have unacknowledged by the application, and so what
        /// a slow reader can make the other end hold. 256 KiB capped a loopback download at about 150 MB/s (the
        /// window went round faster than the credit came back); 1 MiB let it reach about 250 MB/s. With the
        /// cheaper request path since, 1 MiB gave a median of 210 MB/s over six downloads, 2 MiB 229 and 264
        /// (two rounds), 4 MiB no more than 2; edge and client hold about 6 MB more after a download.
        public var initialCredit: UInt32 = 2 * 1024 * 1024
        public var keepaliveIntervalMilliseconds: UInt32 = 15_000
        public var idleTimeoutMilliseconds: UInt32 = 45_000
        public init() {}
    }

    /// The owner's verdict on the credential.
    public enum Verdict: Sendable, Equatable {
        /// Valid: bind the session to this domain, and give the client this resumption token.
        case valid(resumptionToken: [UInt8])
        case unknownDomain
        case badKey
        case expiredToken
        case rateLimited
        case serverBusy
    }

    public enum Action: Sendable, Equatable {
        /// Check the client API key for the domain (Argon2id, off the event loop), then call `verdict`.
        case verifyKey(domain: String, key: String)
        /// Check the resumption token for the domain (an HMAC and a store lookup), then call `verdict`.
        case verifyToken(domain: String, token: [UInt8])
        /// Send this Welcome: the session is bound, and SCTP may start.
        case welcome(ByteBuffer, SessionHandshakeMessage.Welcome, SessionHandshakeMessage.Hello)
        /// Send this Reject, then close the session: no SCTP association is ever made for it.
        case reject(ByteBuffer, SessionHandshakeMessage.Reject)
        /// Nothing to do (a duplicate Hello while the check runs).
        case none
    }

    private enum State: Sendable {
        case awaitingHello
        case verifying(SessionHandshakeMessage.Hello)
        case finished
    }

    private var state = State.awaitingHello
    private let policy: Policy
    private let sessionID: UInt64

    public init(sessionID: UInt64, policy: Policy = Policy()) {
        precondition(
            policy.initialCredit >= UInt32(ExchangeStateMachine.minimumInitialCredit)
                && LivenessStateMachine.isValid(
                    keepaliveIntervalMilliseconds: UInt64(policy.keepaliveIntervalMilliseconds),
                    idleTimeoutMilliseconds: UInt64(policy.idleTimeoutMilliseconds)
                ),
            "the edge's tunnel policy is inconsistent"
        )
        self.sessionID = sessionID
        self.policy = policy
    }

    /// A record from the client before the handshake finished.
    public mutating func receive(_ record: ByteBuffer) -> Action {
        switch state {
        case .finished:
            return .none
        case .verifying:
            return .none  // a retransmitted Hello: the check is already running
        case .awaitingHello:
            break
        }
        let hello: SessionHandshakeMessage.Hello
        do {
            guard case .hello(let message) = try SessionHandshakeMessage(decoding: record) else {
                return reject(.malformedHello, "the first message must be a Hello")
            }
            hello = message
        } catch {
            return reject(.malformedHello, "the Hello does not parse: \(error)")
        }
        guard policy.supportedVersions.contains(hello.protocolVersion) else {
            return reject(
                .unsupportedVersion,
                "this edge speaks tunnel protocol \(policy.supportedVersions.lowerBound)-\(policy.supportedVersions.upperBound), "
                    + "not \(hello.protocolVersion): upgrade hopgate"
            )
        }
        guard !hello.domain.isEmpty, hello.pathPrefixes.allSatisfy({ $0.hasPrefix("/") }) else {
            return reject(.malformedHello, "the Hello needs a domain and path prefixes that start with /")
        }
        state = .verifying(hello)
        switch hello.credential {
        case .clientAPIKey(let key): return .verifyKey(domain: hello.domain, key: key)
        case .resumptionToken(let token): return .verifyToken(domain: hello.domain, token: token)
        }
    }

    /// The owner's answer to `verifyKey` or `verifyToken`.
    public mutating func verdict(_ verdict: Verdict) -> Action {
        guard case .verifying(let hello) = state else { return .none }
        switch verdict {
        case .valid(let token):
            state = .finished
            let welcome = SessionHandshakeMessage.Welcome(
                sessionID: sessionID,
                boundDomain: hello.domain,
                maximumConcurrentExchanges: policy.maximumConcurrentExchanges,
                maximumHeaderBytes: policy.maximumHeaderBytes,
                initialCredit: policy.initialCredit,
                keepaliveIntervalMilliseconds: policy.keepaliveIntervalMilliseconds,
                idleTimeoutMilliseconds: policy.idleTimeoutMilliseconds,
                resumptionToken: token
            )
            guard let record = try? SessionHandshakeMessage.welcome(welcome).encoded() else {
                return reject(.serverBusy, "the Welcome does not fit one datagram")
            }
            return .welcome(record, welcome, hello)
        case .unknownDomain:
            return reject(.unknownDomain, "\(hello.domain) is not registered on this edge")
        case .badKey:
            return reject(.badKey, "the client API key for \(hello.domain) is wrong")
        case .expiredToken:
            return reject(.expiredToken, "the resumption token is no longer valid; connect with the client API key")
        case .rateLimited:
            return reject(.rateLimited, "too many failed attempts from this address; wait and try again")
        case .serverBusy:
            return reject(.serverBusy, "the edge is busy; try again")
        }
    }

    private mutating func reject(_ code: SessionHandshakeMessage.Reject.Code, _ message: String) -> Action {
        state = .finished
        let reject = SessionHandshakeMessage.Reject(code: code, message: message)
        // A Reject always fits: its message is ours and short.
        return .reject((try? SessionHandshakeMessage.reject(reject).encoded()) ?? ByteBuffer(), reject)
    }
}
