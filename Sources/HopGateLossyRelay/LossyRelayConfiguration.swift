import NIOCore

/// What the relay does to each datagram, each way. Rates are probabilities from 0 to 1.
public struct LossyRelayConfiguration: Sendable {
    /// Dropped outright.
    public var lossRate: Double
    /// Sent twice.
    public var duplicationRate: Double
    /// Held back by up to `reorderDelay` extra, so later datagrams overtake it.
    public var reorderRate: Double
    /// One-way delay added to every datagram.
    public var delay: TimeAmount
    /// The most a reordered datagram is held back beyond `delay`.
    public var reorderDelay: TimeAmount
    /// The random sequence's seed: the same seed makes the same decisions for the same sequence of datagrams.
    public var seed: UInt64

    public init(
        lossRate: Double = 0,
        duplicationRate: Double = 0,
        reorderRate: Double = 0,
        delay: TimeAmount = .zero,
        reorderDelay: TimeAmount = .milliseconds(20),
        seed: UInt64 = 1
    ) {
        self.lossRate = lossRate
        self.duplicationRate = duplicationRate
        self.reorderRate = reorderRate
        self.delay = delay
        self.reorderDelay = reorderDelay
        self.seed = seed
    }

    /// A clean pipe: forwards everything as it comes, and still measures datagram sizes.
    public static let transparent = LossyRelayConfiguration()
}

/// What the relay saw and did, per direction.
public struct LossyRelayStatistics: Sendable, Equatable {
    public struct Direction: Sendable, Equatable {
        public var received = 0
        public var dropped = 0
        public var duplicated = 0
        public var reordered = 0
        /// The largest UDP payload seen: how a test checks that nothing exceeded the MTU.
        public var largestDatagram = 0
    }

    /// From clients to the target.
    public var upstream = Direction()
    /// From the target back to clients.
    public var downstream = Direction()
}

/// SplitMix64: tiny, fast, and fully determined by its seed (Vigna, 2015). Every seeded test in the project uses
/// it, so a failure replays exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
