import Foundation
import HopGateCore
import HopGateStore
import HopGateTestSupport
import Testing

/// What the PostgreSQL store does when its server goes away: each test owns its server so it can stop it.
@Suite(.serialized) struct PostgresOutageTests {
    @Test func aStoppedServerIsReportedAsUnavailableNamingTheDatabase() async throws {
        let server = try await offload { try PostgresServer() }
        defer { server.destroy() }
        let store = Stores.open(
            try DatabaseLocation(parsing: server.url().replacingOccurrences(of: "postgres@", with: "postgres:pw@")),
            options: StoreOptions(connectRetryWindow: .milliseconds(600)),
            logger: testLogger
        )
        _ = try await store.migrate()
        try await store.insertDomain(try makeRecord("kept.example.com"))

        try await offload { try server.stop() }
        let started = ContinuousClock.now
        let error = await #expect(throws: HopGateError.self) {
            try await store.insertDomain(try makeRecord("lost.example.com"))
        }
        #expect(error?.code == .databaseUnavailable)
        #expect(error?.message.contains("127.0.0.1:\(server.port)") == true)
        #expect(error?.message.contains("pw") == false)
        #expect(ContinuousClock.now - started < .seconds(10))

        // Back up: nothing half-written, and the same store reconnects by itself.
        try await offload { try server.start() }
        #expect(try await store.allDomains().map(\.domain.value) == ["kept.example.com"])
        await store.close()
    }

    @Test func aWriteAfterAServerRestartSucceeds() async throws {
        let server = try await offload { try PostgresServer() }
        defer { server.destroy() }
        let store = Stores.open(
            try DatabaseLocation(parsing: server.url()),
            options: StoreOptions(connectRetryWindow: .seconds(10)),
            logger: testLogger
        )
        _ = try await store.migrate()
        #expect(try await store.allDomains().isEmpty)
        try await offload { try server.stop() }
        try await offload { try server.start() }
        // The store's connection died while idle; the write must not be the one to pay for finding out.
        try await store.insertDomain(try makeRecord("after-restart.example.com"))
        #expect(try await store.allDomains().map(\.domain.value) == ["after-restart.example.com"])
        await store.close()
    }

    @Test func aLostConnectionIsReopenedForTheNextOperation() async throws {
        let url = try await offload { try PostgresServer.sharedURL() }
        let store = Stores.open(try DatabaseLocation(parsing: url), options: StoreOptions(), logger: testLogger)
        _ = try await store.migrate()
        try await store.insertDomain(try makeRecord("survivor.example.com"))
        // Kill every other backend on this database, as a server restart or a failover would.
        let database = String(url.split(separator: "/").last!)
        try await runPSQL(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)' AND pid <> pg_backend_pid()"
        )
        #expect(try await store.allDomains().map(\.domain.value) == ["survivor.example.com"])
        await store.close()
    }

    @Test func anUnreachableServerIsRetriedUntilItComesBack() async throws {
        let server = try await offload { try PostgresServer() }
        defer { server.destroy() }
        try await offload { try server.stop() }
        let store = Stores.open(
            try DatabaseLocation(parsing: server.url()),
            options: StoreOptions(connectRetryWindow: .seconds(30)),
            logger: testLogger
        )
        async let status = store.migrationStatus()
        try await Task.sleep(for: .milliseconds(800))
        try await offload { try server.start() }
        #expect(try await status.pending.count == Migrations.all.count)
        await store.close()
    }

    private func runPSQL(_ url: String, _ sql: String) async throws {
        let output = try await offload { try runProcess("/usr/bin/psql", ["-X", "-q", "-d", url, "-c", sql]) }
        guard output.status == 0 else { throw ServerError(output.standardError) }
    }
}
