import FoundationEssentials
import HopGateCore
import Logging

/// A registered domain as stored: the client API key only as its Argon2id encoded hash.
public struct DomainRecord: Sendable, Equatable {
    public let id: UUID
    public let domain: DomainName
    public let clientAPIKeyHash: String
    public let memo: String
    public let createdAt: Date
    public let updatedAt: Date

    public init(id: UUID, domain: DomainName, clientAPIKeyHash: String, memo: String, createdAt: Date, updatedAt: Date)
    {
        self.id = id
        self.domain = domain
        self.clientAPIKeyHash = clientAPIKeyHash
        self.memo = memo
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Where domains, and later certificates and the ACME account, are kept. Two implementations (SQLite and
/// PostgreSQL) pass the same contract tests. Every failure is a `HopGateError` whose code says what happened.
public protocol DomainStore: CertificateStateStore {
    /// Applied and pending migrations.
    func migrationStatus() async throws -> MigrationStatus
    /// Applies pending migrations, each in its own transaction; returns those applied (none on a second run).
    func migrate() async throws -> [Migration]
    /// Stores a new domain; `.alreadyExists` if the name is taken.
    func insertDomain(_ record: DomainRecord) async throws
    /// The domain with this name, if registered.
    func domain(named name: DomainName) async throws -> DomainRecord?
    /// Every registered domain, ordered by name.
    func allDomains() async throws -> [DomainRecord]
    /// Deletes the domain if it still has this id and key hash (so a key rotated meanwhile is not deleted by
    /// someone who proved the old one); returns whether a row was deleted.
    func deleteDomain(id: UUID, clientAPIKeyHash: String) async throws -> Bool
    /// The secret stored under `name`, made by `make` and stored on first use. Every edge on one database gets the
    /// same secret, and keeps it across restarts: it signs what one edge issues and another accepts (resumption
    /// tokens). When two edges race to create it, the first insert wins and both read that one.
    func sharedSecret(named name: String, orCreate make: @escaping @Sendable () -> [UInt8]) async throws -> [UInt8]
    /// Closes the connection; the store may not be used afterwards.
    func close() async
}

/// How a store connects and what it does with an unmigrated database.
public struct StoreOptions: Sendable {
    /// How long an unreachable database is retried, with backoff, before an operation fails as unavailable.
    public var connectRetryWindow: Duration
    /// Apply pending migrations before the first domain operation, instead of failing with "run hopgate migrate".
    /// Right for the embedded file that one process owns; wrong for a PostgreSQL that several edges share.
    public var migrateAutomatically: Bool

    public init(connectRetryWindow: Duration = .seconds(10), migrateAutomatically: Bool = false) {
        self.connectRetryWindow = connectRetryWindow
        self.migrateAutomatically = migrateAutomatically
    }
}

/// Opens stores.
public enum Stores {
    /// A store for `location`. Nothing connects yet: the first operation does, so every failure to reach the
    /// database is reported (and retried) the same way wherever it happens.
    public static func open(_ location: DatabaseLocation, options: StoreOptions, logger: Logger) -> any DomainStore {
        switch location {
        case .sqlite(let path):
            return SQLDomainStore(location: location, options: options, logger: logger) {
                try SQLiteConnection(path: path)
            }
        case .postgres(let connectionString):
            let withTimeout = Self.withDefaultConnectTimeout(connectionString)
            return SQLDomainStore(location: location, options: options, logger: logger) {
                try PostgresConnection(connectionString: withTimeout)
            }
        }
    }

    /// libpq waits for an unanswering host as long as the kernel does (minutes); 10 s unless the URL says.
    static func withDefaultConnectTimeout(_ url: String) -> String {
        if url.contains("connect_timeout=") { return url }
        return url + (url.contains("?") ? "&" : "?") + "connect_timeout=10"
    }
}
