import FoundationEssentials
import HopGateCore
import NIOPosix

/// Domain administration directly on a store: hashes new keys with Argon2id and verifies keys before removal,
/// both off the caller's thread.
public struct StoreDomainAdministration: DomainAdministration {
    private let store: any DomainStore
    private let hasher: KeyHasher
    private let verifier: KeyVerifier

    public init(store: any DomainStore, hasher: KeyHasher = KeyHasher(), verifier: KeyVerifier = KeyVerifier()) {
        self.store = store
        self.hasher = hasher
        self.verifier = verifier
    }

    public func register(_ domain: DomainName, memo: Memo) async throws -> RegisteredDomain {
        // Checked first so that a duplicate fails fast, without spending an Argon2 hash; the UNIQUE constraint
        // still decides when two registrations race.
        if try await store.domain(named: domain) != nil {
            throw HopGateError(.alreadyExists, "\(domain) is already registered")
        }
        let key = APIKey.generate()
        let hash = try await self.hasher.hash(key.secret, on: NIOThreadPool.singleton)
        let now = Timestamp.now()
        let record = DomainRecord(
            id: UUID(),
            domain: domain,
            clientAPIKeyHash: hash,
            memo: memo.value,
            createdAt: now,
            updatedAt: now
        )
        try await store.insertDomain(record)
        return RegisteredDomain(info: DomainInfo(record), clientAPIKey: key)
    }

    public func unregister(_ domain: DomainName, authorization: UnregisterAuthorization) async throws -> DomainInfo {
        guard let record = try await store.domain(named: domain) else {
            throw HopGateError(.notFound, "\(domain) is not registered")
        }
        if case .clientAPIKey(let candidate) = authorization {
            guard
                try await verifier.verify(
                    candidate.trimmingWhitespace(),
                    against: record.clientAPIKeyHash
                )
            else {
                throw HopGateError(.permissionDenied, "the client API key given for \(domain) is not its key")
            }
        }
        guard try await store.deleteDomain(id: record.id, clientAPIKeyHash: record.clientAPIKeyHash) else {
            throw HopGateError(.temporaryFailure, "\(domain) changed while it was being unregistered; try again")
        }
        return DomainInfo(record)
    }

    public func list() async throws -> [DomainInfo] {
        try await store.allDomains().map(DomainInfo.init)
    }
}
