import CSQLite3
import FoundationEssentials
import Glibc
import HopGateCore

/// An SQLite connection to one file, the embedded store that needs no server.
///
/// Why the plain C library and not GRDB: the store needs a handful of parameterised statements, and putting both
/// databases behind the same small blocking `SQLConnection` seam lets one store implementation, one threading
/// model and one set of contract tests serve both, with one dependency less to build.
final class SQLiteConnection: SQLConnection {
    let dialect = SQLDialect.sqlite
    private var database: OpaquePointer?

    /// How long a writer waits for another process's write lock before `busy`.
    static let busyTimeoutMilliseconds: Int32 = 5_000

    init(path: String) throws(SQLError) {
        let directory = directoryPart(of: path)
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw .connectFailed("cannot create the directory \(directory): \(error)")
            }
        }
        let existed = FileManager.default.fileExists(atPath: path)
        var database: OpaquePointer?
        let status = sqlite3_open_v2(path, &database, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
        guard status == SQLITE_OK, let database else {
            let message =
                database.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_close(database)
            throw .connectFailed(message)
        }
        self.database = database
        // The file holds key hashes and, later, certificate keys: readable by its owner only.
        if !existed { chmod(path, 0o600) }
        sqlite3_busy_timeout(database, Self.busyTimeoutMilliseconds)
        sqlite3_extended_result_codes(database, 1)
        do {
            // WAL lets readers (a running edge) and a writer (`hopgate domain add`) work at the same time.
            _ = try execute("PRAGMA journal_mode = WAL")
            _ = try execute("PRAGMA foreign_keys = ON")
            // Reading one row proves the file is a database, not some other file at that path.
            _ = try execute("SELECT count(*) FROM sqlite_master")
        } catch {
            close()
            throw .connectFailed("\(path) is not a usable SQLite database: \(error)")
        }
    }

    deinit { close() }

    func execute(_ sql: String, _ parameters: [String?]) throws(SQLError) -> SQLResult {
        guard let database else { throw .connectionLost("the database is closed") }
        var statement: OpaquePointer?
        var status = sqlite3_prepare_v2(database, Self.numberedPlaceholders(sql), -1, &statement, nil)
        defer { sqlite3_finalize(statement) }
        guard status == SQLITE_OK, let statement else { throw error(status) }
        for (index, parameter) in parameters.enumerated() {
            status =
                if let parameter {
                    sqlite3_bind_text(statement, Int32(index + 1), parameter, -1, Self.transient)
                } else {
                    sqlite3_bind_null(statement, Int32(index + 1))
                }
            guard status == SQLITE_OK else { throw error(status) }
        }
        var result = SQLResult()
        while true {
            status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw error(status) }
            result.rows.append(
                (0..<sqlite3_column_count(statement)).map { column in
                    sqlite3_column_text(statement, column).map { String(cString: $0) }
                }
            )
        }
        result.affectedRows = sqlite3_stmt_readonly(statement) != 0 ? result.rows.count : Int(sqlite3_changes(database))
        return result
    }

    func close() {
        if let database { sqlite3_close_v2(database) }
        database = nil
    }

    private func error(_ status: Int32) -> SQLError {
        let message = database.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
        switch status {
        case Self.constraintUnique, Self.constraintPrimaryKey: return .uniqueViolation(message)
        case _ where status & 0xff == SQLITE_BUSY || status & 0xff == SQLITE_LOCKED: return .busy(message)
        case _ where status & 0xff == SQLITE_IOERR || status & 0xff == SQLITE_CANTOPEN: return .connectionLost(message)
        default: return .failed(message)
        }
    }

    // Extended result codes built from macros that Swift cannot import (sqlite3.h: SQLITE_CONSTRAINT | (n<<8)).
    private static let constraintPrimaryKey = SQLITE_CONSTRAINT | (6 << 8)
    private static let constraintUnique = SQLITE_CONSTRAINT | (8 << 8)

    /// SQLITE_TRANSIENT: SQLite copies the bound text, so the Swift string may go away after binding.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// `$1` becomes `?1`: SQLite reads `$1` as a *named* parameter numbered by first appearance, `?1` by number.
    /// Only a `$` before a digit is a placeholder; the store's SQL has no such text in its literals.
    static func numberedPlaceholders(_ sql: String) -> String {
        var out = ""
        var characters = sql.makeIterator()
        var pending = characters.next()
        while let character = pending {
            pending = characters.next()
            out.append(character == "$" && pending?.isASCII == true && pending?.isNumber == true ? "?" : character)
        }
        return out
    }
}
