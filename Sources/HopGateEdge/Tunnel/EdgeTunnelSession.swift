import FoundationEssentials
import HopGateTunnel
import NIOCore
import Synchronization

/// A live, authenticated tunnel session as the rest of the edge sees it: which domain and paths it serves, and a
/// way to open exchanges on it from any thread.
public final class EdgeTunnelSession: Sendable, CustomStringConvertible {
    /// The session id from the Welcome, unique for the edge's lifetime.
    public let id: UInt64
    public let domain: String
    /// The path prefixes the client serves (from its Hello); `/` when it named none.
    public let pathPrefixes: [String]
    public let peer: SocketAddress
    public let clientVersion: String
    public let connectedAt: Date
    let driver: NIOLoopBound<TunnelSessionDriver>
    /// Set while the peer is being probed (silent with requests waiting): routing prefers other sessions.
    let suspect = Atomic<Bool>(false)
    public var isSuspect: Bool { suspect.load(ordering: .relaxed) }

    init(
        welcome: SessionHandshakeMessage.Welcome,
        hello: SessionHandshakeMessage.Hello,
        peer: SocketAddress,
        driver: NIOLoopBound<TunnelSessionDriver>
    ) {
        id = welcome.sessionID
        domain = welcome.boundDomain
        pathPrefixes = hello.pathPrefixes.isEmpty ? ["/"] : hello.pathPrefixes
        self.peer = peer
        clientVersion = hello.clientVersion
        connectedAt = Date()
        self.driver = driver
    }

    public var description: String { "session \(id) (\(domain), \(peer))" }

    /// Opens an exchange with a request head; its events go to `consumer`. The future holds nil when the session
    /// takes no new exchanges now (all streams busy, or going away): try another session.
    public func openExchange(
        _ head: TunnelFrame,
        consumer: TunnelExchangeConsumer
    ) -> EventLoopFuture<TunnelExchange?> {
        let driver = self.driver
        if let result = openExchangeAtOnce(head, consumer: consumer) {
            return driver.eventLoop.makeCompletedFuture(result)
        }
        return driver.eventLoop.submit { try driver.value.openExchange(head, consumer: consumer) }
    }

    /// `openExchange`'s result at once when called on the session's loop, as on a one-loop edge (the default),
    /// where the browser's connection shares it: no task and no future for every request. Nil on another loop.
    public func openExchangeAtOnce(
        _ head: TunnelFrame,
        consumer: TunnelExchangeConsumer
    ) -> Result<TunnelExchange?, any Error>? {
        guard driver.eventLoop.inEventLoop else { return nil }
        return Result { try driver.value.openExchange(head, consumer: consumer) }
    }

    /// Ends the session now: in-flight exchanges are aborted and the client hears close_notify.
    public func close(_ why: String) {
        let driver = self.driver
        driver.eventLoop.execute { driver.value.close(why) }
    }

    /// No new exchanges; those in flight may finish.
    public func goAway(_ reason: String) {
        let driver = self.driver
        driver.eventLoop.execute { driver.value.goAway(reason) }
    }

    /// How many exchanges are open, and the last measured round trip.
    public func status() -> EventLoopFuture<(openExchanges: Int, roundTripMilliseconds: UInt64?)> {
        let driver = self.driver
        return driver.eventLoop.submit {
            (driver.value.openExchanges, driver.value.session.roundTripMilliseconds)
        }
    }
}
