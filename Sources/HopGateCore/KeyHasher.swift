import CArgon2
import NIOPosix

/// Hashes and verifies secret keys with Argon2id (RFC 9106) through libargon2: the one place that does either.
///
/// The parameters are written into each encoded hash (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), so they can
/// be raised later without invalidating stored keys. These calls take tens of milliseconds on purpose: call them
/// off any event loop (`KeyVerifier` does).
public struct KeyHasher: Sendable {
    /// Argon2id cost parameters.
    public struct Parameters: Sendable, Equatable {
        /// Passes over memory.
        public var iterations: UInt32
        /// Memory in KiB.
        public var memoryKiB: UInt32
        /// Lanes.
        public var parallelism: UInt32

        /// OWASP's recommended Argon2id floor (m=19 MiB, t=2, p=1). Measured here at 20-30 ms a hash on one core
        /// (../shared/RECIPES.md): slow enough that a stolen database cannot be brute-forced at scale (and the keys
        /// are 256-bit random anyway), fast enough that a burst of client logins does not queue for seconds, and
        /// small enough that a few in parallel do not squeeze memory on a small edge.
        public static let `default` = Parameters(iterations: 2, memoryKiB: 19 * 1024, parallelism: 1)

        /// The cheapest settings libargon2 allows, for tests that hash many times.
        public static let minimal = Parameters(iterations: 1, memoryKiB: 8, parallelism: 1)

        public init(iterations: UInt32, memoryKiB: UInt32, parallelism: UInt32) {
            self.iterations = iterations
            self.memoryKiB = memoryKiB
            self.parallelism = parallelism
        }
    }

    /// 16 bytes of salt, RFC 9106 §3.1's recommendation.
    static let saltLength = 16
    /// A 32-byte tag, RFC 9106 §4's recommendation.
    static let tagLength = 32

    public let parameters: Parameters

    public init(parameters: Parameters = .default) {
        self.parameters = parameters
    }

    /// Returns the Argon2id encoded hash of `secret` with a fresh random salt. Blocking.
    public func hash(_ secret: String) throws -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<Self.saltLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let encodedLength = argon2_encodedlen(
            parameters.iterations,
            parameters.memoryKiB,
            parameters.parallelism,
            UInt32(Self.saltLength),
            UInt32(Self.tagLength),
            Argon2_id
        )
        var encoded = [CChar](repeating: 0, count: encodedLength)
        let password = Array(secret.utf8)
        let result = argon2id_hash_encoded(
            parameters.iterations,
            parameters.memoryKiB,
            parameters.parallelism,
            password,
            password.count,
            salt,
            salt.count,
            Self.tagLength,
            &encoded,
            encoded.count
        )
        guard result == ARGON2_OK.rawValue else {
            throw HopGateError(.internalError, "Argon2id hashing failed: \(Self.message(for: result))")
        }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `secret` is the key that `encodedHash` was made from. Blocking. A malformed hash throws, so a
    /// corrupt record or a mistyped configured admin hash is reported instead of looking like a wrong key.
    public static func verify(_ secret: String, against encodedHash: String) throws -> Bool {
        guard encodedHash.hasPrefix("$argon2id$") else {
            throw HopGateError(.configuration, "the stored key hash is not an Argon2id encoded hash ($argon2id$...)")
        }
        let password = Array(secret.utf8)
        let result = argon2id_verify(encodedHash, password, password.count)
        switch result {
        case ARGON2_OK.rawValue: return true
        case ARGON2_VERIFY_MISMATCH.rawValue: return false
        default:
            throw HopGateError(.configuration, "the stored key hash cannot be read: \(message(for: result))")
        }
    }

    private static func message(for code: Int32) -> String {
        String(cString: argon2_error_message(code))
    }
}

extension KeyHasher {
    /// Hashes on a thread-pool thread, for callers that may be on an event loop.
    public func hash(_ secret: String, on threadPool: NIOThreadPool) async throws -> String {
        try await threadPool.runIfActive { try self.hash(secret) }
    }
}
