import HopGateLossyRelay
import NIOCore
import NIOPosix
import Testing

@testable import HopGateDTLS

@Suite(.timeLimit(.minutes(3))) struct DTLSLossTests {
    @Test(arguments: [UInt64(1), 2, 3])
    func handshakeCompletesAndRecordsFlowAtTwentyPercentLoss(seed: UInt64) async throws {
        let server = try await EchoServer()
        let relay = try await LossyRelay.start(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: server.port),
            configuration: LossyRelayConfiguration(
                lossRate: 0.2,
                duplicationRate: 0.05,
                reorderRate: 0.1,
                delay: .milliseconds(2),
                seed: seed
            )
        )
        let client = try await DTLSClient.connect(host: "127.0.0.1", port: relay.port, configuration: pinnedClient())
        // Records are datagrams: some are lost (the tunnel's SCTP layer retransmits them), and those that arrive
        // are intact, each the one that was sent.
        let sent = (0..<300).map { index in
            ByteBuffer(string: "record \(index) " + String(repeating: "x", count: index))
        }
        let received = try await client.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: [ByteBuffer]?.self) { group in
                group.addTask {
                    var echoes: [ByteBuffer] = []
                    for try await record in inbound where String(buffer: record) != EchoServer.greeting {
                        echoes.append(record)
                        // About 64% come back (two crossings at 20% loss): half is plenty, and ends the wait.
                        if echoes.count >= sent.count / 2 { break }
                    }
                    return echoes
                }
                for record in sent {
                    try await outbound.write(record)
                    try await Task.sleep(for: .milliseconds(1))
                }
                // Echoes can trail far behind on a busy machine (the other tests of this process share its
                // threads), so they get time; when it is up, closing ends the reader with what it has.
                group.addTask {
                    try await Task.sleep(for: .seconds(20))
                    return nil
                }
                let first = try await group.next() ?? nil
                try? await client.channel.close()
                if let first {
                    group.cancelAll()
                    return first
                }
                while let next = try await group.next() {
                    if let echoes = next { return echoes }
                }
                return []
            }
        }
        let statistics = relay.statistics
        #expect(statistics.upstream.dropped > 0 && statistics.downstream.dropped > 0)
        #expect(statistics.upstream.duplicated > 0 && statistics.upstream.reordered > 0)
        // Each echo needs two crossings, so about 64% arrive; the kernel drops a few more when the machine is busy.
        // Far fewer means the relay or DTLS is broken.
        #expect(received.count > sent.count / 5, "only \(received.count) of \(sent.count) echoes arrived")
        #expect(received.allSatisfy { sent.contains($0) })
        #expect(Set(received.map { String(buffer: $0) }).count == received.count, "DTLS must drop duplicated records")
        await relay.stop()
        await server.stop()
    }
}
