import FoundationEssentials
import HopGateCore
import Logging

extension SQLDomainStore {
    /// An arbitrary constant naming HopGate's migration lock among PostgreSQL advisory locks, so that two edges
    /// starting at once against one database apply each migration exactly once.
    private static let migrationLockKey = "7243401"

    static func status(on connection: any SQLConnection) throws -> MigrationStatus {
        let existsQuery =
            switch connection.dialect {
            case .sqlite: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            case .postgres: "SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL"
            }
        guard !(try connection.execute(existsQuery).rows.isEmpty) else {
            return MigrationStatus(applied: [], pending: Migrations.all)
        }
        let applied = try connection.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
            .rows.map { row in
                guard let versionText = row[0], let version = Int(versionText), let name = row[1],
                    let appliedText = row[2], let appliedAt = Timestamp.parse(appliedText)
                else { throw HopGateError(.internalError, "a schema_migrations row cannot be read: \(row)") }
                return MigrationStatus.Applied(version: version, name: name, appliedAt: appliedAt)
            }
        let appliedVersions = Set(applied.map(\.version))
        return MigrationStatus(
            applied: applied,
            pending: Migrations.all.filter { !appliedVersions.contains($0.version) }
        )
    }

    static func applyPending(on connection: any SQLConnection, logger: Logger) throws -> [Migration] {
        var done: [Migration] = []
        for migration in Migrations.all {
            let begin: [String] =
                switch connection.dialect {
                // IMMEDIATE takes the write lock now, so two processes cannot both decide a step is pending.
                case .sqlite: ["BEGIN IMMEDIATE"]
                case .postgres: ["BEGIN", "SELECT pg_advisory_xact_lock(\(migrationLockKey))"]
                }
            for statement in begin { _ = try connection.execute(statement) }
            do {
                _ = try connection.execute(migrationsTable(connection.dialect))
                let alreadyApplied = try !connection.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    [String(migration.version)]
                ).rows.isEmpty
                if !alreadyApplied {
                    for statement in migration.statements(for: connection.dialect) {
                        _ = try connection.execute(statement)
                    }
                    _ = try connection.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                        [String(migration.version), migration.name, Timestamp.format(Date())]
                    )
                }
                _ = try connection.execute("COMMIT")
                if !alreadyApplied {
                    logger.info(
                        "applied migration",
                        metadata: ["version": "\(migration.version)", "name": "\(migration.name)"]
                    )
                    done.append(migration)
                }
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw error
            }
        }
        return done
    }

    private static func migrationsTable(_ dialect: SQLDialect) -> String {
        switch dialect {
        case .sqlite:
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        case .postgres:
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
        }
    }
}
