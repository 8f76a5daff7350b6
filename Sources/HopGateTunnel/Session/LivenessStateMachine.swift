/// Keepalive and going away for one session, on an injected clock in milliseconds. Pings keep NAT bindings open
/// and measure the round trip; an idle timeout notices a dead peer on each side; GOAWAY drains a session: no new
/// exchanges, the ones in flight finish.
public struct LivenessStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case sendPing(UInt64)
        case sendPong(UInt64)
        /// Nothing arrived for the idle timeout: the peer is gone; close the session.
        case idleTimeout
        /// Exchanges were waiting and a probing ping got no answer: the peer is gone; close the session.
        case unresponsive
    }

    /// With exchanges waiting on the peer, silence is suspicious long before the idle timeout: after this much of
    /// it a ping goes out at once...
    public static let probeAfterMilliseconds: UInt64 = 2_000
    /// ...and if nothing at all comes back within this, the peer is taken for dead. A live peer answers a ping
    /// within its round trip however slow its local service is, and SCTP resends a lost ping several times in
    /// this window; a crashed one is found in seconds, so its requests fail over instead of waiting for the idle
    /// timeout.
    public static let probeTimeoutMilliseconds: UInt64 = 3_000

    public let keepaliveIntervalMilliseconds: UInt64
    public let idleTimeoutMilliseconds: UInt64
    private var lastReceived: UInt64
    private var lastPingSent: UInt64
    private var outstandingPing: (value: UInt64, sentAt: UInt64)?
    private var nextPingValue: UInt64 = 1
    private var timedOut = false
    private var probeSentAt: UInt64?

    /// The latest measured round trip, in milliseconds.
    public private(set) var roundTripMilliseconds: UInt64?
    /// This side announced GOAWAY: it opens and accepts no new exchanges.
    public private(set) var isGoingAway = false
    /// The peer announced GOAWAY: open no new exchanges towards it.
    public private(set) var peerIsGoingAway = false

    /// Whether the pair makes sense: a ping must come well before the timeout.
    public static func isValid(keepaliveIntervalMilliseconds: UInt64, idleTimeoutMilliseconds: UInt64) -> Bool {
        keepaliveIntervalMilliseconds > 0 && idleTimeoutMilliseconds > keepaliveIntervalMilliseconds
    }

    public init(keepaliveIntervalMilliseconds: UInt64, idleTimeoutMilliseconds: UInt64, now: UInt64) {
        precondition(
            Self.isValid(
                keepaliveIntervalMilliseconds: keepaliveIntervalMilliseconds,
                idleTimeoutMilliseconds: idleTimeoutMilliseconds
            ),
            "a ping must come before the timeout"
        )
        self.keepaliveIntervalMilliseconds = keepaliveIntervalMilliseconds
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.lastReceived = now
        self.lastPingSent = now
    }

    /// Whether new exchanges may be opened on this session.
    public var acceptsNewExchanges: Bool { !isGoingAway && !peerIsGoingAway && !timedOut }

    /// Anything arrived from the peer: it is alive.
    public mutating func received(now: UInt64) {
        lastReceived = max(lastReceived, now)
    }

    /// Call on a timer, at least every `keepaliveIntervalMilliseconds / 2`. `exchangesWaiting`: this end has
    /// exchanges open, so the peer's silence keeps someone waiting.
    public mutating func tick(now: UInt64, exchangesWaiting: Bool = false) -> Action? {
        guard !timedOut else { return nil }
        if now >= lastReceived + idleTimeoutMilliseconds {
            timedOut = true
            return .idleTimeout
        }
        if let sentAt = probeSentAt {
            if lastReceived >= sentAt {
                probeSentAt = nil  // anything at all since the probe: alive
            } else if now >= sentAt + Self.probeTimeoutMilliseconds {
                timedOut = true
                return .unresponsive
            }
        } else if exchangesWaiting && now >= lastReceived + Self.probeAfterMilliseconds {
            probeSentAt = now
            return ping(now: now)
        }
        guard now >= lastPingSent + keepaliveIntervalMilliseconds else { return nil }
        return ping(now: now)
    }

    private mutating func ping(now: UInt64) -> Action {
        lastPingSent = now
        let value = nextPingValue
        nextPingValue &+= 1
        outstandingPing = (value, now)
        return .sendPing(value)
    }

    /// Whether a probing ping is out and unanswered (the peer may be gone).
    public var isProbing: Bool { probeSentAt != nil }

    /// The peer's ping: answer it.
    public mutating func receivedPing(_ value: UInt64, now: UInt64) -> Action {
        received(now: now)
        return .sendPong(value)
    }

    /// The peer's pong: measures the round trip when it answers our latest ping.
    public mutating func receivedPong(_ value: UInt64, now: UInt64) {
        received(now: now)
        guard let ping = outstandingPing, ping.value == value else { return }
        roundTripMilliseconds = now >= ping.sentAt ? now - ping.sentAt : 0  // a clock that stepped back
        outstandingPing = nil
    }

    /// Starts draining; returns false if this side was already going away.
    public mutating func goAway() -> Bool {
        defer { isGoingAway = true }
        return !isGoingAway
    }

    public mutating func receivedGoAway(now: UInt64) {
        received(now: now)
        peerIsGoingAway = true
    }
}
