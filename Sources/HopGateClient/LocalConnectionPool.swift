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

    /// Idle connections kept per target and loop; more are closed.
    static let maximumIdlePerKey = 32

    private let idle = Mutex<[Key: [any Channel]]>([:])

    static func key(for target: LocalTarget, on loop: any EventLoop) -> Key {
        Key(host: target.host, port: target.port, loop: ObjectIdentifier(loop))
    }

    /// An idle connection that is still open, if there is one.
    func take(_ key: Key) -> (any Channel)? {
        idle.withLock { idle in
            while var channels = idle[key], let channel = channels.popLast() {
                idle[key] = channels
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    /// Keeps a connection whose last exchange finished cleanly; closes it if the pool is full.
    func give(_ channel: any Channel, _ key: Key) {
        let kept = idle.withLock { idle in
            guard idle[key, default: []].count < Self.maximumIdlePerKey else { return false }
            idle[key, default: []].append(channel)
            return true
        }
        guard kept else { return channel.close(promise: nil) }
        // A connection the service closes while idle leaves the pool at once.
        channel.closeFuture.whenComplete { _ in
            self.idle.withLock { idle in idle[key]?.removeAll { $0 === channel } }
        }
    }
}
