import NIOCore
import Synchronization

/// Idle keep-alive connections to local services, per target and event loop (a connection is used on its own
/// loop only). Reusing them saves a TCP handshake a request, and the local service's accept queue under load.
final class LocalConnectionPool: Sendable {
    struct Key: Hashable {
        let host: String
        let port: Int
        let loop: ObjectIdentifier
    }

    /// Idle connections kept per target and loop; more are closed. As many as a busy site has requests in flight to
    /// one service: each one kept costs a socket, each one closed costs a TCP handshake for the next request. With
    /// 32, wrk -c64 through the tunnel opened a connection every 4 requests and the client spent twice the CPU a
    /// request (125 us against 56 at -c32, bench/profile CONNS=128).
    static let maximumIdlePerKey = 256

    private struct State {
        var idle: [Key: [any Channel]] = [:]
        /// Connections whose closing already takes them out of the pool: a connection comes back after every
        /// request, and a callback added each time would pile up on its close future for as long as it lives.
        var watched: Set<ObjectIdentifier> = []
    }

    private let state = Mutex(State())

    static func key(for target: LocalTarget, on loop: any EventLoop) -> Key {
        Key(host: target.host, port: target.port, loop: ObjectIdentifier(loop))
    }

    /// An idle connection that is still open, if there is one.
    func take(_ key: Key) -> (any Channel)? {
        state.withLock { state in
            // In place: a copy of the list taken out and put back cost a copy of it and a second lookup (callgrind).
            while let channel = state.idle[key]?.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    /// Keeps a connection whose last exchange finished cleanly; closes it if the pool is full.
    func give(_ channel: any Channel, _ key: Key) {
        let id = ObjectIdentifier(channel)
        let (kept, newlyWatched) = state.withLock { state in
            guard Self.append(channel, to: &state.idle[key, default: []]) else { return (false, false) }
            return (true, state.watched.insert(id).inserted)
        }
        guard kept else { return channel.close(promise: nil) }
        guard newlyWatched else { return }
        // A connection the service closes while idle leaves the pool at once.
        channel.closeFuture.whenComplete { _ in
            self.state.withLock { state in
                state.idle[key]?.removeAll { $0 === channel }
                state.watched.remove(id)
            }
        }
    }

    /// Adds `channel` to `idle` unless it is full: one lookup of the key for both.
    private static func append(_ channel: any Channel, to idle: inout [any Channel]) -> Bool {
        guard idle.count < maximumIdlePerKey else { return false }
        idle.append(channel)
        return true
    }

    /// Connections the pool watches for closing: one entry each, however often they came back (for tests).
    var watchedCount: Int { state.withLock { $0.watched.count } }
}
