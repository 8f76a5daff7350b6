import FoundationEssentials

/// The ACME account for one directory: its key signs every request, so it is kept (and shared by every edge on one
/// database) instead of making a new account at each start.
public struct ACMEAccountRecord: Sendable, Equatable {
    public let directoryURL: String
    /// The account's URL (the `kid` of every signed request after newAccount).
    public let accountURL: String
    /// The ES256 account key, PKCS#8 PEM.
    public let privateKeyPEM: String
    /// The contact email, or empty.
    public let contact: String
    public let createdAt: Date

    public init(directoryURL: String, accountURL: String, privateKeyPEM: String, contact: String, createdAt: Date) {
        self.directoryURL = directoryURL
        self.accountURL = accountURL
        self.privateKeyPEM = privateKeyPEM
        self.contact = contact
        self.createdAt = createdAt
    }
}

/// A certificate the edge serves for one domain, with its key and the facts `hopgate cert ls` shows.
public struct CertificateRecord: Sendable, Equatable {
    public let domain: String
    /// The leaf first, then the intermediates, PEM.
    public let chainPEM: String
    public let privateKeyPEM: String
    public let notBefore: Date
    public let notAfter: Date
    /// The leaf's issuer, as a distinguished name (`CN=Pebble Intermediate CA 1d2f3c`).
    public let issuer: String
    /// The leaf's serial number in hex: it changes with every renewal.
    public let serialNumber: String
    public let updatedAt: Date

    public init(
        domain: String,
        chainPEM: String,
        privateKeyPEM: String,
        notBefore: Date,
        notAfter: Date,
        issuer: String,
        serialNumber: String,
        updatedAt: Date
    ) {
        self.domain = domain
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.issuer = issuer
        self.serialNumber = serialNumber
        self.updatedAt = updatedAt
    }
}

/// A challenge answer waiting for the CA to fetch it. Kept in the database so that whichever edge the CA reaches
/// (or an edge answering for `hopgate cert renew`, which runs elsewhere) can answer.
public struct ACMEChallengeRecord: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case http01 = "http-01"
        case tlsALPN01 = "tls-alpn-01"
    }

    public let token: String
    public let domain: String
    public let kind: Kind
    /// `token.thumbprint`: the body of the HTTP-01 answer, hashed into the TLS-ALPN-01 certificate.
    public let keyAuthorization: String
    public let createdAt: Date

    public init(token: String, domain: String, kind: Kind, keyAuthorization: String, createdAt: Date) {
        self.token = token
        self.domain = domain
        self.kind = kind
        self.keyAuthorization = keyAuthorization
        self.createdAt = createdAt
    }
}

/// What the ACME code keeps in the store, beside domains. Both stores implement it; every edge on one PostgreSQL
/// shares it.
public protocol CertificateStateStore: Sendable {
    /// The account for `directoryURL`, if one was made.
    func acmeAccount(directoryURL: String) async throws -> ACMEAccountRecord?
    /// Stores `record` unless an account for its directory exists; returns the stored one (the first wins a race).
    func saveACMEAccount(_ record: ACMEAccountRecord) async throws -> ACMEAccountRecord
    /// The certificate for `domain`, if one was issued.
    func certificate(for domain: String) async throws -> CertificateRecord?
    /// Every stored certificate, ordered by domain.
    func allCertificates() async throws -> [CertificateRecord]
    /// Stores or replaces the certificate for `record.domain`.
    func saveCertificate(_ record: CertificateRecord) async throws
    /// Stores a challenge answer (replacing one with the same token), and drops answers older than a day.
    func saveChallenge(_ record: ACMEChallengeRecord) async throws
    /// The pending challenge with this token.
    func challenge(token: String) async throws -> ACMEChallengeRecord?
    /// The newest pending challenge of `kind` for `domain`.
    func newestChallenge(domain: String, kind: ACMEChallengeRecord.Kind) async throws -> ACMEChallengeRecord?
    func deleteChallenge(token: String) async throws
    /// Takes (or extends) the lease on `name` for `holder` until `expiresAt`, unless another holder has an
    /// unexpired one: so that of several edges only one orders a certificate at a time. Returns whether it holds.
    func acquireLease(name: String, holder: String, expiresAt: Date) async throws -> Bool
    func releaseLease(name: String, holder: String) async throws
}
