import Crypto
import FoundationEssentials

/// A token the edge gives a client in its Welcome, which the client presents instead of its key on the next
/// connect. Checking one is an HMAC, microseconds, where the key would cost an Argon2id hash: a restarted edge
/// with many clients reconnecting is no Argon2 storm.
///
/// It names the domain, an expiry, and a digest of the domain's current key hash: unregistering the domain or
/// rotating its key makes every token for it fail the edge's check against the store. It is signed with a secret
/// kept in the store, so a restarted edge, and every edge on the same database, accepts it.
///
/// Layout: version (1) | expiry, Unix seconds (8) | key-hash digest (16) | domain length (1) | domain | HMAC-SHA256 (32).
public enum ResumptionToken {
    static let version: UInt8 = 1
    static let digestLength = 16
    static let tagLength = 32

    /// What a valid token says.
    public struct Claims: Equatable, Sendable {
        public let domain: String
        public let expiry: Date
        /// The first 16 bytes of SHA-256 of the domain's Argon2id encoded hash when the token was issued.
        public let keyHashDigest: [UInt8]
    }

    /// Why a token is refused.
    public enum Failure: Error, Equatable, Sendable {
        case malformed
        case badSignature
        case expired
    }

    /// The digest of an encoded key hash that a token carries.
    public static func keyHashDigest(of encodedHash: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(encodedHash.utf8)).prefix(digestLength))
    }

    public static func issue(domain: DomainName, keyHash encodedHash: String, expiry: Date, secret: [UInt8]) -> [UInt8]
    {
        var token: [UInt8] = [version]
        withUnsafeBytes(of: UInt64(max(0, expiry.timeIntervalSince1970)).bigEndian) { token.append(contentsOf: $0) }
        token.append(contentsOf: keyHashDigest(of: encodedHash))
        let name = Array(domain.value.utf8)  // at most 253 bytes: fits the length byte
        token.append(UInt8(name.count))
        token.append(contentsOf: name)
        token.append(contentsOf: HMAC<SHA256>.authenticationCode(for: token, using: SymmetricKey(data: secret)))
        return token
    }

    /// The claims of a token that this secret signed and that has not expired at `now`.
    public static func verify(_ token: [UInt8], secret: [UInt8], now: Date = Date()) throws(Failure) -> Claims {
        let fixed = 1 + 8 + digestLength + 1
        guard token.count > fixed + tagLength, token[0] == version else { throw .malformed }
        let nameLength = Int(token[fixed - 1])
        guard token.count == fixed + nameLength + tagLength else { throw .malformed }
        let body = token[0..<(fixed + nameLength)]
        let tag = token[(fixed + nameLength)...]
        // isValidAuthenticationCode compares in constant time.
        guard HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: body, using: SymmetricKey(data: secret))
        else {
            throw .badSignature
        }
        let seconds = token[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let expiry = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard expiry > now else { throw .expired }
        guard let domain = String(validating: token[fixed..<(fixed + nameLength)], as: UTF8.self) else {
            throw .malformed
        }
        return Claims(domain: domain, expiry: expiry, keyHashDigest: Array(token[9..<(9 + digestLength)]))
    }
}
