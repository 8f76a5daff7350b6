import Foundation
import HopGateCore
import HopGateStore
import HopGateTestSupport
import Logging
import Testing

extension TestDatabase {
    /// A location for a fresh, empty database of this kind.
    func freshLocation() async throws -> DatabaseLocation {
        try await DatabaseLocation(parsing: freshURL())
    }

    /// A fresh store, migrated unless asked not to be.
    func makeStore(migrated: Bool = true, retryWindow: Duration = .seconds(5)) async throws -> any DomainStore {
        let store = Stores.open(
            try await freshLocation(),
            options: StoreOptions(connectRetryWindow: retryWindow),
            logger: testLogger
        )
        if migrated { _ = try await store.migrate() }
        return store
    }
}

let testLogger = Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }

/// A domain record with a placeholder hash, for tests that do not verify keys.
func makeRecord(
    _ name: String,
    hash: String = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
    memo: String = ""
)
    throws -> DomainRecord
{
    let now = Date()
    return DomainRecord(
        id: UUID(),
        domain: try DomainName(validating: name),
        clientAPIKeyHash: hash,
        memo: memo,
        createdAt: now,
        updatedAt: now
    )
}
