import Foundation
import HopGateCore
import HopGateEdge
import HopGateStore
import HopGateTestSupport
import HopGateTunnel
import Logging
import Testing

/// The edge's credential check on a real store: SQLite and PostgreSQL.
@Suite struct TunnelCredentialVerifierTests {
    let logger = Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }

    private func setUp(
        _ kind: TestDatabase
    ) async throws -> (DatabaseLocation, any DomainStore, StoreDomainAdministration) {
        let location = try DatabaseLocation(parsing: try await kind.freshURL())
        let store = Stores.open(location, options: StoreOptions(migrateAutomatically: true), logger: logger)
        return (location, store, StoreDomainAdministration(store: store, hasher: KeyHasher(parameters: .minimal)))
    }

    private func token(_ verdict: EdgeHandshake.Verdict) throws -> [UInt8] {
        guard case .valid(let token) = verdict else { throw ServerError("expected a valid verdict, got \(verdict)") }
        return token
    }

    @Test(arguments: TestDatabase.allCases)
    func keysAreCheckedAgainstTheStoredHash(kind: TestDatabase) async throws {
        let (_, store, admin) = try await setUp(kind)
        let key = try await admin.register(try DomainName(validating: "app.example.com"), memo: .empty).clientAPIKey
            .secret
        let verifier = try await TunnelCredentialVerifier(store: store)
        let valid = await verifier.verdict(for: .verifyKey(domain: "app.example.com", key: key))
        #expect(try !token(valid).isEmpty)
        let wrong = await verifier.verdict(for: .verifyKey(domain: "app.example.com", key: APIKey.generate().secret))
        #expect(wrong == .badKey)
        let unknown = await verifier.verdict(for: .verifyKey(domain: "other.example.com", key: key))
        #expect(unknown == .unknownDomain)
        let invalidName = await verifier.verdict(for: .verifyKey(domain: "not a domain", key: key))
        #expect(invalidName == .unknownDomain)
        await store.close()
    }

    @Test(arguments: TestDatabase.allCases)
    func aTokenIsAcceptedAfterARestartAndRefusedAfterUnregistering(kind: TestDatabase) async throws {
        let (location, store, admin) = try await setUp(kind)
        let name = try DomainName(validating: "app.example.com")
        let key = try await admin.register(name, memo: .empty).clientAPIKey.secret
        let first = try await TunnelCredentialVerifier(store: store)
        let issued = try token(await first.verdict(for: .verifyKey(domain: "app.example.com", key: key)))
        await store.close()

        // A restarted edge: a new store and a new verifier on the same database.
        let restartedStore = Stores.open(location, options: StoreOptions(), logger: logger)
        let restarted = try await TunnelCredentialVerifier(store: restartedStore)
        let resumed = await restarted.verdict(for: .verifyToken(domain: "app.example.com", token: issued))
        #expect(try !token(resumed).isEmpty)
        let otherDomain = await restarted.verdict(for: .verifyToken(domain: "other.example.com", token: issued))
        #expect(otherDomain == .expiredToken)

        _ = try await StoreDomainAdministration(store: restartedStore).unregister(name, authorization: .force)
        let afterUnregister = await restarted.verdict(for: .verifyToken(domain: "app.example.com", token: issued))
        #expect(afterUnregister == .expiredToken)
        await restartedStore.close()
    }

    @Test(arguments: TestDatabase.allCases)
    func aTokenForAReplacedKeyIsRefused(kind: TestDatabase) async throws {
        let (_, store, admin) = try await setUp(kind)
        let name = try DomainName(validating: "app.example.com")
        let oldKey = try await admin.register(name, memo: .empty).clientAPIKey.secret
        let verifier = try await TunnelCredentialVerifier(store: store)
        let issued = try token(await verifier.verdict(for: .verifyKey(domain: "app.example.com", key: oldKey)))
        // The operator replaces the key: unregister and register again.
        _ = try await admin.unregister(name, authorization: .force)
        _ = try await admin.register(name, memo: .empty)
        let stale = await verifier.verdict(for: .verifyToken(domain: "app.example.com", token: issued))
        #expect(stale == .expiredToken)
        await store.close()
    }

    @Test func anExpiredTokenIsRefused() async throws {
        let (_, store, admin) = try await setUp(.sqlite)
        let key = try await admin.register(try DomainName(validating: "app.example.com"), memo: .empty).clientAPIKey
            .secret
        let verifier = try await TunnelCredentialVerifier(store: store, tokenLifetime: 60)
        let issued = try token(await verifier.verdict(for: .verifyKey(domain: "app.example.com", key: key)))
        let later = await verifier.verdict(
            for: .verifyToken(domain: "app.example.com", token: issued),
            now: Date(timeIntervalSinceNow: 120)
        )
        #expect(later == .expiredToken)
        await store.close()
    }

    @Test func aDatabaseThatIsDownIsBusyNotABadKey() async throws {
        let server = try await offload { try PostgresServer() }
        defer { server.destroy() }
        let store = Stores.open(
            try DatabaseLocation(parsing: server.url()),
            options: StoreOptions(connectRetryWindow: .milliseconds(300), migrateAutomatically: true),
            logger: logger
        )
        let verifier = try await TunnelCredentialVerifier(store: store)
        try await offload { try server.stop() }
        let verdict = await verifier.verdict(for: .verifyKey(domain: "app.example.com", key: APIKey.generate().secret))
        #expect(verdict == .serverBusy)
        await store.close()
    }
}
