import CHopGateSCTP
import NIOCore
import Testing

@testable import HopGateTunnel

/// usrsctp is one global stack per process: these tests drive its clock, so they run one at a time.
@Suite(.serialized) struct SCTPAssociationTests {
    /// A message that says where it belongs: its stream and its place on that stream, then a pattern.
    private static func message(stream: UInt16, sequence: Int, size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(stream)
        buffer.writeInteger(UInt32(sequence))
        for index in 0..<max(0, size - 6) { buffer.writeInteger(UInt8(truncatingIfNeeded: index &* 31 &+ sequence)) }
        return buffer
    }

    private struct Side {
        let association: SCTPAssociation
        var queue: [(stream: UInt16, message: ByteBuffer)] = []
        var received: [UInt16: [ByteBuffer]] = [:]
        var receivedBytes = 0
    }

    /// Sends `bytesEachWay` in random messages on random streams both ways through `link`; returns the link.
    private func transfer(bytesEachWay: Int, link: SimulatedLink, seed: UInt64) throws -> (SimulatedLink, Int) {
        var link = link
        var generator = SeededGenerator(seed: seed)
        var sides = [Side(association: try SCTPAssociation()), Side(association: try SCTPAssociation())]
        var expected: [[UInt16: [ByteBuffer]]] = [[:], [:]]
        for index in 0..<2 {
            var total = 0
            var sequences: [UInt16: Int] = [:]
            while total < bytesEachWay {
                let stream = UInt16.random(in: 1...16, using: &generator)
                let size = Int.random(in: 6...(index == 0 ? 60_000 : 3_000), using: &generator)
                let sequence = sequences[stream, default: 0]
                sequences[stream] = sequence + 1
                let message = Self.message(stream: stream, sequence: sequence, size: size)
                sides[index].queue.append((stream, message))
                expected[index][stream, default: []].append(message)
                total += size
            }
        }
        // Both ends connect at once (simultaneous open), then send as fast as their buffers allow.
        let limit = 900_000  // simulated milliseconds
        while link.now < limit {
            link.step(sides[0].association, sides[1].association)
            for index in 0..<2 {
                // receive() also reads the stack's notifications: it is what notices the association came up.
                for (stream, message) in sides[index].association.receive() {
                    sides[index].received[stream, default: []].append(message)
                    sides[index].receivedBytes += message.readableBytes
                }
                guard sides[index].association.state == .connected else { continue }
                while let next = sides[index].queue.first,
                    try sides[index].association.send(next.message, on: next.stream)
                {
                    sides[index].queue.removeFirst()
                }
            }
            let done = (0..<2).allSatisfy { index in
                sides[index].queue.isEmpty
                    && sides[1 - index].received.values.map(\.count).reduce(0, +)
                        == expected[index].values.map(\.count).reduce(0, +)
            }
            if done { break }
        }
        let states = sides.map(\.association.state)
        let queued = sides.map(\.queue.count)
        #expect(link.now < limit, "not finished in \(limit) simulated ms: states \(states), still queued \(queued)")
        for index in 0..<2 {
            // Everything one side queued arrived at the other, byte-exact and in order on each stream.
            #expect(sides[1 - index].received == expected[index])
        }
        for side in sides { side.association.close() }
        return (link, link.now)
    }

    // At 20% loss every lost packet costs at least RTO.min (1 s), so that case moves less data.
    @Test(arguments: [(0.0, 3_000_000), (0.01, 2_000_000), (0.05, 1_000_000), (0.20, 100_000)])
    func messagesArriveIntactAndInOrderThroughALossyLink(loss: Double, bytes: Int) throws {
        let link = SimulatedLink(lossRate: loss, duplicationRate: loss / 2, reorderRate: loss, seed: 42)
        let (finished, elapsed) = try transfer(bytesEachWay: bytes, link: link, seed: UInt64(loss * 1000) + 1)
        if loss > 0 { #expect(finished.dropped > 0) }
        #expect(elapsed > 0)
    }

    @Test func everyPacketFitsADatagramAfterDTLS() throws {
        let a = try SCTPAssociation()
        let b = try SCTPAssociation()
        var link = SimulatedLink(seed: 1)
        var largest = 0
        for _ in 0..<200 {
            link.step(a, b)
            _ = a.receive()
            _ = b.receive()
        }
        #expect(a.state == .connected && b.state == .connected)
        #expect(try a.send(ByteBuffer(repeating: 7, count: 60_000), on: 3))
        for _ in 0..<200 {
            for packet in a.takeOutgoing() {
                largest = max(largest, packet.readableBytes)
                b.input(packet)
            }
            for packet in b.takeOutgoing() { a.input(packet) }
            SCTPStack.advanceTimers(byMilliseconds: 1)
        }
        let received = b.receive()
        #expect(received.count == 1 && received.first?.message.readableBytes == 60_000)
        // 1160-byte packets plus DTLS 1.2 AES-GCM's 37 bytes make 1197: within the 1200-byte MTU.
        #expect(largest <= 1160 && largest > 1100)
        a.close()
        b.close()
    }

    @Test func aMessageOverTheLimitFromThePeerClosesTheAssociation() throws {
        let a = try SCTPAssociation()
        let b = try SCTPAssociation()
        var link = SimulatedLink(seed: 2)
        for _ in 0..<200 {
            link.step(a, b)
            _ = a.receive()
            _ = b.receive()
        }
        #expect(a.state == .connected && b.state == .connected)
        // Past `send`'s own check, as a peer that is not HopGate could send it.
        let oversized = [UInt8](repeating: 9, count: SCTPAssociation.maximumMessageSize + 1000)
        let sent = SCTPStack.withLock {
            oversized.withUnsafeBufferPointer { hg_sctp_send(a.id, 3, $0.baseAddress, $0.count) }
        }
        #expect(sent == oversized.count)
        var received: [(stream: UInt16, message: ByteBuffer)] = []
        for _ in 0..<200 {
            for packet in a.takeOutgoing() { b.input(packet) }
            received += b.receive()
            for packet in b.takeOutgoing() { a.input(packet) }
            SCTPStack.advanceTimers(byMilliseconds: 1)
        }
        #expect(received.isEmpty, "nothing of the oversized message is delivered")
        #expect(b.state == .closed)
        #expect(b.takeOutgoing().isEmpty, "a closed association sends nothing more")
        a.close()
        b.close()
    }
}
