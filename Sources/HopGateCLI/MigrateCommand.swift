import ArgumentParser
import FoundationEssentials
import HopGateCore
import HopGateStore

/// `hopgate migrate`: brings the database schema up to date, or shows where it stands.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending database migrations (a second run does nothing).",
        discussion: "Each migration runs in its own transaction; edges sharing one PostgreSQL may run this at once."
    )

    @OptionGroup var globals: GlobalOptions

    @Flag(help: "List applied and pending migrations instead of applying them.")
    var status = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            try await globals.withStore { store, _ in
                let location = try globals.databaseLocation()
                if status {
                    try printStatus(try await store.migrationStatus(), location: location)
                } else {
                    let applied = try await store.migrate()
                    let version = try await store.migrationStatus().currentVersion
                    if json {
                        let done = applied.map {
                            MigrationOutput(version: $0.version, name: $0.name, state: "applied", appliedAt: nil)
                        }
                        try printJSON(MigrateOutput(applied: done, schemaVersion: version))
                    } else if applied.isEmpty {
                        print("\(location) is up to date at schema version \(version); nothing to apply.")
                    } else {
                        for migration in applied { print("applied \(migration.version) \(migration.name)") }
                        print("\(location) is now at schema version \(version).")
                    }
                }
            }
        }
    }

    private func printStatus(_ status: MigrationStatus, location: DatabaseLocation) throws {
        let known = Dictionary(uniqueKeysWithValues: Migrations.all.map { ($0.version, $0.name) })
        var rows = status.applied.map { applied in
            MigrationOutput(
                version: applied.version,
                name: applied.name,
                state: known[applied.version] == nil ? "applied (unknown to this hopgate)" : "applied",
                appliedAt: Timestamp.format(applied.appliedAt, fractionDigits: 0)
            )
        }
        rows += status.pending.map(MigrationOutput.init)
        if json {
            try printJSON(
                StatusOutput(migrations: rows, schemaVersion: status.currentVersion, pending: status.pending.count)
            )
            return
        }
        print(
            formatTable(
                header: ["VERSION", "NAME", "STATE", "APPLIED AT"],
                rows: rows.map { [String($0.version), $0.name, $0.state, $0.appliedAt ?? "-"] }
            )
        )
        print(
            status.pending.isEmpty
                ? "\(location) is up to date at schema version \(status.currentVersion)."
                : "\(location) is at schema version \(status.currentVersion); \(status.pending.count) pending: run `hopgate migrate`."
        )
    }
}

private struct MigrationOutput: Encodable {
    let version: Int
    let name: String
    let state: String
    var appliedAt: String?

    init(version: Int, name: String, state: String, appliedAt: String?) {
        self.version = version
        self.name = name
        self.state = state
        self.appliedAt = appliedAt
    }

    init(_ migration: Migration) {
        self.init(version: migration.version, name: migration.name, state: "pending", appliedAt: nil)
    }

    enum CodingKeys: String, CodingKey {
        case version, name, state
        case appliedAt = "applied_at"
    }
}

private struct MigrateOutput: Encodable {
    let applied: [MigrationOutput]
    let schemaVersion: Int

    enum CodingKeys: String, CodingKey {
        case applied
        case schemaVersion = "schema_version"
    }
}

private struct StatusOutput: Encodable {
    let migrations: [MigrationOutput]
    let schemaVersion: Int
    let pending: Int

    enum CodingKeys: String, CodingKey {
        case migrations, pending
        case schemaVersion = "schema_version"
    }
}
