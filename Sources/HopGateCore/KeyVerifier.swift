import Crypto
import NIOPosix
import Synchronization

/// Verifies keys against Argon2id hashes off the caller's thread, remembering keys it has verified.
///
/// Argon2id is slow on purpose; a client that reconnects, or an admin tool that calls the API in a loop, would
/// otherwise pay for it every time, and a reconnect storm would become a CPU storm. The cache holds neither keys
/// nor hashes: it holds an HMAC of (hash, key) under a secret made at start-up, so a memory dump reveals nothing
/// usable, and a hit means exactly this key was verified against exactly this hash (a rotated key has a new hash,
/// so old entries simply stop matching). Only successes are cached: a wrong key always costs the full hash.
public final class KeyVerifier: Sendable {
    /// Enough for every domain of a large edge to reconnect without a cache miss; an entry is 32 bytes plus a
    /// dictionary slot, so the bound is about 1 MB.
    public static let defaultCapacity = 10_000

    private struct Cache {
        var order: [[UInt8]] = []  // a ring of digests in insertion order, for eviction
        var next = 0
        var members: Set<[UInt8]> = []
    }

    private let capacity: Int
    private let cacheSecret = SymmetricKey(size: .bits256)
    private let cache = Mutex(Cache())
    private let threadPool: NIOThreadPool
    private let slowVerify: @Sendable (String, String) throws -> Bool
    private let slowCount = Atomic<Int>(0)

    /// - Parameters:
    ///   - capacity: how many verified keys to remember.
    ///   - threadPool: where the Argon2 work runs; never an event loop.
    ///   - slowVerify: the real check, replaceable in tests.
    public init(
        capacity: Int = defaultCapacity,
        threadPool: NIOThreadPool = .singleton,
        slowVerify: @escaping @Sendable (String, String) throws -> Bool = KeyHasher.verify
    ) {
        precondition(capacity > 0, "the cache needs room for at least one key")
        self.capacity = capacity
        self.threadPool = threadPool
        self.slowVerify = slowVerify
    }

    /// How many verifications ran Argon2 (cache misses), for metrics and tests.
    public var argon2Verifications: Int { slowCount.load(ordering: .relaxed) }

    /// Whether `candidate` is the key behind `encodedHash`.
    public func verify(_ candidate: String, against encodedHash: String) async throws -> Bool {
        let digest = cacheDigest(candidate, encodedHash)
        if cache.withLock({ $0.members.contains(digest) }) { return true }
        let slowVerify = self.slowVerify
        slowCount.add(1, ordering: .relaxed)
        let matches = try await threadPool.runIfActive { try slowVerify(candidate, encodedHash) }
        if matches { remember(digest) }
        return matches
    }

    private func cacheDigest(_ candidate: String, _ encodedHash: String) -> [UInt8] {
        // The zero byte separates the two parts; neither an encoded hash nor a key contains one.
        var message = Array(encodedHash.utf8)
        message.append(0)
        message.append(contentsOf: candidate.utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: cacheSecret))
    }

    private func remember(_ digest: [UInt8]) {
        cache.withLock { cache in
            guard cache.members.insert(digest).inserted else { return }
            if cache.order.count < capacity {
                cache.order.append(digest)
            } else {
                cache.members.remove(cache.order[cache.next])
                cache.order[cache.next] = digest
                cache.next = (cache.next + 1) % capacity
            }
        }
    }
}
