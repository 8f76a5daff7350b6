import NIOCore

/// A server session's identity: unique for the server's lifetime, never reused.
public struct DTLSSessionID: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64
    public var description: String { "dtls-\(value)" }
}

/// Why a session ended.
public enum DTLSCloseReason: Sendable, Equatable {
    /// The peer sent close_notify.
    case closedByPeer
    /// This side closed it (a `.close` command, or the server shutting down).
    case closedLocally
    /// Nothing arrived for the idle timeout.
    case idleTimeout
    /// The handshake or the session failed.
    case failed(DTLSError)
}

/// What the server handler passes up its pipeline.
public enum DTLSServerEvent: Sendable {
    /// A handshake finished: records of up to `maximumRecordSize` bytes may flow.
    case established(DTLSSessionID, peer: SocketAddress, maximumRecordSize: Int)
    /// One record from a session.
    case record(DTLSSessionID, ByteBuffer)
    /// The session is gone; records for it are no longer accepted.
    case closed(DTLSSessionID, DTLSCloseReason)
}

/// What the server handler takes from the pipeline above it.
public enum DTLSServerCommand: Sendable {
    /// Send one record (at most one datagram's worth) to the session.
    case send(DTLSSessionID, ByteBuffer)
    /// Send close_notify and forget the session.
    case close(DTLSSessionID)
}

/// Counters an operator and the tests read: what was accepted, refused and dropped, and why.
public struct DTLSServerStatistics: Sendable, Equatable {
    public var handshakesCompleted = 0
    public var handshakesFailed = 0
    public var helloVerifyRequestsSent = 0
    /// Datagrams from peers without a session that were not a ClientHello (garbage, stray records, records after
    /// close).
    public var droppedFromUnknownPeers = 0
    /// Datagrams for a session that produced nothing: undecryptable, replayed, or duplicated handshake records.
    public var droppedForSessions = 0
    /// ClientHellos with a valid cookie refused because `maximumHandshakes` or `maximumSessions` was reached.
    public var refusedAtCapacity = 0
    public var sessionsHandshaking = 0
    public var sessionsEstablished = 0
    /// The largest UDP payload the server has sent; never above `maximumDatagramSize`, or `loopbackDatagramSize`
    /// toward a peer on loopback.
    public var largestDatagramSent = 0

    public init() {}
}
