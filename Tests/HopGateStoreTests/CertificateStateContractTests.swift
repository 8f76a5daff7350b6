import Foundation
import HopGateCore
import HopGateStore
import HopGateTestSupport
import Testing

/// The ACME state every store keeps: accounts, certificates, challenge answers and order leases; on SQLite and on
/// a real PostgreSQL.
@Suite struct CertificateStateContractTests {
    @Test(arguments: TestDatabase.allCases)
    func theFirstAccountForADirectoryWins(kind: TestDatabase) async throws {
        let store = try await kind.makeStore()
        let directory = "https://ca.example/dir"
        #expect(try await store.acmeAccount(directoryURL: directory) == nil)
        let first = account(directory, key: "first")
        let kept = try await store.saveACMEAccount(first)
        let second = try await store.saveACMEAccount(account(directory, key: "second"))
        #expect(kept.privateKeyPEM == "first")
        #expect(second.privateKeyPEM == "first", "a racing second edge must get the first edge's key")
        let read = try await store.acmeAccount(directoryURL: directory)
        #expect(read?.contact == "ops@example.com")
        #expect(try await store.acmeAccount(directoryURL: "https://other.example/dir") == nil)
    }

    @Test(arguments: TestDatabase.allCases)
    func certificatesAreStoredReplacedAndListed(kind: TestDatabase) async throws {
        let store = try await kind.makeStore()
        try await store.saveCertificate(certificate("b.example.com", serial: "01"))
        try await store.saveCertificate(certificate("a.example.com", serial: "02"))
        try await store.saveCertificate(certificate("b.example.com", serial: "03"))
        let all = try await store.allCertificates()
        #expect(all.map(\.domain) == ["a.example.com", "b.example.com"])
        let b = try #require(try await store.certificate(for: "b.example.com"))
        #expect(b.serialNumber == "03")
        #expect(b.chainPEM == "chain 03")
        #expect(abs(b.notAfter.timeIntervalSince(Date(timeIntervalSince1970: 2_000_000_000))) < 0.001)
        #expect(try await store.certificate(for: "c.example.com") == nil)
    }

    @Test(arguments: TestDatabase.allCases)
    func challengesAreFoundByTokenAndByDomainThenDeleted(kind: TestDatabase) async throws {
        let store = try await kind.makeStore()
        let old = ACMEChallengeRecord(
            token: "t1",
            domain: "a.example.com",
            kind: .tlsALPN01,
            keyAuthorization: "t1.x",
            createdAt: Date().addingTimeInterval(-60)
        )
        let new = ACMEChallengeRecord(
            token: "t2",
            domain: "a.example.com",
            kind: .tlsALPN01,
            keyAuthorization: "t2.x",
            createdAt: Date()
        )
        let http = ACMEChallengeRecord(
            token: "t3",
            domain: "a.example.com",
            kind: .http01,
            keyAuthorization: "t3.x",
            createdAt: Date()
        )
        for record in [old, new, http] { try await store.saveChallenge(record) }
        #expect(try await store.challenge(token: "t3")?.keyAuthorization == "t3.x")
        #expect(try await store.challenge(token: "nope") == nil)
        #expect(try await store.newestChallenge(domain: "a.example.com", kind: .tlsALPN01)?.token == "t2")
        #expect(try await store.newestChallenge(domain: "b.example.com", kind: .http01) == nil)
        try await store.deleteChallenge(token: "t2")
        #expect(try await store.newestChallenge(domain: "a.example.com", kind: .tlsALPN01)?.token == "t1")

        // Answers a day old are dropped with the next save.
        let stale = ACMEChallengeRecord(
            token: "t4",
            domain: "a.example.com",
            kind: .http01,
            keyAuthorization: "t4.x",
            createdAt: Date().addingTimeInterval(-2 * 86_400)
        )
        try await store.saveChallenge(stale)
        try await store.saveChallenge(new)
        #expect(try await store.challenge(token: "t4") == nil)
    }

    @Test(arguments: TestDatabase.allCases)
    func oneHolderAtATimeHoldsALeaseUntilItExpiresOrIsReleased(kind: TestDatabase) async throws {
        let store = try await kind.makeStore()
        let later = Date().addingTimeInterval(600)
        let first = try await store.acquireLease(name: "certificate:a", holder: "edge-1", expiresAt: later)
        let second = try await store.acquireLease(name: "certificate:a", holder: "edge-2", expiresAt: later)
        let again = try await store.acquireLease(name: "certificate:a", holder: "edge-1", expiresAt: later)
        let otherName = try await store.acquireLease(name: "certificate:b", holder: "edge-2", expiresAt: later)
        #expect(first && !second && again && otherName)

        try await store.releaseLease(name: "certificate:a", holder: "edge-2")  // not the holder: no effect
        #expect(try await !store.acquireLease(name: "certificate:a", holder: "edge-2", expiresAt: later))
        try await store.releaseLease(name: "certificate:a", holder: "edge-1")
        #expect(
            try await store.acquireLease(
                name: "certificate:a",
                holder: "edge-2",
                expiresAt: Date().addingTimeInterval(-1)
            )
        )
        // edge-2's lease has expired: edge-1 takes it over.
        #expect(try await store.acquireLease(name: "certificate:a", holder: "edge-1", expiresAt: later))
    }

    private func account(_ directory: String, key: String) -> ACMEAccountRecord {
        ACMEAccountRecord(
            directoryURL: directory,
            accountURL: "",
            privateKeyPEM: key,
            contact: "ops@example.com",
            createdAt: Date()
        )
    }

    private func certificate(_ domain: String, serial: String) -> CertificateRecord {
        CertificateRecord(
            domain: domain,
            chainPEM: "chain \(serial)",
            privateKeyPEM: "key \(serial)",
            notBefore: Date(timeIntervalSince1970: 1_900_000_000),
            notAfter: Date(timeIntervalSince1970: 2_000_000_000),
            issuer: "CN=Test CA",
            serialNumber: serial,
            updatedAt: Date()
        )
    }
}
