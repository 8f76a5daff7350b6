import FoundationEssentials
import HopGateCore
import HopGateStore
import HopGateTunnel

/// The edge's answer to a session handshake's credential: a client API key checked against the domain's stored
/// Argon2id hash (through the verified-key cache, off the event loop), or a resumption token checked with an HMAC
/// and one store lookup. A valid credential earns a fresh token.
public struct TunnelCredentialVerifier: Sendable {
    /// The name of the token-signing secret in the store, shared by every edge on the database.
    public static let secretName = "resumption-token"
    /// How long a token stays valid: a client that was away longer presents its key again.
    public static let defaultTokenLifetime: TimeInterval = 24 * 3600

    private let store: any DomainStore
    private let keyVerifier: KeyVerifier
    private let secret: [UInt8]
    private let tokenLifetime: TimeInterval

    /// Reads the signing secret from the store, making it on first use.
    public init(
        store: any DomainStore,
        keyVerifier: KeyVerifier = KeyVerifier(),
        tokenLifetime: TimeInterval = defaultTokenLifetime
    ) async throws {
        self.store = store
        self.keyVerifier = keyVerifier
        self.tokenLifetime = tokenLifetime
        self.secret = try await store.sharedSecret(named: Self.secretName) {
            var generator = SystemRandomNumberGenerator()
            return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }
    }

    /// The verdict for an `EdgeHandshake` verification action.
    public func verdict(for action: EdgeHandshake.Action, now: Date = Date()) async -> EdgeHandshake.Verdict {
        switch action {
        case .verifyKey(let domain, let key):
            return await verifyKey(domain: domain, key: key, now: now)
        case .verifyToken(let domain, let token):
            return await verifyToken(domain: domain, token: token, now: now)
        case .welcome, .reject, .none:
            return .serverBusy
        }
    }

    private func verifyKey(domain text: String, key: String, now: Date) async -> EdgeHandshake.Verdict {
        guard let domain = try? DomainName(validating: text) else { return .unknownDomain }
        do {
            guard let record = try await store.domain(named: domain) else { return .unknownDomain }
            guard try await keyVerifier.verify(key, against: record.clientAPIKeyHash) else { return .badKey }
            return .valid(resumptionToken: token(for: record, now: now))
        } catch {
            // The database is down or the stored hash is unreadable: not the client's fault, so it may retry.
            return .serverBusy
        }
    }

    private func verifyToken(domain text: String, token presented: [UInt8], now: Date) async -> EdgeHandshake.Verdict {
        guard let claims = try? ResumptionToken.verify(presented, secret: secret, now: now), claims.domain == text,
            let domain = try? DomainName(validating: text)
        else { return .expiredToken }
        do {
            // Unregistered since, or its key rotated: the token no longer stands for a valid key.
            guard let record = try await store.domain(named: domain),
                ResumptionToken.keyHashDigest(of: record.clientAPIKeyHash) == claims.keyHashDigest
            else { return .expiredToken }
            return .valid(resumptionToken: token(for: record, now: now))
        } catch {
            return .serverBusy
        }
    }

    private func token(for record: DomainRecord, now: Date) -> [UInt8] {
        ResumptionToken.issue(
            domain: record.domain,
            keyHash: record.clientAPIKeyHash,
            expiry: now.addingTimeInterval(tokenLifetime),
            secret: secret
        )
    }
}
