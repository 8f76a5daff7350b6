import FoundationEssentials
import Glibc
import HopGateCore

/// Where the store lives, parsed from `--database`: an SQLite file or a PostgreSQL connection string.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    /// The embedded store: an SQLite file at this path (created on first use).
    case sqlite(path: String)
    /// PostgreSQL: a `postgres://` or `postgresql://` URL passed to libpq as it is.
    case postgres(connectionString: String)

    /// Accepts `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///var/lib/x.db` is absolute), `postgres://...`
    /// and `postgresql://...`.
    public init(parsing text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(connectionString: text)
        } else if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else {
                throw HopGateError(
                    .configuration,
                    "the database URL '\(text)' names no file; use sqlite:/path/to/file.db"
                )
            }
            self = .sqlite(path: path)
        } else {
            throw HopGateError(
                .configuration,
                "the database URL '\(Self.redact(text))' is not understood; use sqlite:PATH or postgres://USER@HOST/DB"
            )
        }
    }

    /// The embedded store's default file: `/var/lib/hopgate/hopgate.db` for root (a service), otherwise
    /// `$XDG_DATA_HOME/hopgate/hopgate.db` (`~/.local/share/hopgate/hopgate.db`).
    public static func defaultSQLitePath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String
    {
        if geteuid() == 0 { return "/var/lib/hopgate/hopgate.db" }
        if let dataHome = environment["XDG_DATA_HOME"], dataHome.hasPrefix("/") {
            return dataHome + "/hopgate/hopgate.db"
        }
        let home = environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
        return home + "/.local/share/hopgate/hopgate.db"
    }

    /// The location without secrets, for messages and logs.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let connectionString): return Self.redact(connectionString)
        }
    }

    /// Hides a password in a URL's user info (`user:secret@`) and in a `password=` parameter.
    static func redact(_ url: String) -> String {
        var text = url
        if let scheme = text.firstRange(of: "://") {
            let authorityEnd = text[scheme.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" }) ?? text.endIndex
            if let at = text[scheme.upperBound..<authorityEnd].lastIndex(of: "@"),
                let colon = text[scheme.upperBound..<at].firstIndex(of: ":")
            {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        if let password = text.firstRange(of: "password=") {
            let end = text[password.upperBound...].firstIndex(where: { $0 == "&" || $0 == " " }) ?? text.endIndex
            text.replaceSubrange(password.upperBound..<end, with: "***")
        }
        return text
    }
}
