import FoundationEssentials
import HopGateStore
import Logging
import Synchronization

/// What the edge answers when the CA validates: HTTP-01 key authorizations and TLS-ALPN-01 certificates, read from
/// the store, where whichever process runs the order (this edge, another one, `hopgate cert renew`) put them.
public final class ChallengeAnswers: Sendable {
    private let store: any CertificateStateStore
    private let logger: Logger
    /// TLS-ALPN-01 certificates by key authorization: the CA connects several times per validation.
    private let certificates = Mutex<[String: (chainPEM: String, keyPEM: String)]>([:])

    public init(store: any CertificateStateStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// The body for `GET /.well-known/acme-challenge/<token>` on `host`, or nil for an unknown token.
    public func httpKeyAuthorization(token: String, host: String) async -> String? {
        do {
            guard let record = try await store.challenge(token: token), record.kind == .http01,
                record.domain.lowercased() == host.lowercased()
            else { return nil }
            logger.info("answering an HTTP-01 challenge", metadata: ["domain": "\(record.domain)"])
            return record.keyAuthorization
        } catch {
            logger.error("cannot read ACME challenges from the store", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The certificate for a TLS-ALPN-01 validation of `serverName`, or nil when none is pending.
    public func tlsALPNCertificate(serverName: String) async -> (chainPEM: String, keyPEM: String)? {
        do {
            guard let record = try await store.newestChallenge(domain: serverName.lowercased(), kind: .tlsALPN01)
            else { return nil }
            if let cached = certificates.withLock({ $0[record.keyAuthorization] }) { return cached }
            let made = try IssuedCertificate.tlsALPNChallenge(
                domain: record.domain,
                keyAuthorization: record.keyAuthorization
            )
            certificates.withLock { cache in
                if cache.count > 100 { cache.removeAll() }
                cache[record.keyAuthorization] = made
            }
            logger.info("answering a TLS-ALPN-01 challenge", metadata: ["domain": "\(record.domain)"])
            return made
        } catch {
            logger.error("cannot answer a TLS-ALPN-01 challenge", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
