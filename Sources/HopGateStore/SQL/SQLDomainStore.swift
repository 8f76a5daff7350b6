import FoundationEssentials
import Glibc
import HopGateCore
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// The one `DomainStore` implementation, over either driver.
///
/// Every call runs on the store's own thread, never on the caller's (possibly an event loop's): both C libraries
/// block. One connection, used by one thread at a time under a lock. An unreachable database is retried with
/// exponential backoff for `connectRetryWindow`; a connection lost during a read is reopened and the read
/// retried; a connection lost during a write is reported, not retried, because the write may have committed.
final class SQLDomainStore: DomainStore, @unchecked Sendable {
    // @unchecked: the three variables below are only read or written while `lock` is held.
    private let lock = NIOLock()
    private var connection: (any SQLConnection)?
    private var schemaChecked = false
    private var closed = false

    private let location: DatabaseLocation
    private let options: StoreOptions
    private let logger: Logger
    private let connect: @Sendable () throws -> any SQLConnection
    /// The store's own thread: its one connection can serve one statement at a time anyway, and a database outage
    /// (statements waiting out the retry window) then never occupies the shared pool that Argon2 runs on.
    private let threadPool = NIOThreadPool(numberOfThreads: 1)

    init(
        location: DatabaseLocation,
        options: StoreOptions,
        logger: Logger,
        connect: @escaping @Sendable () throws -> any SQLConnection
    ) {
        self.location = location
        self.options = options
        self.logger = logger
        self.connect = connect
        threadPool.start()
    }

    // MARK: - DomainStore

    func migrationStatus() async throws -> MigrationStatus {
        try await run("read the migration status", isWrite: false, needsSchema: false) { try Self.status(on: $0) }
    }

    func migrate() async throws -> [Migration] {
        let logger = self.logger
        return try await run("apply migrations", isWrite: true, needsSchema: false) { connection in
            try Self.applyPending(on: connection, logger: logger)
        }
    }

    func insertDomain(_ record: DomainRecord) async throws {
        do {
            try await run("register \(record.domain)", isWrite: true) { connection in
                _ = try connection.execute(
                    """
                    INSERT INTO domains (id, domain, client_api_key_hash, memo, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    """,
                    [
                        record.id.uuidString.lowercased(), record.domain.value, record.clientAPIKeyHash, record.memo,
                        Timestamp.format(record.createdAt), Timestamp.format(record.updatedAt),
                    ]
                )
            }
        } catch SQLError.uniqueViolation {
            throw HopGateError(.alreadyExists, "\(record.domain) is already registered")
        }
    }

    func domain(named name: DomainName) async throws -> DomainRecord? {
        try await run("look up \(name)", isWrite: false) { connection in
            try connection.execute("SELECT \(Self.domainColumns) FROM domains WHERE domain = $1", [name.value])
                .rows.first.map(Self.decodeDomain)
        }
    }

    func allDomains() async throws -> [DomainRecord] {
        try await run("list domains", isWrite: false) { connection in
            try connection.execute("SELECT \(Self.domainColumns) FROM domains ORDER BY domain").rows
                .map(Self.decodeDomain)
        }
    }

    func deleteDomain(id: UUID, clientAPIKeyHash: String) async throws -> Bool {
        try await run("unregister a domain", isWrite: true) { connection in
            try connection.execute(
                "DELETE FROM domains WHERE id = $1 AND client_api_key_hash = $2",
                [id.uuidString.lowercased(), clientAPIKeyHash]
            ).affectedRows == 1
        }
    }

    func sharedSecret(named name: String, orCreate make: @escaping @Sendable () -> [UInt8]) async throws -> [UInt8] {
        try await run("read the secret \(name)", isWrite: true) { connection in
            // ON CONFLICT DO NOTHING is the same SQL in PostgreSQL and SQLite (3.24 and later).
            _ = try connection.execute(
                "INSERT INTO tunnel_secrets (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                [name, Hex.encode(make()), Timestamp.format(Date())]
            )
            guard
                let text = try connection.execute("SELECT secret FROM tunnel_secrets WHERE name = $1", [name])
                    .rows.first?.first ?? nil, let secret = Hex.decode(text)
            else { throw HopGateError(.internalError, "the stored secret \(name) cannot be read") }
            return secret
        }
    }

    func close() async {
        _ = try? await threadPool.runIfActive { [self] in
            lock.withLock {
                connection?.close()
                connection = nil
                closed = true
            }
        }
        try? await threadPool.shutdownGracefully()
    }

    // MARK: - Running statements

    func run<Result: Sendable>(
        _ operation: String,
        isWrite: Bool,
        needsSchema: Bool = true,
        _ body: @escaping @Sendable (any SQLConnection) throws -> Result
    ) async throws -> Result {
        try await threadPool.runIfActive { [self] in
            try self.runBlocking(operation, isWrite: isWrite, needsSchema: needsSchema, body)
        }
    }

    private func runBlocking<Result>(
        _ operation: String,
        isWrite: Bool,
        needsSchema: Bool,
        _ body: (any SQLConnection) throws -> Result
    ) throws -> Result {
        let clock = ContinuousClock()
        let deadline = clock.now + options.connectRetryWindow
        var backoff = Duration.milliseconds(100)
        return try lock.withLock {
            guard !closed else { throw HopGateError(.internalError, "the store is closed") }
            while true {
                let reason: String
                var writing = false
                do {
                    let wasOpen = connection != nil
                    let open = try connection ?? connect()
                    connection = open
                    // A connection that died while idle (a server restart) must not fail the write that finds out:
                    // a cheap probe finds out first, and is retried like any read.
                    if isWrite && wasOpen { _ = try open.execute("SELECT 1") }
                    if needsSchema && !schemaChecked {
                        try checkSchema(on: open)
                        schemaChecked = true
                    }
                    writing = isWrite
                    return try body(open)
                } catch SQLError.connectFailed(let message) {
                    reason = message
                } catch SQLError.connectionLost(let message) {
                    connection?.close()
                    connection = nil
                    guard !writing else {
                        throw HopGateError(
                            .databaseUnavailable,
                            "lost the connection to the database \(location) while trying to \(operation): \(message). "
                                + "A change in flight was rolled back unless it had already committed; check before retrying"
                        )
                    }
                    reason = message
                } catch SQLError.busy(let message) {
                    throw HopGateError(.temporaryFailure, "the database \(location) is busy (\(message)); try again")
                } catch SQLError.failed(let message) {
                    throw HopGateError(.internalError, "the database \(location) refused to \(operation): \(message)")
                }
                let wait = min(backoff, deadline - clock.now)
                guard wait > .zero else {
                    throw HopGateError(.databaseUnavailable, "cannot reach the database \(location): \(reason)")
                }
                logger.warning(
                    "database unreachable, retrying",
                    metadata: ["database": "\(location)", "retry_in": "\(wait)", "error": "\(reason)"]
                )
                usleep(UInt32(wait.components.seconds * 1_000_000 + wait.components.attoseconds / 1_000_000_000_000))
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    /// Refuses to work on a database whose schema this binary does not match, or migrates it when allowed.
    private func checkSchema(on connection: any SQLConnection) throws {
        var status = try Self.status(on: connection)
        if !status.pending.isEmpty && options.migrateAutomatically {
            _ = try Self.applyPending(on: connection, logger: logger)
            status = try Self.status(on: connection)
        }
        if status.isAheadOfThisBinary {
            throw HopGateError(
                .configuration,
                "the database \(location) is at schema version \(status.currentVersion), newer than this hopgate "
                    + "knows (\(Migrations.latestVersion)); upgrade hopgate"
            )
        }
        if let first = status.pending.first {
            throw HopGateError(
                .configuration,
                "the database \(location) needs \(status.pending.count) migration(s), starting with "
                    + "\(first.version) '\(first.name)'; run `hopgate migrate`"
            )
        }
    }

    // MARK: - Rows

    private static let domainColumns = "id, domain, client_api_key_hash, memo, created_at, updated_at"

    private static func decodeDomain(_ row: [String?]) throws -> DomainRecord {
        guard row.count == 6, let idText = row[0], let id = UUID(uuidString: idText), let name = row[1],
            let hash = row[2], let createdText = row[4], let created = Timestamp.parse(createdText),
            let updatedText = row[5], let updated = Timestamp.parse(updatedText)
        else {
            throw HopGateError(.internalError, "a domains row cannot be read: \(row.map { $0 ?? "NULL" })")
        }
        return DomainRecord(
            id: id,
            domain: try DomainName(validating: name),
            clientAPIKeyHash: hash,
            memo: row[3] ?? "",
            createdAt: created,
            updatedAt: updated
        )
    }
}
