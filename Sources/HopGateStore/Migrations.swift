import FoundationEssentials

/// One step of the schema, in both dialects. Steps are applied in version order, each in its own transaction
/// together with its row in `schema_migrations`, so a step is either wholly applied or not at all.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    let sqlite: [String]
    let postgres: [String]

    func statements(for dialect: SQLDialect) -> [String] {
        switch dialect {
        case .sqlite: return sqlite
        case .postgres: return postgres
        }
    }
}

/// Every migration HopGate knows, oldest first. Append only: never edit a migration that has shipped.
public enum Migrations {
    public static let all: [Migration] = [
        Migration(
            version: 1,
            name: "create domains",
            sqlite: [
                """
                CREATE TABLE domains (
                    id TEXT PRIMARY KEY,
                    domain TEXT NOT NULL UNIQUE,
                    client_api_key_hash TEXT NOT NULL,
                    memo TEXT NOT NULL DEFAULT '',
                    created_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL
                )
                """
            ],
            postgres: [
                """
                CREATE TABLE domains (
                    id uuid PRIMARY KEY,
                    domain text NOT NULL UNIQUE,
                    client_api_key_hash text NOT NULL,
                    memo text NOT NULL DEFAULT '',
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """
            ]
        ),
        Migration(
            version: 2,
            name: "create tunnel secrets",
            sqlite: [
                "CREATE TABLE tunnel_secrets (name TEXT PRIMARY KEY, secret TEXT NOT NULL, created_at TEXT NOT NULL)"
            ],
            postgres: [
                "CREATE TABLE tunnel_secrets (name text PRIMARY KEY, secret text NOT NULL, created_at timestamptz NOT NULL)"
            ]
        ),
        Migration(
            version: 3,
            name: "create acme accounts, certificates, challenges and leases",
            sqlite: [
                """
                CREATE TABLE acme_accounts (
                    directory_url TEXT PRIMARY KEY, account_url TEXT NOT NULL, private_key_pem TEXT NOT NULL,
                    contact TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL
                )
                """,
                """
                CREATE TABLE certificates (
                    domain TEXT PRIMARY KEY, chain_pem TEXT NOT NULL, private_key_pem TEXT NOT NULL,
                    not_before TEXT NOT NULL, not_after TEXT NOT NULL, issuer TEXT NOT NULL,
                    serial_number TEXT NOT NULL, updated_at TEXT NOT NULL
                )
                """,
                """
                CREATE TABLE acme_challenges (
                    token TEXT PRIMARY KEY, domain TEXT NOT NULL, kind TEXT NOT NULL,
                    key_authorization TEXT NOT NULL, created_at TEXT NOT NULL
                )
                """,
                "CREATE INDEX acme_challenges_domain ON acme_challenges (domain, kind)",
                "CREATE TABLE acme_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL)",
            ],
            postgres: [
                """
                CREATE TABLE acme_accounts (
                    directory_url text PRIMARY KEY, account_url text NOT NULL, private_key_pem text NOT NULL,
                    contact text NOT NULL DEFAULT '', created_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE certificates (
                    domain text PRIMARY KEY, chain_pem text NOT NULL, private_key_pem text NOT NULL,
                    not_before timestamptz NOT NULL, not_after timestamptz NOT NULL, issuer text NOT NULL,
                    serial_number text NOT NULL, updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE acme_challenges (
                    token text PRIMARY KEY, domain text NOT NULL, kind text NOT NULL,
                    key_authorization text NOT NULL, created_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX acme_challenges_domain ON acme_challenges (domain, kind)",
                "CREATE TABLE acme_leases (name text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)",
            ]
        ),
    ]

    /// The version a fully migrated database is at.
    public static var latestVersion: Int { all.last?.version ?? 0 }
}

/// What `schema_migrations` says, beside what this binary knows.
public struct MigrationStatus: Sendable {
    public struct Applied: Sendable {
        public let version: Int
        public let name: String
        public let appliedAt: Date
    }

    /// Applied migrations, oldest first (including any that this binary does not know, from a newer hopgate).
    public let applied: [Applied]
    /// Known migrations not yet applied, oldest first.
    public let pending: [Migration]

    /// The highest applied version, 0 for an empty database.
    public var currentVersion: Int { applied.map(\.version).max() ?? 0 }
    /// Whether a newer hopgate has migrated this database past what this one understands.
    public var isAheadOfThisBinary: Bool { currentVersion > Migrations.latestVersion }
}
