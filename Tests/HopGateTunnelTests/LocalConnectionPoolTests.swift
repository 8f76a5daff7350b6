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
}
