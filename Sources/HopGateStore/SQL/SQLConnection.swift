/// The SQL flavour a connection speaks, where the two stores' SQL must differ.
enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// The result of one statement: rows of text columns (NULL as nil), and how many rows a write changed.
struct SQLResult {
    var rows: [[String?]] = []
    var affectedRows = 0
}

/// Why a statement failed, in the terms the store needs to decide what to tell the user.
enum SQLError: Error {
    /// The connection could not be made (server down, wrong host, file not openable).
    case connectFailed(String)
    /// The connection was lost while in use; a transaction in flight was rolled back by the server.
    case connectionLost(String)
    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    case uniqueViolation(String)
    /// The database is locked by another writer beyond the busy timeout.
    case busy(String)
    /// Anything else the database said.
    case failed(String)
}

/// A blocking connection to one database. Parameters are text, written `$1`, `$2`, ... in SQL.
///
/// Both drivers are blocking C libraries, so a connection is only ever used from a thread-pool thread, by one
/// thread at a time (`SQLDomainStore` guarantees both); nothing here may run on an event loop.
protocol SQLConnection: AnyObject {
    var dialect: SQLDialect { get }
    func execute(_ sql: String, _ parameters: [String?]) throws(SQLError) -> SQLResult
    func close()
}

extension SQLConnection {
    func execute(_ sql: String) throws(SQLError) -> SQLResult { try execute(sql, []) }
}
