import NIOCore
import NIOEmbedded
import Testing

@testable import HopGateClient

/// The client's pool of idle connections to local services.
@Suite struct LocalConnectionPoolTests {
    @Test func aConnectionComingBackAfterEveryRequestIsWatchedOnceAndLeavesWhenClosed() async throws {
        let pool = LocalConnectionPool()
        let channel = EmbeddedChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).get()
        let key = LocalConnectionPool.key(
            for: LocalTarget(pathPrefix: "/", host: "127.0.0.1", port: 8080),
            on: channel.eventLoop
        )
        for _ in 0..<1000 {
            pool.give(channel, key)
            #expect(pool.take(key) === channel)
        }
        pool.give(channel, key)
        // Before: a close callback for every time it came back, held until the connection closed.
        #expect(pool.watchedCount == 1)
        try await channel.close().get()
        channel.embeddedEventLoop.run()
        #expect(pool.take(key) == nil)
        #expect(pool.watchedCount == 0)
    }

    @Test func asManyConnectionsAsABusySiteUsesAtOnceAreKept() async throws {
        let key = LocalConnectionPool.key(
            for: LocalTarget(pathPrefix: "/", host: "127.0.0.1", port: 8080),
            on: EmbeddedEventLoop()
        )
        let pool = LocalConnectionPool()
        var channels: [EmbeddedChannel] = []
        for _ in 0..<128 {
            let channel = EmbeddedChannel()
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).get()
            channels.append(channel)
            pool.give(channel, key)
        }
        var taken = 0
        while pool.take(key) != nil { taken += 1 }
        #expect(taken == 128)
        // Beyond the limit, a connection coming back is closed.
        for _ in 0..<LocalConnectionPool.maximumIdlePerKey { pool.give(channels[0], key) }
        let extra = EmbeddedChannel()
        try await extra.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).get()
        pool.give(extra, key)
        #expect(!extra.isActive)
    }
}
