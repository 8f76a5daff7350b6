import NIOCore
import NIOPosix
import Testing

@testable import HopGateDTLS

@Suite(.timeLimit(.minutes(3))) struct DTLSConcurrencyTests {
    @Test func fiveHundredConcurrentHandshakesAllComplete() async throws {
        let server = try await EchoServer()
        let count = 500
        let connected = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask {
                    // What is tested is that the server completes every handshake, not how fast: beside the rest
                    // of the suite on 2 cores (the 200-client restart storm among it) one took over 30 s.
                    var configuration = pinnedClient()
                    configuration.handshakeTimeout = .seconds(100)
                    let client = try await DTLSClient.connect(
                        host: "127.0.0.1",
                        port: server.port,
                        configuration: configuration
                    )
                    // Prove the session carries records, then leave.
                    let echoed = try await client.executeThenClose { inbound, outbound in
                        var records = inbound.makeAsyncIterator()
                        _ = try await records.next()  // the greeting
                        try await outbound.write(ByteBuffer(string: "ping"))
                        return try await records.next().map { String(buffer: $0) } == "ping"
                    }
                    return echoed
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(connected == count)
        #expect(server.statistics.handshakesCompleted == count)
        #expect(server.statistics.handshakesFailed == 0)
        await server.stop()
    }
}
