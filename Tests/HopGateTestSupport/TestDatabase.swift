import Foundation
import Testing

/// The two kinds of database every store and CLI test runs on.
public enum TestDatabase: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }

    /// A `--database` URL for a fresh, empty database of this kind: a new SQLite file in a directory that does not
    /// exist yet, or a new database on the shared PostgreSQL server.
    public func freshURL() async throws -> String {
        switch self {
        case .sqlite: return "sqlite:" + (try makeTemporaryDirectory("hopgate-db")) + "/nested/hopgate.db"
        case .postgres: return try await offload { try PostgresServer.sharedURL() }
        }
    }
}
