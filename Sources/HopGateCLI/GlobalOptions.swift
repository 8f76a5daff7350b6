import ArgumentParser
import FoundationEssentials
import HopGateCore
import HopGateStore
import Logging
import Synchronization

/// Options every store-using command shares. Each also reads an environment variable, as a unit file would
/// set it; a flag wins over the variable, the variable over the default.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). "
                + "Default: sqlite:\(DatabaseLocation.defaultSQLitePath()). (env: HOPGATE_DATABASE, HOP_DB_DSN)",
            valueName: "url"
        )
    )
    var database: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How long to keep retrying an unreachable database before failing (exit 69). Default: 10. "
                + "(env: HOPGATE_DATABASE_TIMEOUT)",
            valueName: "seconds"
        )
    )
    var databaseTimeout: Double?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)",
            valueName: "level"
        ),
        completion: .list(Logger.Level.allCases.map(\.rawValue))
    )
    var logLevel: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)",
            valueName: "format"
        ),
        completion: .list(LogFormat.allCases.map(\.rawValue))
    )
    var logFormat: String?

    // MARK: - Resolved values

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func databaseLocation() throws -> DatabaseLocation {
        guard let text = setting(database, "HOPGATE_DATABASE", "HOP_DB_DSN"), !text.isEmpty else {
            return .sqlite(path: DatabaseLocation.defaultSQLitePath())
        }
        return try DatabaseLocation(parsing: text)
    }

    func storeOptions(for location: DatabaseLocation) throws -> StoreOptions {
        var options = StoreOptions(connectRetryWindow: try connectRetryWindow())
        // The embedded file belongs to this host alone: migrating it on first use is what makes
        // `hopgate domain add` work on a fresh machine. A shared PostgreSQL is migrated on purpose.
        if case .sqlite = location { options.migrateAutomatically = true }
        return options
    }

    private func connectRetryWindow() throws -> Duration {
        var seconds = databaseTimeout ?? 10
        if databaseTimeout == nil, let text = environment["HOPGATE_DATABASE_TIMEOUT"] {
            guard let value = Double(text) else {
                throw ValidationError("HOPGATE_DATABASE_TIMEOUT must be a number of seconds, not '\(text)'")
            }
            seconds = value
        }
        guard seconds >= 0, seconds <= 86_400 else {
            throw ValidationError("the database timeout must be between 0 and 86400 seconds")
        }
        return .milliseconds(Int64(seconds * 1000))
    }

    func validate() throws {
        _ = try resolvedLogLevel()
        _ = try resolvedLogFormat()
        _ = try connectRetryWindow()
    }

    private func resolvedLogLevel() throws -> Logger.Level {
        let text = logLevel ?? environment["HOPGATE_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError(
                "the log level '\(text)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return level
    }

    private func resolvedLogFormat() throws -> LogFormat {
        let text = logFormat ?? environment["HOPGATE_LOG_FORMAT"] ?? "text"
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw ValidationError("the log format '\(text)' is not text or json")
        }
        return format
    }

    /// Sets up logging once for the process and returns the command's logger.
    func makeLogger(label: String) throws -> Logger {
        let level = try resolvedLogLevel()
        let format = try resolvedLogFormat()
        Self.bootstrapped.withLock { done in
            guard !done else { return }
            LoggingSystem.bootstrap { label in HopGateLogHandler(label: label, level: level, format: format) }
            done = true
        }
        return Logger(label: label)
    }

    /// Opens the store these options name, and passes it to `body`, closing it afterwards.
    func withStore<Result>(_ body: (any DomainStore, Logger) async throws -> Result) async throws -> Result {
        let logger = try makeLogger(label: "hopgate.store")
        let location = try databaseLocation()
        let store = Stores.open(location, options: try storeOptions(for: location), logger: logger)
        do {
            let result = try await body(store, logger)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }

    private static let bootstrapped = Mutex(false)
}
