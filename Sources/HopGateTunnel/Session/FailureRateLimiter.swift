import OrderedCollections

/// Counts credential attempts per key (a source network, a domain), so a client guessing keys is refused before
/// it costs an Argon2id hash each time. An attempt counts as a failure from the moment it starts, so a burst of
/// concurrent guesses is limited before any of them finishes; a success takes its own attempt back. A sliding
/// window on an injected clock (milliseconds), bounded in memory: the least recently failing keys are forgotten
/// first when it is full.
public struct FailureRateLimiter: Sendable {
    /// Attempts (failed or still running) allowed per key within the window before further ones are refused.
    public let maximumFailures: Int
    /// How long a failure counts, in milliseconds.
    public let windowMilliseconds: UInt64
    /// How many keys are remembered; a flood from many addresses cannot grow it past this.
    public let capacity: Int

    /// Each key's failure times, oldest first; the keys in the order they last failed.
    private var failures: OrderedDictionary<String, [UInt64]> = [:]

    public init(maximumFailures: Int = 10, windowMilliseconds: UInt64 = 60_000, capacity: Int = 10_000) {
        self.maximumFailures = maximumFailures
        self.windowMilliseconds = windowMilliseconds
        self.capacity = capacity
    }

    /// Whether `key` has used up its attempts at `now`.
    public mutating func isLimited(_ key: String, now: UInt64) -> Bool {
        prune(key, now: now)
        return (failures[key]?.count ?? 0) >= maximumFailures
    }

    /// Starts an attempt for every key: false (and nothing counted) when any of them is limited.
    public mutating func beginAttempt(_ keys: [String], now: UInt64) -> Bool {
        guard !keys.contains(where: { isLimited($0, now: now) }) else { return false }
        for key in keys { recordFailure(key, now: now) }
        return true
    }

    /// The attempt started at `startedAt` succeeded: it no longer counts against its keys.
    public mutating func attemptSucceeded(_ keys: [String], startedAt: UInt64) {
        for key in keys {
            guard var times = failures[key], let index = times.lastIndex(of: startedAt) else { continue }
            times.remove(at: index)
            failures[key] = times.isEmpty ? nil : times
        }
    }

    public mutating func recordFailure(_ key: String, now: UInt64) {
        prune(key, now: now)
        // Move the key to the newest end, so eviction takes the keys that have been quiet longest.
        var times = failures.removeValue(forKey: key) ?? []
        if failures.count >= capacity { failures.removeFirst() }
        // At most `maximumFailures` timestamps a key: more say nothing new and would only cost memory.
        if times.count >= maximumFailures { times.removeFirst() }
        times.append(now)
        failures[key] = times
    }

    /// A success forgives the key all its failures.
    public mutating func recordSuccess(_ key: String) {
        failures[key] = nil
    }

    public var trackedKeys: Int { failures.count }

    private mutating func prune(_ key: String, now: UInt64) {
        guard var times = failures[key] else { return }
        times.removeAll { now >= $0 + windowMilliseconds }
        failures[key] = times.isEmpty ? nil : times
    }
}
