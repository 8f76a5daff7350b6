import Foundation
import HopGateCore
import HopGateStore
import HopGateTestSupport
import Testing

/// What every store must do; run on SQLite and on a real PostgreSQL.
@Suite struct StoreContractTests {
    @Test(arguments: TestDatabase.allCases)
    func migrateCreatesTheSchemaOnceAndReportsIt(kind: TestDatabase) async throws {
        let store = try await kind.makeStore(migrated: false)
        let before = try await store.migrationStatus()
        #expect(before.applied.isEmpty)
        #expect(before.pending.map(\.version) == Migrations.all.map(\.version))

        let applied = try await store.migrate()
        #expect(applied.map(\.version) == Migrations.all.map(\.version))
        #expect(try await store.migrate().isEmpty)

        let after = try await store.migrationStatus()
        #expect(after.pending.isEmpty)
        #expect(after.currentVersion == Migrations.latestVersion)
        #expect(abs(try #require(after.applied.first).appliedAt.timeIntervalSinceNow) < 60)
    }

    @Test(arguments: TestDatabase.allCases)
    func storesFindsListsAndDeletesDomains(kind: TestDatabase) async throws {
        let store = try await kind.makeStore()
        let b = try makeRecord("b.example.com", memo: "second ✓")
        let a = try makeRecord("a.example.com", hash: "$argon2id$other")
        try await store.insertDomain(b)
        try await store.insertDomain(a)

        let found = try #require(try await store.domain(named: DomainName(validating: "B.Example.com")))
        #expect(found.id == b.id)
        #expect(found.memo == "second ✓")
        #expect(found.clientAPIKeyHash == b.clientAPIKeyHash)
        #expect(abs(found.createdAt.timeIntervalSince(b.createdAt)) < 0.000002)
        #expect(try await store.domain(named: DomainName(validating: "c.example.com")) == nil)
        #expect(try await store.allDomains().map(\.domain.value) == ["a.example.com", "b.example.com"])

        #expect(try await !store.deleteDomain(id: a.id, clientAPIKeyHash: b.clientAPIKeyHash))
        #expect(try await !store.deleteDomain(id: UUID(), clientAPIKeyHash: a.clientAPIKeyHash))
        #expect(try await store.deleteDomain(id: a.id, clientAPIKeyHash: a.clientAPIKeyHash))
        #expect(try await store.allDomains().map(\.domain.value) == ["b.example.com"])
    }

    @Test(arguments: TestDatabase.allCases)
    func refusesADuplicateDomain(kind: TestDatabase) async throws {
        let store = try await kind.makeStore()
        try await store.insertDomain(try makeRecord("dup.example.com"))
        await #expect(throws: HopGateError(.alreadyExists, "")) {
            try await store.insertDomain(try makeRecord("dup.example.com"))
        }
        #expect(try await store.allDomains().count == 1)
    }

    @Test(arguments: TestDatabase.allCases)
    func concurrentRegistrationsOfOneNameLetExactlyOneWin(kind: TestDatabase) async throws {
        let location = try await kind.freshLocation()
        let stores = (0..<4).map { _ in Stores.open(location, options: StoreOptions(), logger: testLogger) }
        _ = try await stores[0].migrate()
        let results = await withTaskGroup(of: Bool.self) { group in
            for store in stores {
                group.addTask { (try? await store.insertDomain(try makeRecord("race.example.com"))) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        for store in stores { await store.close() }
    }

    @Test(arguments: TestDatabase.allCases)
    func concurrentMigrationsApplyEachStepOnce(kind: TestDatabase) async throws {
        let location = try await kind.freshLocation()
        let stores = (0..<4).map { _ in Stores.open(location, options: StoreOptions(), logger: testLogger) }
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for store in stores { group.addTask { try await store.migrate().count } }
            return try await group.reduce(0, +)
        }
        #expect(applied == Migrations.all.count)
        for store in stores { await store.close() }
    }

    @Test(arguments: TestDatabase.allCases)
    func anUnmigratedDatabaseIsRefusedWithTheCommandToRun(kind: TestDatabase) async throws {
        let store = try await kind.makeStore(migrated: false)
        await #expect {
            try await store.allDomains()
        } throws: { error in
            let error = try #require(error as? HopGateError)
            return error.code == .configuration && error.message.contains("hopgate migrate")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func aSharedSecretIsMadeOnceAndSurvivesARestart(kind: TestDatabase) async throws {
        let location = try await kind.freshLocation()
        let first = Stores.open(location, options: StoreOptions(migrateAutomatically: true), logger: testLogger)
        let made = try await first.sharedSecret(named: "resumption") { (0..<32).map { _ in UInt8.random(in: 0...255) } }
        #expect(made.count == 32)
        let again = try await first.sharedSecret(named: "resumption") { Array(repeating: 1, count: 32) }
        #expect(again == made)
        await first.close()
        // A restarted edge (a new store on the same database) reads the same secret.
        let second = Stores.open(location, options: StoreOptions(migrateAutomatically: true), logger: testLogger)
        let afterRestart = try await second.sharedSecret(named: "resumption") { Array(repeating: 2, count: 32) }
        #expect(afterRestart == made)
        let other = try await second.sharedSecret(named: "other") { Array(repeating: 3, count: 16) }
        #expect(other == Array(repeating: 3, count: 16))
        await second.close()
    }

    @Test(arguments: TestDatabase.allCases)
    func migratesOnFirstUseWhenAllowed(kind: TestDatabase) async throws {
        let store = Stores.open(
            try await kind.freshLocation(),
            options: StoreOptions(migrateAutomatically: true),
            logger: testLogger
        )
        #expect(try await store.allDomains().isEmpty)
        #expect(try await store.migrationStatus().pending.isEmpty)
    }
}
