import Foundation
import NIOCore
import Testing

@testable import HopGateDTLS

/// What the server does with datagrams no honest client sends: it drops and counts them, never crashes, and keeps
/// nothing for a peer that never returned a cookie.
@Suite(.timeLimit(.minutes(2))) struct DTLSHostileInputTests {
    /// A client driven by hand over a plain socket, so the test sees and chooses every datagram.
    private final class ManualClient {
        let socket: UDPSocket
        let connection: DTLSConnection
        /// Every datagram `flush` sent, in order.
        private(set) var sent: [[UInt8]] = []

        convenience init(port: Int) throws {
            try self.init(socket: UDPSocket(connectingTo: port))
        }

        /// A new client session on an existing socket: the same address and port, as after a restart behind a NAT.
        init(socket: UDPSocket) throws {
            self.socket = socket
            let context = try DTLSContext.client(verification: .fingerprint(edgeCertificate.fingerprint!))
            connection = try DTLSConnection(clientContext: context, mtu: 1200, serverName: "edge.test")
        }

        /// The first flight (a ClientHello without a cookie), not sent.
        func firstFlight() -> [[UInt8]] {
            _ = connection.advance()
            return connection.takeOutgoingDatagrams().map { Array(buffer: $0) }
        }

        func handshake() async throws {
            var events = connection.advance()
            var silences = 0
            while !events.contains(where: { if case .handshakeCompleted = $0 { true } else { false } }) {
                flush()
                if let reply = await socket.receive() {
                    events = connection.receive(ByteBuffer(bytes: reply))
                    continue
                }
                // A datagram lost on a busy machine: send the last flight again, as a real client's timer would.
                silences += 1
                guard silences < 5 else { throw TimeoutError() }
                events = connection.handleTimeout()
            }
            flush()
        }

        /// Encrypts `text` and returns the datagram without sending it.
        func seal(_ text: String) throws -> [UInt8] {
            try connection.send(ByteBuffer(string: text))
            return try #require(
                connection.takeOutgoingDatagrams().first.map { Array(buffer: $0) }
            )
        }

        /// Reads until a record arrives; nil if none does. The default wait is long because only a failure waits it
        /// out: in a full test run the echo server's task can wait seconds for a thread (one run saw 5 s pass).
        func receiveRecord(timeoutMilliseconds: Int32 = 20_000) async -> String? {
            while let datagram = await socket.receive(timeoutMilliseconds: timeoutMilliseconds) {
                for case .record(let record) in connection.receive(ByteBuffer(bytes: datagram)) {
                    return String(buffer: record)
                }
            }
            return nil
        }

        func flush() {
            for datagram in connection.takeOutgoingDatagrams() {
                sent.append(Array(buffer: datagram))
                socket.send(Array(buffer: datagram))
            }
        }
    }

    @Test func replayedTruncatedAndLateRecordsAreDroppedAndCounted() async throws {
        let server = try await EchoServer()
        let client = try ManualClient(port: server.port)
        try await client.handshake()
        #expect(await client.receiveRecord() == EchoServer.greeting)

        let record = try client.seal("once")
        client.socket.send(record)
        #expect(await client.receiveRecord() == "once")
        let droppedBefore = server.statistics.droppedForSessions

        client.socket.send(record)  // a replay: same sequence number
        client.socket.send(Array(record.prefix(record.count / 2)))  // truncated
        var tampered = record
        tampered[tampered.count - 1] ^= 0xff  // a flipped bit in the tag
        client.socket.send(tampered)
        client.socket.send((0..<300).map { _ in UInt8.random(in: 0...255) })  // noise on the session's address
        #expect(await client.receiveRecord(timeoutMilliseconds: 500) == nil, "nothing may be echoed for those")
        // The server may be behind on a busy machine: it gets a while to count all four.
        for _ in 0..<100 where server.statistics.droppedForSessions - droppedBefore < 4 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(server.statistics.droppedForSessions - droppedBefore == 4)

        // The session still works after all that.
        client.socket.send(try client.seal("still here"))
        #expect(await client.receiveRecord() == "still here")

        // After close_notify the server forgets the peer; a late record is a stray from an unknown peer.
        let late = try client.seal("late")
        client.connection.close()
        client.flush()
        _ = try await server.waitForEvent { if case .closed = $0 { true } else { false } }
        let unknownBefore = server.statistics.droppedFromUnknownPeers
        client.socket.send(late)
        // Polled, not a fixed pause: on a busy machine the server may take a while to read the datagram.
        for _ in 0..<100 where server.statistics.droppedFromUnknownPeers == unknownBefore {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.statistics.droppedFromUnknownPeers == unknownBefore + 1)
        #expect(server.statistics.sessionsEstablished == 0)
        await server.stop()
    }

    @Test func anEmptyDatagramDoesNotEndASession() async throws {
        let server = try await EchoServer()
        let client = try ManualClient(port: server.port)
        try await client.handshake()
        #expect(await client.receiveRecord() == EchoServer.greeting)
        client.socket.send([])
        client.socket.send(try client.seal("after nothing"))
        #expect(await client.receiveRecord() == "after nothing")
        #expect(server.statistics.sessionsEstablished == 1)
        await server.stop()
    }

    /// Only where the kernel has UDP segmentation offload (Linux 4.18 on); elsewhere the feature is not used.
    @Test(.enabled(if: System.supportsUDPSegmentationOffload)) func datagramsSentAsOneSegmentedWriteArriveAsEach()
        async throws
    {
        let server = try await EchoServer()
        // From a stranger, three datagrams read as one (receive offload) still count as three.
        let stranger = try UDPSocket(connectingTo: server.port)
        let unknownBefore = server.statistics.droppedFromUnknownPeers
        #expect(stranger.sendSegmented([[UInt8](repeating: 1, count: 40), [UInt8](repeating: 2, count: 40), [3]]))
        for _ in 0..<100 where server.statistics.droppedFromUnknownPeers < unknownBefore + 3 {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.statistics.droppedFromUnknownPeers == unknownBefore + 3)
        // From a session, each record of the run is read, in order.
        let client = try ManualClient(port: server.port)
        try await client.handshake()
        #expect(await client.receiveRecord() == EchoServer.greeting)
        let records = try ["first record", "other record", "short"].map { try client.seal($0) }
        #expect(client.socket.sendSegmented(records))
        #expect(await client.receiveRecord() == "first record")
        #expect(await client.receiveRecord() == "other record")
        #expect(await client.receiveRecord() == "short")
        await server.stop()
    }

    @Test func aClientRestartingOnTheSamePortGetsANewSession() async throws {
        let server = try await EchoServer()
        let first = try ManualClient(port: server.port)
        try await first.handshake()
        #expect(await first.receiveRecord() == EchoServer.greeting)
        // The process restarts and keeps its port; the old session never said goodbye.
        let second = try ManualClient(socket: first.socket)
        try await second.handshake()
        #expect(await second.receiveRecord() == EchoServer.greeting)
        second.socket.send(try second.seal("new life"))
        #expect(await second.receiveRecord() == "new life")
        #expect(server.statistics.handshakesCompleted == 2)
        #expect(server.statistics.sessionsEstablished == 1)
        await server.stop()
    }

    @Test func aLateCopyOfTheClientHelloDoesNotEndTheSession() async throws {
        let server = try await EchoServer()
        let client = try ManualClient(port: server.port)
        try await client.handshake()
        #expect(await client.receiveRecord() == EchoServer.greeting)
        // A retransmission or a duplicate of the first ClientHello (the same random) arrives after the handshake.
        let firstHello = try #require(client.sent.first)
        let dropped = server.statistics.droppedForSessions
        client.socket.send(firstHello)
        client.socket.send(try client.seal("still here"))
        #expect(await client.receiveRecord() == "still here")
        // At least the late copy; on a loaded machine the client's own retransmissions of its last flight can land
        // after `dropped` was read and count too.
        #expect(server.statistics.droppedForSessions >= dropped + 1)
        #expect(server.statistics.handshakesCompleted == 1)
        #expect(server.statistics.sessionsEstablished == 1)
        await server.stop()
    }

    @Test func randomDatagramsFromStrangersAreDropped() async throws {
        let server = try await EchoServer()
        let sockets = try (0..<20).map { _ in try UDPSocket(connectingTo: server.port) }
        var generator = SystemRandomNumberGenerator()
        for index in 0..<2000 {
            let size = Int.random(in: 0...1500, using: &generator)
            var bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Some look like DTLS handshake records (content type 22, version 0xfefd) to reach deeper code.
            if index % 3 == 0 && size > 13 { bytes.replaceSubrange(0..<3, with: [22, 0xfe, 0xfd]) }
            sockets[index % sockets.count].send(bytes)
        }
        try await Task.sleep(for: .milliseconds(500))
        let statistics = server.statistics
        #expect(statistics.droppedFromUnknownPeers + statistics.helloVerifyRequestsSent > 1500)
        #expect(statistics.sessionsHandshaking == 0 && statistics.sessionsEstablished == 0)

        // Still serving.
        let client = try await DTLSClient.connect(host: "127.0.0.1", port: server.port, configuration: pinnedClient())
        try await client.channel.close()
        await server.stop()
    }

    @Test func aFloodOfClientHellosWithoutCookiesKeepsNoState() async throws {
        let server = try await EchoServer()
        let hello = try #require(try ManualClient(port: server.port).firstFlight().first)
        let sockets = try (0..<200).map { _ in try UDPSocket(connectingTo: server.port) }
        for round in 1...10 {
            for socket in sockets { socket.send(hello) }
            // Paced so the kernel's socket buffer (capped by rmem_max) is not what drops them: the next round waits
            // until the server has answered most of this one, up to a second (beside other suites, its event loop
            // is shared and can fall behind a fixed pause).
            for _ in 0..<50 where server.statistics.helloVerifyRequestsSent < round * sockets.count * 9 / 10 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        // Every HelloVerifyRequest is small: the server is no amplifier.
        let reply = try #require(await sockets[0].receive())
        #expect(reply.count < hello.count)
        try await Task.sleep(for: .milliseconds(300))
        let statistics = server.statistics
        // On a busy machine the kernel may still drop some; many must be answered, and none remembered.
        #expect(statistics.helloVerifyRequestsSent >= 600, "\(statistics)")
        #expect(statistics.sessionsHandshaking == 0)
        #expect(statistics.sessionsEstablished == 0)
        #expect(statistics.handshakesCompleted == 0)
        await server.stop()
    }

    @Test func aClientHelloBeyondTheHandshakeCapIsRefusedAndCounted() async throws {
        var configuration = DTLSServerConfiguration(certificateSource: FixedCertificateSource(edgeCertificate))
        configuration.maximumHandshakes = 2
        let server = try await EchoServer(configuration: configuration)
        // Three clients get as far as a valid cookie, then stop answering: two hold the handshake slots.
        var stalled: [ManualClient] = []
        for _ in 0..<3 {
            let client = try ManualClient(port: server.port)
            client.flush()
            _ = client.connection.advance()
            client.flush()
            var reply = await client.socket.receive()
            // A datagram lost on a busy machine: send the ClientHello again, as the client's timer would.
            for _ in 0..<4 where reply == nil {
                _ = client.connection.handleTimeout()
                client.flush()
                reply = await client.socket.receive()
            }
            let verify = try #require(reply)
            _ = client.connection.receive(ByteBuffer(bytes: verify))
            client.flush()  // the ClientHello with the cookie
            stalled.append(client)
        }
        // A busy machine may take a while to deliver the third ClientHello: wait for it, up to 5 s.
        for _ in 0..<100 where server.statistics.refusedAtCapacity == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(server.statistics.sessionsHandshaking == 2)
        #expect(server.statistics.refusedAtCapacity >= 1, "\(server.statistics)")
        await server.stop()
    }
}

extension Array where Element == UInt8 {
    init(buffer: ByteBuffer) { self = buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? [] }
}
