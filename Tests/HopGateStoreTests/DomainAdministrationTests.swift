import Foundation
import HopGateCore
import HopGateStore
import HopGateTestSupport
import Testing

@Suite struct DomainAdministrationTests {
    private func makeAdministration(_ kind: TestDatabase) async throws -> (StoreDomainAdministration, any DomainStore) {
        let store = try await kind.makeStore()
        return (StoreDomainAdministration(store: store, hasher: KeyHasher(parameters: .minimal)), store)
    }

    @Test(arguments: TestDatabase.allCases)
    func registerStoresOnlyAHashOfTheKeyItReturns(kind: TestDatabase) async throws {
        let (admin, store) = try await makeAdministration(kind)
        let name = try DomainName(validating: "app.example.com")
        let registered = try await admin.register(name, memo: try Memo(validating: "demo"))
        #expect(registered.clientAPIKey.secret.count == 64)
        #expect(registered.info.memo == "demo")

        let record = try #require(try await store.domain(named: name))
        #expect(record.clientAPIKeyHash.hasPrefix("$argon2id$"))
        #expect(!record.clientAPIKeyHash.contains(registered.clientAPIKey.secret))
        #expect(try KeyHasher.verify(registered.clientAPIKey.secret, against: record.clientAPIKeyHash))

        await #expect(throws: HopGateError(.alreadyExists, "")) { try await admin.register(name, memo: .empty) }
        #expect(try await admin.list() == [registered.info])
    }

    @Test(arguments: TestDatabase.allCases)
    func unregisterNeedsTheDomainsKeyUnlessForced(kind: TestDatabase) async throws {
        let (admin, _) = try await makeAdministration(kind)
        let one = try DomainName(validating: "one.example.com")
        let two = try DomainName(validating: "two.example.com")
        let keyOne = try await admin.register(one, memo: .empty).clientAPIKey
        let keyTwo = try await admin.register(two, memo: .empty).clientAPIKey

        await #expect(throws: HopGateError(.permissionDenied, "")) {
            try await admin.unregister(one, authorization: .clientAPIKey(keyTwo.secret))
        }
        #expect(try await admin.list().count == 2)
        #expect(try await admin.unregister(one, authorization: .clientAPIKey(keyOne.secret)).domain == one.value)
        #expect(try await admin.unregister(two, authorization: .force).domain == two.value)
        #expect(try await admin.list().isEmpty)
        await #expect(throws: HopGateError(.notFound, "")) { try await admin.unregister(one, authorization: .force) }
    }

    @Test func jsonShapeIsTheAdminAPIs() throws {
        let info = DomainInfo(try makeRecord("json.example.com", memo: "m"))
        let registered = RegisteredDomain(info: info, clientAPIKey: APIKey.generate())
        let object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(registered)) as? [String: Any]
        )
        #expect(Set(object.keys) == ["id", "domain", "memo", "created_at", "updated_at", "client_api_key"])
        #expect(object["client_api_key"] as? String == registered.clientAPIKey.secret)
        let decoded = try JSONDecoder().decode(DomainInfo.self, from: JSONEncoder().encode(info))
        #expect(decoded.id == info.id && decoded.domain == info.domain)
        #expect(abs(decoded.createdAt.timeIntervalSince(info.createdAt)) < 0.000002)
    }
}
