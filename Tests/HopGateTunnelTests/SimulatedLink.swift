import HopGateTunnel
import NIOCore

/// Two SCTP associations wired back to back through a simulated link with loss, duplication, reordering and delay,
/// on a simulated clock: a whole transfer runs in milliseconds of real time, the same way for the same seed.
struct SimulatedLink {
    var lossRate = 0.0
    var duplicationRate = 0.0
    var reorderRate = 0.0
    /// One-way delay in milliseconds.
    var delay = 5
    var generator: SeededGenerator

    private(set) var now = 0
    private(set) var delivered = 0
    private(set) var dropped = 0
    private var inFlight: [(at: Int, toB: Bool, packet: ByteBuffer)] = []

    init(lossRate: Double = 0, duplicationRate: Double = 0, reorderRate: Double = 0, seed: UInt64) {
        self.lossRate = lossRate
        self.duplicationRate = duplicationRate
        self.reorderRate = reorderRate
        self.generator = SeededGenerator(seed: seed)
    }

    /// Moves packets one millisecond forward: collects what both ends sent, delivers what is due, advances timers.
    mutating func step(_ a: SCTPAssociation, _ b: SCTPAssociation) {
        for (from, toB) in [(a, true), (b, false)] {
            for packet in from.takeOutgoing() {
                if Double.random(in: 0..<1, using: &generator) < lossRate {
                    dropped += 1
                    continue
                }
                let extra =
                    Double.random(in: 0..<1, using: &generator) < reorderRate
                    ? Int.random(in: 1...20, using: &generator) : 0
                inFlight.append((now + delay + extra, toB, packet))
                if Double.random(in: 0..<1, using: &generator) < duplicationRate {
                    inFlight.append((now + delay + extra + 1, toB, packet))
                }
            }
        }
        let due = inFlight.filter { $0.at <= now }
        inFlight.removeAll { $0.at <= now }
        for item in due {
            (item.toB ? b : a).input(item.packet)
            delivered += 1
        }
        now += 1
        SCTPStack.advanceTimers(byMilliseconds: 1)
    }
}
