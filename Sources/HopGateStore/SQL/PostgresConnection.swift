import CHopGatePQ
import FoundationEssentials
import Glibc

/// A libpq connection. The connection string goes to libpq unchanged, so every libpq feature works: URLs with
/// sslmode and the other parameters, several hosts with target_session_attrs, .pgpass, PG* environment variables.
final class PostgresConnection: SQLConnection {
    let dialect = SQLDialect.postgres
    private var connection: OpaquePointer?

    init(connectionString: String) throws(SQLError) {
        var loadError = [CChar](repeating: 0, count: 512)
        guard hg_pq_load(&loadError, loadError.count) == 0 else {
            throw .connectFailed(
                String(decoding: loadError.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            )
        }
        let connection = hg_PQconnectdb(connectionString)
        guard let connection, hg_PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { Self.errorMessage($0) } ?? "out of memory"
            hg_PQfinish(connection)
            throw .connectFailed(message)
        }
        self.connection = connection
        // libpq prints server NOTICEs ("relation already exists, skipping") to stderr by default: not for users.
        hg_PQsetNoticeProcessor(connection, { _, _ in }, nil)
        do {
            // Timestamps come back as text; one fixed zone makes them parse the same whatever the server's default.
            _ = try execute("SET TIME ZONE 'UTC'")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func execute(_ sql: String, _ parameters: [String?]) throws(SQLError) -> SQLResult {
        guard let connection else { throw .connectionLost("the connection is closed") }
        var cStrings: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.flatMap { strdup($0) } }
        defer { for string in cStrings { free(string) } }
        let result: OpaquePointer? = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                hg_PQexecParams(connection, sql, Int32(parameters.count), nil, values.baseAddress, nil, nil, 0)
            }
        }
        defer { hg_PQclear(result) }
        guard let result else {
            throw hg_PQstatus(connection) == CONNECTION_BAD
                ? .connectionLost(Self.errorMessage(connection)) : .failed(Self.errorMessage(connection))
        }
        switch hg_PQresultStatus(result) {
        case PGRES_COMMAND_OK:
            return SQLResult(rows: [], affectedRows: Int(String(cString: hg_PQcmdTuples(result))) ?? 0)
        case PGRES_TUPLES_OK:
            var output = SQLResult()
            let rowCount = hg_PQntuples(result)
            let columnCount = hg_PQnfields(result)
            output.rows.reserveCapacity(Int(rowCount))
            for row in 0..<rowCount {
                output.rows.append(
                    (0..<columnCount).map { column in
                        hg_PQgetisnull(result, row, column) == 1
                            ? nil : String(cString: hg_PQgetvalue(result, row, column))
                    }
                )
            }
            output.affectedRows = Int(rowCount)
            return output
        default:
            let message = Self.errorMessage(connection)
            let state = hg_PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
            // 23505 unique_violation; class 08 connection exceptions; 57P01-57P03 the server is shutting down or
            // terminated this backend (PostgreSQL Appendix A).
            if state == "23505" { throw .uniqueViolation(message) }
            if hg_PQstatus(connection) == CONNECTION_BAD || state.hasPrefix("08") || state.hasPrefix("57P") {
                throw .connectionLost(message)
            }
            if state == "40001" || state == "40P01" || state == "55P03" { throw .busy(message) }
            throw .failed(message)
        }
    }

    func close() {
        if let connection { hg_PQfinish(connection) }
        connection = nil
    }

    private static func errorMessage(_ connection: OpaquePointer) -> String {
        String(cString: hg_PQerrorMessage(connection)).trimmingTrailingNewlines()
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = self
        while text.last?.isNewline == true || text.last == " " { text.removeLast() }
        return text
    }
}
