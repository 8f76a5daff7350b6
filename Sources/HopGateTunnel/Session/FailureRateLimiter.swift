/// Counts failed handshakes per source address, so a client guessing keys is refused before it costs an Argon2id
/// hash each time. A sliding window on an injected clock (milliseconds), bounded in memory: the oldest addresses are
/// forgotten first when it is full.
public struct FailureRateLimiter: Sendable {
    /// Failures allowed per address within `window` before further attempts are refused.
    public let maximumFailures: Int
    /// How long a failure counts, in milliseconds.
    public let windowMilliseconds: UInt64
    /// How many addresses are remembered; a flood from many addresses cannot grow it past this.
    public let capacity: Int

    private var failures: [String: [UInt64]] = [:]
    private var order: [String] = []

    public init(maximumFailures: Int = 10, windowMilliseconds: UInt64 = 60_000, capacity: Int = 10_000) {
        self.maximumFailures = maximumFailures
        self.windowMilliseconds = windowMilliseconds
        self.capacity = capacity
    }

    /// Whether `address` has used up its failures at `now`.
    public mutating func isLimited(_ address: String, now: UInt64) -> Bool {
        prune(address, now: now)
        return (failures[address]?.count ?? 0) >= maximumFailures
    }

    public mutating func recordFailure(_ address: String, now: UInt64) {
        prune(address, now: now)
        if failures[address] == nil {
            if order.count >= capacity, let oldest = order.first {
                order.removeFirst()
                failures[oldest] = nil
            }
            order.append(address)
        }
        // At most `maximumFailures` timestamps an address: more say nothing new and would only cost memory.
        var times = failures[address, default: []]
        if times.count >= maximumFailures { times.removeFirst() }
        times.append(now)
        failures[address] = times
    }

    /// A success forgives the address.
    public mutating func recordSuccess(_ address: String) {
        guard failures.removeValue(forKey: address) != nil else { return }
        order.removeAll { $0 == address }
    }

    public var trackedAddresses: Int { failures.count }

    private mutating func prune(_ address: String, now: UInt64) {
        guard var times = failures[address] else { return }
        times.removeAll { now >= $0 + windowMilliseconds }
        failures[address] = times.isEmpty ? nil : times
        if times.isEmpty { order.removeAll { $0 == address } }
    }
}
